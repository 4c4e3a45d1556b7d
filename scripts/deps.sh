#!/bin/sh
# Installs every Debian package that the build, the tests and the demo need.
# As root it runs apt-get; otherwise it prints the one command to run.
# With --check it only reports (exit 1) whether something is missing.
set -eu

PACKAGES="make gcc clang pkg-config ca-certificates curl openssl procps iproute2
  libpq-dev postgresql postgresql-common
  libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libssl-dev libcmocka-dev
  pcscd libpcsclite-dev vsmartcard-vpcd
  libusb-1.0-0-dev umockdev libumockdev-dev
  libpango1.0-dev libcairo2-dev fonts-noto-core fonts-dejavu-core
  valgrind jq clang-format
  clang libclang-rt-14-dev llvm"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi
if [ "${1:-}" = "--check" ]; then
    echo "missing packages:$missing" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "Some packages are missing. Run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
