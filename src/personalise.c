/*
 * personalise.c — the CARD.md personalisation sequence (personalise.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "personalise.h"
#include "tlv.h"

static const uint8_t emrtd_aid[] = { 0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01 };

/* Step names: stable strings, recorded as spoil reasons. */
#define STEP_BUILD      "build_files"
#define STEP_SELECT_APP "select_application"
#define STEP_TRIES      "read_transport_key_tries"
#define STEP_VERIFY     "verify_transport_key"
#define STEP_CREATE     "create_file"
#define STEP_SELECT     "select_file"
#define STEP_UPDATE     "update_binary"
#define STEP_READ       "read_binary"
#define STEP_CHECK      "check_read_back"
#define STEP_BAC        "put_data_bac"
#define STEP_LOCK       "lock"

const char *perso_sw_text(uint16_t sw)
{
    if ((sw & 0xFFF0) == 0x63C0)
        return "wrong key";
    switch (sw) {
    case 0x9000:
        return "success";
    case 0x6982:
        return "security status not satisfied";
    case 0x6983:
        return "key blocked";
    case 0x6985:
        return "conditions not satisfied";
    case 0x6A82:
        return "file not found";
    case 0x6A84:
        return "not enough memory";
    case 0x6B00:
        return "wrong offset";
    case 0x6D00:
        return "unknown instruction";
    default:
        return "unexpected";
    }
}

static const char *err_text(int err)
{
    switch (err) {
    case -ENODEV:
        return "card left the reader";
    case -ETIMEDOUT:
        return "card did not answer in time";
    case -EIO:
        return "communication error";
    case -EMSGSIZE:
        return "answer larger than expected";
    case -ENOTCONN:
        return "no card connected";
    case -EACCES:
        return "transport key not presented";
    case -EBADMSG:
        return "data read back differs";
    default:
        return "failure";
    }
}

static const char *file_name(uint16_t fid)
{
    switch (fid) {
    case LDS_FID_COM:
        return "EF.COM";
    case LDS_FID_DG1:
        return "EF.DG1";
    case LDS_FID_DG11:
        return "EF.DG11";
    case LDS_FID_SOD:
        return "EF.SOD";
    default:
        return "";
    }
}

/* Records a failure once; later calls keep the first cause. */
static int fail(struct perso_result *res, const char *step, uint16_t fid, int err, uint16_t sw,
                const char *detail)
{
    if (res->err)
        return res->err;
    res->err = err;
    res->step = step;
    res->fid = fid;
    res->sw = sw;
    if (sw)
        snprintf(res->reason, sizeof(res->reason), "%s%s%s: card answered %04X (%s)", step,
                 fid ? " " : "", file_name(fid), sw, perso_sw_text(sw));
    else
        snprintf(res->reason, sizeof(res->reason), "%s%s%s: %s", step, fid ? " " : "",
                 file_name(fid), detail ? detail : err_text(err));
    return err;
}

/* One exchange that must end in 90 00. */
static int expect_ok(struct encoder *enc, struct perso_result *res, const char *step, uint16_t fid,
                     const struct apdu *cmd, struct apdu_resp *resp)
{
    struct apdu_resp none = { 0 };
    int r = encoder_transmit(enc, cmd, resp ? resp : &none);

    if (r)
        return fail(res, step, fid, r, 0, NULL);
    if ((resp ? resp : &none)->sw != 0x9000)
        return fail(res, step, fid, -ENCODER_E_STATUS, (resp ? resp : &none)->sw, NULL);
    return 0;
}

static int authenticate(struct encoder *enc, const uint8_t key[PERSO_KEY_LEN], unsigned min_tries,
                        struct perso_result *res)
{
    struct apdu ask = { .ins = 0x20, .p1 = 0x00, .p2 = 0x81 };
    struct apdu verify = ask;
    struct apdu_resp rs = { 0 };
    int r;

