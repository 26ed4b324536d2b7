#!/bin/sh
# Installs Debian's Chromium and its WebDriver for the admin's browser test, when they are missing.
# Called by tests/admin/browser.py when either is missing; needs root and Debian's package registry.
set -eu
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "chromium and chromium-driver are missing; install them as root: apt-get install -y chromium chromium-driver" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver
