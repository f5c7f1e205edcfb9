#!/usr/bin/env bash
# Builds the Lambda deployment package of pickup's gateway: a zip holding the
# pickup binary, static, for linux/arm64, as an executable `bootstrap` (the
# provided.al2023 runtime runs it; on Lambda it detects AWS_LAMBDA_RUNTIME_API
# and serves the API).
#
#   scripts/build-lambda.sh [OUT]        # OUT defaults to bin/lambda.zip
#
# The zip is written by terraform/cmd/lambdazip, with fixed time stamps: the
# same binary always gives the same zip, so Terraform redeploys the function
# only when the code changed.
set -euo pipefail

out="${1:-bin/lambda.zip}"
case "$out" in
/*) ;;
*) out="$PWD/$out" ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$root"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build \
  -tags lambda.norpc -trimpath -ldflags "-s -w" \
  -o "$work/bootstrap" ./cmd/pickup
go run ./terraform/cmd/lambdazip -o "$out" "$work/bootstrap"
echo "$out"
