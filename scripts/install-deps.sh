#!/usr/bin/env bash
# Installs what building and testing BrowserCloud needs on Debian 12. Idempotent: does nothing
# when everything is present. Usage: scripts/install-deps.sh [--test|--bench]. The Python test packages are
# installed by `make test-deps` into a virtual environment (.build/venv), not here; `--bench` adds what
# `make bench` needs (its Python packages go into .build/bench-venv, made by the Makefile).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(libwebsockets-dev libssl-dev zlib1g-dev pkg-config)
# The Redis client of the cluster mode (Sources/CHiredis) builds against hiredis.
apt_packages+=(libhiredis-dev)
# The server serves two JavaScript libraries from where Debian installs them, for pages without WebCrypto
# (plain http at a LAN address): TweetNaCl.js (Ed25519) and CryptoJS (SHA-256); docs/protocol.md.
# node-tweetnacl pulls in nodejs, which only its package needs (the server uses just the .js file).
apt_packages+=(node-tweetnacl libjs-cryptojs)
if [ "${1:-}" = "--test" ]; then
    # Browser tests drive Debian's Chromium (never a downloaded browser) through Playwright; the
    # deployment tests run nginx in front of the server and check the unit with systemd-analyze.
    # The Python test packages go into a virtual environment the Makefile makes (python3-venv).
    apt_packages+=(iproute2 python3-venv chromium nginx openssl systemd)
    # The Redis tests start their own redis-server on a loopback port (never the system service, which
    # the policy-rc.d below keeps from starting at install time).
    apt_packages+=(redis-server)
fi
if [ "${1:-}" = "--bench" ]; then
    # The Node competitor relay (bench/node-relay.js) runs on Debian's ws; the Python one on websockets
    # from PyPI in a virtual environment (python3-venv).
    apt_packages+=(node-ws python3-venv)
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
    # Packages must not start services (nginx would listen on port 80): a policy-rc.d says no.
    policy=/usr/sbin/policy-rc.d
    own_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee "$policy" >/dev/null && $sudo_cmd chmod 755 "$policy" && own_policy=1
        trap '$sudo_cmd rm -f "$policy"' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
    [ -z "$own_policy" ] || $sudo_cmd rm -f "$policy"
fi
