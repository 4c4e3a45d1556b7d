/*
 * pcsc.c — chip encoder driver on PC/SC (pcsc-lite's libpcsclite and the
 * pcscd daemon). The only file of the product that includes winscard.h.
 *
 * The contract is in include/encoder.h. What this driver adds:
 *  - the reader is chosen by name (exact, or a unique prefix);
 *  - card presence comes from SCardGetStatusChange, not polling;
 *  - T=0 is made to look like T=1: 61xx is followed by GET RESPONSE and
 *    6Cxx by the same command with the right Le (pcscd does neither);
 *  - extended-length APDUs are used only on T=1, when the ATR says the
 *    card takes them (card capabilities, ISO 7816-4 §8.1.1.2.7) and the
 *    reader does not report a smaller maximum (SCARD_ATTR_MAXINPUT).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <winscard.h>
#include <reader.h>

#include "encoder.h"

/* GET RESPONSE chains are bounded: a card that keeps answering 61xx is
 * broken, not generous. */
#define PCSC_MAX_GET_RESPONSE 64

struct pcsc_priv {
    SCARDCONTEXT ctx;
    bool have_ctx;
    SCARDHANDLE handle;
    bool connected;
    DWORD protocol;
    unsigned flags;
    char reader[256];
};

/* Maps a PC/SC error to the contract's errno values. */
static int pcsc_errno(LONG rv)
{
    switch (rv) {
    case SCARD_S_SUCCESS:
        return 0;
    case SCARD_W_REMOVED_CARD:
    case SCARD_E_NO_SMARTCARD:
    case SCARD_W_RESET_CARD:
    case SCARD_E_UNKNOWN_READER:
    case SCARD_E_READER_UNAVAILABLE:
    case SCARD_E_NO_READERS_AVAILABLE:
        return -ENODEV;
    case SCARD_E_TIMEOUT:
        return -ETIMEDOUT;
    case SCARD_E_SHARING_VIOLATION:
        return -EBUSY;
    case SCARD_E_NO_MEMORY:
        return -ENOMEM;
    case SCARD_E_INSUFFICIENT_BUFFER:
        return -EMSGSIZE;
    default:
        return -EIO;
    }
}

/* Finds the reader whose name is 'wanted' or starts with it. */
static int pcsc_resolve(struct pcsc_priv *p, const char *wanted)
{
    char *names = NULL;
    DWORD len = SCARD_AUTOALLOCATE;
    const char *found = NULL;
    size_t wl = wanted ? strlen(wanted) : 0;
    int matches = 0;
    LONG rv;
    int r = 0;

    rv = SCardListReaders(p->ctx, NULL, (LPSTR)&names, &len);
    if (rv != SCARD_S_SUCCESS) {
        r = rv == SCARD_E_NO_READERS_AVAILABLE ? -ENODEV : -EIO;
        goto out;
    }
    for (const char *n = names; *n; n += strlen(n) + 1) {
        if (!wanted || strcmp(n, wanted) == 0) {
            found = n;
            matches = 1;
            break;
        }
        if (strncmp(n, wanted, wl) == 0) {
            if (!found)
                found = n;
            matches++;
        }
    }
    if (!found || matches != 1 || strlen(found) >= sizeof(p->reader)) {
        r = -ENODEV;
        goto out_free;
    }
    strcpy(p->reader, found);
out_free:
    SCardFreeMemory(p->ctx, names);
out:
    return r;
}

static int pcsc_open(void *priv, const char *reader, unsigned flags)
{
    struct pcsc_priv *p = priv;
    LONG rv;

    p->flags = flags;
    rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &p->ctx);
    if (rv != SCARD_S_SUCCESS)
        return -EIO;
    p->have_ctx = true;
    return pcsc_resolve(p, reader);
}

static long ms_since(const struct timespec *t0)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static int pcsc_wait_card(void *priv, unsigned timeout_ms)
{
    struct pcsc_priv *p = priv;
    SCARD_READERSTATE rs;
    struct timespec t0;
    LONG rv;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(&rs, 0, sizeof(rs));
    rs.szReader = p->reader;
    rs.dwCurrentState = SCARD_STATE_UNAWARE;
    for (;;) {
        long left = (long)timeout_ms - ms_since(&t0);

        if (left < 0)
            left = 0;
        rv = SCardGetStatusChange(
            p->ctx, rs.dwCurrentState == SCARD_STATE_UNAWARE ? 0 : (DWORD)left, &rs, 1);
        if (rv == SCARD_E_TIMEOUT) {
            if (rs.dwCurrentState != SCARD_STATE_UNAWARE)
                return -ETIMEDOUT;
        } else if (rv != SCARD_S_SUCCESS) {
            return pcsc_errno(rv);
        }
        if (rs.dwEventState & (SCARD_STATE_UNKNOWN | SCARD_STATE_UNAVAILABLE))
            return -ENODEV;
        /* A mute card is there but useless: let connect report it. */
        if (rs.dwEventState & SCARD_STATE_PRESENT)
            return 0;
        if (left == 0 && rs.dwCurrentState != SCARD_STATE_UNAWARE)
            return -ETIMEDOUT;
        rs.dwCurrentState = rs.dwEventState & ~SCARD_STATE_CHANGED;
    }
}

