#!/bin/sh
# Makes a throw-away test PKI in DIR: a CSCA (csca.pem), a Document Signer
# signed by it (ds.key mode 0600, ds.pem), an RSA Document Signer (dsrsa.*),
# and an unrelated CA (other.pem). Keys live only in DIR; tests remove it.
#   tests/make-test-pki.sh DIR
set -eu
d=$1
mkdir -p "$d"
cd "$d"
umask 077
q() { "$@" >/dev/null 2>&1; }
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout csca.key \
    -out csca.pem -days 30 -subj "/C=SA/O=Test Bureau/CN=Test CSCA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
printf 'keyUsage=critical,digitalSignature\n' > ds.ext
q openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ds.key \
    -out ds.csr -subj "/C=SA/O=Test Bureau/CN=Test Document Signer"
q openssl x509 -req -in ds.csr -CA csca.pem -CAkey csca.key -CAcreateserial -days 30 \
    -extfile ds.ext -out ds.pem
q openssl req -new -newkey rsa:2048 -nodes -keyout dsrsa.key -out dsrsa.csr \
    -subj "/C=SA/O=Test Bureau/CN=Test RSA Document Signer"
q openssl x509 -req -in dsrsa.csr -CA csca.pem -CAkey csca.key -CAcreateserial -days 30 \
    -extfile ds.ext -out dsrsa.pem
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key \
    -out other.pem -days 30 -subj "/C=XX/CN=Unrelated CA"
chmod 600 ds.key dsrsa.key csca.key other.key
chmod 644 csca.pem ds.pem dsrsa.pem other.pem
