#!/bin/sh
# Builds the IPNI indexer storetheindex (the real counterpart of
# serve/ipni's tests: it ingests pickup's advertisements over HTTP and
# answers /cid and /multihash) into DEST, once per version: it skips when
# DEST already runs this version. `go install` of it fails here (the module
# proxy refuses its version list), and the cockroachdb/swiss that its pebble
# brings does not compile on Go 1.26 (undefined fastrand64), so it builds in
# a throwaway module outside the tree requiring storetheindex and a newer
# swiss (../shared/FACTS.md); about 2 minutes with Go's build cache warm.
set -eu
DEST=${1:?usage: build-storetheindex.sh DEST [VERSION]}
VERSION=${2:-v0.8.38}
SWISS=v0.0.0-20260820225851-333444432258
GO=${GO:-go}

if [ -x "$DEST" ] && [ "$(cat "$DEST.version" 2>/dev/null)" = "$VERSION" ]; then
	exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cat >go.mod <<MOD
module storetheindex-build

go 1.26.0

require (
	github.com/ipni/storetheindex $VERSION
	github.com/cockroachdb/swiss $SWISS
)
MOD
cat >tools.go <<'SRC'
//go:build tools

package tools

import _ "github.com/ipni/storetheindex"
SRC
GOFLAGS=-mod=mod "$GO" mod tidy
mkdir -p "$(dirname "$DEST")"
CGO_ENABLED=0 GOFLAGS=-buildvcs=false "$GO" build -trimpath -ldflags='-s -w' -o "$DEST.tmp" github.com/ipni/storetheindex
mv "$DEST.tmp" "$DEST"
echo "$VERSION" >"$DEST.version"
"$DEST" --version || true
