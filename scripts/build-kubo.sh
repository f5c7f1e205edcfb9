#!/bin/sh
# Builds kubo's ipfs (for the end-to-end benchmark's origin and its original
# path, and for the end-to-end test that imports what pickup serves) into
# DEST, once per version: it skips when DEST
# already runs this version. `go install` of kubo refuses its replace
# directive, so it builds in a throwaway module outside the tree that
# requires kubo and the go-libp2p it needs (../shared/FACTS.md); 4-11 min
# with nothing in Go's build cache, under a minute in make test, where the
# image's builds have compiled most of what kubo shares with pickup.
set -eu
DEST=${1:?usage: build-kubo.sh DEST [VERSION]}
VERSION=${2:-v0.43.1}
LIBP2P=v0.50.0
GO=${GO:-go}

if [ -x "$DEST" ] && "$DEST" version 2>/dev/null | grep -q "version ${VERSION#v}\$"; then
	exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cat >go.mod <<MOD
module kubo-build

go 1.26.0

require (
	github.com/ipfs/kubo $VERSION
	github.com/libp2p/go-libp2p $LIBP2P
)
MOD
cat >tools.go <<'SRC'
//go:build tools

package tools

import _ "github.com/ipfs/kubo/cmd/ipfs"
SRC
GOFLAGS=-mod=mod "$GO" mod tidy
mkdir -p "$(dirname "$DEST")"
# Static and -trimpath, as the image's pickup is built: what the two share
# is compiled once.
CGO_ENABLED=0 GOFLAGS=-buildvcs=false "$GO" build -trimpath -ldflags='-s -w' -o "$DEST.tmp" github.com/ipfs/kubo/cmd/ipfs
mv "$DEST.tmp" "$DEST"
"$DEST" version
