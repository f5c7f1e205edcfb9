#!/bin/sh
# Builds ipfs-cluster's own CLI, ipfs-cluster-ctl, into DEST, once per
# version: it skips when DEST already reports this version. The end-to-end
# test tests/clusterctl_test.go runs it against pickup's ipfs-cluster routes.
# It builds in a throwaway module outside the tree, so that ipfs-cluster's
# dependencies (go-libp2p v0.48.0, go-multiaddr v0.16.1) never reach pickup's
# go.mod. The module proxy refuses ipfs-cluster's version list and @latest,
# so the version is pinned (../shared/FACTS.md); 1-3 min cold.
set -eu
DEST=${1:?usage: build-ipfs-cluster-ctl.sh DEST [VERSION]}
VERSION=${2:-v1.1.6}
GO=${GO:-go}
case $DEST in /*) ;; *) DEST=$(pwd)/$DEST ;; esac

if [ -x "$DEST" ] && "$DEST" --version 2>/dev/null | grep -q "version ${VERSION#v}\$"; then
	exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cat >go.mod <<MOD
module ipfs-cluster-ctl-build

go 1.26.0

require github.com/ipfs-cluster/ipfs-cluster $VERSION
MOD
cat >tools.go <<'SRC'
//go:build tools

package tools

import _ "github.com/ipfs-cluster/ipfs-cluster/cmd/ipfs-cluster-ctl"
SRC
GOFLAGS=-mod=mod "$GO" mod tidy
mkdir -p "$(dirname "$DEST")"
GOFLAGS=-buildvcs=false "$GO" build -trimpath -ldflags='-s -w' -o "$DEST.tmp" github.com/ipfs-cluster/ipfs-cluster/cmd/ipfs-cluster-ctl
mv "$DEST.tmp" "$DEST"
"$DEST" --version
