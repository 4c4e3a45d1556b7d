/*
 * p11.c — a PKCS#11 token through a module loaded at run time (see p11.h).
 * The header is p11-kit's pkcs11.h; nothing of p11-kit is linked.
 */
#include "p11.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include <p11-kit/pkcs11.h>

/* The module, shared by every token user of the process. */
struct p11_fns {
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    char path[256];
    int refs;
    unsigned long generation; /* counts resets: sessions of an older one are gone */
    struct timespec last_reset;
};

/* mod_lock guards loading and unloading; use_lock is held shared around
 * every call into the module and exclusively to reset it. */
static pthread_mutex_t mod_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t use_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct p11_fns mod;

#define RESET_INTERVAL_S 2

/* Enters a call into the module; a session opened before the last reset
 * no longer exists (its handle may name another thread's session now). */
static void enter(struct p11_token *t)
{
    pthread_rwlock_rdlock(&use_lock);
    if (t->session && t->generation != mod.generation)
        t->session = 0;
}

static void leave(void)
{
    pthread_rwlock_unlock(&use_lock);
}

/* Some modules (SoftHSM2 among them) see a token that came back only after
 * C_Finalize and C_Initialize. That ends every session of the process, so
 * it is done at most every RESET_INTERVAL_S, when a token is missing. */
static void module_reset(void)
{
    CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
    struct timespec now;

    pthread_rwlock_wrlock(&use_lock);
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (mod.f && now.tv_sec - mod.last_reset.tv_sec >= RESET_INTERVAL_S) {
        mod.f->C_Finalize(NULL);
        mod.f->C_Initialize(&args);
        mod.generation++;
        mod.last_reset = now;
    }
    pthread_rwlock_unlock(&use_lock);
}

#define F(t) ((t)->fns->f)

/* CKR_* to the errno values p11.h promises. */
static int ck_err(CK_RV rv)
{
    switch (rv) {
    case CKR_OK:
        return 0;
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_SLOT_ID_INVALID:
    case CKR_DEVICE_ERROR:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
        return -ENODEV;
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
        return -EACCES;
    case CKR_BUFFER_TOO_SMALL:
        return -EMSGSIZE;
    case CKR_HOST_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

int p11_pin_read(const char *path, char *pin, size_t size, size_t *len)
{
    struct stat st;
    ssize_t n;
    int fd, r = 0;

    if (!path || !path[0] || size < 2)
        return -EINVAL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? -ENOENT : -EPERM; /* ELOOP: a symbolic link */
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        r = -EPERM;
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        r = -EPERM;
        goto out;
    }
    n = read(fd, pin, size);
    if (n <= 0 || (size_t)n >= size) {
        r = -EINVAL;
        goto out;
    }
    while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r'))
        n--;
    if (n == 0 || memchr(pin, '\n', (size_t)n) || memchr(pin, '\0', (size_t)n)) {
        r = -EINVAL;
        goto out;
    }
    pin[n] = '\0';
    *len = (size_t)n;
out:
    if (r)
        OPENSSL_cleanse(pin, size);
    close(fd);
    return r;
}

static int module_get(const char *path, const struct p11_fns **out)
{
    CK_C_GetFunctionList get;
    CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
    CK_RV rv;
    int r = 0;

    if (strlen(path) >= sizeof(mod.path))
        return -EINVAL;
    pthread_mutex_lock(&mod_lock);
    if (mod.refs > 0) {
        if (strcmp(mod.path, path) != 0)
            r = -EBUSY; /* one module per process */
        else
            mod.refs++;
        goto out;
    }
    if (access(path, R_OK) != 0) {
        r = -ENOENT;
        goto out;
    }
    mod.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!mod.dl) {
        r = -EINVAL;
        goto out;
    }
    *(void **)&get = dlsym(mod.dl, "C_GetFunctionList");
    if (!get || get(&mod.f) != CKR_OK || !mod.f) {
        r = -EINVAL;
        goto out_close;
    }
    rv = mod.f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        r = -EIO;
        goto out_close;
    }
    snprintf(mod.path, sizeof(mod.path), "%s", path);
    mod.refs = 1;
    clock_gettime(CLOCK_MONOTONIC, &mod.last_reset);
    goto out;
