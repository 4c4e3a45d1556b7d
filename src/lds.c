/*
 * lds.c — builds the LDS1 files and checks them as an inspection system
 * would (see lds.h). The build side uses tlv.c for every byte it writes;
 * the check side uses OpenSSL's CMS and ASN.1 parsers only, so that an
 * encoding mistake cannot hide behind the same decoder.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "lds.h"
#include "mrz.h"
#include "tlv.h"

/* DER of the object identifiers used below (tag and length included). */
static const uint8_t OID_SHA256[] = { 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                      0x65, 0x03, 0x04, 0x02, 0x01 };
static const uint8_t OID_SIGNED_DATA[] = { 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86,
                                           0xF7, 0x0D, 0x01, 0x07, 0x02 };
static const uint8_t OID_LDS_SO[] = { 0x06, 0x06, 0x67, 0x81, 0x08, 0x01, 0x01, 0x01 };
static const uint8_t OID_CONTENT_TYPE[] = { 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86,
                                            0xF7, 0x0D, 0x01, 0x09, 0x03 };
static const uint8_t OID_MESSAGE_DIGEST[] = { 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86,
                                              0xF7, 0x0D, 0x01, 0x09, 0x04 };
static const uint8_t OID_ECDSA_SHA256[] = { 0x06, 0x08, 0x2A, 0x86, 0x48,
                                            0xCE, 0x3D, 0x04, 0x03, 0x02 };
static const uint8_t OID_RSA_SHA256[] = { 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86,
                                          0xF7, 0x0D, 0x01, 0x01, 0x0B };
static const uint8_t DER_NULL[] = { 0x05, 0x00 };

#define LDS_SO_TYPE_TXT "2.23.136.1.1.1"

