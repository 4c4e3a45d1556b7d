/*
 * card.c — APDU processing of the emulated blank card (see card.h and
 * README.md for the behaviour and the status words).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "card.h"

static const uint8_t emrtd_aid[] = { 0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01 };

/* Historical bytes: category 80, card capabilities 73 (DF selection by
 * full name; data coding 21; command chaining and, on T=1, extended Lc/Le). */
size_t card_atr(const struct card *c, uint8_t *atr)
{
    size_t n = 0;
    uint8_t tck = 0;

    atr[n++] = 0x3B;
    if (c->t0) {
        /* T=0 only: no interface bytes, no TCK. */
        static const uint8_t t0[] = { 0x05, 0x80, 0x73, 0x80, 0x21, 0x80 };
        memcpy(atr + n, t0, sizeof(t0));
        return n + sizeof(t0);
    }
    static const uint8_t t1[] = { 0x85, 0x01, 0x80, 0x73, 0x80, 0x21, 0xC0 };
    memcpy(atr + n, t1, sizeof(t1));
    n += sizeof(t1);
    for (size_t i = 1; i < n; i++)
        tck ^= atr[i];
    atr[n++] = tck;
    return n;
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    size_t len = strlen(path);

    if (len >= sizeof(tmp))
        return -ENAMETOOLONG;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0755) && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0755) && errno != EEXIST)
        return -errno;
    return 0;
}

static int card_dir(const struct card *c, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s", c->outdir, c->serial);

    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int card_init(struct card *c, const char *serial, const uint8_t key[CARD_KEY_LEN],
              const char *outdir, bool t0)
{
    char dir[4096], path[4400];
    DIR *d;
    struct dirent *e;
    int r;

    memset(c, 0, sizeof(*c));
    if (strlen(serial) == 0 || strlen(serial) > CARD_SERIAL_MAX)
        return -EINVAL;
    for (const char *p = serial; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') || *p == '-'))
            return -EINVAL;
    strcpy(c->serial, serial);
    memcpy(c->key, key, CARD_KEY_LEN);
    c->tries = CARD_TRIES;
    c->current = -1;
    c->capacity = CARD_CAPACITY;
    c->outdir = outdir;
    c->t0 = t0;
    r = card_dir(c, dir, sizeof(dir));
    if (r)
        return r;
    r = mkdir_p(dir);
    if (r)
        return r;
    /* A new blank card under this serial: forget an older record. */
    d = opendir(dir);
    if (!d)
        return -errno;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);

        if ((l > 4 && !strcmp(e->d_name + l - 4, ".bin")) || !strcmp(e->d_name, "status.json")) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    return 0;
}

void card_free(struct card *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nfiles; i++)
        free(c->files[i].data);
    c->nfiles = 0;
}

static const char *card_state(const struct card *c)
{
    if (c->locked)
        return "locked";
    if (c->nfiles)
        return "written";
    return "blank";
}

int card_save_status(const struct card *c, const char *event)
{
    char dir[4096], path[4200], tmp[4210];
    FILE *f;
    int r;

    r = card_dir(c, dir, sizeof(dir));
    if (r)
        return r;
    snprintf(path, sizeof(path), "%s/status.json", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f)
        return -errno;
    fprintf(f,
            "{\"serial\": \"%s\", \"state\": \"%s\", \"event\": \"%s\", "
            "\"locked\": %s, \"tries_left\": %d, \"apdus\": %lu, "
            "\"last_sw\": \"%04X\", \"bac_len\": %zu, \"files\": [",
            c->serial, card_state(c), event, c->locked ? "true" : "false", c->tries, c->apdus,
            c->last_sw, c->bac_len);
    for (int i = 0; i < c->nfiles; i++)
        fprintf(f, "%s{\"fid\": \"%04X\", \"size\": %zu, \"written\": %zu}", i ? ", " : "",
                c->files[i].fid, c->files[i].size, c->files[i].written);
    fprintf(f, "]}\n");
    if (fclose(f))
        return -errno;
    if (rename(tmp, path))
        return -errno;
    return 0;
}

/* Keeps the file's bytes in <outdir>/<serial>/<FID>.bin as written. */
static void card_save_file(const struct card *c, const struct card_file *cf)
{
    char dir[4096], path[4200];
    int fd;

    if (card_dir(c, dir, sizeof(dir)))
        return;
    snprintf(path, sizeof(path), "%s/%04X.bin", dir, cf->fid);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return;
    if (write(fd, cf->data, cf->written) != (ssize_t)cf->written)
        fprintf(stderr, "emu-card %s: short write of %s\n", c->serial, path);
    close(fd);
}

/* A parsed command APDU (ISO 7816-4 §5.1), short or extended. */
struct cmd {
    uint8_t cla, ins, p1, p2;
    const uint8_t *data;
    size_t lc;
    size_t le; /* 0 when absent; 256 / 65536 for the "00" forms */
    bool has_le;
};

