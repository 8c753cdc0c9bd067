#!/usr/bin/env bash
# The browser the console's end-to-end test drives: Debian's chromium (playwright-core never
# downloads one). Installed when /usr/bin/chromium is missing; CI runs as root with no stdin.
set -euo pipefail
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/browser.sh: $CHROMIUM is missing; run as root (or: sudo apt-get install -y chromium)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Another apt run on the machine holds the lock for a while: wait for it rather than fail.
apt-get -o DPkg::Lock::Timeout=600 update -q
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends chromium fonts-dejavu-core
"$CHROMIUM" --version
