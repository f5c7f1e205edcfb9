// Command awsstub is a schema-only stand-in for the Terraform AWS provider,
// for checking pickup's deployment where the real provider cannot be
// downloaded. Terraform starts it from a plugin directory; it serves the
// schema in the file named at build time and refuses to configure itself, so
// it can never reach an AWS account.
//
// Build it with the schema file's absolute path:
//
//	go build -ldflags "-X main.schemaFile=/abs/aws-schema.json" \
//	    -o DIR/registry.terraform.io/hashicorp/aws/6.66.0/linux_amd64/terraform-provider-aws_v6.66.0_x5 \
//	    ./terraform/cmd/awsstub
//
// The schema file is what package cdkschema extracts from the npm package
// @cdktn/provider-aws; terraform/stub_test.go does all of this itself.
//
// When AWSSTUB_ONLY is set (resource types and data sources, comma
// separated, data sources as data.aws_x), the stub serves only those: what a
// configuration uses is all Terraform needs, and a smaller schema starts
// faster every one of the many times Terraform starts the provider.
//
// When AWSSTUB_MOCK=1, the stub runs in stubprovider's mock mode: it
// configures itself, plans, applies and reads with deterministic fake
// values (still reaching nothing), so that `terraform apply` into a local
// state and `terraform show -json` give every value of a configuration.
// Off by default: then it refuses all of that.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tfprotov5/tf5server"

	"github.com/pickup-ipfs/pickup/terraform/internal/cdkschema"
	"github.com/pickup-ipfs/pickup/terraform/internal/stubprovider"
)

// schemaFile is set with -ldflags "-X main.schemaFile=PATH": Terraform
// starts providers with no arguments, and copies them, so the path cannot
// come from the command line or sit beside the binary.
var schemaFile string

// address is the provider address the stub stands in for.
const address = "registry.terraform.io/hashicorp/aws"

func main() {
	if schemaFile == "" {
		fmt.Fprintln(os.Stderr, "awsstub: built without -ldflags \"-X main.schemaFile=PATH\"")
		os.Exit(2)
	}
	s, err := cdkschema.ReadFile(schemaFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "awsstub:", err)
		os.Exit(1)
	}
	if only := os.Getenv("AWSSTUB_ONLY"); only != "" {
		s = s.Only(strings.Split(only, ","))
	}
	srv, err := stubprovider.New(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "awsstub:", err)
		os.Exit(1)
	}
	if os.Getenv("AWSSTUB_MOCK") == "1" {
		srv = stubprovider.NewMock(srv)
	}
	if err := tf5server.Serve(address, func() tfprotov5.ProviderServer { return srv }); err != nil {
		fmt.Fprintln(os.Stderr, "awsstub:", err)
		os.Exit(1)
	}
}