static bool all_digits(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Strict UTF-8 (no overlongs, no surrogates, no C0 controls). */
static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        unsigned c = *p, n, cp;

        if (c < 0x20)
            return false;
        if (c < 0x80) {
            p++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else
            return false;
        for (unsigned i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += n + 1;
    }
    return true;
}

static int holder_mrz(const struct holder *h, struct mrz_td1 *m)
{
    struct mrz_fields f = {
        .document_code = "ID",
        .issuing_state = "SAU",
        .document_number = h->document_number,
        .birth_date = h->birth_date,
        .sex = h->sex,
        .expiry_date = h->expiry_date,
        .nationality = h->nationality,
        .surname = h->surname,
        .given_names = h->given_names,
    };

    return mrz_td1_build(&f, m);
}

static int holder_valid(const struct holder *h)
{
    /* Every string must be terminated inside its array. */
    if (!memchr(h->document_number, 0, sizeof(h->document_number)) ||
        !memchr(h->surname, 0, sizeof(h->surname)) ||
        !memchr(h->given_names, 0, sizeof(h->given_names)) ||
        !memchr(h->name_ar, 0, sizeof(h->name_ar)) ||
        !memchr(h->national_id, 0, sizeof(h->national_id)) ||
        !memchr(h->birth_date, 0, sizeof(h->birth_date)) ||
        !memchr(h->expiry_date, 0, sizeof(h->expiry_date)) ||
        !memchr(h->nationality, 0, sizeof(h->nationality)))
        return -EINVAL;
    if (!all_digits(h->national_id, 10) || !h->name_ar[0] || !valid_utf8(h->name_ar))
        return -EINVAL;
    return 0;
}

static int build_com(struct tlv_buf *b)
{
    static const uint8_t tags[] = { 0x61, 0x6B }; /* DG1, DG11 */
    size_t m = tlv_begin(b, 0x60);

    tlv_put(b, 0x5F01, "0107", 4);   /* LDS 1.7 */
    tlv_put(b, 0x5F36, "040000", 6); /* Unicode 4.0.0 */
    tlv_put(b, 0x5C, tags, sizeof(tags));
    return tlv_end(b, m);
}

static int build_dg1(const struct holder *h, struct tlv_buf *b)
{
    struct mrz_td1 m;
    char all[MRZ_TD1_COLS * MRZ_TD1_ROWS];
    size_t mark;
    int r = holder_mrz(h, &m);

    if (r)
        return r;
    for (int i = 0; i < MRZ_TD1_ROWS; i++)
        memcpy(all + i * MRZ_TD1_COLS, m.line[i], MRZ_TD1_COLS);
    mark = tlv_begin(b, 0x61);
    tlv_put(b, 0x5F1F, all, sizeof(all));
    return tlv_end(b, mark);
}

static int build_dg11(const struct holder *h, struct tlv_buf *b)
{
    static const uint8_t tags[] = { 0x5F, 0x0E, 0x5F, 0x10 };
    size_t m = tlv_begin(b, 0x6B);

    tlv_put(b, 0x5C, tags, sizeof(tags));
    tlv_put(b, 0x5F0E, h->name_ar, strlen(h->name_ar));
    tlv_put(b, 0x5F10, h->national_id, strlen(h->national_id));
    return tlv_end(b, m);
}

/* LDSSecurityObject ::= SEQUENCE { version INTEGER (0), hashAlgorithm
 * AlgorithmIdentifier, dataGroupHashValues SEQUENCE OF DataGroupHash } */
static int build_lds_so(const struct lds *l, struct tlv_buf *b)
{
    size_t so = tlv_begin(b, 0x30), alg, list;

    tlv_put_uint(b, 0);
    alg = tlv_begin(b, 0x30);
    tlv_put_raw(b, OID_SHA256, sizeof(OID_SHA256));
    tlv_end(b, alg);
    list = tlv_begin(b, 0x30);
    for (int i = 0; i < LDS_NFILES; i++) {
        uint8_t md[32];
        size_t one;

        if (!l->file[i].dg)
            continue;
        if (!EVP_Digest(l->file[i].data, l->file[i].len, md, NULL, EVP_sha256(), NULL))
            return -ENOMEM;
        one = tlv_begin(b, 0x30);
        tlv_put_uint(b, (uint64_t)l->file[i].dg);
        tlv_put(b, 0x04, md, sizeof(md));
        tlv_end(b, one);
    }
    tlv_end(b, list);
    return tlv_end(b, so);
}

/* signedAttrs in DER: a SET (sorted by encoding: contentType's attribute is
 * shorter, so it comes first) of contentType and messageDigest. 'tag' is
 * 0x31 for the bytes that get signed, 0xA0 for the copy in SignerInfo. */
static void put_signed_attrs(struct tlv_buf *b, uint32_t tag, const uint8_t md[32])
{
    size_t set = tlv_begin(b, tag), a, v;

    a = tlv_begin(b, 0x30);
    tlv_put_raw(b, OID_CONTENT_TYPE, sizeof(OID_CONTENT_TYPE));
    v = tlv_begin(b, 0x31);
    tlv_put_raw(b, OID_LDS_SO, sizeof(OID_LDS_SO));
    tlv_end(b, v);
    tlv_end(b, a);
    a = tlv_begin(b, 0x30);
    tlv_put_raw(b, OID_MESSAGE_DIGEST, sizeof(OID_MESSAGE_DIGEST));
    v = tlv_begin(b, 0x31);
    tlv_put(b, 0x04, md, 32);
    tlv_end(b, v);
    tlv_end(b, a);
    tlv_end(b, set);
}

/* IssuerAndSerialNumber of the DS certificate, DER, for the SignerInfo. */
static int issuer_and_serial(const uint8_t *cert_der, size_t cert_len, struct tlv_buf *b)
{
    const unsigned char *p = cert_der;
    X509 *cert = d2i_X509(NULL, &p, (long)cert_len);
    unsigned char *name = NULL, *serial = NULL;
    int nl, sl, r = -EINVAL;
    size_t m;

    if (!cert)
        goto out;
    nl = i2d_X509_NAME(X509_get_issuer_name(cert), &name);
    sl = i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), &serial);
    if (nl <= 0 || sl <= 0)
        goto out_free;
    m = tlv_begin(b, 0x30);
    tlv_put_raw(b, name, (size_t)nl);
    tlv_put_raw(b, serial, (size_t)sl);
    r = tlv_end(b, m);
