/* Unit tests for lds.c and signer_file.c: the LDS files, the SOD built with
 * tlv.c and checked with OpenSSL's parsers, and the key file rules.
 * Keys are generated at run time by tests/make-test-pki.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "lds.h"
#include "signer.h"
#include "tlv.h"

#include "alloc_fail.h"

static char pki[256];

static const struct holder holder = {
    .document_number = "A12345678",
    .surname = "Al-Qahtani",
    .given_names = "Mohammed Abdullah",
    .name_ar =
        "\xd9\x85\xd8\xad\xd9\x85\xd8\xaf \xd8\xb9\xd8\xa8\xd8\xaf\xd8\xa7\xd9\x84\xd9\x84\xd9\x87 "
        "\xd8\xa7\xd9\x84\xd9\x82\xd8\xad\xd8\xb7\xd8\xa7\xd9\x86\xd9\x8a",
    .national_id = "1012345678",
    .birth_date = "900101",
    .sex = 'M',
    .expiry_date = "310101",
    .nationality = "SAU",
};

static void path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", pki, name);
}

static int setup_pki(void **state)
{
    const char *root = getenv("CARDD_ROOT");
    char cmd[600];

    (void)state;
    snprintf(pki, sizeof(pki), "/tmp/test-lds.XXXXXX");
    if (!mkdtemp(pki))
        return -1;
    snprintf(cmd, sizeof(cmd), "%s/tests/make-test-pki.sh %s", root ? root : ".", pki);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown_pki(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", pki);
    return system(cmd) == 0 ? 0 : -1;
}

static struct signer *open_ds(const char *key, const char *cert)
{
    char k[300], c[300];
    struct signer *s = NULL;

    path(k, sizeof(k), key);
    path(c, sizeof(c), cert);
    assert_int_equal(signer_open(&signer_file_ops,
                                 &(struct signer_file_config){ .key_path = k, .cert_path = c }, &s),
                     0);
    return s;
}

static void files_have_the_holder(void **state)
{
    struct signer *s = open_ds("ds.key", "ds.pem");
    struct lds l;
    struct tlv t, in;

    (void)state;
    assert_int_equal(lds_build(&holder, s, &l), 0);
    assert_int_equal(l.file[LDS_COM].fid, 0x011E);
    assert_int_equal(l.file[LDS_DG1].fid, 0x0101);
    assert_int_equal(l.file[LDS_DG11].fid, 0x010B);
    assert_int_equal(l.file[LDS_SOD].fid, 0x011D);

    assert_int_equal(tlv_parse(l.file[LDS_COM].data, l.file[LDS_COM].len, &t), 0);
    assert_int_equal(t.tag, 0x60);
    assert_int_equal(tlv_find(t.value, t.len, 0x5C, &in), 0);
    assert_int_equal(in.len, 2);
    assert_memory_equal(in.value, "\x61\x6B", 2);

    assert_int_equal(tlv_parse(l.file[LDS_DG1].data, l.file[LDS_DG1].len, &t), 0);
    assert_int_equal(t.tag, 0x61);
    assert_int_equal(t.size, l.file[LDS_DG1].len);
    assert_int_equal(tlv_find(t.value, t.len, 0x5F1F, &in), 0);
    assert_int_equal(in.len, 90);
    assert_memory_equal(in.value, "IDSAUA123456784", 15);
    assert_memory_equal(in.value + 60, "AL<QAHTANI<<MOHAMMED<ABDULLAH<", 30);

    assert_int_equal(tlv_parse(l.file[LDS_DG11].data, l.file[LDS_DG11].len, &t), 0);
    assert_int_equal(t.tag, 0x6B);
    assert_int_equal(tlv_find(t.value, t.len, 0x5F0E, &in), 0);
    assert_int_equal(in.len, strlen(holder.name_ar));
    assert_memory_equal(in.value, holder.name_ar, in.len);
    assert_int_equal(tlv_find(t.value, t.len, 0x5F10, &in), 0);
    assert_memory_equal(in.value, "1012345678", 10);

    assert_int_equal(l.file[LDS_SOD].data[0], 0x77);
    lds_free(&l);
    lds_free(&l);
    signer_close(s);
}

static void check(const struct lds *l, const char *trust, struct lds_check *c)
{
    struct lds_dg dgs[2] = {
        { 1, l->file[LDS_DG1].data, l->file[LDS_DG1].len },
        { 11, l->file[LDS_DG11].data, l->file[LDS_DG11].len },
    };
    char t[300];

    if (trust)
        path(t, sizeof(t), trust);
    assert_int_equal(
        lds_check(l->file[LDS_SOD].data, l->file[LDS_SOD].len, dgs, 2, trust ? t : NULL, c), 0);
}

static void sod_verifies_as_inspection_system(void **state)
{
    const char *keys[][2] = { { "ds.key", "ds.pem" }, { "dsrsa.key", "dsrsa.pem" } };

    (void)state;
    for (int k = 0; k < 2; k++) {
        struct signer *s = open_ds(keys[k][0], keys[k][1]);
        struct lds l;
        struct lds_check c;

        assert_int_equal(lds_build(&holder, s, &l), 0);
        check(&l, "csca.pem", &c);
        assert_string_equal(c.error, "");
        assert_true(c.sod_ok);
        assert_true(c.content_type_ok);
        assert_true(c.signature_valid);
        assert_true(c.signer_trusted);
        assert_true(c.hashes_match);
        assert_int_equal(c.dg_listed, 2);
        assert_non_null(strstr(c.signer, "Document Signer"));
        /* The DS certificate itself may be the trust anchor. */
        check(&l, keys[k][1], &c);
        assert_true(c.signer_trusted);
        /* An unrelated CA is not. */
        check(&l, "other.pem", &c);
        assert_true(c.signature_valid);
        assert_false(c.signer_trusted);
        lds_free(&l);
        signer_close(s);
    }
}

