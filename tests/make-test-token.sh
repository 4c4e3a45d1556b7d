#!/bin/sh
# Makes a throw-away SoftHSM2 token in DIR (an absolute path): DIR/softhsm2.conf
# with the token store in DIR/tokens, a token labelled LABEL (default
# cardd-ds), and its user PIN in DIR/pkcs11.pin (mode 0600). Point
# SOFTHSM2_CONF at DIR/softhsm2.conf to use it; moving DIR/tokens away and
# back removes and re-inserts the token.
#   tests/make-test-token.sh DIR [LABEL]
set -eu
d=$1
label=${2:-cardd-ds}
mkdir -p "$d/tokens"
cat >"$d/softhsm2.conf" <<CONF
directories.tokendir = $d/tokens
objectstore.backend = file
log.level = ERROR
CONF
umask 077
pin=$(openssl rand -hex 8)
so=$(openssl rand -hex 8)
SOFTHSM2_CONF=$d/softhsm2.conf softhsm2-util --init-token --free --label "$label" \
    --so-pin "$so" --pin "$pin" >/dev/null
printf '%s\n' "$pin" >"$d/pkcs11.pin"
chmod 600 "$d/pkcs11.pin"