out_free:
    OPENSSL_free(name);
    OPENSSL_free(serial);
    X509_free(cert);
out:
    ERR_clear_error();
    return r;
}

/* SignerInfos: SET { SignerInfo version 1, identified by the signer's
 * issuer and serial number, SHA-256, the signed attributes over md, and
 * the signature sig }. */
static int put_signer_infos(struct tlv_buf *b, const uint8_t *cert, size_t cert_len,
                            const uint8_t md[32], enum signer_alg alg, const uint8_t *sig,
                            size_t sig_len)
{
    size_t sis = tlv_begin(b, 0x31);
    size_t si = tlv_begin(b, 0x30);
    tlv_put_uint(b, 1);
    int r = issuer_and_serial(cert, cert_len, b);
    if (r)
        return r;
    size_t a = tlv_begin(b, 0x30);
    tlv_put_raw(b, OID_SHA256, sizeof(OID_SHA256));
    tlv_end(b, a);
    put_signed_attrs(b, 0xA0, md);
    a = tlv_begin(b, 0x30);
    if (alg == SIGNER_ECDSA_SHA256) {
        tlv_put_raw(b, OID_ECDSA_SHA256, sizeof(OID_ECDSA_SHA256));
    } else {
        tlv_put_raw(b, OID_RSA_SHA256, sizeof(OID_RSA_SHA256));
        tlv_put_raw(b, DER_NULL, sizeof(DER_NULL));
    }
    tlv_end(b, a);
    tlv_put(b, 0x04, sig, sig_len);
    tlv_end(b, si);
    tlv_end(b, sis);
    return 0;
}

/* EF.SOD: 77 { ContentInfo { signedData, [0] SignedData } } with
 * SignedData version 3 (the eContentType is not id-data), one SignerInfo
 * version 1 identified by issuer and serial number (RFC 5652 §5). */
static int build_sod(const struct lds *l, struct signer *s, struct tlv_buf *b)
{
    struct tlv_buf so, attrs;
    uint8_t md[32], sig[SIGNER_SIG_MAX];
    size_t sig_len = sizeof(sig);
    const uint8_t *cert = NULL;
    size_t cert_len = 0;
    enum signer_alg alg;
    size_t m77, ci, ex, sd, set, eci, ec, certs, a;
    int r;

    tlv_buf_init(&so);
    tlv_buf_init(&attrs);
    r = build_lds_so(l, &so);
    if (r || so.err)
        goto out;
    r = signer_certificate(s, &cert, &cert_len);
    if (r)
        goto out;
    alg = signer_algorithm(s);
    if (alg != SIGNER_ECDSA_SHA256 && alg != SIGNER_RSA_SHA256) {
        r = -ENOTSUP;
        goto out;
    }
    if (!EVP_Digest(so.data, so.len, md, NULL, EVP_sha256(), NULL)) {
        r = -ENOMEM;
        goto out;
    }
    put_signed_attrs(&attrs, 0x31, md);
    if (attrs.err) {
        r = attrs.err;
        goto out;
    }
    r = signer_sign(s, attrs.data, attrs.len, sig, &sig_len);
    if (r)
        goto out;

    m77 = tlv_begin(b, 0x77);
    ci = tlv_begin(b, 0x30);
    tlv_put_raw(b, OID_SIGNED_DATA, sizeof(OID_SIGNED_DATA));
    ex = tlv_begin(b, 0xA0);
    sd = tlv_begin(b, 0x30);
    tlv_put_uint(b, 3);
    set = tlv_begin(b, 0x31);
    a = tlv_begin(b, 0x30);
    tlv_put_raw(b, OID_SHA256, sizeof(OID_SHA256));
    tlv_end(b, a);
    tlv_end(b, set);
    eci = tlv_begin(b, 0x30);
    tlv_put_raw(b, OID_LDS_SO, sizeof(OID_LDS_SO));
    ec = tlv_begin(b, 0xA0);
    tlv_put(b, 0x04, so.data, so.len);
    tlv_end(b, ec);
    tlv_end(b, eci);
    certs = tlv_begin(b, 0xA0);
    tlv_put_raw(b, cert, cert_len);
    tlv_end(b, certs);
    r = put_signer_infos(b, cert, cert_len, md, alg, sig, sig_len);
    if (r)
        goto out;
    tlv_end(b, sd);
    tlv_end(b, ex);
    tlv_end(b, ci);
    r = tlv_end(b, m77);
out:
    if (!r && b->err)
        r = b->err;
    OPENSSL_cleanse(sig, sizeof(sig));
    tlv_buf_free(&so);
    tlv_buf_free(&attrs);
    return r;
}