static void one_wrong_byte_is_caught(void **state)
{
    struct signer *s = open_ds("ds.key", "ds.pem");
    struct lds l;
    struct lds_check c;

    (void)state;
    assert_int_equal(lds_build(&holder, s, &l), 0);
    l.file[LDS_DG11].data[l.file[LDS_DG11].len - 1] ^= 1;
    check(&l, NULL, &c);
    assert_true(c.signature_valid);
    assert_false(c.hashes_match);
    assert_int_equal(c.dg_mismatch, 11);
    l.file[LDS_DG11].data[l.file[LDS_DG11].len - 1] ^= 1;
    /* Changing the DG1 hash inside the SOD breaks the signature too. */
    {
        uint8_t md[32];
        uint8_t *sod = l.file[LDS_SOD].data, *hit = NULL;

        assert_non_null(
            EVP_Digest(l.file[LDS_DG1].data, l.file[LDS_DG1].len, md, NULL, EVP_sha256(), NULL)
                ? md
                : NULL);
        for (size_t i = 0; i + 32 <= l.file[LDS_SOD].len && !hit; i++)
            if (!memcmp(sod + i, md, 32))
                hit = sod + i;
        assert_non_null(hit);
        hit[5] ^= 0x01;
        check(&l, NULL, &c);
        assert_true(c.sod_ok);
        assert_false(c.signature_valid);
        assert_false(c.hashes_match);
        assert_int_equal(c.dg_mismatch, 1);
    }
    lds_free(&l);
    signer_close(s);
}

static void holder_is_validated(void **state)
{
    struct signer *s = open_ds("ds.key", "ds.pem");
    struct holder h;
    struct lds l;

    (void)state;
    h = holder;
    strcpy(h.national_id, "10123X5678");
    assert_int_equal(lds_build(&h, s, &l), -EINVAL);
    h = holder;
    strcpy(h.name_ar, "\xd9"); /* cut UTF-8 sequence */
    assert_int_equal(lds_build(&h, s, &l), -EINVAL);
    h = holder;
    strcpy(h.name_ar, "\xc0\xaf"); /* overlong '/' */
    assert_int_equal(lds_build(&h, s, &l), -EINVAL);
    h = holder;
    strcpy(h.surname, "\xd9\x85"); /* Arabic in the Latin field */
    assert_int_equal(lds_build(&h, s, &l), -EINVAL);
    h = holder;
    memset(h.document_number, 'A', sizeof(h.document_number)); /* not terminated */
    assert_int_equal(lds_build(&h, s, &l), -EINVAL);
    signer_close(s);
}

