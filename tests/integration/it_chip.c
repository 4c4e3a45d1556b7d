/*
 * it_chip.c — chip encoding through the real PC/SC stack: a private pcscd
 * with vpcd, the emulated card (build/emu-card), the PC/SC driver and the
 * personalisation sequence. Each card is then read back as an inspection
 * system would, through PC/SC and from the emulator's own record, and
 * checked with OpenSSL against the test CSCA.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli_card.h"
#include "encoder.h"
#include "lds.h"
#include "pcsc_env.h"
#include "personalise.h"
#include "signer.h"

#define KEY_HEX "1032547698BADCFE"
static const uint8_t key[8] = { 0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE };

static struct pcsc_env *env;
static struct signer *ds;
static char pki[256], csca[300];
static unsigned serial_no;

static const struct holder base_holder = {
    .surname = "Al-Otaibi",
    .given_names = "Noura Saad",
    .name_ar =
        "\xd9\x86\xd9\x88\xd8\xb1\xd8\xa9 \xd8\xb3\xd8\xb9\xd8\xaf \xd8\xa7\xd9\x84\xd8\xb9\xd8\xaa\xd9\x8a\xd8\xa8\xd9\x8a",
    .national_id = "1098765432",
    .birth_date = "950617",
    .sex = 'F',
    .expiry_date = "330617",
    .nationality = "SAU",
};

static int setup(void **state)
{
    const char *root = getenv("CARDD_ROOT");
    char cmd[600], k[300], c[300];
    int r;

    (void)state;
    snprintf(pki, sizeof(pki), "/tmp/it-chip-pki.XXXXXX");
    if (!mkdtemp(pki))
        return -1;
    snprintf(cmd, sizeof(cmd), "%s/tests/make-test-pki.sh %s", root ? root : ".", pki);
    if (system(cmd))
        return -1;
    snprintf(k, sizeof(k), "%s/ds.key", pki);
    snprintf(c, sizeof(c), "%s/ds.pem", pki);
    snprintf(csca, sizeof(csca), "%s/csca.pem", pki);
    r = signer_open(&signer_file_ops, &(struct signer_file_config){ .key_path = k, .cert_path = c },
                    &ds);
    if (r)
        return -1;
    r = pcsc_env_start(&(struct pcsc_env_opts){ .with_card = true }, &env);
    if (r) {
        fprintf(stderr, "pcsc_env_start: %s\n", strerror(-r));
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];

    (void)state;
    pcsc_env_stop(env);
    signer_close(ds);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", pki);
    return system(cmd) ? -1 : 0;
}

/* A fresh serial per card, so that every card is a new blank one. */
static void new_holder(struct holder *h, char *serial)
{
    *h = base_holder;
    snprintf(serial, 10, "T%08u", ++serial_no);
    strcpy(h->document_number, serial);
}

/* Puts a card in the reader and connects to it through pcscd. */
static struct encoder *insert_and_connect(const char *serial, const char *keyhex, const char *proto)
{
    struct encoder *enc = NULL;
    char reply[256];

    assert_int_equal(pcsc_env_card(env, reply, sizeof(reply), "insert %s %s %s", serial, keyhex,
                                   proto ? proto : ""),
                     0);
    assert_int_equal(encoder_open(&encoder_pcsc_ops, pcsc_env_reader(env), 0, &enc), 0);
    assert_int_equal(encoder_wait_card(enc, 5000), 0);
    assert_int_equal(encoder_connect(enc), 0);
    return enc;
}

static void remove_card(struct encoder *enc)
{
    encoder_close(enc);
    assert_int_equal(pcsc_env_card(env, NULL, 0, "remove"), 0);
}

static void card_status(char *reply, size_t cap)
{
    assert_int_equal(pcsc_env_card(env, reply, cap, "status"), 0);
}

/* Reads what the emulator recorded for one file of a card. */
static uint8_t *record(const char *serial, uint16_t fid, size_t *len)
{
    char p[600];
    FILE *f;
    uint8_t *buf = malloc(65536);

    snprintf(p, sizeof(p), "%s/%s/%04X.bin", pcsc_env_card_outdir(env), serial, fid);
    f = fopen(p, "rb");
    assert_non_null(f);
    *len = fread(buf, 1, 65536, f);
    fclose(f);
    return buf;
}

static void inspect(const struct lds *l, struct lds_check *c)
{
    struct lds_dg dgs[] = {
        { 1, l->file[LDS_DG1].data, l->file[LDS_DG1].len },
        { 11, l->file[LDS_DG11].data, l->file[LDS_DG11].len },
    };

    assert_int_equal(lds_check(l->file[LDS_SOD].data, l->file[LDS_SOD].len, dgs, 2, csca, c), 0);
}

