/*
 * cli_card.c — `cardctl card read` (cli_card.h). Everything on the card is
 * untrusted input: every length is checked before use and text is printed
 * only when it is what it claims to be.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_card.h"
#include "mrz.h"
#include "tlv.h"

static const uint8_t emrtd_aid[] = { 0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01 };

/* Upper bound on an LDS file we agree to read (EF.SOD with a chain of
 * certificates stays far below). */
#define CARD_FILE_MAX 32767

static int exchange(struct encoder *enc, const struct apdu *cmd, struct apdu_resp *rs, uint16_t *sw)
{
    int r = encoder_command(enc, cmd, rs);

    if (r == -ENCODER_E_STATUS && sw)
        *sw = rs->sw;
    return r;
}

/* SELECT the EF, read its first bytes to learn its size from the TLV
 * header, then read the rest in the largest chunks the card takes. */
static int read_ef(struct encoder *enc, uint16_t fid, uint8_t **out, size_t *out_len, uint16_t *sw)
{
    const struct encoder_card *card = encoder_card(enc);
    uint8_t f[2] = { (uint8_t)(fid >> 8), (uint8_t)fid };
    struct apdu sel = { .ins = 0xA4, .p1 = 0x02, .p2 = 0x0C, .data = f, .lc = 2 };
    uint8_t head[8];
    struct apdu_resp rs = { .data = head, .cap = sizeof(head) };
    struct apdu rd = { .ins = 0xB0, .le = sizeof(head) };
    size_t hdr, vlen, total, got, chunk;
    uint32_t tag;
    uint8_t *buf = NULL;
    int r;

    struct apdu_resp none = { 0 };

    r = exchange(enc, &sel, &none, sw);
    if (r)
        return r;
    /* A file shorter than 8 bytes answers what it has. */
    r = exchange(enc, &rd, &rs, sw);
    if (r)
        return r;
    if (tlv_header(head, rs.len, &tag, &hdr, &vlen) || vlen > CARD_FILE_MAX)
        return -EBADMSG;
    total = hdr + vlen;
    buf = malloc(total);
    if (!buf)
        return -ENOMEM;
    got = rs.len < total ? rs.len : total;
    memcpy(buf, head, got);
    chunk = card ? card->max_response_data : 256;
    while (got < total) {
        size_t n = total - got < chunk ? total - got : chunk;
        struct apdu more = { .ins = 0xB0, .p1 = (uint8_t)(got >> 8), .p2 = (uint8_t)got, .le = n };
        struct apdu_resp mr = { .data = buf + got, .cap = total - got };

        r = exchange(enc, &more, &mr, sw);
        if (r)
            goto out_free;
        if (mr.len == 0) {
            r = -EBADMSG;
            goto out_free;
        }
        got += mr.len;
    }
    *out = buf;
    *out_len = total;
    return 0;
out_free:
    free(buf);
    return r;
}

int card_read_lds(struct encoder *enc, struct lds *out, uint16_t *sw)
{
    static const struct {
        uint16_t fid;
        int dg;
        const char *name;
    } files[LDS_NFILES] = {
        [LDS_COM] = { LDS_FID_COM, 0, "EF.COM" },
        [LDS_DG1] = { LDS_FID_DG1, 1, "EF.DG1" },
        [LDS_DG11] = { LDS_FID_DG11, 11, "EF.DG11" },
        [LDS_SOD] = { LDS_FID_SOD, 0, "EF.SOD" },
    };
    struct apdu sel = {
        .ins = 0xA4, .p1 = 0x04, .p2 = 0x0C, .data = emrtd_aid, .lc = sizeof(emrtd_aid)
    };
    struct apdu_resp none = { 0 };
    int r;

    if (!enc || !out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    r = exchange(enc, &sel, &none, sw);
    if (r)
        return r;
    for (int i = 0; i < LDS_NFILES; i++) {
        uint16_t fsw = 0;

        out->file[i].fid = files[i].fid;
        out->file[i].dg = files[i].dg;
        out->file[i].name = files[i].name;
        r = read_ef(enc, files[i].fid, &out->file[i].data, &out->file[i].len, &fsw);
        if (r == -ENCODER_E_STATUS && fsw == 0x6A82)
            continue; /* absent file: reported by the caller */
        if (r) {
            if (sw && fsw)
                *sw = fsw;
            lds_free(out);
            return r;
        }
    }
    return 0;
}

/* True for UTF-8 without control characters: safe to put on a terminal. */
static bool printable_utf8(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        size_t k;

        if (c < 0x20 || c == 0x7F)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        k = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 0;
        if (!k || k >= n - i)
            return false;
        for (size_t j = 1; j <= k; j++)
            if ((p[i + j] & 0xC0) != 0x80)
                return false;
        /* C1 controls (U+0080-U+009F) are as dangerous as C0 ones. */
        if (c == 0xC2 && p[i + 1] < 0xA0)
            return false;
        i += k + 1;
    }
    return true;
}