out_close:
    dlclose(mod.dl);
    memset(&mod, 0, sizeof(mod));
out:
    if (!r)
        *out = &mod;
    pthread_mutex_unlock(&mod_lock);
    return r;
}

static void module_put(void)
{
    pthread_mutex_lock(&mod_lock);
    if (mod.refs > 0 && --mod.refs == 0) {
        mod.f->C_Finalize(NULL);
        dlclose(mod.dl);
        memset(&mod, 0, sizeof(mod));
    }
    pthread_mutex_unlock(&mod_lock);
}

int p11_token_open(struct p11_token *t, const struct p11_config *cfg)
{
    int r;

    memset(t, 0, sizeof(*t));
    if (!cfg || !cfg->module || !cfg->module[0] || !cfg->token || !cfg->token[0] ||
        strlen(cfg->token) >= sizeof(t->token) || !cfg->key_label || !cfg->key_label[0] ||
        strlen(cfg->key_label) >= sizeof(t->key_label) || strlen(cfg->module) >= sizeof(t->module))
        return -EINVAL;
    snprintf(t->module, sizeof(t->module), "%s", cfg->module);
    snprintf(t->token, sizeof(t->token), "%s", cfg->token);
    snprintf(t->key_label, sizeof(t->key_label), "%s", cfg->key_label);
    r = p11_pin_read(cfg->pin_file, t->pin, sizeof(t->pin), &t->pin_len);
    if (r)
        return r;
    return module_get(cfg->module, &t->fns);
}

/* A space-padded PKCS#11 text field as a C string. */
static void padded(const unsigned char *src, size_t n, char *dst, size_t size)
{
    while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\0'))
        n--;
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int find_slot(struct p11_token *t, CK_SLOT_ID *slot)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0;
    int r = -ENODEV;

    if (F(t)->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_OK)
        return -ENODEV;
    if (n == 0)
        return -ENODEV;
    slots = calloc(n, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    if (F(t)->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) {
        r = -EIO;
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        char label[33];

        if (F(t)->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        padded(ti.label, sizeof(ti.label), label, sizeof(label));
        if (strcmp(label, t->token) == 0) {
            *slot = slots[i];
            r = 0;
            break;
        }
    }
out:
    free(slots);
    return r;
}

static int connect_locked(struct p11_token *t)
{
    CK_SESSION_HANDLE s = 0;
    CK_SLOT_ID slot = 0;
    CK_RV rv;
    int r;

    if (t->session)
        return 0;
    r = find_slot(t, &slot);
    if (r)
        return r;
    rv = F(t)->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK)
        return ck_err(rv) == -EIO ? -ENODEV : ck_err(rv);
    rv = F(t)->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)t->pin, t->pin_len);
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        F(t)->C_CloseSession(s);
        return ck_err(rv);
    }
    t->slot = slot;
    t->session = s;
    t->generation = mod.generation;
    return 0;
}

int p11_connect(struct p11_token *t)
{
    int r;

    if (!t->fns)
        return -EINVAL;
    enter(t);
    r = connect_locked(t);
    leave();
    if (r != -ENODEV && r != -EIO)
        return r;
    module_reset();
    enter(t);
    r = connect_locked(t);
    leave();
    return r;
}

static void disconnect_locked(struct p11_token *t);

static int check_locked(struct p11_token *t)
{
    CK_SESSION_INFO si;
    CK_TOKEN_INFO ti;

    if (!t->session)
        return -ENODEV;
    /* Some modules keep a session of a token that went; asking for the
     * token's facts reaches it. */
    if (F(t)->C_GetSessionInfo(t->session, &si) != CKR_OK ||
        F(t)->C_GetTokenInfo(t->slot, &ti) != CKR_OK ||
        (si.state != CKS_RW_USER_FUNCTIONS && si.state != CKS_RO_USER_FUNCTIONS)) {
        disconnect_locked(t);
        return -ENODEV;
    }
    return 0;
}

