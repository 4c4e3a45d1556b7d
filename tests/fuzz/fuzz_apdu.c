/* fuzz_apdu.c — a card's answers (response APDUs) as the encoder core
 * (encoder.c) and the inspection read of `cardctl card read`
 * (card_read_lds: SELECT, READ BINARY by TLV size) take them. The input is
 * the card: one byte of set-up (extended or short APDUs), then each answer
 * as a 2-byte big-endian length and its bytes (data, SW1, SW2). The files
 * read are then checked as an inspection system checks them (lds_check). */
#include <errno.h>
#include <stdio.h>

#include "cli_card.h"
#include "encoder.h"
#include "fuzz.h"
#include "lds.h"

struct card {
    const uint8_t *data;
    size_t size, off;
    bool extended;
};

static struct card *the_card;

static int c_open(void *priv, const char *reader, unsigned flags)
{
    (void)priv;
    (void)reader;
    (void)flags;
    return 0;
}

static int c_wait(void *priv, unsigned timeout_ms)
{
    (void)priv;
    (void)timeout_ms;
    return 0;
}

static int c_connect(void *priv, struct encoder_card *card)
{
    (void)priv;
    card->atr[0] = 0x3B;
    card->atr_len = 1;
    card->protocol = 1;
    card->extended = the_card->extended;
    card->max_command_data = the_card->extended ? 65535 : 255;
    card->max_response_data = the_card->extended ? 65536 : 256;
    return 0;
}

static int c_transmit(void *priv, const uint8_t *capdu, size_t clen, uint8_t *rapdu, size_t *rlen)
{
    (void)priv;
    (void)capdu;
    (void)clen;
    struct card *c = the_card;
    if (c->size - c->off < 2) {
        /* Out of answers: the card says "file not found" from now on. */
        if (*rlen < 2)
            return -EMSGSIZE;
        rapdu[0] = 0x6A;
        rapdu[1] = 0x82;
        *rlen = 2;
        return 0;
    }
    size_t n = (size_t)c->data[c->off] << 8 | c->data[c->off + 1];
    c->off += 2;
    if (n > c->size - c->off)
        n = c->size - c->off;
    if (n > *rlen) {
        c->off += n;
        return -EMSGSIZE;
    }
    memcpy(rapdu, c->data + c->off, n);
    c->off += n;
    *rlen = n;
    return 0;
}

static int c_disconnect(void *priv)
{
    (void)priv;
    return 0;
}

static void c_close(void *priv)
{
    (void)priv;
}

static const struct encoder_ops fuzz_card_ops = {
    .name = "fuzz",
    .priv_size = 0,
    .open = c_open,
    .wait_card = c_wait,
    .connect = c_connect,
    .transmit = c_transmit,
    .disconnect = c_disconnect,
    .close = c_close,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct card c = { data + 1, size - 1, 0, data[0] & 1 };
    the_card = &c;
    struct encoder *enc = NULL;
    if (encoder_open(&fuzz_card_ops, NULL, data[0] & 2 ? ENCODER_SHORT_APDUS : 0, &enc) != 0)
        return 0;
    if (encoder_connect(enc) == 0) {
        struct lds lds;
        uint16_t sw = 0;
        if (card_read_lds(enc, &lds, &sw) == 0) {
            struct lds_dg dgs[2];
            size_t n = 0;
            for (int i = 0; i < LDS_NFILES; i++) {
                FUZZ_ASSERT(lds.file[i].len == 0 || lds.file[i].data);
                if (lds.file[i].dg && lds.file[i].data)
                    dgs[n++] = (struct lds_dg){ lds.file[i].dg, lds.file[i].data, lds.file[i].len };
            }
            if (lds.file[LDS_SOD].data) {
                struct lds_check chk;
                lds_check(lds.file[LDS_SOD].data, lds.file[LDS_SOD].len, dgs, n, NULL, &chk);
            }
            lds_free(&lds);
        }
        encoder_disconnect(enc);
    }
    encoder_close(enc);
    return 0;
}
