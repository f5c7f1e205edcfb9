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
//     container image is checked by tests/image_test.go);
//   - the deployment itself (deploy_*_test.go): envs/dev and envs/prod
//     deployed by following README.md's Deploying steps under the stub in
//     mock mode (AWSSTUB_MOCK=1: plans, applies with fake ARNs, ids and
//     endpoints), then every role started as the plan wires it, on
//     loopback stand-ins (versitygw, PostgreSQL, package awstest), the
//     Lambda under the Runtime Interface Emulator, and a pin driven through
//     it to pinned (TestDeployment); each role's IAM policies evaluated
//     against the AWS calls its code makes, internal/awsconfig's table
//     (TestIAMFromCode).
//
// The tests need terraform on PATH, npm the first time, and the Go
// toolchain; the deployment test also needs PostgreSQL's binaries,
// versitygw and aws-lambda-rie (make tools installs both into .tools/bin). Without terraform they skip, except in CI (CI=true), where they
// fail.
package terraform