/* Reads the card capabilities (compact-TLV tag 7x, 3 bytes) from the
 * historical bytes: the third byte's bit 7 (0x40) says "extended Lc/Le". */
static bool atr_says_extended(const uint8_t *atr, size_t len)
{
    size_t pos, k;
    uint8_t y;

    if (len < 2)
        return false;
    k = atr[1] & 0x0F;
    y = atr[1] >> 4;
    pos = 2;
    /* Skip the interface bytes: TA, TB, TC as flagged, then TD (which
	 * flags the next level's bytes) while there is one. */
    for (;;) {
        pos += !!(y & 1) + !!(y & 2) + !!(y & 4);
        if (!(y & 8))
            break;
        if (pos >= len)
            return false;
        y = atr[pos++] >> 4;
    }
    if (pos + k > len || k < 1 || atr[pos] != 0x80)
        return false;
    for (size_t i = pos + 1; i < pos + k;) {
        uint8_t tag = atr[i] >> 4, l = atr[i] & 0x0F;

        if (i + 1 + l > pos + k)
            return false;
        if (tag == 7 && l >= 3)
            return atr[i + 3] & 0x40;
        i += 1 + l;
    }
    return false;
}

static int pcsc_connect(void *priv, struct encoder_card *card)
{
    struct pcsc_priv *p = priv;
    char name[256];
    DWORD nlen = sizeof(name), state = 0, proto = 0, alen = sizeof(card->atr);
    uint8_t attr[8];
    DWORD attr_len = sizeof(attr);
    size_t reader_max = 0;
    LONG rv;

    rv = SCardConnect(p->ctx, p->reader, SCARD_SHARE_EXCLUSIVE,
                      SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &p->handle, &p->protocol);
    if (rv != SCARD_S_SUCCESS)
        return rv == SCARD_W_UNRESPONSIVE_CARD || rv == SCARD_W_UNSUPPORTED_CARD ? -EIO
                                                                                 : pcsc_errno(rv);
    p->connected = true;
    rv = SCardStatus(p->handle, name, &nlen, &state, &proto, card->atr, &alen);
    if (rv != SCARD_S_SUCCESS) {
        SCardDisconnect(p->handle, SCARD_UNPOWER_CARD);
        p->connected = false;
        return pcsc_errno(rv);
    }
    card->atr_len = alen;
    card->protocol = p->protocol == SCARD_PROTOCOL_T1 ? 1 : 0;
    /* A reader that reports its buffer size may be smaller than 64 KiB. */
    if (SCardGetAttrib(p->handle, SCARD_ATTR_MAXINPUT, attr, &attr_len) == SCARD_S_SUCCESS &&
        attr_len >= 4)
        reader_max =
            (size_t)attr[0] | (size_t)attr[1] << 8 | (size_t)attr[2] << 16 | (size_t)attr[3] << 24;
    card->extended = card->protocol == 1 && !(p->flags & ENCODER_SHORT_APDUS) &&
                     atr_says_extended(card->atr, card->atr_len) &&
                     (reader_max == 0 || reader_max > 4 + 3 + 255 + 3);
    if (card->extended) {
        /* The reader's buffer holds header, Lc/Le fields and SW too. */
        size_t m = reader_max ? reader_max - 10 : 65536;

        card->max_command_data = m > 65535 ? 65535 : m;
        card->max_response_data = m > 65536 ? 65536 : m;
    } else {
        card->max_command_data = 255;
        card->max_response_data = 256;
    }
    return 0;
}

/* How long a failed exchange waits for pcscd to tell whether the card
 * left: pcscd polls presence every 400 ms. */
#define PCSC_REMOVAL_GRACE_MS 1000

/* True if the reader reports no card now or within PCSC_REMOVAL_GRACE_MS. */
static bool pcsc_card_left(struct pcsc_priv *p)
{
    SCARD_READERSTATE rs;
    struct timespec t0;
    long left;
    LONG rv;

    memset(&rs, 0, sizeof(rs));
    rs.szReader = p->reader;
    rs.dwCurrentState = SCARD_STATE_UNAWARE;
    rv = SCardGetStatusChange(p->ctx, 0, &rs, 1);
    if (rv != SCARD_S_SUCCESS)
        return rv == SCARD_E_UNKNOWN_READER || rv == SCARD_E_READER_UNAVAILABLE;
    if (rs.dwEventState & (SCARD_STATE_EMPTY | SCARD_STATE_UNAVAILABLE | SCARD_STATE_UNKNOWN))
        return true;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Other changes (in use, mute) may come first: wait for the one that
	 * matters until the grace period is over. */
    while ((left = PCSC_REMOVAL_GRACE_MS - ms_since(&t0)) > 0) {
        rs.dwCurrentState = rs.dwEventState & ~SCARD_STATE_CHANGED;
        rv = SCardGetStatusChange(p->ctx, (DWORD)left, &rs, 1);
        if (rv != SCARD_S_SUCCESS)
            return false;
        if (rs.dwEventState & (SCARD_STATE_EMPTY | SCARD_STATE_UNAVAILABLE | SCARD_STATE_UNKNOWN))
            return true;
    }
    return false;
}