static void disconnect_locked(struct p11_token *t)
{
    if (t->fns && t->session)
        F(t)->C_CloseSession(t->session);
    t->session = 0;
}

void p11_token_close(struct p11_token *t)
{
    if (!t)
        return;
    p11_disconnect(t);
    OPENSSL_cleanse(t->pin, sizeof(t->pin));
    t->pin_len = 0;
    if (t->fns)
        module_put();
    t->fns = NULL;
}

static int get_bool(struct p11_token *t, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, bool *out)
{
    CK_BBOOL v = CK_FALSE;
    CK_ATTRIBUTE a = { type, &v, sizeof(v) };
    CK_RV rv = F(t)->C_GetAttributeValue(t->session, h, &a, 1);

    if (rv != CKR_OK)
        return ck_err(rv);
    *out = v == CK_TRUE;
    return 0;
}

/* A variable-length attribute into a malloc'd buffer. */
static int get_bytes(struct p11_token *t, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, uint8_t **out,
                     size_t *len)
{
    CK_ATTRIBUTE a = { type, NULL, 0 };
    CK_RV rv = F(t)->C_GetAttributeValue(t->session, h, &a, 1);

    if (rv != CKR_OK)
        return ck_err(rv);
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 65536)
        return -EIO;
    a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1);
    if (!a.pValue)
        return -ENOMEM;
    rv = F(t)->C_GetAttributeValue(t->session, h, &a, 1);
    if (rv != CKR_OK) {
        free(a.pValue);
        return ck_err(rv);
    }
    *out = a.pValue;
    *len = a.ulValueLen;
    return 0;
}

static int describe_key(struct p11_token *t, CK_OBJECT_HANDLE h, struct p11_key *k)
{
    CK_KEY_TYPE kt = 0;
    CK_ATTRIBUTE a = { CKA_KEY_TYPE, &kt, sizeof(kt) };
    uint8_t *id = NULL;
    size_t id_len = 0;
    int r;

    memset(k, 0, sizeof(*k));
    k->handle = h;
    if (F(t)->C_GetAttributeValue(t->session, h, &a, 1) != CKR_OK)
        return -EIO;
    k->alg = kt == CKK_EC ? SIGNER_ECDSA_SHA256 : kt == CKK_RSA ? SIGNER_RSA_SHA256 : 0;
    r = get_bytes(t, h, CKA_ID, &id, &id_len);
    if (!r && id_len <= sizeof(k->id)) {
        memcpy(k->id, id, id_len);
        k->id_len = id_len;
    }
    free(id);
    if (r)
        return r;
    if ((r = get_bool(t, h, CKA_SENSITIVE, &k->sensitive)) ||
        (r = get_bool(t, h, CKA_EXTRACTABLE, &k->extractable)))
        return r;
    return 0;
}

/* Objects of a class with the token's key label (and id, when given). */
static int find_objects(struct p11_token *t, CK_OBJECT_CLASS cls, const uint8_t *id, size_t id_len,
                        CK_OBJECT_HANDLE *out, size_t max, size_t *n)
{
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_LABEL, t->key_label, strlen(t->key_label) },
        { CKA_ID, (void *)id, id_len },
    };
    CK_ULONG got = 0;
    CK_RV rv;

    *n = 0;
    rv = F(t)->C_FindObjectsInit(t->session, tmpl, id ? 3 : 2);
    if (rv != CKR_OK)
        return ck_err(rv);
    rv = F(t)->C_FindObjects(t->session, out, max, &got);
    F(t)->C_FindObjectsFinal(t->session);
    if (rv != CKR_OK)
        return ck_err(rv);
    *n = got;
    return 0;
}

