#!/usr/bin/env bash
# Runs the IPFS ecosystem's Pinning Service API compliance checker (npm
# @ipfs-shipyard/pinning-service-compliance) against the gateway, on the real
# embedded log and views, through TestPinningServiceCompliance. The checker
# fetches the spec from GitHub, which tests cannot reach: this points it at
# the copy beside this script. Installs the checker (about 30 s, npm
# registry) into .tools/psa-compliance unless PICKUP_PSA_COMPLIANCE names an
# install; --ignore-scripts skips its kubo dependency's binary download,
# which the checks never use. The run itself takes about 50 s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
dir=${PICKUP_PSA_COMPLIANCE:-$root/.tools/psa-compliance}
version=1.8.1
pkg="$dir/node_modules/@ipfs-shipyard/pinning-service-compliance"
if [ ! -f "$pkg/package.json" ]; then
	mkdir -p "$dir"
	(cd "$dir" && { [ -f package.json ] || npm init -y >/dev/null; } &&
		npm install --ignore-scripts --no-audit --no-fund "@ipfs-shipyard/pinning-service-compliance@$version")
fi
sed -i "s#^const specLocation = .*#const specLocation = '$here/ipfs-pinning-service.yaml';#" "$pkg/dist/src/utils/constants.js"
cd "$root"
PICKUP_PSA_COMPLIANCE="$dir" go test -count=1 -run '^TestPinningServiceCompliance$' -v ./gateway/
