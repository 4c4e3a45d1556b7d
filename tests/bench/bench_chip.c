/*
 * bench_chip.c — cost of personalising one card on the emulated path (real
 * pcscd + vpcd + emu-card): APDUs and milliseconds per card, against the
 * minimum number of APDUs the data needs at the APDU size used.
 *
 *   build/tests/bench_chip [CARDS]      (make bench runs it with 10)
 *
 * Minimum: SELECT AID + VERIFY + per file (CREATE + SELECT + ceil(size /
 * chunk) UPDATE) + PUT DATA + lock: what CARD.md's sequence cannot do
 * without. The measured sequence adds the tries query before VERIFY and the
 * read-back of every file (and, on T=0, the GET RESPONSE and 6Cxx resends).
 * "ms/card" times personalise() alone; "insert..remove" the whole card
 * cycle, which vpcd's 400 ms presence poll dominates (one poll to see the
 * card arrive, one to see it leave).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "encoder.h"
#include "lds.h"
#include "pcsc_env.h"
#include "personalise.h"
#include "signer.h"

static const uint8_t key[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

static double now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static unsigned long div_up(size_t a, size_t b)
{
    return (unsigned long)((a + b - 1) / b);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

struct mode {
    const char *name;
    const char *proto; /* insert argument */
    unsigned flags;    /* encoder_open flags */
};

struct stats {
    struct encoder *enc;
    double *each; /* personalisation ms of each counted card */
    double sum, cycle;
    unsigned long apdus, minimum;
    size_t chunk;
};

/* One card in one mode: insert, personalise, remove. Counted when i >= 0. */
static int one_card(struct pcsc_env *env, struct signer *ds, const struct holder *tmpl,
                    const struct mode *m, struct stats *st, int i, unsigned *serial)
{
    struct holder h = *tmpl;
    struct perso_result res;
    double t0 = now_ms(), t1;
    int r;

    snprintf(h.document_number, sizeof(h.document_number), "B%08u", ++*serial % 100000000u);
    if ((r = pcsc_env_card(env, NULL, 0, "insert %s 0102030405060708 %s", h.document_number,
                           m->proto)) ||
        (r = encoder_wait_card(st->enc, 5000)) || (r = encoder_connect(st->enc)))
        return r;
    t1 = now_ms();
    r = personalise(st->enc, &h, ds, key, NULL, &res);
    t1 = now_ms() - t1;
    if (r) {
        fprintf(stderr, "card %s: %s\n", h.document_number, res.reason);
        return r;
    }
    if (!st->minimum) {
        struct lds l;

        st->chunk = encoder_card(st->enc)->max_command_data;
        if ((r = lds_build(&h, ds, &l)))
            return r;
        st->minimum = 1 + 1 + 2;
        for (int f = 0; f < LDS_NFILES; f++)
            st->minimum += 2 + div_up(l.file[f].len, st->chunk);
        lds_free(&l);
    }
    encoder_disconnect(st->enc);
    if ((r = pcsc_env_card(env, NULL, 0, "remove")))
        return r;
    if (i >= 0) {
        st->each[i] = t1;
        st->sum += t1;
        st->apdus += res.apdus;
        st->cycle += now_ms() - t0;
    }
    return 0;
}

static void report(const struct mode *m, struct stats *st, int cards)
{
    /* The machine is shared: the median and the best say more than the mean. */
    qsort(st->each, (size_t)cards, sizeof(double), cmp_double);
    printf(
        "%-20s chunk %5zu  APDUs/card %4.1f  minimum %2lu  ratio %.2f  "
        "ms/card median %5.2f best %5.2f mean %5.2f  ms/APDU (median) %.3f  insert..remove ms %5.1f\n",
        m->name, st->chunk, (double)st->apdus / cards, st->minimum,
        (double)st->apdus / cards / (double)st->minimum, st->each[cards / 2], st->each[0],
        st->sum / cards, st->each[cards / 2] * cards / (double)st->apdus, st->cycle / cards);
}

static const struct mode modes[] = {
    { "T=1 extended length", "t1", 0 },
    { "T=1 short APDUs", "t1", ENCODER_SHORT_APDUS },
    { "T=0 short APDUs", "t0", 0 },
};
#define NMODES (sizeof(modes) / sizeof(modes[0]))