static int find_keys_locked(struct p11_token *t, struct p11_key *keys, size_t max, size_t *n)
{
    CK_OBJECT_HANDLE h[P11_KEYS_MAX];
    size_t got = 0, k = 0;
    int r;

    *n = 0;
    if (!t->session)
        return -ENODEV;
    if (max > P11_KEYS_MAX)
        max = P11_KEYS_MAX;
    r = find_objects(t, CKO_PRIVATE_KEY, NULL, 0, h, max, &got);
    if (r)
        return r;
    for (size_t i = 0; i < got; i++) {
        r = describe_key(t, h[i], &keys[k]);
        if (r == -ENODEV)
            return r;
        if (!r && keys[k].alg)
            k++;
    }
    *n = k;
    return 0;
}

static int generate_locked(struct p11_token *t, bool rsa, struct p11_key *key)
{
    /* prime256v1's OID, DER */
    static const uint8_t p256[] = { 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07 };
    static const uint8_t f4[] = { 0x01, 0x00, 0x01 };
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = 2048;
    uint8_t id[8];
    CK_MECHANISM mech = { rsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    CK_ATTRIBUTE pub[] = {
        { CKA_TOKEN, &yes, sizeof(yes) },
        { CKA_VERIFY, &yes, sizeof(yes) },
        { CKA_LABEL, t->key_label, strlen(t->key_label) },
        { CKA_ID, id, sizeof(id) },
        rsa ? (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &bits, sizeof(bits) }
            : (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)p256, sizeof(p256) },
        { CKA_PUBLIC_EXPONENT, (void *)f4, sizeof(f4) },
    };
    CK_ATTRIBUTE priv[] = {
        { CKA_TOKEN, &yes, sizeof(yes) },
        { CKA_PRIVATE, &yes, sizeof(yes) },
        { CKA_SENSITIVE, &yes, sizeof(yes) },
        { CKA_EXTRACTABLE, &no, sizeof(no) },
        { CKA_SIGN, &yes, sizeof(yes) },
        { CKA_DECRYPT, &no, sizeof(no) },
        { CKA_LABEL, t->key_label, strlen(t->key_label) },
        { CKA_ID, id, sizeof(id) },
    };
    CK_OBJECT_HANDLE hpub = 0, hpriv = 0;
    CK_RV rv;

    if (!t->session)
        return -ENODEV;
    if (RAND_bytes(id, sizeof(id)) != 1)
        return -EIO;
    rv = F(t)->C_GenerateKeyPair(t->session, &mech, pub, rsa ? 6 : 5, priv,
                                 sizeof(priv) / sizeof(priv[0]), &hpub, &hpriv);
    if (rv != CKR_OK)
        return ck_err(rv);
    return describe_key(t, hpriv, key);
}

static int ec_public(struct p11_token *t, CK_OBJECT_HANDLE h, EVP_PKEY **out)
{
    uint8_t *params = NULL, *point = NULL;
    size_t plen = 0, qlen = 0;
    const unsigned char *p;
    ASN1_OBJECT *oid = NULL;
    ASN1_OCTET_STRING *q = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *prm = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    int r;

    if ((r = get_bytes(t, h, CKA_EC_PARAMS, &params, &plen)) ||
        (r = get_bytes(t, h, CKA_EC_POINT, &point, &qlen)))
        goto out;
    r = -EIO;
    p = params;
    oid = d2i_ASN1_OBJECT(NULL, &p, (long)plen);
    p = point; /* CKA_EC_POINT is the DER OCTET STRING of the point */
    q = d2i_ASN1_OCTET_STRING(NULL, &p, (long)qlen);
    if (!oid || !q || OBJ_obj2nid(oid) == NID_undef)
        goto out;
    bld = OSSL_PARAM_BLD_new();
    if (!bld ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                         OBJ_nid2sn(OBJ_obj2nid(oid)), 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, ASN1_STRING_get0_data(q),
                                          (size_t)ASN1_STRING_length(q)))
        goto out;
    prm = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (prm && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, prm) == 1)
        r = 0;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(prm);
    OSSL_PARAM_BLD_free(bld);
    ASN1_OBJECT_free(oid);
    ASN1_OCTET_STRING_free(q);
    free(params);
    free(point);
    ERR_clear_error();
    return r;
}