/* Moves a finished buffer into a file slot. */
static void take(struct lds_file *f, struct tlv_buf *b, uint16_t fid, int dg, const char *name)
{
    f->fid = fid;
    f->dg = dg;
    f->name = name;
    f->data = b->data;
    f->len = b->len;
    tlv_buf_init(b);
}

int lds_build(const struct holder *h, struct signer *s, struct lds *out)
{
    struct tlv_buf b;
    struct lds l;
    int r;

    if (!h || !s || !out)
        return -EINVAL;
    memset(&l, 0, sizeof(l));
    tlv_buf_init(&b);
    r = holder_valid(h);
    if (r)
        goto out_free;

    if ((r = build_com(&b)) || (r = b.err))
        goto out_free;
    take(&l.file[LDS_COM], &b, LDS_FID_COM, 0, "EF.COM");
    if ((r = build_dg1(h, &b)) || (r = b.err))
        goto out_free;
    take(&l.file[LDS_DG1], &b, LDS_FID_DG1, 1, "EF.DG1");
    if ((r = build_dg11(h, &b)) || (r = b.err))
        goto out_free;
    take(&l.file[LDS_DG11], &b, LDS_FID_DG11, 11, "EF.DG11");
    r = build_sod(&l, s, &b);
    if (r)
        goto out_free;
    take(&l.file[LDS_SOD], &b, LDS_FID_SOD, 0, "EF.SOD");
    *out = l;
    return 0;

out_free:
    tlv_buf_free(&b);
    lds_free(&l);
    return r;
}

void lds_free(struct lds *l)
{
    if (!l)
        return;
    for (int i = 0; i < LDS_NFILES; i++) {
        free(l->file[i].data);
        l->file[i].data = NULL;
        l->file[i].len = 0;
    }
}

int lds_bac_material(const struct holder *h, struct tlv_buf *out)
{
    char docno[9];
    size_t n, m;

    if (!h || !out)
        return -EINVAL;
    n = strnlen(h->document_number, sizeof(h->document_number));
    if (n == 0 || n > sizeof(docno) || !all_digits(h->birth_date, 6) ||
        !all_digits(h->expiry_date, 6))
        return -EINVAL;
    memset(docno, '<', sizeof(docno));
    memcpy(docno, h->document_number, n);
    m = tlv_begin(out, 0x62);
    tlv_put(out, 0x04, docno, sizeof(docno));
    tlv_put(out, 0x04, h->birth_date, 6);
    tlv_put(out, 0x04, h->expiry_date, 6);
    tlv_end(out, m);
    return out->err;
}

/* ---- inspection side: OpenSSL parsers only ---- */

static void check_fail(struct lds_check *c, const char *fmt, const char *what)
{
    if (!c->error[0])
        snprintf(c->error, sizeof(c->error), fmt, what);
}

/* Reads the LDSSecurityObject with OpenSSL's generic DER decoder and
 * compares each listed hash with the given data groups. */