static void personalise_and_read_back(const char *proto)
{
    struct holder h;
    char serial[10], status[256];
    struct encoder *enc;
    struct perso_result res;
    struct lds card, rec;
    struct lds_check chk;
    uint16_t sw = 0;

    new_holder(&h, serial);
    enc = insert_and_connect(serial, KEY_HEX, proto);
    assert_int_equal(encoder_card(enc)->protocol, proto && !strcmp(proto, "t0") ? 0 : 1);
    assert_int_equal(personalise(enc, &h, ds, key, NULL, &res), 0);
    print_message("personalised %s over T=%u%s: %lu APDUs\n", serial, encoder_card(enc)->protocol,
                  encoder_card(enc)->extended ? " extended" : "", res.apdus);
    card_status(status, sizeof(status));
    assert_non_null(strstr(status, "state=locked"));

    /* 1. Through PC/SC, in the same session. */
    assert_int_equal(card_read_lds(enc, &card, &sw), 0);
    inspect(&card, &chk);
    assert_string_equal(chk.error, "");
    assert_true(chk.signature_valid);
    assert_true(chk.signer_trusted);
    assert_true(chk.hashes_match);
    assert_int_equal(chk.dg_listed, 2);
    assert_memory_equal(card.file[LDS_DG1].data + 5, "IDSAU", 5);
    assert_memory_equal(card.file[LDS_DG1].data + 10, serial, 9);

    /* After the lock, writes answer 69 85. */
    {
        uint8_t b = 0;
        struct apdu upd = { .ins = 0xD6, .data = &b, .lc = 1 };
        struct apdu_resp rs = { 0 };

        assert_int_equal(encoder_transmit(enc, &upd, &rs), 0);
        assert_int_equal(rs.sw, 0x6985);
    }

    /* 2. From the emulator's own record: byte for byte the same. */
    memset(&rec, 0, sizeof(rec));
    for (int i = 0; i < LDS_NFILES; i++) {
        rec.file[i].data = record(serial, card.file[i].fid, &rec.file[i].len);
        assert_int_equal(rec.file[i].len, card.file[i].len);
        assert_memory_equal(rec.file[i].data, card.file[i].data, card.file[i].len);
    }
    inspect(&rec, &chk);
    assert_true(chk.signature_valid && chk.signer_trusted && chk.hashes_match);
    lds_free(&rec);
    lds_free(&card);
    encoder_close(enc);

    /* 3. The operator tool, on a new session (exit status 0 = consistent). */
    {
        char other[300];
        char *argv[] = { "read", "--trust", csca, "--timeout", "3000", (char *)pcsc_env_reader(env),
                         NULL };

        assert_int_equal(cli_card_read(6, argv), 0);
        /* Signed, but not by anyone the unrelated CA vouches for. */
        snprintf(other, sizeof(other), "%s/other.pem", pki);
        argv[2] = other;
        assert_int_equal(cli_card_read(6, argv), 1);
    }
    assert_int_equal(pcsc_env_card(env, NULL, 0, "remove"), 0);
}

static void good_card_t1(void **state)
{
    (void)state;
    personalise_and_read_back(NULL);
}

static void good_card_t0(void **state)
{
    (void)state;
    personalise_and_read_back("t0");
}

static void good_card_short_apdus(void **state)
{
    struct holder h;
    char serial[10];
    struct encoder *enc = NULL;
    struct perso_result res;

    (void)state;
    new_holder(&h, serial);
    assert_int_equal(pcsc_env_card(env, NULL, 0, "insert %s %s", serial, KEY_HEX), 0);
    assert_int_equal(
        encoder_open(&encoder_pcsc_ops, pcsc_env_reader(env), ENCODER_SHORT_APDUS, &enc), 0);
    assert_int_equal(encoder_wait_card(enc, 5000), 0);
    assert_int_equal(encoder_connect(enc), 0);
    assert_false(encoder_card(enc)->extended);
    assert_int_equal(personalise(enc, &h, ds, key, NULL, &res), 0);
    print_message("personalised %s with short APDUs: %lu APDUs\n", serial, res.apdus);
    remove_card(enc);
}

/* A wrong transport key: one try spent per attempt, the last never. */
static void wrong_transport_key(void **state)
{
    struct holder h;
    char serial[10], status[256];
    struct perso_result res;

    (void)state;
    new_holder(&h, serial);
    for (int attempt = 0; attempt < 3; attempt++) {
        struct encoder *enc = insert_and_connect(serial, "0000000000000000", NULL);
        int r = personalise(enc, &h, ds, key, NULL, &res);

        print_message("attempt %d: %s\n", attempt + 1, res.reason);
        if (attempt < 2) {
            assert_int_equal(r, -ENCODER_E_STATUS);
            assert_string_equal(res.step, "verify_transport_key");
            assert_int_equal(res.sw, 0x63C0 | (2 - attempt));
        } else {
            assert_int_equal(r, -EACCES);
            assert_string_equal(res.step, "read_transport_key_tries");
            assert_int_equal(res.tries_left, 1);
        }
        card_status(status, sizeof(status));
        assert_non_null(strstr(status, attempt == 0 ? "tries=2" : "tries=1"));
        assert_non_null(strstr(status, "state=blank"));
        remove_card(enc);
    }
}

struct fault_case {
    const char *spec;
    const char *step;
    uint16_t sw;
    int err;
};