static int rsa_public(struct p11_token *t, CK_OBJECT_HANDLE h, EVP_PKEY **out)
{
    uint8_t *nb = NULL, *eb = NULL;
    size_t nl = 0, el = 0;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *prm = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    int r;

    if ((r = get_bytes(t, h, CKA_MODULUS, &nb, &nl)) ||
        (r = get_bytes(t, h, CKA_PUBLIC_EXPONENT, &eb, &el)))
        goto out;
    r = -EIO;
    n = BN_bin2bn(nb, (int)nl, NULL);
    e = BN_bin2bn(eb, (int)el, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (!n || !e || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
        goto out;
    prm = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (prm && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, prm) == 1)
        r = 0;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(prm);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(nb);
    free(eb);
    ERR_clear_error();
    return r;
}

static int public_key_locked(struct p11_token *t, const struct p11_key *key, EVP_PKEY **out)
{
    CK_OBJECT_HANDLE h = 0;
    size_t n = 0;
    int r;

    *out = NULL;
    if (!t->session)
        return -ENODEV;
    r = find_objects(t, CKO_PUBLIC_KEY, key->id, key->id_len, &h, 1, &n);
    if (r)
        return r;
    if (n == 0)
        return -ENOENT;
    return key->alg == SIGNER_ECDSA_SHA256 ? ec_public(t, h, out) : rsa_public(t, h, out);
}

/* r || s, as PKCS#11 returns an ECDSA signature, to DER Ecdsa-Sig-Value. */
static int ecdsa_der(const uint8_t *raw, size_t len, uint8_t *sig, size_t *sig_len)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)(len / 2), NULL),
           *s = BN_bin2bn(raw + len / 2, (int)(len / 2), NULL);
    unsigned char *der = NULL;
    int n, rc = -EIO;

    if (!es || !r || !s || len % 2 || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        goto out;
    }
    n = i2d_ECDSA_SIG(es, &der);
    if (n <= 0)
        goto out;
    if ((size_t)n > *sig_len) {
        rc = -EMSGSIZE;
        goto out;
    }
    memcpy(sig, der, (size_t)n);
    *sig_len = (size_t)n;
    rc = 0;
out:
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    return rc;
}

static int sign_locked(struct p11_token *t, const struct p11_key *key, const uint8_t *msg,
                       size_t len, uint8_t *sig, size_t *sig_len)
{
    uint8_t md[32], raw[SIGNER_SIG_MAX];
    CK_ULONG raw_len = sizeof(raw);
    CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
    const uint8_t *in = md;
    size_t in_len = sizeof(md);
    CK_RV rv;
    int r;

    if (!t->session)
        return -ENODEV;
    if (key->alg == SIGNER_RSA_SHA256) {
        mech.mechanism = CKM_SHA256_RSA_PKCS;
        in = msg;
        in_len = len;
    } else if (!EVP_Digest(msg, len, md, NULL, EVP_sha256(), NULL)) {
        return -ENOMEM;
    }
    rv = F(t)->C_SignInit(t->session, &mech, key->handle);
    if (rv == CKR_OK)
        rv = F(t)->C_Sign(t->session, (CK_BYTE_PTR)in, in_len, raw, &raw_len);
    if (rv != CKR_OK) {
        r = ck_err(rv);
        goto out;
    }
    if (key->alg == SIGNER_ECDSA_SHA256) {
        r = ecdsa_der(raw, raw_len, sig, sig_len);
    } else if (raw_len > *sig_len) {
        r = -EMSGSIZE;
    } else {
        memcpy(sig, raw, raw_len);
        *sig_len = raw_len;
        r = 0;
    }
out:
    OPENSSL_cleanse(raw, sizeof(raw));
    return r;
}

