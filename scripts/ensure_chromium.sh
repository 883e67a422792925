#!/usr/bin/env bash
# Install Debian's chromium (used by Playwright through executable_path) if it is missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "chromium missing and not root: apt-get install chromium" >&2; exit 1; fi
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
command -v chromium