static void check_hashes(const ASN1_OCTET_STRING *content, const struct lds_dg *dgs, size_t ndg,
                         struct lds_check *c)
{
    const unsigned char *p = ASN1_STRING_get0_data(content);
    STACK_OF(ASN1_TYPE) *so = d2i_ASN1_SEQUENCE_ANY(NULL, &p, ASN1_STRING_length(content));
    STACK_OF(ASN1_TYPE) *alg = NULL, *list = NULL;
    bool seen[32] = { false };

    c->hashes_match = false;
    if (!so || sk_ASN1_TYPE_num(so) < 3 || sk_ASN1_TYPE_value(so, 1)->type != V_ASN1_SEQUENCE ||
        sk_ASN1_TYPE_value(so, 2)->type != V_ASN1_SEQUENCE) {
        check_fail(c, "%s", "LDSSecurityObject is malformed");
        goto out;
    }
    p = sk_ASN1_TYPE_value(so, 1)->value.sequence->data;
    alg = d2i_ASN1_SEQUENCE_ANY(NULL, &p, sk_ASN1_TYPE_value(so, 1)->value.sequence->length);
    if (!alg || sk_ASN1_TYPE_num(alg) < 1 || sk_ASN1_TYPE_value(alg, 0)->type != V_ASN1_OBJECT ||
        OBJ_obj2nid(sk_ASN1_TYPE_value(alg, 0)->value.object) != NID_sha256) {
        check_fail(c, "%s", "LDSSecurityObject hash algorithm is not SHA-256");
        goto out;
    }
    p = sk_ASN1_TYPE_value(so, 2)->value.sequence->data;
    list = d2i_ASN1_SEQUENCE_ANY(NULL, &p, sk_ASN1_TYPE_value(so, 2)->value.sequence->length);
    if (!list) {
        check_fail(c, "%s", "dataGroupHashValues is malformed");
        goto out;
    }
    c->hashes_match = true;
    c->dg_listed = sk_ASN1_TYPE_num(list);
    for (int i = 0; i < sk_ASN1_TYPE_num(list); i++) {
        ASN1_TYPE *t = sk_ASN1_TYPE_value(list, i);
        STACK_OF(ASN1_TYPE) *one = NULL;
        long dg;
        uint8_t md[32];

        if (t->type != V_ASN1_SEQUENCE)
            goto bad;
        p = t->value.sequence->data;
        one = d2i_ASN1_SEQUENCE_ANY(NULL, &p, t->value.sequence->length);
        if (!one || sk_ASN1_TYPE_num(one) != 2 ||
            sk_ASN1_TYPE_value(one, 0)->type != V_ASN1_INTEGER ||
            sk_ASN1_TYPE_value(one, 1)->type != V_ASN1_OCTET_STRING) {
            sk_ASN1_TYPE_pop_free(one, ASN1_TYPE_free);
            goto bad;
        }
        dg = ASN1_INTEGER_get(sk_ASN1_TYPE_value(one, 0)->value.integer);
        for (size_t k = 0; k < ndg; k++) {
            const ASN1_OCTET_STRING *h = sk_ASN1_TYPE_value(one, 1)->value.octet_string;

            if (dgs[k].dg != dg)
                continue;
            if (dg > 0 && dg < 32)
                seen[dg] = true;
            if (!EVP_Digest(dgs[k].data, dgs[k].len, md, NULL, EVP_sha256(), NULL) ||
                ASN1_STRING_length(h) != 32 || memcmp(md, ASN1_STRING_get0_data(h), 32)) {
                c->hashes_match = false;
                if (!c->dg_mismatch)
                    c->dg_mismatch = (int)dg;
            }
        }
        sk_ASN1_TYPE_pop_free(one, ASN1_TYPE_free);
        continue;
    bad:
        c->hashes_match = false;
        check_fail(c, "%s", "a DataGroupHash is malformed");
    }
    /* A data group read from the card but absent from the SOD is not covered. */
    for (size_t k = 0; k < ndg; k++) {
        if (dgs[k].dg <= 0 || dgs[k].dg >= 32 || !seen[dgs[k].dg]) {
            c->hashes_match = false;
            if (!c->dg_mismatch)
                c->dg_mismatch = dgs[k].dg;
        }
    }
    if (!c->hashes_match)
        check_fail(c, "%s", "data group hash differs from EF.SOD");
out:
    sk_ASN1_TYPE_pop_free(list, ASN1_TYPE_free);
    sk_ASN1_TYPE_pop_free(alg, ASN1_TYPE_free);
    sk_ASN1_TYPE_pop_free(so, ASN1_TYPE_free);
}

