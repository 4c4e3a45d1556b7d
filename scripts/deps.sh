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
  valgrind libtsan2 jq clang-format locales
  libclang-rt-14-dev llvm
  chromium chromium-driver python3-selenium
  softhsm2 libp11-kit-dev opensc
  wrk"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

# A German locale: a test runs PostgreSQL with its messages in German
# (PostgreSQL's translations come with the server; the locale must exist).
LOCALE=de_DE.UTF-8
need_locale=0
if ! locale -a 2>/dev/null | grep -qix 'de_DE\.utf-\?8'; then
    need_locale=1
fi

if [ -z "$missing" ] && [ "$need_locale" = 0 ]; then
    exit 0
fi
if [ "${1:-}" = "--check" ]; then
    [ -n "$missing" ] && echo "missing packages:$missing" >&2
    [ "$need_locale" = 1 ] && echo "missing locale: $LOCALE" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "Some packages or locales are missing. Run:" >&2
    [ -n "$missing" ] && echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
    [ "$need_locale" = 1 ] && echo "  sudo localedef -i de_DE -f UTF-8 $LOCALE" >&2
    exit 1
fi
if [ -n "$missing" ]; then
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ "$need_locale" = 1 ]; then
    echo "making the locale $LOCALE"
    localedef -i de_DE -f UTF-8 $LOCALE
fi
