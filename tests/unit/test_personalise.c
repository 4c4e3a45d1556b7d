/* Unit tests for personalise.c against a fake chip encoder driver: the
 * good path, then every APDU of it answered with every status word that
 * matters (and with every transport error), SQLite-style. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "encoder.h"
#include "personalise.h"

#include "alloc_fail.h"

static char pki[256];

static struct signer *ds;

static const uint8_t good_key[8] = { 0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE };

static const struct holder holder = {
    .document_number = "A12345678",
    .surname = "Al-Qahtani",
    .given_names = "Mohammed",
    .name_ar =
        "\xd9\x85\xd8\xad\xd9\x85\xd8\xaf \xd8\xa7\xd9\x84\xd9\x82\xd8\xad\xd8\xb7\xd8\xa7\xd9\x86\xd9\x8a",
    .national_id = "1012345678",
    .birth_date = "900101",
    .sex = 'M',
    .expiry_date = "310101",
    .nationality = "SAU",
};

/* ---- the fake card behind the fake driver ---- */

struct fake_file {
    uint16_t fid;
    size_t size;
    uint8_t data[8192];
};

static struct fake {
    unsigned long n;       /* APDUs seen */
    unsigned long fail_at; /* answer APDU number fail_at with fail_sw / fail_err */
    uint16_t fail_sw;
    int fail_err;
    uint8_t key[8];
    int tries;
    bool authenticated, locked, bac;
    struct fake_file files[8];
    int nfiles, current;
    bool corrupt_read;
    bool extended;
    int key_presented; /* VERIFY with data seen */
} fk;

static void fake_reset(void)
{
    memset(&fk, 0, sizeof(fk));
    memcpy(fk.key, good_key, 8);
    fk.tries = 3;
    fk.current = -1;
}

static int fake_open(void *priv, const char *reader, unsigned flags)
{
    (void)priv;
    (void)reader;
    (void)flags;
    return 0;
}

static int fake_wait(void *priv, unsigned ms)
{
    (void)priv;
    (void)ms;
    return 0;
}

static int fake_connect(void *priv, struct encoder_card *card)
{
    (void)priv;
    card->protocol = 1;
    card->extended = fk.extended;
    card->max_command_data = fk.extended ? 65535 : 255;
    card->max_response_data = fk.extended ? 65536 : 256;
    return 0;
}

static size_t put_sw(uint8_t *r, size_t n, uint16_t sw)
{
    r[n] = (uint8_t)(sw >> 8);
    r[n + 1] = (uint8_t)sw;
    return n + 2;
}

static int fake_transmit(void *priv, const uint8_t *c, size_t clen, uint8_t *r, size_t *rlen)
{
    size_t lc = 0, le = 0;
    const uint8_t *data = NULL;
    uint16_t sw = 0x9000;
    size_t out = 0;

    (void)priv;
    assert_true(clen >= 4);
    fk.n++;
    if (fk.n == fk.fail_at && fk.fail_err)
        return fk.fail_err;
    if (fk.n == fk.fail_at) {
        *rlen = put_sw(r, 0, fk.fail_sw);
        return 0;
    }
    /* Short or extended, cases 1-4. */
    if (clen == 5) {
        le = c[4] ? c[4] : 256;
    } else if (clen > 5 && c[4]) {
        lc = c[4];
        data = c + 5;
        if (clen == 6 + lc)
            le = c[clen - 1] ? c[clen - 1] : 256;
    } else if (clen == 7) {
        le = (size_t)(c[5] << 8 | c[6]);
    } else if (clen > 7) {
        lc = (size_t)(c[5] << 8 | c[6]);
        data = c + 7;
        if (clen == 9 + lc)
            le = (size_t)(c[clen - 2] << 8 | c[clen - 1]);
    }
    switch (c[1]) {
    case 0xA4:
        if (c[2] == 0x02) {
            fk.current = -1;
            for (int i = 0; i < fk.nfiles; i++)
                if (fk.files[i].fid == (data[0] << 8 | data[1]))
                    fk.current = i;
            if (fk.current < 0)
                sw = 0x6A82;
        }
        break;
    case 0x20:
        if (!lc)
            sw = fk.tries ? (uint16_t)(0x63C0 | fk.tries) : 0x6983;
        else {
            fk.key_presented++;
            if (fk.tries == 0)
                sw = 0x6983;
            else if (memcmp(data, fk.key, 8))
                sw = (uint16_t)(0x63C0 | --fk.tries);
            else
                fk.authenticated = true;
        }
        break;
    case 0xE0:
        if (!fk.authenticated)
            sw = 0x6982;
        else {
            struct fake_file *f = &fk.files[fk.nfiles++];

            f->size = (size_t)(data[2] << 8 | data[3]);
            f->fid = (uint16_t)(data[4] << 8 | data[5]);
            assert_true(f->size <= sizeof(f->data));
        }
        break;
    case 0xD6: {
        size_t off = (size_t)(c[2] << 8 | c[3]);

        assert_true(fk.current >= 0);
        assert_true(off + lc <= fk.files[fk.current].size);
        memcpy(fk.files[fk.current].data + off, data, lc);
        break;
    }
    case 0xB0: {
        size_t off = (size_t)(c[2] << 8 | c[3]);
        struct fake_file *f = &fk.files[fk.current];

        out = f->size - off < le ? f->size - off : le;
        memcpy(r, f->data + off, out);
        if (fk.corrupt_read && out)
            r[out - 1] ^= 0x40;
        break;
    }
    case 0xDA:
        if (c[2] == 0x00 && c[3] == 0x62)
            fk.bac = true;
        else if (c[2] == 0xDE && c[3] == 0xAD && fk.bac)
            fk.locked = true;
        else
            sw = 0x6985;
        break;
    default:
        sw = 0x6D00;
    }
    assert_true(out + 2 <= *rlen);
    *rlen = put_sw(r, out, sw);
    return 0;
}