static int key_matches_locked(struct p11_token *t, const struct p11_key *key, X509 *cert)
{
    static const uint8_t probe[] = "cardd: does this key belong to the certificate?";
    uint8_t sig[SIGNER_SIG_MAX];
    size_t sig_len = sizeof(sig);
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    EVP_MD_CTX *md = NULL;
    int r, type;

    if (!pub)
        return 0;
    type = EVP_PKEY_get_base_id(pub);
    if ((key->alg == SIGNER_ECDSA_SHA256 && type != EVP_PKEY_EC) ||
        (key->alg == SIGNER_RSA_SHA256 && type != EVP_PKEY_RSA))
        return 0;
    r = sign_locked(t, key, probe, sizeof(probe), sig, &sig_len);
    if (r)
        return r;
    md = EVP_MD_CTX_new();
    if (!md)
        return -ENOMEM;
    r = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) == 1 &&
        EVP_DigestVerify(md, sig, sig_len, probe, sizeof(probe)) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return r;
}

static int key_for_cert_locked(struct p11_token *t, X509 *cert, struct p11_key *key)
{
    struct p11_key keys[P11_KEYS_MAX];
    size_t n = 0;
    int r = find_keys_locked(t, keys, P11_KEYS_MAX, &n);

    if (r)
        return r;
    for (size_t i = 0; i < n; i++) {
        r = key_matches_locked(t, &keys[i], cert);
        if (r < 0)
            return r;
        if (r == 1) {
            *key = keys[i];
            return 0;
        }
    }
    return -ENOENT;
}

static int token_info_locked(struct p11_token *t, struct p11_token_info *out)
{
    CK_TOKEN_INFO ti;

    if (!t->session)
        return -ENODEV;
    if (F(t)->C_GetTokenInfo(t->slot, &ti) != CKR_OK)
        return -ENODEV;
    padded(ti.label, sizeof(ti.label), out->label, sizeof(out->label));
    padded(ti.manufacturerID, sizeof(ti.manufacturerID), out->manufacturer,
           sizeof(out->manufacturer));
    padded(ti.model, sizeof(ti.model), out->model, sizeof(out->model));
    padded(ti.serialNumber, sizeof(ti.serialNumber), out->serial, sizeof(out->serial));
    return 0;
}

void p11_id_hex(const struct p11_key *key, char *out, size_t len)
{
    size_t o = 0;

    if (len == 0)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < key->id_len && o + 3 <= len; i++, o += 2)
        snprintf(out + o, len - o, "%02x", key->id[i]);
}

/* ---- the public calls: each one holds use_lock shared ---- */

int p11_check(struct p11_token *t)
{
    int r;

    enter(t);
    r = check_locked(t);
    leave();
    return r;
}

void p11_disconnect(struct p11_token *t)
{
    enter(t);
    disconnect_locked(t);
    leave();
}

int p11_find_keys(struct p11_token *t, struct p11_key *keys, size_t max, size_t *n)
{
    int r;

    enter(t);
    r = find_keys_locked(t, keys, max, n);
    leave();
    return r;
}

int p11_generate(struct p11_token *t, bool rsa, struct p11_key *key)
{
    int r;

    enter(t);
    r = generate_locked(t, rsa, key);
    leave();
    return r;
}

int p11_public_key(struct p11_token *t, const struct p11_key *key, EVP_PKEY **out)
{
    int r;

    enter(t);
    r = public_key_locked(t, key, out);
    leave();
    return r;
}

int p11_sign(struct p11_token *t, const struct p11_key *key, const uint8_t *msg, size_t len,
             uint8_t *sig, size_t *sig_len)
{
    int r;

    enter(t);
    r = sign_locked(t, key, msg, len, sig, sig_len);
    leave();
    return r;
}

int p11_key_matches(struct p11_token *t, const struct p11_key *key, X509 *cert)
{
    int r;

    enter(t);
    r = key_matches_locked(t, key, cert);
    leave();
    return r;
}

int p11_key_for_cert(struct p11_token *t, X509 *cert, struct p11_key *key)
{
    int r;

    enter(t);
    r = key_for_cert_locked(t, cert, key);
    leave();
    return r;
}

int p11_token_info(struct p11_token *t, struct p11_token_info *out)
{
    int r;

    enter(t);
    r = token_info_locked(t, out);
    leave();
    return r;
}