/* A failed transmit is either "card gone" or a communication error; pcscd
 * reports the first exchange after removal as SCARD_E_NOT_TRANSACTED, and
 * learns of the removal only at its next presence poll, so wait for that
 * poll before calling it a communication error. */
static int pcsc_transmit_errno(struct pcsc_priv *p, LONG rv)
{
    DWORD state = 0, proto = 0, nlen = 0, alen = 0;
    LONG st;

    if (rv == SCARD_W_REMOVED_CARD || rv == SCARD_E_NO_SMARTCARD)
        return -ENODEV;
    if (rv == SCARD_E_INSUFFICIENT_BUFFER)
        return -EMSGSIZE;
    st = SCardStatus(p->handle, NULL, &nlen, &state, &proto, NULL, &alen);
    if (st == SCARD_W_REMOVED_CARD || st == SCARD_E_NO_SMARTCARD ||
        st == SCARD_E_READER_UNAVAILABLE || (st == SCARD_S_SUCCESS && (state & SCARD_ABSENT)))
        return -ENODEV;
    if (pcsc_errno(rv) == -ENODEV || pcsc_card_left(p))
        return -ENODEV;
    return rv == SCARD_E_TIMEOUT ? -ETIMEDOUT : -EIO;
}

static int pcsc_exchange(struct pcsc_priv *p, const uint8_t *c, size_t clen, uint8_t *r,
                         size_t *rlen)
{
    const SCARD_IO_REQUEST *pci = p->protocol == SCARD_PROTOCOL_T1 ? SCARD_PCI_T1 : SCARD_PCI_T0;
    DWORD len = (DWORD)*rlen;
    LONG rv;

    rv = SCardTransmit(p->handle, pci, c, (DWORD)clen, NULL, r, &len);
    if (rv != SCARD_S_SUCCESS)
        return pcsc_transmit_errno(p, rv);
    /* vpcd hands over an empty answer when the card dropped the link. */
    if (len < 2)
        return pcsc_card_left(p) ? -ENODEV : -EIO;
    *rlen = len;
    return 0;
}

static int pcsc_transmit(void *priv, const uint8_t *capdu, size_t clen, uint8_t *rapdu,
                         size_t *rlen)
{
    struct pcsc_priv *p = priv;
    uint8_t *resend = NULL;
    size_t cap = *rlen, got = 0, n;
    int r, rounds = 0;

    if (!p->connected)
        return -ENOTCONN;
    if (cap < 2)
        return -EMSGSIZE;
    n = cap;
    r = pcsc_exchange(p, capdu, clen, rapdu, &n);
    if (r)
        return r;
    /* 6Cxx: wrong Le (short case 2 only); the card tells the right one. */
    if (rapdu[n - 2] == 0x6C && clen == 5) {
        resend = malloc(clen);
        if (!resend)
            return -ENOMEM;
        memcpy(resend, capdu, clen);
        resend[4] = rapdu[n - 1];
        encoder_count_extra(priv);
        n = cap;
        r = pcsc_exchange(p, resend, clen, rapdu, &n);
        free(resend);
        if (r)
            return r;
    }
    /* 61xx: xx more bytes wait; fetch them with GET RESPONSE, appending
	 * in place so the SW of the last answer ends the buffer. */
    while (rapdu[got + n - 2] == 0x61) {
        uint8_t get[5] = { capdu[0] & 0x03, 0xC0, 0x00, 0x00, rapdu[got + n - 1] };
        size_t want = get[4] ? get[4] : 256;

        got += n - 2;
        if (++rounds > PCSC_MAX_GET_RESPONSE)
            return -EIO;
        if (cap - got < want + 2)
            return -EMSGSIZE;
        encoder_count_extra(priv);
        n = cap - got;
        r = pcsc_exchange(p, get, sizeof(get), rapdu + got, &n);
        if (r)
            return r;
    }
    *rlen = got + n;
    return 0;
}

static int pcsc_disconnect(void *priv)
{
    struct pcsc_priv *p = priv;
    LONG rv;

    if (!p->connected)
        return 0;
    p->connected = false;
    rv = SCardDisconnect(p->handle, SCARD_UNPOWER_CARD);
    return rv == SCARD_S_SUCCESS ? 0 : pcsc_errno(rv);
}

static void pcsc_close(void *priv)
{
    struct pcsc_priv *p = priv;

    pcsc_disconnect(p);
    if (p->have_ctx)
        SCardReleaseContext(p->ctx);
    p->have_ctx = false;
}

const struct encoder_ops encoder_pcsc_ops = {
    .name = "pcsc",
    .priv_size = sizeof(struct pcsc_priv),
    .open = pcsc_open,
    .wait_card = pcsc_wait_card,
    .connect = pcsc_connect,
    .transmit = pcsc_transmit,
    .disconnect = pcsc_disconnect,
    .close = pcsc_close,
};
