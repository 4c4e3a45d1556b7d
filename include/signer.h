/*
 * signer.h — the Document Signer behind an ops interface.
 *
 * The encoding code (lds.c) asks for two things only: the Document Signer
 * certificate (DER) and a signature over bytes it hands over. The private
 * key never leaves the implementation: today a key file readable only by
 * the service (signer_file.c); later a PKCS#11 token, whose C_Sign with
 * CKM_ECDSA_SHA256 or CKM_SHA256_RSA_PKCS does exactly what ops->sign
 * promises, so it can be added without touching the encoding code.
 *
 * Implementations never log key material, PINs or the bytes they sign.
 */
#ifndef CARDD_SIGNER_H
#define CARDD_SIGNER_H

#include <stddef.h>
#include <stdint.h>

/* Large enough for an RSA-4096 signature or a DER ECDSA P-521 one. */
#define SIGNER_SIG_MAX 1024

enum signer_alg {
    SIGNER_ECDSA_SHA256 = 1, /* ecdsa-with-SHA256, DER Ecdsa-Sig-Value */
    SIGNER_RSA_SHA256 = 2,   /* sha256WithRSAEncryption, PKCS#1 v1.5 */
};

struct signer_ops {
    const char *name;
    size_t priv_size; /* zeroed private state, allocated by the core */

    /* Called once, first, with the implementation's own config struct.
	 * Returns 0, -ENOENT (no key/cert), -EPERM (key or PIN file too open),
	 * -EINVAL (unreadable or mismatched key and certificate), -ENOTSUP
	 * (key type), -ENOMEM, -ENODEV (token not present), -EACCES (PIN
	 * refused). */
    int (*open)(void *priv, const void *config);

    /* The DS certificate, DER. The pointer stays valid until close. */
    int (*certificate)(void *priv, const uint8_t **der, size_t *len);

    /* The signature algorithm the key uses. */
    enum signer_alg (*algorithm)(void *priv);

    /* Hashes msg with SHA-256 and signs it. sig has *sig_len bytes of room
	 * (SIGNER_SIG_MAX is enough); on return *sig_len is the signature's
	 * length. Returns 0, -EMSGSIZE, -ENODEV (token gone), -EIO (token or
	 * library failure). */
    int (*sign)(void *priv, const uint8_t *msg, size_t len, uint8_t *sig, size_t *sig_len);

    /* Called once, last (also after a failed open). Wipes key material. */
    void (*close)(void *priv);
};

struct signer;

/* Allocates a signer on 'ops' and opens it with 'config'. Returns 0 and
 * *out, or ops->open's error (nothing allocated then). */
int signer_open(const struct signer_ops *ops, const void *config, struct signer **out);

/* See signer_ops.certificate. */
int signer_certificate(struct signer *s, const uint8_t **der, size_t *len);

/* See signer_ops.algorithm. */
enum signer_alg signer_algorithm(struct signer *s);

/* See signer_ops.sign. */
int signer_sign(struct signer *s, const uint8_t *msg, size_t len, uint8_t *sig, size_t *sig_len);

/* Closes and frees. NULL-safe. */
void signer_close(struct signer *s);

/* Key and certificate from files (PEM; the certificate may also be DER).
 * The key file must be a regular file, not a symbolic link (checked on the
 * opened descriptor), with no permission at all for group or others (mode
 * 0600 or 0400), as CARD.md requires; an encrypted key is refused rather
 * than prompting for a pass phrase. */
struct signer_file_config {
    const char *key_path;
    const char *cert_path;
};

extern const struct signer_ops signer_file_ops;

/* The key on a PKCS#11 token (module loaded at run time), the certificate
 * from a file: the token's key with label key_label that matches it is
 * used, so writing a new certificate file switches to its key (p11.h). The
 * user PIN is read from pin_file, with the key file's rules. */
struct signer_pkcs11_config {
    const char *module;    /* path of the PKCS#11 module */
    const char *token;     /* token label */
    const char *key_label; /* CKA_LABEL of the Document Signer keys */
    const char *pin_file;
    const char *cert_path; /* the DS certificate, PEM or DER */
};

extern const struct signer_ops signer_pkcs11_ops;

#endif
