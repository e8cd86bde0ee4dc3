#!/usr/bin/env bash
# Installs the Debian packages the tests use when they are missing: Chromium for the browser tests and
# libwebp7, which the download stage calls for scaled WebP decoding (without it, OpenCV decodes WebPs).
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
ldconfig -p | grep -q 'libwebp\.so\.7' || missing+=(libwebp7)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "missing Debian packages: ${missing[*]} (not root, so not installed): browser tests or scaled WebP decoding need them" >&2
  exit 0
fi
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