    /* VERIFY without data asks how many tries are left (ISO 7816-4 §11.5.6):
	 * the key is only presented when a failure cannot block the card. */
    r = encoder_transmit(enc, &ask, &rs);
    if (r)
        return fail(res, STEP_TRIES, 0, r, 0, NULL);
    if ((rs.sw & 0xFFF0) == 0x63C0) {
        res->tries_left = rs.sw & 0x0F;
        if ((unsigned)res->tries_left < min_tries) {
            char d[96];

            snprintf(d, sizeof(d), "only %d transport key tries left, key not presented",
                     res->tries_left);
            return fail(res, STEP_TRIES, 0, -EACCES, 0, d);
        }
    } else if (rs.sw != 0x9000) {
        return fail(res, STEP_TRIES, 0, -ENCODER_E_STATUS, rs.sw, NULL);
    }
    verify.data = key;
    verify.lc = PERSO_KEY_LEN;
    r = encoder_transmit(enc, &verify, &rs);
    if (r)
        return fail(res, STEP_VERIFY, 0, r, 0, NULL);
    if ((rs.sw & 0xFFF0) == 0x63C0)
        res->tries_left = rs.sw & 0x0F;
    if (rs.sw != 0x9000)
        /* Never a second try: the key is wrong for this batch, and
		 * retrying would only bring the card nearer to blocking. */
        return fail(res, STEP_VERIFY, 0, -ENCODER_E_STATUS, rs.sw, NULL);
    return 0;
}

static size_t chunk_limit(size_t card_max, size_t cap)
{
    return cap && cap < card_max ? cap : card_max;
}

/* CREATE FILE, SELECT, UPDATE BINARY in chunks. */
static int write_file(struct encoder *enc, const struct lds_file *f, size_t chunk,
                      struct perso_result *res)
{
    uint8_t fcp[6] = {
        0x63, 0x04, (uint8_t)(f->len >> 8), (uint8_t)f->len, (uint8_t)(f->fid >> 8), (uint8_t)f->fid
    };
    uint8_t fid[2] = { (uint8_t)(f->fid >> 8), (uint8_t)f->fid };
    struct apdu create = { .ins = 0xE0, .data = fcp, .lc = sizeof(fcp) };
    struct apdu select = { .ins = 0xA4, .p1 = 0x02, .p2 = 0x0C, .data = fid, .lc = 2 };
    int r;

    /* UPDATE BINARY offsets are 15 bits (P1 bit 8 set means something else). */
    if (f->len == 0 || f->len > 0x7FFF)
        return fail(res, STEP_CREATE, f->fid, -EFBIG, 0, "file too large for the card");
    if ((r = expect_ok(enc, res, STEP_CREATE, f->fid, &create, NULL)) ||
        (r = expect_ok(enc, res, STEP_SELECT, f->fid, &select, NULL)))
        return r;
    for (size_t off = 0; off < f->len; off += chunk) {
        size_t n = f->len - off < chunk ? f->len - off : chunk;
        struct apdu update = { .ins = 0xD6,
                               .p1 = (uint8_t)(off >> 8),
                               .p2 = (uint8_t)off,
                               .data = f->data + off,
                               .lc = n };

        r = expect_ok(enc, res, STEP_UPDATE, f->fid, &update, NULL);
        if (r)
            return r;
    }
    return 0;
}

/* READ BINARY the currently selected file back into buf (f->len bytes). */
static int read_file(struct encoder *enc, const struct lds_file *f, size_t chunk, uint8_t *buf,
                     struct perso_result *res)
{
    for (size_t off = 0; off < f->len;) {
        size_t n = f->len - off < chunk ? f->len - off : chunk;
        struct apdu read = { .ins = 0xB0, .p1 = (uint8_t)(off >> 8), .p2 = (uint8_t)off, .le = n };
        struct apdu_resp rs = { .data = buf + off, .cap = f->len - off };
        int r = expect_ok(enc, res, STEP_READ, f->fid, &read, &rs);

        if (r)
            return r;
        if (rs.len == 0)
            return fail(res, STEP_READ, f->fid, -EBADMSG, 0, "card returned no data");
        off += rs.len;
    }
    return 0;
}

/* Writes every file, reads each back while it is still selected, and
 * checks what the card holds as a border control would: the SOD's
 * signature, and each data group's hash against the SOD. back[] receives
 * the files read (the caller frees them). */
