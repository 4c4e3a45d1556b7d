/*
 * signer.c — the core side of signer.h: owns the implementation's state.
 */
#include <errno.h>
#include <stdlib.h>

#include "signer.h"

struct signer {
    const struct signer_ops *ops;
    max_align_t priv[];
};

int signer_open(const struct signer_ops *ops, const void *config, struct signer **out)
{
    struct signer *s = NULL;
    int r;

    if (!ops || !out || !ops->open || !ops->sign || !ops->certificate || !ops->algorithm ||
        !ops->close)
        return -EINVAL;
    *out = NULL;
    s = calloc(1, sizeof(*s) + ops->priv_size);
    if (!s)
        return -ENOMEM;
    s->ops = ops;
    r = ops->open(s->priv, config);
    if (r) {
        ops->close(s->priv);
        free(s);
        return r;
    }
    *out = s;
    return 0;
}

int signer_certificate(struct signer *s, const uint8_t **der, size_t *len)
{
    if (!s || !der || !len)
        return -EINVAL;
    return s->ops->certificate(s->priv, der, len);
}

enum signer_alg signer_algorithm(struct signer *s)
{
    return s->ops->algorithm(s->priv);
}

int signer_sign(struct signer *s, const uint8_t *msg, size_t len, uint8_t *sig, size_t *sig_len)
{
    if (!s || (!msg && len) || !sig || !sig_len)
        return -EINVAL;
    return s->ops->sign(s->priv, msg, len, sig, sig_len);
}

void signer_close(struct signer *s)
{
    if (!s)
        return;
    s->ops->close(s->priv);
    free(s);
}
