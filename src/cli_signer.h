/*
 * cli_signer.h — `cardctl signer ...`: the Document Signer key on the
 * PKCS#11 token the configuration names (pkcs11_module, pkcs11_token,
 * pkcs11_key_label, pkcs11_pin_file) and its certificate (<keys_dir>/ds.pem).
 *
 *   signer init [--rsa]           a new key pair on the token (ECDSA P-256,
 *                                 or RSA-2048), sensitive, not extractable;
 *                                 prints its id
 *   signer csr --subject DN [--key-id HEX] [OUT.csr]
 *                                 a PKCS#10 request for the country signing
 *                                 CA, signed on the token (stdout without OUT)
 *   signer install CERT.pem       checks that the certificate matches a key
 *                                 of the token's, is valid now and is for
 *                                 digitalSignature, and puts it in place
 *                                 atomically: running stations switch to it
 *                                 (and its key) at their next card
 *   signer status                 module, token, keys, certificate
 *
 * Each returns the exit status: 0 done, 1 failed (the message says why),
 * 2 usage. argv[0] is the last command word.
 */
#ifndef CARDD_CLI_SIGNER_H
#define CARDD_CLI_SIGNER_H

#include "config.h"

int cli_signer_init(const struct config *cfg, int argc, char **argv);
int cli_signer_csr(const struct config *cfg, int argc, char **argv);
int cli_signer_install(const struct config *cfg, int argc, char **argv);
int cli_signer_status(const struct config *cfg, int argc, char **argv);

#endif