static bool parse_cmd(const uint8_t *b, size_t n, struct cmd *c)
{
    memset(c, 0, sizeof(*c));
    if (n < 4)
        return false;
    c->cla = b[0];
    c->ins = b[1];
    c->p1 = b[2];
    c->p2 = b[3];
    if (n == 4)
        return true; /* case 1 */
    if (n == 5) {    /* case 2 short */
        c->has_le = true;
        c->le = b[4] ? b[4] : 256;
        return true;
    }
    if (b[4] != 0) { /* short, cases 3/4 */
        c->lc = b[4];
        if (n == 5 + c->lc)
            ;
        else if (n == 6 + c->lc) {
            c->has_le = true;
            c->le = b[n - 1] ? b[n - 1] : 256;
        } else
            return false;
        c->data = b + 5;
        return true;
    }
    /* Extended: 00 then two bytes. */
    if (n == 7) { /* case 2 extended */
        c->has_le = true;
        c->le = (size_t)(b[5] << 8 | b[6]);
        if (!c->le)
            c->le = 65536;
        return true;
    }
    if (n < 7)
        return false;
    c->lc = (size_t)(b[5] << 8 | b[6]);
    if (c->lc == 0)
        return false;
    c->data = b + 7;
    if (n == 7 + c->lc)
        return true;
    if (n == 9 + c->lc) {
        c->has_le = true;
        c->le = (size_t)(b[n - 2] << 8 | b[n - 1]);
        if (!c->le)
            c->le = 65536;
        return true;
    }
    return false;
}

static size_t sw(uint8_t *rsp, size_t n, uint16_t w)
{
    rsp[n] = (uint8_t)(w >> 8);
    rsp[n + 1] = (uint8_t)w;
    return n + 2;
}

static int find_file(const struct card *c, uint16_t fid)
{
    for (int i = 0; i < c->nfiles; i++)
        if (c->files[i].fid == fid)
            return i;
    return -1;
}

static size_t do_select(struct card *c, const struct cmd *m, uint8_t *rsp)
{
    if (m->p1 == 0x04) {
        if (m->lc == sizeof(emrtd_aid) && !memcmp(m->data, emrtd_aid, m->lc)) {
            c->app_selected = true;
            c->current = -1;
            return sw(rsp, 0, 0x9000);
        }
        return sw(rsp, 0, 0x6A82);
    }
    if ((m->p1 == 0x02 || m->p1 == 0x00) && m->lc == 2) {
        int i;

        if (!c->app_selected)
            return sw(rsp, 0, 0x6A82);
        i = find_file(c, (uint16_t)(m->data[0] << 8 | m->data[1]));
        if (i < 0)
            return sw(rsp, 0, 0x6A82);
        c->current = i;
        return sw(rsp, 0, 0x9000);
    }
    return sw(rsp, 0, 0x6A86);
}

static size_t do_verify(struct card *c, const struct cmd *m, uint8_t *rsp)
{
    if (!c->app_selected)
        return sw(rsp, 0, 0x6985);
    if (m->p1 != 0x00 || m->p2 != 0x81)
        return sw(rsp, 0, 0x6A86);
    if (c->locked)
        return sw(rsp, 0, 0x6985);
    if (c->tries == 0)
        return sw(rsp, 0, 0x6983);
    if (m->lc == 0) {
        /* ISO 7816-4: VERIFY without data asks for the tries left. */
        if (c->authenticated)
            return sw(rsp, 0, 0x9000);
        return sw(rsp, 0, (uint16_t)(0x63C0 | c->tries));
    }
    if (m->lc != CARD_KEY_LEN)
        return sw(rsp, 0, 0x6700);
    if (memcmp(m->data, c->key, CARD_KEY_LEN) != 0) {
        c->tries--;
        c->authenticated = false;
        return sw(rsp, 0, (uint16_t)(c->tries ? 0x63C0 | c->tries : 0x6983));
    }
    c->tries = CARD_TRIES;
    c->authenticated = true;
    return sw(rsp, 0, 0x9000);
}

/* Writes need the transport key and an unlocked card. */
static uint16_t write_allowed(const struct card *c)
{
    if (c->locked)
        return 0x6985;
    if (!c->app_selected || !c->authenticated)
        return 0x6982;
    return 0x9000;
}

static size_t do_create(struct card *c, const struct cmd *m, uint8_t *rsp)
{
    uint16_t w = write_allowed(c), fid;
    size_t size;
    struct card_file *f;

    if (w != 0x9000)
        return sw(rsp, 0, w);
    if (m->lc != 6 || m->data[0] != 0x63 || m->data[1] != 0x04)
        return sw(rsp, 0, 0x6A80);
    size = (size_t)(m->data[2] << 8 | m->data[3]);
    fid = (uint16_t)(m->data[4] << 8 | m->data[5]);
    if (size == 0)
        return sw(rsp, 0, 0x6A80);
    if (find_file(c, fid) >= 0)
        return sw(rsp, 0, 0x6A89);
    if (c->nfiles >= CARD_MAX_FILES || size > c->capacity - c->used)
        return sw(rsp, 0, 0x6A84);
    f = &c->files[c->nfiles];
    f->data = calloc(1, size);
    if (!f->data)
        return sw(rsp, 0, 0x6A84);
    f->fid = fid;
    f->size = size;
    f->written = 0;
    c->nfiles++;
    c->used += size;
    card_save_status(c, "create");
    return sw(rsp, 0, 0x9000);
}