int main(int argc, char **argv)
{
    const struct holder h = {
        .surname = "Al-Harbi",
        .given_names = "Abdulrahman Fahad",
        .name_ar = "\xd8\xb9\xd8\xa8\xd8\xaf\xd8\xa7\xd9\x84\xd8\xb1\xd8\xad\xd9\x85\xd9\x86 "
                   "\xd9\x81\xd9\x87\xd8\xaf \xd8\xa7\xd9\x84\xd8\xad\xd8\xb1\xd8\xa8\xd9\x8a",
        .national_id = "1122334455",
        .birth_date = "880302",
        .sex = 'M',
        .expiry_date = "340302",
        .nationality = "SAU",
    };
    int cards = argc > 1 ? atoi(argv[1]) : 10;
    const char *root = getenv("CARDD_ROOT");
    char pki[64] = "/tmp/bench-chip.XXXXXX", cmd[400], k[128], c[128];
    struct pcsc_env *env = NULL;
    struct signer *ds = NULL;
    struct stats st[NMODES];
    unsigned serial = 0;
    int r = 1;
    double t0;

    memset(st, 0, sizeof(st));
    if (cards <= 0 || cards > 100000 || !mkdtemp(pki))
        return 2;
    snprintf(cmd, sizeof(cmd), "%s/tests/make-test-pki.sh %s", root ? root : ".", pki);
    if (system(cmd))
        goto out_rm;
    snprintf(k, sizeof(k), "%s/ds.key", pki);
    snprintf(c, sizeof(c), "%s/ds.pem", pki);
    if (signer_open(&signer_file_ops, &(struct signer_file_config){ .key_path = k, .cert_path = c },
                    &ds))
        goto out_rm;
    if (pcsc_env_start(&(struct pcsc_env_opts){ .with_card = true }, &env))
        goto out_signer;
    printf("chip encoding, %d cards per mode, pcscd + vpcd + emu-card on this machine\n", cards);
    t0 = now_ms();
    {
        struct lds l;
        struct holder hh = h;

        strcpy(hh.document_number, "B00000000");
        for (int i = 0; i < 100; i++) {
            if (lds_build(&hh, ds, &l))
                goto out_env;
            lds_free(&l);
        }
        printf("%-20s ms/card %.3f (EF.COM, DG1, DG11, SOD with ECDSA P-256)\n",
               "build + sign files", (now_ms() - t0) / 100);
    }
    /* Modes take turns card by card, so that a slow spell of the machine
	 * (it is shared) or the start-up of pcscd falls on all of them alike;
	 * the first two rounds warm up and are not counted. */
    for (size_t k = 0; k < NMODES; k++) {
        st[k].each = calloc((size_t)cards, sizeof(double));
        if (!st[k].each ||
            encoder_open(&encoder_pcsc_ops, pcsc_env_reader(env), modes[k].flags, &st[k].enc))
            goto out_env;
    }
    for (int i = -2; i < cards; i++) {
        for (size_t k = 0; k < NMODES; k++) {
            r = one_card(env, ds, &h, &modes[k], &st[k], i, &serial);
            if (r) {
                fprintf(stderr, "%s: %s\n", modes[k].name, strerror(-r));
                goto out_env;
            }
        }
    }
    for (size_t k = 0; k < NMODES; k++)
        report(&modes[k], &st[k], cards);
    printf("ratio = APDUs sent / minimum the data needs at that chunk size "
           "(the extra: tries query + read-back of every file%s)\n",
           "; T=0 adds GET RESPONSE/6Cxx");
    printf("reproduce: make bench   or   BUILD=build CARDD_ROOT=$PWD build/tests/bench_chip %d\n",
           cards);
    r = 0;
out_env:
    for (size_t k = 0; k < NMODES; k++) {
        encoder_close(st[k].enc);
        free(st[k].each);
    }
    pcsc_env_stop(env);
out_signer:
    signer_close(ds);
out_rm:
    snprintf(cmd, sizeof(cmd), "rm -rf %s", pki);
    if (system(cmd))
        r = 1;
    return r;
}
