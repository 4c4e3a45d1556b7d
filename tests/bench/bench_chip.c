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

struct mode {
	const char *name;
	const char *proto;          /* insert argument */
	unsigned flags;             /* encoder_open flags */
};

static int bench_mode(struct pcsc_env *env, struct signer *ds, const struct holder *tmpl,
		      const struct mode *m, int cards, int *serial)
{
	struct encoder *enc = NULL;
	double perso_ms = 0, cycle_ms = 0;
	unsigned long apdus = 0, minimum = 0;
	size_t wchunk = 0;
	int r = 0;

	r = encoder_open(&encoder_pcsc_ops, pcsc_env_reader(env), m->flags, &enc);
	if (r)
		return r;
	for (int i = 0; i < cards; i++) {
		struct holder h = *tmpl;
		struct perso_result res;
		double t0 = now_ms(), t1;

		snprintf(h.document_number, sizeof(h.document_number), "B%08u", (unsigned)++*serial % 100000000u);
		if ((r = pcsc_env_card(env, NULL, 0, "insert %s 0102030405060708 %s",
				       h.document_number, m->proto)) ||
		    (r = encoder_wait_card(enc, 5000)) || (r = encoder_connect(enc)))
			goto out;
		t1 = now_ms();
		r = personalise(enc, &h, ds, key, NULL, &res);
		if (r) {
			fprintf(stderr, "card %s: %s\n", h.document_number, res.reason);
			goto out;
		}
		perso_ms += now_ms() - t1;
		apdus += res.apdus;
		if (!minimum) {
			const struct encoder_card *c = encoder_card(enc);
			struct lds l;

			wchunk = c->max_command_data;
			if ((r = lds_build(&h, ds, &l)))
				goto out;
			minimum = 1 + 1 + 2;
			for (int f = 0; f < LDS_NFILES; f++)
				minimum += 2 + div_up(l.file[f].len, wchunk);
			lds_free(&l);
		}
		encoder_disconnect(enc);
		if ((r = pcsc_env_card(env, NULL, 0, "remove")))
			goto out;
		cycle_ms += now_ms() - t0;
	}
	printf("%-22s chunk %5zu  APDUs/card %5.1f  minimum %3lu  ratio %.2f  "
	       "ms/card %6.2f  ms/APDU %.3f  card cycle (insert..remove) ms %6.1f\n",
	       m->name, wchunk, (double)apdus / cards, minimum, (double)apdus / cards / (double)minimum,
	       perso_ms / cards, perso_ms / (double)apdus, cycle_ms / cards);
out:
	encoder_close(enc);
	return r;
}

int main(int argc, char **argv)
{
	static const struct mode modes[] = {
		{ "T=1 extended length", "t1", 0 },
		{ "T=1 short APDUs", "t1", ENCODER_SHORT_APDUS },
		{ "T=0 short APDUs", "t0", 0 },
	};
	const struct holder h = {
		.surname = "Al-Harbi", .given_names = "Abdulrahman Fahad",
		.name_ar = "\xd8\xb9\xd8\xa8\xd8\xaf\xd8\xa7\xd9\x84\xd8\xb1\xd8\xad\xd9\x85\xd9\x86 "
			   "\xd9\x81\xd9\x87\xd8\xaf \xd8\xa7\xd9\x84\xd8\xad\xd8\xb1\xd8\xa8\xd9\x8a",
		.national_id = "1122334455", .birth_date = "880302", .sex = 'M',
		.expiry_date = "340302", .nationality = "SAU",
	};
	int cards = argc > 1 ? atoi(argv[1]) : 10;
	const char *root = getenv("CARDD_ROOT");
	char pki[64] = "/tmp/bench-chip.XXXXXX", cmd[400], k[128], c[128];
	struct pcsc_env *env = NULL;
	struct signer *ds = NULL;
	int serial = 0, r = 1;
	double t0;

	if (cards <= 0 || !mkdtemp(pki))
		return 2;
	snprintf(cmd, sizeof(cmd), "%s/tests/make-test-pki.sh %s", root ? root : ".", pki);
	if (system(cmd))
		goto out_rm;
	snprintf(k, sizeof(k), "%s/ds.key", pki);
	snprintf(c, sizeof(c), "%s/ds.pem", pki);
	if (signer_open(&signer_file_ops, &(struct signer_file_config){ .key_path = k, .cert_path = c }, &ds))
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
		printf("%-22s ms/card %.3f (EF.COM, DG1, DG11, SOD with ECDSA P-256)\n", "build + sign files",
		       (now_ms() - t0) / 100);
	}
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		r = bench_mode(env, ds, &h, &modes[i], cards, &serial);
		if (r) {
			fprintf(stderr, "%s: %s\n", modes[i].name, strerror(-r));
			goto out_env;
		}
	}
	printf("ratio = APDUs sent / minimum the data needs at that chunk size "
	       "(the extra: tries query + read-back of every file%s)\n", "; T=0 adds GET RESPONSE/6Cxx");
	printf("reproduce: make bench   or   BUILD=build CARDD_ROOT=$PWD build/tests/bench_chip %d\n", cards);
	r = 0;
out_env:
	pcsc_env_stop(env);
out_signer:
	signer_close(ds);
out_rm:
	snprintf(cmd, sizeof(cmd), "rm -rf %s", pki);
	if (system(cmd))
		r = 1;
	return r;
}