static void bac_material(void **state)
{
    struct tlv_buf b;
    static const uint8_t want[] = { 0x62, 0x1B, 0x04, 0x09, 'A',  '1', '2', '3', '4', '5',
                                    '6',  '7',  '8',  0x04, 0x06, '9', '0', '0', '1', '0',
                                    '1',  0x04, 0x06, '3',  '1',  '0', '1', '0', '1' };

    (void)state;
    tlv_buf_init(&b);
    assert_int_equal(lds_bac_material(&holder, &b), 0);
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    tlv_buf_free(&b);
}

static void key_file_rules(void **state)
{
    char k[300], c[300], other[300];
    struct signer *s = NULL;

    (void)state;
    path(k, sizeof(k), "ds.key");
    path(c, sizeof(c), "ds.pem");
    path(other, sizeof(other), "other.pem");
    assert_int_equal(chmod(k, 0640), 0);
    assert_int_equal(signer_open(&signer_file_ops,
                                 &(struct signer_file_config){ .key_path = k, .cert_path = c }, &s),
                     -EPERM);
    assert_null(s);
    assert_int_equal(chmod(k, 0604), 0);
    assert_int_equal(signer_open(&signer_file_ops,
                                 &(struct signer_file_config){ .key_path = k, .cert_path = c }, &s),
                     -EPERM);
    assert_int_equal(chmod(k, 0400), 0);
    assert_int_equal(signer_open(&signer_file_ops,
                                 &(struct signer_file_config){ .key_path = k, .cert_path = c }, &s),
                     0);
    signer_close(s);
    s = NULL;
    assert_int_equal(chmod(k, 0600), 0);
    /* Key and certificate that do not belong together. */
    assert_int_equal(signer_open(&signer_file_ops,
                                 &(struct signer_file_config){ .key_path = k, .cert_path = other },
                                 &s),
                     -EINVAL);
    assert_int_equal(signer_open(&signer_file_ops,
                                 &(struct signer_file_config){ .key_path = "/nonexistent/ds.key",
                                                               .cert_path = c },
                                 &s),
                     -ENOENT);
    /* A certificate is not a key. */
    assert_int_equal(chmod(c, 0600), 0);
    assert_int_equal(signer_open(&signer_file_ops,
                                 &(struct signer_file_config){ .key_path = c, .cert_path = c }, &s),
                     -EINVAL);
    assert_int_equal(chmod(c, 0644), 0);
    signer_close(NULL);
}

/* Every allocation of lds_build failing in turn: a clean -ENOMEM, nothing
 * leaked (ASan / valgrind check that), and success once none fails. */
static void every_allocation_fails(void **state)
{
    struct signer *s = open_ds("ds.key", "ds.pem");
    struct lds l;
    long n;

    (void)state;
    for (n = 0; n < 1000; n++) {
        int r;

        alloc_countdown = n;
        r = lds_build(&holder, s, &l);
        alloc_countdown = -1;
        if (r == 0)
            break;
        assert_int_equal(r, -ENOMEM);
    }
    assert_true(n > 3 && n < 1000);
    lds_free(&l);
    signer_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(files_have_the_holder),
        cmocka_unit_test(sod_verifies_as_inspection_system),
        cmocka_unit_test(one_wrong_byte_is_caught),
        cmocka_unit_test(holder_is_validated),
        cmocka_unit_test(bac_material),
        cmocka_unit_test(key_file_rules),
        cmocka_unit_test(every_allocation_fails),
    };
    return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