static int write_and_check(struct encoder *enc, const struct lds *l, size_t wchunk, size_t rchunk,
                           uint8_t *back[LDS_NFILES], struct perso_result *res)
{
    int r;
    for (int i = 0; i < LDS_NFILES; i++) {
        const struct lds_file *f = &l->file[i];

        back[i] = malloc(f->len);
        if (!back[i])
            return fail(res, STEP_READ, f->fid, -ENOMEM, 0, NULL);
        /* Read back while the file is still selected: no extra SELECT. */
        if ((r = write_file(enc, f, wchunk, res)) || (r = read_file(enc, f, rchunk, back[i], res)))
            return r;
        if (memcmp(back[i], f->data, f->len))
            return fail(res, STEP_CHECK, f->fid, -EBADMSG, 0, NULL);
    }
    struct lds_dg dgs[] = {
        { l->file[LDS_DG1].dg, back[LDS_DG1], l->file[LDS_DG1].len },
        { l->file[LDS_DG11].dg, back[LDS_DG11], l->file[LDS_DG11].len },
    };
    struct lds_check chk;
    r = lds_check(back[LDS_SOD], l->file[LDS_SOD].len, dgs, 2, NULL, &chk);
    if (r || !chk.signature_valid || !chk.hashes_match || !chk.content_type_ok)
        return fail(res, STEP_CHECK, LDS_FID_SOD, r ? r : -EBADMSG, 0,
                    chk.error[0] ? chk.error : NULL);
    return 0;
}

int personalise(struct encoder *enc, const struct holder *h, struct signer *ds,
                const uint8_t transport_key[PERSO_KEY_LEN], const struct perso_opts *opts,
                struct perso_result *res)
{
    struct lds l = { 0 };
    struct tlv_buf bac;
    uint8_t *back[LDS_NFILES] = { NULL };
    const struct encoder_card *card;
    struct apdu sel_app = {
        .ins = 0xA4, .p1 = 0x04, .p2 = 0x0C, .data = emrtd_aid, .lc = sizeof(emrtd_aid)
    };
    unsigned min_tries = opts && opts->min_tries ? opts->min_tries : 2;
    size_t wchunk, rchunk;
    int r;

    if (!res)
        return -EINVAL;
    memset(res, 0, sizeof(*res));
    res->tries_left = -1;
    tlv_buf_init(&bac);
    if (!enc || !h || !ds || !transport_key) {
        r = fail(res, STEP_BUILD, 0, -EINVAL, 0, "missing argument");
        goto out;
    }
    card = encoder_card(enc);
    if (!card) {
        r = fail(res, STEP_SELECT_APP, 0, -ENOTCONN, 0, NULL);
        goto out;
    }
    wchunk = chunk_limit(card->max_command_data, opts ? opts->max_chunk : 0);
    rchunk = chunk_limit(card->max_response_data, opts ? opts->max_chunk : 0);

    /* Everything that can fail without a card fails before touching it. */
    r = lds_build(h, ds, &l);
    if (!r)
        r = lds_bac_material(h, &bac);
    if (r) {
        fail(res, STEP_BUILD, 0, r, 0, r == -EINVAL ? "holder data refused" : NULL);
        goto out_lds;
    }

    if ((r = expect_ok(enc, res, STEP_SELECT_APP, 0, &sel_app, NULL)) ||
        (r = authenticate(enc, transport_key, min_tries, res)))
        goto out_lds;

    if ((r = write_and_check(enc, &l, wchunk, rchunk, back, res)))
        goto out_lds;
    {
        struct apdu put_bac = {
            .ins = 0xDA, .p1 = 0x00, .p2 = 0x62, .data = bac.data, .lc = bac.len
        };
        struct apdu lock = { .ins = 0xDA, .p1 = 0xDE, .p2 = 0xAD };

        if ((r = expect_ok(enc, res, STEP_BAC, 0, &put_bac, NULL)) ||
            (r = expect_ok(enc, res, STEP_LOCK, 0, &lock, NULL)))
            goto out_lds;
    }
    r = 0;
out_lds:
    for (int i = 0; i < LDS_NFILES; i++)
        free(back[i]);
    lds_free(&l);
out:
    tlv_buf_free(&bac);
    res->apdus = encoder_apdu_count(enc);
    return r;
}
