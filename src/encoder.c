/*
 * encoder.c — the core side of the chip encoder contract (encoder.h):
 * owns the driver's private state, serialises calls, encodes APDUs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"

struct encoder {
    const struct encoder_ops *ops;
    pthread_mutex_t lock;
    bool opened;
    bool connected;
    struct encoder_card card;
    unsigned long apdus;
    /* Driver state follows, aligned for any type. */
    max_align_t priv[];
};

#define PRIV(e) ((void *)(e)->priv)

static struct encoder *from_priv(void *priv)
{
    return (struct encoder *)((char *)priv - offsetof(struct encoder, priv));
}

int encoder_open(const struct encoder_ops *ops, const char *reader, unsigned flags,
                 struct encoder **out)
{
    struct encoder *e = NULL;
    int r;

    if (!ops || !out || !ops->open || !ops->close || !ops->transmit || !ops->connect ||
        !ops->disconnect || !ops->wait_card)
        return -EINVAL;
    *out = NULL;
    e = calloc(1, sizeof(*e) + ops->priv_size);
    if (!e)
        return -ENOMEM;
    e->ops = ops;
    r = pthread_mutex_init(&e->lock, NULL);
    if (r) {
        r = -r;
        goto out_free;
    }
    r = ops->open(PRIV(e), reader, flags);
    if (r) {
        ops->close(PRIV(e));
        goto out_mutex;
    }
    e->opened = true;
    *out = e;
    return 0;

out_mutex:
    pthread_mutex_destroy(&e->lock);
out_free:
    free(e);
    return r;
}

int encoder_wait_card(struct encoder *e, unsigned timeout_ms)
{
    int r;

    if (!e)
        return -EINVAL;
    pthread_mutex_lock(&e->lock);
    r = e->ops->wait_card(PRIV(e), timeout_ms);
    pthread_mutex_unlock(&e->lock);
    return r;
}

int encoder_connect(struct encoder *e)
{
    int r;

    if (!e)
        return -EINVAL;
    pthread_mutex_lock(&e->lock);
    if (e->connected) {
        e->ops->disconnect(PRIV(e));
        e->connected = false;
    }
    memset(&e->card, 0, sizeof(e->card));
    r = e->ops->connect(PRIV(e), &e->card);
    if (r == 0) {
        e->connected = true;
        e->apdus = 0;
        /* A driver that says nothing about sizes gets the short limits. */
        if (!e->card.max_command_data)
            e->card.max_command_data = 255;
        if (!e->card.max_response_data)
            e->card.max_response_data = 256;
    }
    pthread_mutex_unlock(&e->lock);
    return r;
}

const struct encoder_card *encoder_card(const struct encoder *e)
{
    return e && e->connected ? &e->card : NULL;
}

/* Encodes cmd into buf per ISO 7816-4 §5.1 cases 1-4, short or extended. */
static int apdu_encode(const struct encoder_card *card, const struct apdu *cmd, uint8_t *buf,
                       size_t cap, size_t *len)
{
    bool ext = cmd->lc > 255 || cmd->le > 256;
    size_t n = 0;

    if (cmd->lc > 65535 || cmd->le > 65536 || (cmd->lc && !cmd->data))
        return -EINVAL;
    if (cmd->lc > card->max_command_data || cmd->le > card->max_response_data)
        return -EMSGSIZE;
    if (ext && !card->extended)
        return -EMSGSIZE;
    if (cap < 4 + 3 + cmd->lc + 3)
        return -EMSGSIZE;
    buf[n++] = cmd->cla;
    buf[n++] = cmd->ins;
    buf[n++] = cmd->p1;
    buf[n++] = cmd->p2;
    if (cmd->lc) {
        if (ext) {
            buf[n++] = 0;
            buf[n++] = (uint8_t)(cmd->lc >> 8);
            buf[n++] = (uint8_t)cmd->lc;
        } else {
            buf[n++] = (uint8_t)cmd->lc;
        }
        memcpy(buf + n, cmd->data, cmd->lc);
        n += cmd->lc;
    }
    if (cmd->le) {
        if (ext) {
            if (!cmd->lc)
                buf[n++] = 0;
            /* 65536 is written 00 00, 256 in short form is 00. */
            buf[n++] = (uint8_t)((cmd->le & 0xFFFF) >> 8);
            buf[n++] = (uint8_t)cmd->le;
        } else {
            buf[n++] = (uint8_t)cmd->le;
        }
    }
    *len = n;
    return 0;
}

int encoder_transmit(struct encoder *e, const struct apdu *cmd, struct apdu_resp *resp)
{
    uint8_t *c = NULL, *rbuf = NULL;
    size_t clen = 0, rlen;
    size_t ccap, rcap;
    int r;

    if (!e || !cmd || !resp || (resp->cap && !resp->data))
        return -EINVAL;
    resp->len = 0;
    resp->sw = 0;
    pthread_mutex_lock(&e->lock);
    if (!e->connected) {
        r = -ENOTCONN;
        goto out_unlock;
    }
    ccap = 4 + 3 + cmd->lc + 3;
    rcap = (cmd->le ? cmd->le : 0) + 2;
    c = malloc(ccap);
    rbuf = malloc(rcap);
    if (!c || !rbuf) {
        r = -ENOMEM;
        goto out_free;
    }
    r = apdu_encode(&e->card, cmd, c, ccap, &clen);
    if (r)
        goto out_free;
    rlen = rcap;
    e->apdus++;
    r = e->ops->transmit(PRIV(e), c, clen, rbuf, &rlen);
    if (r)
        goto out_free;
    if (rlen < 2 || rlen > rcap) {
        r = -EIO;
        goto out_free;
    }
    if (rlen - 2 > resp->cap) {
        r = -EMSGSIZE;
        goto out_free;
    }
    if (rlen > 2)
        memcpy(resp->data, rbuf, rlen - 2);
    resp->len = rlen - 2;
    resp->sw = (uint16_t)(rbuf[rlen - 2] << 8 | rbuf[rlen - 1]);
out_free:
    free(c);
    free(rbuf);
out_unlock:
    pthread_mutex_unlock(&e->lock);
    return r;
}

int encoder_command(struct encoder *e, const struct apdu *cmd, struct apdu_resp *resp)
{
    int r = encoder_transmit(e, cmd, resp);

    if (r == 0 && resp->sw != 0x9000)
        r = -ENCODER_E_STATUS;
    return r;
}

unsigned long encoder_apdu_count(const struct encoder *e)
{
    return e ? e->apdus : 0;
}

void encoder_count_extra(void *priv)
{
    if (priv)
        from_priv(priv)->apdus++;
}

int encoder_disconnect(struct encoder *e)
{
    int r = 0;

    if (!e)
        return -EINVAL;
    pthread_mutex_lock(&e->lock);
    if (e->connected) {
        r = e->ops->disconnect(PRIV(e));
        e->connected = false;
    }
    pthread_mutex_unlock(&e->lock);
    return r;
}

void encoder_close(struct encoder *e)
{
    if (!e)
        return;
    encoder_disconnect(e);
    if (e->opened)
        e->ops->close(PRIV(e));
    pthread_mutex_destroy(&e->lock);
    free(e);
}
