#!/usr/bin/env bash
# Builds pickup's container image for the Fargate roles, without a Docker
# engine or a registry: ko puts a static pickup (-trimpath, -s -w,
# CGO_ENABLED=0) for linux/amd64 and linux/arm64 at /ko-app/pickup, its
# entrypoint, on the base scripts/build-image-base.sh makes from this
# machine's files (CA bundle, nonroot 65532, /tmp).
#
#   scripts/build-image.sh [OUT]    # OUT defaults to bin/image
#
# writes OUT/oci, an OCI image layout whose index.json lists one
# multi-platform index, and OUT/digest, that index's digest, which it also
# prints. The same sources, Go and CA bundle give the same digest.
# `crane push OUT/oci REPO:TAG` pushes it (README.md, The container image).
#
# ko finds a base named by digest in its cache ($KOCACHE/img, an OCI
# layout) and then never pulls it; the base is named on a host that cannot
# resolve (.invalid), so a build that succeeds pulled nothing. KOCACHE
# (default .tools/ko) keeps the base and ko's binaries between builds. The
# first build compiles pickup and its dependencies twice, with a cold Go
# build cache about 6 CPU-minutes (3 min on 2 idle cores; 9 min measured
# with the cores shared); later ones reuse Go's build cache (3-6 s).
#
# KO and CRANE name the binaries (defaults: .tools/bin/ko and
# .tools/bin/crane; `make image-tools` installs them).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-bin/image}"
case "$out" in
/*) ;;
*) out="$PWD/$out" ;;
esac
export KO="${KO:-$root/.tools/bin/ko}"
export CRANE="${CRANE:-$root/.tools/bin/crane}"
export KOCACHE="${KOCACHE:-$root/.tools/ko}"
for tool in "$KO" "$CRANE"; do
  [ -x "$tool" ] || {
    echo "build-image: $tool is missing: make image-tools" >&2
    exit 1
  }
done

work="$(mktemp -d)"
# ko names the layout it writes by its path, which must pass as a
# repository name (lowercase: t.TempDir()'s do not): it writes to this
# path relative to the root, then the layout moves to OUT.
stage="bin/.image-$$"
trap 'rm -rf "$work" "$root/$stage"' EXIT
mkdir -p "$KOCACHE"
# One build at a time per cache: the base's swap below is not atomic.
exec 9>"$KOCACHE/lock"
flock 9

base="$(CRANE="$CRANE" "$root/scripts/build-image-base.sh" "$work/base")"
# The cache holds the current base only: a new CA bundle makes a new base,
# and the old one is of no further use.
if ! grep -q "$base" "$KOCACHE/img/index.json" 2>/dev/null; then
  rm -rf "$KOCACHE/img"
  cp -r "$work/base" "$KOCACHE/img"
fi

cd "$root"
rm -rf "$stage"
mkdir -p bin
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
KO_DEFAULTBASEIMAGE="pickup-base.invalid/base@$base" KO_DOCKER_REPO=pickup \
  "$KO" build --push=false --bare --sbom=none --ldflags='-s -w' \
  --platform=linux/amd64,linux/arm64 \
  --oci-layout-path "$stage" ./cmd/pickup >"$work/ref" 2>"$work/ko.log" || {
  cat "$work/ko.log" >&2
  exit 1
}
ref="$(cat "$work/ref")"
digest="${ref##*@}"
rm -rf "$out/oci" "$out/digest"
mkdir -p "$out"
mv "$stage" "$out/oci"
echo "$digest" >"$out/digest"
echo "$digest"
