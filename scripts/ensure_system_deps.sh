#!/usr/bin/env bash
# Installs the Debian packages the tests use (Chromium for the browser tests) when they are missing.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "Chromium is missing and this is not root: install Debian's 'chromium' package to run browser tests" >&2
  exit 0
fi
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