static int fake_disconnect(void *priv)
{
    (void)priv;
    return 0;
}

static void fake_close(void *priv)
{
    (void)priv;
}

static const struct encoder_ops fake_ops = {
    .name = "fake",
    .priv_size = 8,
    .open = fake_open,
    .wait_card = fake_wait,
    .connect = fake_connect,
    .transmit = fake_transmit,
    .disconnect = fake_disconnect,
    .close = fake_close,
};

/* ---- fixtures ---- */

static int setup(void **state)
{
    const char *root = getenv("CARDD_ROOT");
    char cmd[600], k[300], c[300];

    (void)state;
    snprintf(pki, sizeof(pki), "/tmp/test-perso.XXXXXX");
    if (!mkdtemp(pki))
        return -1;
    snprintf(cmd, sizeof(cmd), "%s/tests/make-test-pki.sh %s", root ? root : ".", pki);
    if (system(cmd))
        return -1;
    snprintf(k, sizeof(k), "%s/ds.key", pki);
    snprintf(c, sizeof(c), "%s/ds.pem", pki);
    return signer_open(&signer_file_ops,
                       &(struct signer_file_config){ .key_path = k, .cert_path = c }, &ds);
}

static int teardown(void **state)
{
    char cmd[300];

    (void)state;
    signer_close(ds);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", pki);
    return system(cmd) ? -1 : 0;
}

static int run(const struct holder *h, struct perso_result *res)
{
    struct encoder *enc = NULL;
    int r;

    assert_int_equal(encoder_open(&fake_ops, "fake", 0, &enc), 0);
    assert_int_equal(encoder_connect(enc), 0);
    r = personalise(enc, h, ds, good_key, NULL, res);
    encoder_close(enc);
    return r;
}

static unsigned long div_up(size_t a, size_t b)
{
    return (unsigned long)((a + b - 1) / b);
}

/* APDUs the data needs: SELECT, tries, VERIFY, per file CREATE + SELECT +
 * writes + reads, PUT DATA, lock. */
static unsigned long expected_apdus(size_t wchunk, size_t rchunk)
{
    struct lds l;
    unsigned long n = 3 + 2;

    assert_int_equal(lds_build(&holder, ds, &l), 0);
    for (int i = 0; i < LDS_NFILES; i++)
        n += 2 + div_up(l.file[i].len, wchunk) + div_up(l.file[i].len, rchunk);
    lds_free(&l);
    return n;
}

/* ---- tests ---- */