/* Prints bytes as text only if they are printable UTF-8; else as hex. */
static void print_text(const char *label, const uint8_t *p, size_t n)
{
    printf("  %-14s ", label);
    if (printable_utf8(p, n)) {
        printf("%.*s\n", (int)n, (const char *)p);
        return;
    }
    for (size_t i = 0; i < n; i++)
        printf("%02X", p[i]);
    printf(" (not text)\n");
}

static void print_com(const struct lds_file *f)
{
    struct tlv t, in;

    printf("EF.COM  (%zu bytes)\n", f->len);
    if (tlv_parse(f->data, f->len, &t) || t.tag != 0x60) {
        printf("  not an EF.COM (tag 60)\n");
        return;
    }
    if (!tlv_find(t.value, t.len, 0x5F01, &in))
        print_text("LDS version", in.value, in.len);
    if (!tlv_find(t.value, t.len, 0x5F36, &in))
        print_text("Unicode", in.value, in.len);
    if (!tlv_find(t.value, t.len, 0x5C, &in)) {
        printf("  %-14s", "data groups");
        for (size_t i = 0; i < in.len; i++)
            printf(" %02X", in.value[i]);
        printf("\n");
    }
}

static bool print_dg1(const struct lds_file *f)
{
    struct tlv t, in;
    bool valid;

    printf("EF.DG1  (%zu bytes)\n", f->len);
    if (tlv_parse(f->data, f->len, &t) || t.tag != 0x61 || tlv_find(t.value, t.len, 0x5F1F, &in)) {
        printf("  not an EF.DG1 (61 / 5F1F)\n");
        return false;
    }
    if (in.len != MRZ_TD1_COLS * MRZ_TD1_ROWS) {
        printf("  MRZ of %zu characters is not TD1\n", in.len);
        return false;
    }
    valid = mrz_td1_valid((const char *)in.value, in.len);
    for (int i = 0; i < MRZ_TD1_ROWS; i++)
        print_text(i == 0 ? "MRZ" : "", in.value + i * MRZ_TD1_COLS, MRZ_TD1_COLS);
    printf("  %-14s %s\n", "check digits", valid ? "ok" : "WRONG");
    return valid;
}

static void print_dg11(const struct lds_file *f)
{
    struct tlv t, in;

    printf("EF.DG11 (%zu bytes)\n", f->len);
    if (tlv_parse(f->data, f->len, &t) || t.tag != 0x6B) {
        printf("  not an EF.DG11 (tag 6B)\n");
        return;
    }
    if (!tlv_find(t.value, t.len, 0x5F0E, &in))
        print_text("name (Arabic)", in.value, in.len);
    if (!tlv_find(t.value, t.len, 0x5F10, &in))
        print_text("national ID", in.value, in.len);
}

/* Checks and prints EF.SOD against the data groups read; returns whether
 * it is consistent with them (and trusted, when trust is given). */