static X509_STORE *trust_store(const char *pem)
{
    X509_STORE *st = X509_STORE_new();
    BIO *bio = NULL;
    X509 *x;
    int n = 0;

    if (!st)
        return NULL;
    bio = BIO_new_file(pem, "r");
    if (!bio)
        goto fail;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        X509_STORE_add_cert(st, x);
        X509_free(x);
        n++;
    }
    BIO_free(bio);
    if (!n)
        goto fail;
    /* The trusted certificate may be the DS itself, not a root. */
    X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
    ERR_clear_error();
    return st;
fail:
    X509_STORE_free(st);
    ERR_clear_error();
    return NULL;
}

int lds_check(const uint8_t *sod, size_t sod_len, const struct lds_dg *dgs, size_t ndg,
              const char *trust_pem, struct lds_check *out)
{
    const unsigned char *p;
    long inner_len;
    int tag, cls, inf;
    CMS_ContentInfo *cms = NULL;
    STACK_OF(X509) *signers = NULL;
    X509_STORE *store = NULL;
    ASN1_OCTET_STRING **content;
    BIO *bout = NULL;

    if (!sod || !out || (ndg && !dgs))
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    /* Unwrap the application tag 77 with OpenSSL's own header parser. */
    p = sod;
    inf = ASN1_get_object(&p, &inner_len, &tag, &cls, (long)sod_len);
    if ((inf & 0x80) || tag != 23 || cls != V_ASN1_APPLICATION ||
        inner_len > (long)(sod_len - (size_t)(p - sod))) {
        check_fail(out, "%s", "EF.SOD does not start with tag 77");
        goto out;
    }
    cms = d2i_CMS_ContentInfo(NULL, &p, inner_len);
    if (!cms || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
        check_fail(out, "%s", "EF.SOD is not CMS SignedData");
        goto out;
    }
    out->sod_ok = true;
    {
        char oid[64];

        OBJ_obj2txt(oid, sizeof(oid), CMS_get0_eContentType(cms), 1);
        out->content_type_ok = !strcmp(oid, LDS_SO_TYPE_TXT);
        if (!out->content_type_ok)
            check_fail(out, "eContentType is %s, not 2.23.136.1.1.1", oid);
    }
    bout = BIO_new(BIO_s_null());
    out->signature_valid = bout && CMS_verify(cms, NULL, NULL, NULL, bout,
                                              CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) == 1;
    if (!out->signature_valid)
        check_fail(out, "%s", "SOD signature does not verify");
    signers = CMS_get0_signers(cms);
    if (signers && sk_X509_num(signers) > 0)
        X509_NAME_oneline(X509_get_subject_name(sk_X509_value(signers, 0)), out->signer,
                          sizeof(out->signer));
    if (trust_pem) {
        store = trust_store(trust_pem);
        if (!store)
            check_fail(out, "cannot read trusted certificate %s", trust_pem);
        else
            out->signer_trusted =
                out->signature_valid && CMS_verify(cms, NULL, store, NULL, bout, CMS_BINARY) == 1;
        if (store && !out->signer_trusted)
            check_fail(out, "%s", "DS certificate does not chain to the trusted certificate");
    }
    content = CMS_get0_content(cms);
    if (!content || !*content)
        check_fail(out, "%s", "EF.SOD has no LDSSecurityObject");
    else
        check_hashes(*content, dgs, ndg, out);
out:
    sk_X509_free(signers);
    X509_STORE_free(store);
    BIO_free(bout);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return 0;
}