static void good_card(void **state)
{
    struct perso_result res;

    (void)state;
    fake_reset();
    assert_int_equal(run(&holder, &res), 0);
    assert_int_equal(res.err, 0);
    assert_null(res.step);
    assert_true(fk.locked);
    assert_int_equal(fk.nfiles, 4);
    assert_int_equal(fk.key_presented, 1);
    assert_int_equal(res.apdus, fk.n);
    assert_int_equal(res.apdus, expected_apdus(255, 256));
    assert_int_equal(res.tries_left, 3);
}

static void good_card_extended(void **state)
{
    struct perso_result res;

    (void)state;
    fake_reset();
    fk.extended = true;
    assert_int_equal(run(&holder, &res), 0);
    assert_int_equal(res.apdus, 3 + 4 * 4 + 2);
}

static const char *step_of(unsigned long n, unsigned long total)
{
    if (n == 1)
        return "select_application";
    if (n == 2)
        return "read_transport_key_tries";
    if (n == 3)
        return "verify_transport_key";
    if (n == total - 1)
        return "put_data_bac";
    if (n == total)
        return "lock";
    return NULL; /* file steps: checked by prefix below */
}

/* Every APDU of the good sequence answered with every error status word:
 * the card is never reported good or locked, and the failure names the
 * step and the status word. */
static void every_apdu_every_status(void **state)
{
    static const uint16_t sws[] = { 0x6982, 0x6985, 0x6A82, 0x6A84, 0x6B00,
                                    0x6D00, 0x6700, 0x6F00, 0x63C1 };
    unsigned long total;
    struct perso_result res;

    (void)state;
    fake_reset();
    assert_int_equal(run(&holder, &res), 0);
    total = fk.n;
    for (unsigned long n = 1; n <= total; n++) {
        for (size_t k = 0; k < sizeof(sws) / sizeof(sws[0]); k++) {
            const char *want = step_of(n, total);

            fake_reset();
            fk.fail_at = n;
            fk.fail_sw = sws[k];
            assert_int_not_equal(run(&holder, &res), 0);
            assert_false(fk.locked);
            assert_int_equal(fk.n, n); /* stopped at once */
            assert_non_null(res.step);
            assert_non_null(strstr(res.reason, res.step));
            if (n == 2 && sws[k] == 0x63C1) {
                /* One try left: the key is not presented. */
                assert_int_equal(res.err, -EACCES);
                assert_int_equal(fk.key_presented, 0);
                continue;
            }
            assert_int_equal(res.err, -ENCODER_E_STATUS);
            assert_int_equal(res.sw, sws[k]);
            if (want)
                assert_string_equal(res.step, want);
            else
                assert_true(!strcmp(res.step, "create_file") || !strcmp(res.step, "select_file") ||
                            !strcmp(res.step, "update_binary") || !strcmp(res.step, "read_binary"));
            if (n > 3 && n < total - 1)
                assert_int_not_equal(res.fid, 0);
        }
    }
}

static void every_apdu_transport_errors(void **state)
{
    static const int errs[] = { -ENODEV, -EIO, -ETIMEDOUT };
    unsigned long total;
    struct perso_result res;

    (void)state;
    fake_reset();
    assert_int_equal(run(&holder, &res), 0);
    total = fk.n;
    for (unsigned long n = 1; n <= total; n++) {
        for (size_t k = 0; k < 3; k++) {
            fake_reset();
            fk.fail_at = n;
            fk.fail_err = errs[k];
            assert_int_equal(run(&holder, &res), errs[k]);
            assert_int_equal(res.err, errs[k]);
            assert_int_equal(res.sw, 0);
            assert_false(fk.locked);
            assert_int_equal(fk.n, n);
        }
    }
    fake_reset();
    fk.fail_at = 20;
    fk.fail_err = -ENODEV;
    run(&holder, &res);
    assert_non_null(strstr(res.reason, "card left the reader"));
}

static void first_file_steps_are_named(void **state)
{
    static const char *steps[] = { "create_file", "select_file", "update_binary" };
    struct perso_result res;

    (void)state;
    for (int i = 0; i < 3; i++) {
        fake_reset();
        fk.fail_at = 4 + (unsigned long)i;
        fk.fail_sw = 0x6A84;
        run(&holder, &res);
        assert_string_equal(res.step, steps[i]);
        assert_int_equal(res.fid, 0x011E);
    }
    assert_string_equal(res.reason, "update_binary EF.COM: card answered 6A84 (not enough memory)");
}

