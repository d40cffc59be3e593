#!/usr/bin/env bash
# Installs what building and testing BrowserCloud needs on Debian 12. Idempotent: does nothing
# when everything is present. Usage: scripts/install-deps.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(libwebsockets-dev libssl-dev zlib1g-dev pkg-config)
if [ "${1:-}" = "--test" ]; then
    # Browser tests drive Debian's Chromium (never a downloaded browser) through Playwright.
    apt_packages+=(iproute2 python3-pip chromium)
fi

missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing apt packages: ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--test" ]; then
    if ! python3 -c 'import pytest, pytest_timeout, websockets, requests, playwright, aiortc' 2>/dev/null; then
        echo "installing Python test packages"
        python3 -m pip install -q -r Tests/requirements.txt
    fi
fi