static bool print_sod(const struct lds *l, const char *trust)
{
    struct lds_dg dgs[2];
    struct lds_check chk;
    size_t n = 0;
    for (int k = LDS_DG1; k <= LDS_DG11; k++)
        if (l->file[k].data)
            dgs[n++] = (struct lds_dg){ l->file[k].dg, l->file[k].data, l->file[k].len };
    lds_check(l->file[LDS_SOD].data, l->file[LDS_SOD].len, dgs, n, trust, &chk);
    printf("EF.SOD  (%zu bytes)\n", l->file[LDS_SOD].len);
    printf("  %-14s %s\n", "signer", chk.signer[0] ? chk.signer : "(none)");
    printf("  %-14s %s\n", "content type", chk.content_type_ok ? "LDSSecurityObject" : "WRONG");
    printf("  %-14s %s\n", "signature", chk.signature_valid ? "valid" : "INVALID");
    if (trust)
        printf("  %-14s %s (%s)\n", "trusted", chk.signer_trusted ? "yes" : "NO", trust);
    else
        printf("  %-14s not checked (no --trust)\n", "trusted");
    printf("  %-14s %s", "DG hashes", chk.hashes_match ? "match" : "DIFFER");
    if (chk.dg_mismatch)
        printf(" (DG%d)", chk.dg_mismatch);
    printf(", %d listed\n", chk.dg_listed);
    if (chk.error[0])
        printf("  %-14s %s\n", "problem", chk.error);
    return chk.signature_valid && chk.hashes_match && chk.content_type_ok &&
           (!trust || chk.signer_trusted);
}

/* Prints every file read and whether they agree; returns whether they do. */
static bool print_lds(const struct lds *l, const char *trust)
{
    bool consistent = true;
    for (int k = 0; k < LDS_NFILES; k++) {
        if (!l->file[k].data) {
            printf("%-7s absent\n", l->file[k].name);
            consistent = false;
        }
    }
    if (l->file[LDS_COM].data)
        print_com(&l->file[LDS_COM]);
    if (l->file[LDS_DG1].data && !print_dg1(&l->file[LDS_DG1]))
        consistent = false;
    if (l->file[LDS_DG11].data)
        print_dg11(&l->file[LDS_DG11]);
    if (l->file[LDS_SOD].data && !print_sod(l, trust))
        consistent = false;
    return consistent;
}

static void usage(void)
{
    fprintf(stderr, "usage: cardctl card read [--trust PEM] [--timeout MS] [READER]\n");
}

int cli_card_read(int argc, char **argv)
{
    const char *reader = NULL, *trust = NULL;
    unsigned timeout_ms = 10000;
    struct encoder *enc = NULL;
    const struct encoder_card *card;
    struct lds l = { 0 };
    uint16_t sw = 0;
    int r, status = 3;
    int i = (argc > 0 && argv[0] && !strcmp(argv[0], "read")) ? 1 : 0;

    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--trust") && i + 1 < argc)
            trust = argv[++i];
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout_ms = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (argv[i][0] == '-' || reader) {
            usage();
            return 2;
        } else
            reader = argv[i];
    }
    r = encoder_open(&encoder_pcsc_ops, reader, 0, &enc);
    if (r) {
        fprintf(stderr, "card read: reader %s: %s\n", reader ? reader : "(first)", strerror(-r));
        return 3;
    }
    r = encoder_wait_card(enc, timeout_ms);
    if (!r)
        r = encoder_connect(enc);
    if (r) {
        fprintf(stderr, "card read: %s\n",
                r == -ETIMEDOUT ? "no card in the reader" : strerror(-r));
        goto out_close;
    }
    card = encoder_card(enc);
    printf("ATR     ");
    for (size_t k = 0; k < card->atr_len; k++)
        printf(" %02X", card->atr[k]);
    printf("\nprotocol T=%u%s\n", card->protocol, card->extended ? ", extended length" : "");
    r = card_read_lds(enc, &l, &sw);
    if (r == -ENCODER_E_STATUS) {
        fprintf(stderr, "card read: card answered %04X%s\n", sw,
                sw == 0x6982 ? " (reading needs BAC, not done by this tool)" : "");
        goto out_close;
    }
    if (r) {
        fprintf(stderr, "card read: %s\n",
                r == -ENODEV    ? "card left the reader"
                : r == -EBADMSG ? "a file is not well-formed"
                                : strerror(-r));
        goto out_close;
    }
    bool consistent = print_lds(&l, trust);
    printf("result   %s\n", consistent ? "OK" : "NOT CONSISTENT");
    status = consistent ? 0 : 1;
    lds_free(&l);
out_close:
    encoder_close(enc);
    return status;
}