static void wrong_transport_key(void **state)
{
    struct perso_result res;

    (void)state;
    fake_reset();
    fk.key[0] ^= 0xFF;
    assert_int_equal(run(&holder, &res), -ENCODER_E_STATUS);
    assert_string_equal(res.step, "verify_transport_key");
    assert_int_equal(res.sw, 0x63C2);
    assert_int_equal(res.tries_left, 2);
    assert_int_equal(fk.key_presented, 1);
    assert_int_equal(fk.tries, 2);
    assert_int_equal(fk.nfiles, 0);
    /* The same card again (a retry by the line) costs one more try... */
    fk.n = 0;
    fk.key_presented = 0;
    run(&holder, &res);
    assert_int_equal(fk.tries, 1);
    /* ...and then no more: the last try is never spent. */
    fk.n = 0;
    fk.key_presented = 0;
    assert_int_equal(run(&holder, &res), -EACCES);
    assert_string_equal(res.step, "read_transport_key_tries");
    assert_int_equal(fk.key_presented, 0);
    assert_int_equal(fk.tries, 1);
}

static void blocked_card(void **state)
{
    struct perso_result res;

    (void)state;
    fake_reset();
    fk.tries = 0;
    assert_int_equal(run(&holder, &res), -ENCODER_E_STATUS);
    assert_int_equal(res.sw, 0x6983);
    assert_string_equal(res.step, "read_transport_key_tries");
    assert_int_equal(fk.key_presented, 0);
}

static void read_back_differs(void **state)
{
    struct perso_result res;

    (void)state;
    fake_reset();
    fk.corrupt_read = true;
    assert_int_equal(run(&holder, &res), -EBADMSG);
    assert_string_equal(res.step, "check_read_back");
    assert_int_equal(res.fid, 0x011E);
    assert_false(fk.locked);
}

static void bad_holder_touches_no_card(void **state)
{
    struct perso_result res;
    struct holder h = holder;

    (void)state;
    fake_reset();
    strcpy(h.national_id, "12");
    assert_int_equal(run(&h, &res), -EINVAL);
    assert_string_equal(res.step, "build_files");
    assert_int_equal(fk.n, 0);
}

static void not_connected(void **state)
{
    struct encoder *enc = NULL;
    struct perso_result res;

    (void)state;
    assert_int_equal(encoder_open(&fake_ops, "fake", 0, &enc), 0);
    assert_int_equal(personalise(enc, &holder, ds, good_key, NULL, &res), -ENOTCONN);
    encoder_close(enc);
    assert_int_equal(personalise(NULL, &holder, ds, good_key, NULL, NULL), -EINVAL);
    assert_string_equal(perso_sw_text(0x63C2), "wrong key");
    assert_string_equal(perso_sw_text(0x6A82), "file not found");
}

/* Every allocation of a personalisation failing in turn: the card is never
 * reported good nor locked, the failure is -ENOMEM, nothing leaks. */
static void every_allocation_fails(void **state)
{
    struct perso_result res;
    long n;

    (void)state;
    for (n = 0; n < 5000; n++) {
        struct encoder *enc = NULL;
        int r;

        fake_reset();
        assert_int_equal(encoder_open(&fake_ops, "fake", 0, &enc), 0);
        assert_int_equal(encoder_connect(enc), 0);
        alloc_countdown = n;
        r = personalise(enc, &holder, ds, good_key, NULL, &res);
        alloc_countdown = -1;
        encoder_close(enc);
        if (r == 0)
            break;
        assert_int_equal(r, -ENOMEM);
        assert_int_equal(res.err, -ENOMEM);
        assert_non_null(res.step);
        assert_false(fk.locked);
    }
    assert_true(n > 10 && n < 5000);
    assert_true(fk.locked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_card),
        cmocka_unit_test(good_card_extended),
        cmocka_unit_test(every_apdu_every_status),
        cmocka_unit_test(every_apdu_transport_errors),
        cmocka_unit_test(first_file_steps_are_named),
        cmocka_unit_test(wrong_transport_key),
        cmocka_unit_test(blocked_card),
        cmocka_unit_test(read_back_differs),
        cmocka_unit_test(bad_holder_touches_no_card),
        cmocka_unit_test(not_connected),
        cmocka_unit_test(every_allocation_fails),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
