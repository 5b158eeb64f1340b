#!/usr/bin/env bash
# Installs what berth needs to build, run and test on Debian 12, skipping what is present.
# Usage: scripts/setup.sh [build|test|bench]
set -euo pipefail
what=${1:-build}

pkgs=(g++ cmake ninja-build ccache pkg-config make git curl ca-certificates
      libboost-dev nlohmann-json3-dev libsqlite3-dev libsodium-dev libcli11-dev
      libspdlog-dev libfmt-dev libssl-dev
      libarchive-dev)  # libarchive: the builder unpacks source archives
case "$what" in
  build|test)
        # Node.js builds the console (scripts/console.sh; Debian 12's 18 is enough). Keep a
        # node/npm that is already installed (e.g. a newer one than Debian's): installing
        # Debian's npm next to it would pull Debian's nodejs over it.
        command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm) ;;
esac
case "$what" in
  test) pkgs+=(libgtest-dev libgmock-dev python3
        golang-go python3-venv    # toolchains the builder's integration tests use
        openssl                   # the gateway tests make certificates with the openssl CLI
        chromium fonts-wqy-microhei) ;;  # the console's end-to-end tests (playwright-core) + a CJK font
  bench) pkgs+=(wrk python3 nginx haproxy linux-perf) ;;  # nginx, haproxy: bench/gateway_bench.sh compares; perf counts syscalls
  fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
