#!/usr/bin/env bash
# Builds the base of pickup's container image, from files of this machine
# only: an OCI image layout holding a multi-platform index (linux/amd64,
# linux/arm64) of one layer, the same for both platforms, with
#
#   /etc/passwd, /etc/group   root, nobody and nonroot (65532:65532), as distroless has them
#   /etc/ssl/certs/ca-certificates.crt   this machine's CA bundle
#   /home/nonroot             0700, owned by 65532
#   /tmp                      1777
#
# and a config per platform naming its os and architecture, user
# 65532:65532, working directory /home/nonroot and SSL_CERT_FILE. No
# binary, no shell: scripts/build-image.sh puts pickup on it with ko.
#
#   scripts/build-image-base.sh OUT      # prints the index's digest, sha256:...
#
# OUT is replaced by an OCI layout whose index.json lists the index and
# each platform's manifest (what ko's cache, $KOCACHE/img, must list to
# find a base by digest without pulling it). The same CA bundle gives the
# same digest: every time stamp is 0, entries are sorted, owners numeric,
# and the layer is compressed by Go's gzip, which is deterministic.
#
# crane (go-containerregistry) sets an image's platform and user only on
# a registry, so the images are assembled on crane's own in-memory registry,
# on a loopback port, for the few seconds this takes, then pulled into OUT.
# CRANE names the binary (default: .tools/bin/crane, which `make
# image-tools` installs).
set -euo pipefail

out="${1:?usage: build-image-base.sh OUT}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
crane="${CRANE:-$root/.tools/bin/crane}"
ca=/etc/ssl/certs/ca-certificates.crt
[ -r "$ca" ] || {
  echo "build-image-base: no CA bundle at $ca (Debian's ca-certificates)" >&2
  exit 1
}

work="$(mktemp -d)"
registry_pid=""
cleanup() {
  if [ -n "$registry_pid" ]; then
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The layer's files. Modes are set here, not inherited from the umask.
rootfs="$work/rootfs"
mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/home/nonroot" "$rootfs/tmp"
cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
EOF
cp "$ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"
chmod 0755 "$rootfs/etc" "$rootfs/etc/ssl" "$rootfs/etc/ssl/certs" "$rootfs/home"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group" "$rootfs/etc/ssl/certs/ca-certificates.crt"
chmod 0700 "$rootfs/home/nonroot"
chmod 1777 "$rootfs/tmp"

# One tar, in name order, written in three appends because /home/nonroot
# alone belongs to nonroot. ustar: no extended headers (atime, ctime) to vary.
layer="$work/layer.tar"
tarit() { tar --format=ustar --mtime=@0 --numeric-owner --no-recursion -C "$rootfs" "$@"; }
tarit --owner=0 --group=0 -cf "$layer" etc etc/group etc/passwd etc/ssl etc/ssl/certs etc/ssl/certs/ca-certificates.crt home
tarit --owner=65532 --group=65532 -rf "$layer" home/nonroot
tarit --owner=0 --group=0 -rf "$layer" tmp

# crane's registry listens on a port of its choosing and logs it. The log
# is created first: the background shell may open it after sed reads it.
: >"$work/registry.log"
"$crane" registry serve --address 127.0.0.1:0 2>"$work/registry.log" &
registry_pid=$!
port=""
for _ in $(seq 100); do
  port="$(sed -n 's/.*serving on port \([0-9]*\).*/\1/p' "$work/registry.log" || true)"
  [ -n "$port" ] && break
  kill -0 "$registry_pid" 2>/dev/null || break
  sleep 0.05
done
[ -n "$port" ] || {
  echo "build-image-base: crane's registry did not start:" >&2
  cat "$work/registry.log" >&2
  exit 1
}
repo="127.0.0.1:$port/pickup-base"

"$crane" append --oci-empty-base -f "$layer" -t "$repo:layer" >/dev/null 2>"$work/crane.log" || {
  cat "$work/crane.log" >&2
  exit 1
}
digests=()
for arch in amd64 arm64; do
  "$crane" mutate "$repo:layer" --set-platform "linux/$arch" \
    --user 65532:65532 --workdir /home/nonroot \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    -t "$repo:linux-$arch" >/dev/null 2>>"$work/crane.log" || {
    cat "$work/crane.log" >&2
    exit 1
  }
  digests+=("$("$crane" digest "$repo:linux-$arch")")
done
"$crane" index append -m "$repo:linux-amd64" -m "$repo:linux-arm64" -t "$repo:index" >/dev/null 2>>"$work/crane.log" || {
  cat "$work/crane.log" >&2
  exit 1
}
index="$("$crane" digest "$repo:index")"

# One pull per descriptor, so that index.json lists them in this order
# (crane pull of several references writes them in map order).
rm -rf "$out"
for d in "$index" "${digests[@]}"; do
  "$crane" pull --format=oci "$repo@$d" "$out"
done
echo "$index"