/* Positions in the extended-length sequence: 1 SELECT AID, 2 tries,
 * 3 VERIFY, then per file CREATE, SELECT, UPDATE, READ (4..19), 20 PUT DATA
 * BAC, 21 lock. */
static const struct fault_case faults[] = {
    { "status:1:6A82", "select_application", 0x6A82, -ENCODER_E_STATUS },
    { "status:2:6D00", "read_transport_key_tries", 0x6D00, -ENCODER_E_STATUS },
    { "status:3:6982", "verify_transport_key", 0x6982, -ENCODER_E_STATUS },
    { "status:4:6A84", "create_file", 0x6A84, -ENCODER_E_STATUS },
    { "status:9:6A82", "select_file", 0x6A82, -ENCODER_E_STATUS },
    { "status:10:6B00", "update_binary", 0x6B00, -ENCODER_E_STATUS },
    { "status:15:6F00", "read_binary", 0x6F00, -ENCODER_E_STATUS },
    { "status:20:6985", "put_data_bac", 0x6985, -ENCODER_E_STATUS },
    { "status:21:6D00", "lock", 0x6D00, -ENCODER_E_STATUS },
    { "memory_full", "create_file", 0x6A84, -ENCODER_E_STATUS },
    { "remove:6", "update_binary", 0, -ENODEV },
    { "remove:18", "update_binary", 0, -ENODEV },
    { "remove:21", "lock", 0, -ENODEV },
};

static void injected_faults(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
        const struct fault_case *fc = &faults[i];
        struct holder h;
        char serial[10], status[256];
        struct encoder *enc;
        struct perso_result res;
        int r;

        new_holder(&h, serial);
        assert_int_equal(pcsc_env_card(env, NULL, 0, "fault %s", fc->spec), 0);
        enc = insert_and_connect(serial, KEY_HEX, NULL);
        r = personalise(enc, &h, ds, key, NULL, &res);
        print_message("fault %-15s -> %s\n", fc->spec, res.reason);
        assert_int_equal(r, fc->err);
        assert_int_equal(res.err, fc->err);
        assert_string_equal(res.step, fc->step);
        assert_int_equal(res.sw, fc->sw);
        card_status(status, sizeof(status));
        assert_null(strstr(status, "state=locked"));
        if (fc->err == -ENODEV)
            assert_non_null(strstr(status, "ok empty"));
        encoder_close(enc);
        assert_int_equal(pcsc_env_card(env, NULL, 0, "remove"), 0);
        assert_int_equal(pcsc_env_card(env, NULL, 0, "fault none"), 0);
    }
    /* The reader is not stuck after all that: a good card goes through. */
    personalise_and_read_back(NULL);
}

static void no_card(void **state)
{
    struct encoder *enc = NULL;
    struct apdu sel = { .ins = 0xA4, .p1 = 0x04, .p2 = 0x0C };
    struct apdu_resp rs = { 0 };

    (void)state;
    assert_int_equal(encoder_open(&encoder_pcsc_ops, pcsc_env_reader(env), 0, &enc), 0);
    assert_int_equal(encoder_wait_card(enc, 300), -ETIMEDOUT);
    assert_int_equal(encoder_connect(enc), -ENODEV);
    assert_int_equal(encoder_transmit(enc, &sel, &rs), -ENOTCONN);
    encoder_close(enc);
    assert_int_equal(encoder_open(&encoder_pcsc_ops, "No Such Reader", 0, &enc), -ENODEV);
    {
        char *argv[] = { "read", "--timeout", "200", (char *)pcsc_env_reader(env), NULL };
        char *bad[] = { "read", "--bogus", NULL };

        assert_int_equal(cli_card_read(4, argv), 3);
        assert_int_equal(cli_card_read(2, bad), 2);
    }
}

/* The operator pulls the card while the session is open. */
static void removed_during_session(void **state)
{
    struct holder h;
    char serial[10];
    struct encoder *enc;
    struct apdu sel = { .ins = 0xA4,
                        .p1 = 0x04,
                        .p2 = 0x0C,
                        .data = (const uint8_t *)"\xA0\x00\x00\x02\x47\x10\x01",
                        .lc = 7 };
    struct apdu_resp rs = { 0 };

    (void)state;
    new_holder(&h, serial);
    enc = insert_and_connect(serial, KEY_HEX, NULL);
    assert_int_equal(encoder_transmit(enc, &sel, &rs), 0);
    assert_int_equal(rs.sw, 0x9000);
    assert_int_equal(pcsc_env_card(env, NULL, 0, "remove"), 0);
    assert_int_equal(encoder_transmit(enc, &sel, &rs), -ENODEV);
    assert_int_equal(encoder_transmit(enc, &sel, &rs), -ENODEV);
    encoder_close(enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_card_t1),           cmocka_unit_test(good_card_t0),
        cmocka_unit_test(good_card_short_apdus),  cmocka_unit_test(wrong_transport_key),
        cmocka_unit_test(injected_faults),        cmocka_unit_test(no_card),
        cmocka_unit_test(removed_during_session),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
