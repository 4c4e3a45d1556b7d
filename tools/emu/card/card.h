/*
 * card.h — the emulated blank ID card: an ICAO 9303 LDS1 application with
 * a transport key, its own file system and APDU parser. Shares nothing
 * with the product (see TESTBENCH.md, "Keep the emulators honest").
 */
#ifndef EMU_CARD_H
#define EMU_CARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CARD_MAX_FILES  16
#define CARD_CAPACITY   32768 /* bytes of file space on a blank card */
#define CARD_KEY_LEN    8
#define CARD_TRIES      3
#define CARD_SERIAL_MAX 32

struct card_file {
    uint16_t fid;
    size_t size;
    size_t written; /* highest offset written */
    uint8_t *data;
};

struct card {
    char serial[CARD_SERIAL_MAX + 1];
    uint8_t key[CARD_KEY_LEN];
    int tries;
    bool app_selected;
    bool authenticated;
    bool locked;
    int current; /* index in files[], -1 if none */
    struct card_file files[CARD_MAX_FILES];
    int nfiles;
    size_t used;
    size_t capacity;
    uint8_t bac[64];
    size_t bac_len;
    unsigned long apdus; /* command APDUs since the card was inserted */
    uint16_t last_sw;
    bool t0;                /* answer as a T=0 card (61xx, 6Cxx) */
    uint8_t pending[65538]; /* T=0: bytes waiting for GET RESPONSE */
    size_t pending_len;
    const char *outdir; /* where the card's record is kept */
};

/* Makes a blank card. Returns 0 or -errno (folder cannot be made). */
int card_init(struct card *c, const char *serial, const uint8_t key[CARD_KEY_LEN],
              const char *outdir, bool t0);

/* Frees the file contents. NULL-safe. */
void card_free(struct card *c);

/* Processes one command APDU; writes the response (data then SW) into
 * rsp (cap bytes, at least 2) and returns its length. */
size_t card_apdu(struct card *c, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap);

/* Writes status.json in the card's folder. Returns 0 or -errno. */
int card_save_status(const struct card *c, const char *event);

/* Length of the card's ATR in atr[] (at most 33 bytes). */
size_t card_atr(const struct card *c, uint8_t *atr);

#endif