static size_t do_update(struct card *c, const struct cmd *m, uint8_t *rsp)
{
    uint16_t w = write_allowed(c);
    struct card_file *f;
    size_t off;

    if (w != 0x9000)
        return sw(rsp, 0, w);
    if (c->current < 0)
        return sw(rsp, 0, 0x6986);
    if (m->p1 & 0x80)
        return sw(rsp, 0, 0x6B00);
    f = &c->files[c->current];
    off = (size_t)(m->p1 << 8 | m->p2);
    if (off > f->size)
        return sw(rsp, 0, 0x6B00);
    if (m->lc == 0 || m->lc > f->size - off)
        return sw(rsp, 0, 0x6A84);
    memcpy(f->data + off, m->data, m->lc);
    if (off + m->lc > f->written)
        f->written = off + m->lc;
    card_save_file(c, f);
    return sw(rsp, 0, 0x9000);
}

static size_t do_read(struct card *c, const struct cmd *m, uint8_t *rsp, size_t cap)
{
    struct card_file *f;
    size_t off, n;

    if (!c->app_selected || c->current < 0)
        return sw(rsp, 0, 0x6986);
    if (m->p1 & 0x80)
        return sw(rsp, 0, 0x6B00);
    f = &c->files[c->current];
    off = (size_t)(m->p1 << 8 | m->p2);
    if (off >= f->size || !m->has_le)
        return sw(rsp, 0, off >= f->size ? 0x6B00 : 0x6700);
    n = f->size - off;
    if (n > m->le)
        n = m->le;
    if (n + 2 > cap)
        return sw(rsp, 0, 0x6700);
    if (c->t0) {
        /* T=0: a wrong Le is corrected by the card (6Cxx), the data then
		 * waits for GET RESPONSE (61xx), as a T=0 card's transport does. */
        if (n != m->le)
            return sw(rsp, 0, (uint16_t)(0x6C00 | (n & 0xFF)));
        memcpy(c->pending, f->data + off, n);
        c->pending_len = n;
        return sw(rsp, 0, (uint16_t)(0x6100 | (n & 0xFF)));
    }
    memcpy(rsp, f->data + off, n);
    return sw(rsp, n, 0x9000);
}

static size_t do_get_response(struct card *c, const struct cmd *m, uint8_t *rsp, size_t cap)
{
    size_t n = c->pending_len;

    if (!c->t0 || n == 0)
        return sw(rsp, 0, 0x6985);
    if (m->le < n)
        n = m->le;
    if (n + 2 > cap)
        return sw(rsp, 0, 0x6700);
    memcpy(rsp, c->pending, n);
    memmove(c->pending, c->pending + n, c->pending_len - n);
    c->pending_len -= n;
    if (c->pending_len)
        return sw(rsp, n, (uint16_t)(0x6100 | (c->pending_len > 255 ? 0 : c->pending_len)));
    return sw(rsp, n, 0x9000);
}

static size_t do_put_data(struct card *c, const struct cmd *m, uint8_t *rsp)
{
    uint16_t w = write_allowed(c);

    if (w != 0x9000)
        return sw(rsp, 0, w);
    if (m->p1 == 0x00 && m->p2 == 0x62) {
        if (m->lc == 0 || m->lc > sizeof(c->bac))
            return sw(rsp, 0, 0x6700);
        memcpy(c->bac, m->data, m->lc);
        c->bac_len = m->lc;
        card_save_status(c, "bac");
        return sw(rsp, 0, 0x9000);
    }
    if (m->p1 == 0xDE && m->p2 == 0xAD) {
        /* Locking a card without BAC material would make it unreadable. */
        if (!c->bac_len)
            return sw(rsp, 0, 0x6985);
        c->locked = true;
        c->authenticated = false;
        card_save_status(c, "lock");
        return sw(rsp, 0, 0x9000);
    }
    return sw(rsp, 0, 0x6A88);
}

size_t card_apdu(struct card *c, const uint8_t *b, size_t len, uint8_t *rsp, size_t cap)
{
    struct cmd m;
    size_t n;

    if (!parse_cmd(b, len, &m))
        n = sw(rsp, 0, 0x6700);
    else if ((m.cla & 0xFC) != 0x00)
        n = sw(rsp, 0, 0x6E00);
    else {
        switch (m.ins) {
        case 0xA4:
            n = do_select(c, &m, rsp);
            break;
        case 0x20:
            n = do_verify(c, &m, rsp);
            break;
        case 0xE0:
            n = do_create(c, &m, rsp);
            break;
        case 0xD6:
            n = do_update(c, &m, rsp);
            break;
        case 0xB0:
            n = do_read(c, &m, rsp, cap);
            break;
        case 0xC0:
            n = do_get_response(c, &m, rsp, cap);
            break;
        case 0xDA:
            n = do_put_data(c, &m, rsp);
            break;
        default:
            n = sw(rsp, 0, 0x6D00);
            break;
        }
    }
    c->last_sw = (uint16_t)(rsp[n - 2] << 8 | rsp[n - 1]);
    return n;
}
