#!/bin/sh
# Builds the AWS Lambda Runtime Interface Emulator (aws-lambda-rie) into
# DEST, once: it skips when DEST exists and runs. The deployment test
# (terraform/deploy_test.go) runs the Lambda's bootstrap under it, through
# the real Lambda Runtime API. It builds in a throwaway module outside the
# tree, so that the emulator's dependencies never reach pickup's go.mod.
# The module proxy serves the emulator only as a pseudo-version
# (../shared/FACTS.md), pinned here.
set -eu
DEST=${1:?usage: build-lambda-rie.sh DEST [VERSION]}
VERSION=${2:-v0.0.0-20261030222936-bef5c4ba774d}
GO=${GO:-go}
case $DEST in /*) ;; *) DEST=$(pwd)/$DEST ;; esac

stamp="$DEST.version"
if [ -x "$DEST" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$VERSION" ]; then
	exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cat >go.mod <<MOD
module aws-lambda-rie-build

go 1.26.0

require github.com/aws/aws-lambda-runtime-interface-emulator $VERSION
MOD
cat >tools.go <<'SRC'
//go:build tools

package tools

import _ "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
SRC
GOFLAGS=-mod=mod "$GO" mod tidy
mkdir -p "$(dirname "$DEST")"
CGO_ENABLED=0 GOFLAGS=-buildvcs=false "$GO" build -trimpath -ldflags='-s -w' -o "$DEST.tmp" github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie
mv "$DEST.tmp" "$DEST"
echo "$VERSION" >"$stamp"
echo "$DEST"
