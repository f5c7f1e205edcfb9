#!/usr/bin/env bash
# Installs Debian's chromium, which the status page's browser test
# (tests/ui_test.go) drives headless. The Makefile's tools target calls it,
# so that `make test` on a fresh machine has it.
#
#   scripts/install-chromium.sh
#
# It does nothing when /usr/bin/chromium is there. Otherwise, as root, it
# installs the package without its recommends (the browser and the
# libraries it links; fontconfig brings a font, enough for screenshots),
# refreshing the package lists first when they do not know chromium yet.
# As anyone else it says what to run, and fails.
set -euo pipefail

bin=/usr/bin/chromium
if [ -x "$bin" ]; then
  echo "chromium: $("$bin" --version 2>/dev/null || echo "$bin")"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "chromium is missing ($bin): the browser test needs it. Install Debian's package as root:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
# apt-cache knows nothing of chromium until the lists are fetched once (a
# fresh container ships without them).
if ! apt-cache show chromium >/dev/null 2>&1; then
  apt-get update -q
fi
# apt-get's "Need to get N MB of archives" line tells what it downloads.
apt-get install -y -q --no-install-recommends chromium
echo "chromium: $("$bin" --version) installed in $(($(date +%s) - start)) s"
