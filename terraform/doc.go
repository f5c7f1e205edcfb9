// Package terraform holds pickup's AWS deployment: Terraform modules
// (modules/<name>) and the environments that compose them (envs/dev,
// envs/prod). It has no Go API; its tests are how `go test ./...` checks the
// deployment, offline:
//
//   - terraform fmt -check over every file;
//   - terraform init, validate and test (with mock_provider "aws") in every
//     module and environment, against a schema-only stand-in for the AWS
//     provider (package stubprovider, command awsstub) serving the schema
//     that package cdkschema extracts from the npm package
//     @cdktn/provider-aws, downloaded and built once into .tools/;
//   - the layout HashiCorp's style guide asks for, and the environments'
//     lock files;
//   - the Lambda package that scripts/build-lambda.sh builds (the
//     container image is checked by tests/image_test.go).
//
// The tests need terraform on PATH, npm the first time, and the Go
// toolchain. Without terraform they skip, except in CI (CI=true), where they
// fail.
package terraform
