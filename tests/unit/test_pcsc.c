/* Unit tests for drivers/pcsc.c and the APDU encoding in encoder.c, with
 * pcsc-lite replaced at link time (tests/unit/test_pcsc.wrap): reader
 * choice, ATR capabilities, T=0 GET RESPONSE / 6Cxx, and the mapping of
 * PC/SC failures to "card gone", "time-out" and "communication error". */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <winscard.h>
#include <reader.h>

#include "encoder.h"

/* ---- the fake pcsc-lite ---- */

static const char *g_readers; /* multi-string */
static size_t g_readers_len;
static LONG g_establish_rv, g_list_rv, g_connect_rv, g_status_rv;
static DWORD g_protocol, g_status_state, g_maxinput;
static uint8_t g_atr[33];
static size_t g_atr_len;
static uint8_t g_sent[16][300]; /* APDUs the driver sent */
static size_t g_sent_len[16];
static int g_nsent;

static void fake_reset(void)
{
    static const char two[] = "Virtual PCD 00 00\0Virtual PCD 00 01\0";
    static const uint8_t t1_ext[] = { 0x3B, 0x85, 0x01, 0x80, 0x73, 0x80, 0x21, 0xC0, 0x16 };

    g_readers = two;
    g_readers_len = sizeof(two);
    g_establish_rv = g_list_rv = g_connect_rv = g_status_rv = SCARD_S_SUCCESS;
    g_protocol = SCARD_PROTOCOL_T1;
    g_status_state = SCARD_PRESENT;
    g_maxinput = 0;
    memcpy(g_atr, t1_ext, sizeof(t1_ext));
    g_atr_len = sizeof(t1_ext);
    g_nsent = 0;
}

LONG __wrap_SCardEstablishContext(DWORD scope, LPCVOID r1, LPCVOID r2, LPSCARDCONTEXT ctx);
LONG __wrap_SCardEstablishContext(DWORD scope, LPCVOID r1, LPCVOID r2, LPSCARDCONTEXT ctx)
{
    (void)scope;
    (void)r1;
    (void)r2;
    *ctx = 1;
    return g_establish_rv;
}

LONG __wrap_SCardReleaseContext(SCARDCONTEXT ctx);
LONG __wrap_SCardReleaseContext(SCARDCONTEXT ctx)
{
    (void)ctx;
    return SCARD_S_SUCCESS;
}

LONG __wrap_SCardListReaders(SCARDCONTEXT ctx, LPCSTR groups, LPSTR readers, LPDWORD len);
LONG __wrap_SCardListReaders(SCARDCONTEXT ctx, LPCSTR groups, LPSTR readers, LPDWORD len)
{
    char *copy;

    (void)ctx;
    (void)groups;
    assert_int_equal(*len, SCARD_AUTOALLOCATE);
    if (g_list_rv)
        return g_list_rv;
    copy = malloc(g_readers_len + 1);
    memcpy(copy, g_readers, g_readers_len);
    copy[g_readers_len] = 0;
    *(char **)readers = copy;
    *len = (DWORD)g_readers_len;
    return SCARD_S_SUCCESS;
}

LONG __wrap_SCardFreeMemory(SCARDCONTEXT ctx, LPCVOID mem);
LONG __wrap_SCardFreeMemory(SCARDCONTEXT ctx, LPCVOID mem)
{
    (void)ctx;
    free((void *)mem);
    return SCARD_S_SUCCESS;
}

/* Each call takes (rv, event state) from the cmocka queue. */
LONG __wrap_SCardGetStatusChange(SCARDCONTEXT ctx, DWORD timeout, SCARD_READERSTATE *rs, DWORD n);
LONG __wrap_SCardGetStatusChange(SCARDCONTEXT ctx, DWORD timeout, SCARD_READERSTATE *rs, DWORD n)
{
    LONG rv = mock_type(LONG);

    (void)ctx;
    (void)timeout;
    assert_int_equal(n, 1);
    rs->dwEventState = mock_type(DWORD);
    return rv;
}

LONG __wrap_SCardConnect(SCARDCONTEXT ctx, LPCSTR reader, DWORD share, DWORD pref, LPSCARDHANDLE h,
                         LPDWORD proto);
LONG __wrap_SCardConnect(SCARDCONTEXT ctx, LPCSTR reader, DWORD share, DWORD pref, LPSCARDHANDLE h,
                         LPDWORD proto)
{
    (void)ctx;
    (void)reader;
    assert_int_equal(share, SCARD_SHARE_EXCLUSIVE);
    assert_int_equal(pref, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1);
    *h = 7;
    *proto = g_protocol;
    return g_connect_rv;
}

LONG __wrap_SCardStatus(SCARDHANDLE h, LPSTR name, LPDWORD nlen, LPDWORD state, LPDWORD proto,
                        LPBYTE atr, LPDWORD alen);
LONG __wrap_SCardStatus(SCARDHANDLE h, LPSTR name, LPDWORD nlen, LPDWORD state, LPDWORD proto,
                        LPBYTE atr, LPDWORD alen)
{
    (void)h;
    (void)name;
    (void)nlen;
    *state = g_status_state;
    *proto = g_protocol;
    if (atr) {
        memcpy(atr, g_atr, g_atr_len);
        *alen = (DWORD)g_atr_len;
    }
    return g_status_rv;
}

LONG __wrap_SCardGetAttrib(SCARDHANDLE h, DWORD id, LPBYTE attr, LPDWORD len);
LONG __wrap_SCardGetAttrib(SCARDHANDLE h, DWORD id, LPBYTE attr, LPDWORD len)
{
    (void)h;
    if (id != SCARD_ATTR_MAXINPUT || !g_maxinput)
        return SCARD_E_UNSUPPORTED_FEATURE;
    attr[0] = (uint8_t)g_maxinput;
    attr[1] = (uint8_t)(g_maxinput >> 8);
    attr[2] = (uint8_t)(g_maxinput >> 16);
    attr[3] = (uint8_t)(g_maxinput >> 24);
    *len = 4;
    return SCARD_S_SUCCESS;
}

/* Each call takes (rv, response pointer, response length) from the queue
 * and records what was sent. */
LONG __wrap_SCardTransmit(SCARDHANDLE h, const SCARD_IO_REQUEST *pci, LPCBYTE send, DWORD slen,
                          SCARD_IO_REQUEST *rpci, LPBYTE recv, LPDWORD rlen);
LONG __wrap_SCardTransmit(SCARDHANDLE h, const SCARD_IO_REQUEST *pci, LPCBYTE send, DWORD slen,
                          SCARD_IO_REQUEST *rpci, LPBYTE recv, LPDWORD rlen)
{
    LONG rv = mock_type(LONG);
    const uint8_t *resp = mock_ptr_type(const uint8_t *);
    size_t n = mock_type(size_t);

    (void)h;
    (void)rpci;
    assert_int_equal(pci->dwProtocol, g_protocol);
    if (g_nsent < 16 && slen <= sizeof(g_sent[0])) {
        memcpy(g_sent[g_nsent], send, slen);
        g_sent_len[g_nsent++] = slen;
    }
    if (rv)
        return rv;
    if (n > *rlen)
        return SCARD_E_INSUFFICIENT_BUFFER;
    memcpy(recv, resp, n);
    *rlen = (DWORD)n;
    return SCARD_S_SUCCESS;
}

LONG __wrap_SCardDisconnect(SCARDHANDLE h, DWORD disp);
LONG __wrap_SCardDisconnect(SCARDHANDLE h, DWORD disp)
{
    (void)h;
    (void)disp;
    return SCARD_S_SUCCESS;
}

#define will_transmit(rv, bytes, n)                     \
    do {                                                \
        will_return(__wrap_SCardTransmit, (rv));        \
        will_return(__wrap_SCardTransmit, (bytes));     \
        will_return(__wrap_SCardTransmit, (size_t)(n)); \
    } while (0)
#define will_status(rv, state)                                    \
    do {                                                          \
        will_return(__wrap_SCardGetStatusChange, (rv));           \
        will_return(__wrap_SCardGetStatusChange, (DWORD)(state)); \
    } while (0)

static struct encoder *connected(unsigned flags)
{
    struct encoder *e = NULL;

    assert_int_equal(encoder_open(&encoder_pcsc_ops, "Virtual PCD 00 00", flags, &e), 0);
    assert_int_equal(encoder_connect(e), 0);
    return e;
}

/* ---- tests ---- */

static void reader_by_name(void **state)
{
    struct encoder *e = NULL;

    (void)state;
    fake_reset();
    assert_int_equal(encoder_open(&encoder_pcsc_ops, "Virtual PCD 00 01", 0, &e), 0);
    encoder_close(e);
    assert_int_equal(encoder_open(&encoder_pcsc_ops, NULL, 0, &e), 0);
    encoder_close(e);
    /* A prefix must be unique. */
    assert_int_equal(encoder_open(&encoder_pcsc_ops, "Virtual PCD", 0, &e), -ENODEV);
    assert_null(e);
    assert_int_equal(encoder_open(&encoder_pcsc_ops, "Other", 0, &e), -ENODEV);
    g_readers = "Virtual PCD 00 00\0";
    g_readers_len = 19;
    assert_int_equal(encoder_open(&encoder_pcsc_ops, "Virtual PCD", 0, &e), 0);
    encoder_close(e);
    g_list_rv = SCARD_E_NO_READERS_AVAILABLE;
    assert_int_equal(encoder_open(&encoder_pcsc_ops, NULL, 0, &e), -ENODEV);
    g_establish_rv = SCARD_E_NO_SERVICE;
    assert_int_equal(encoder_open(&encoder_pcsc_ops, NULL, 0, &e), -EIO);
    encoder_close(NULL);
}

static void wait_for_card(void **state)
{
    struct encoder *e = NULL;

    (void)state;
    fake_reset();
    assert_int_equal(encoder_open(&encoder_pcsc_ops, "Virtual PCD 00 00", 0, &e), 0);
    will_status(SCARD_S_SUCCESS, SCARD_STATE_PRESENT | SCARD_STATE_CHANGED);
    assert_int_equal(encoder_wait_card(e, 100), 0);
    will_status(SCARD_S_SUCCESS, SCARD_STATE_EMPTY | SCARD_STATE_CHANGED);
    will_status(SCARD_S_SUCCESS, SCARD_STATE_PRESENT | SCARD_STATE_CHANGED);
    assert_int_equal(encoder_wait_card(e, 100), 0);
    will_status(SCARD_S_SUCCESS, SCARD_STATE_EMPTY);
    will_status(SCARD_E_TIMEOUT, SCARD_STATE_EMPTY);
    assert_int_equal(encoder_wait_card(e, 100), -ETIMEDOUT);
    will_status(SCARD_S_SUCCESS, SCARD_STATE_UNAVAILABLE);
    assert_int_equal(encoder_wait_card(e, 100), -ENODEV);
    will_status(SCARD_E_NO_SERVICE, 0);
    assert_int_equal(encoder_wait_card(e, 100), -EIO);
    encoder_close(e);
}

static void atr_and_reader_decide_extended(void **state)
{
    static const uint8_t t0[] = { 0x3B, 0x05, 0x80, 0x73, 0x80, 0x21, 0x80 };
    static const uint8_t no_caps[] = { 0x3B, 0x80, 0x80, 0x01, 0x01 };
    struct encoder *e;

    (void)state;
    fake_reset();
    e = connected(0);
    assert_true(encoder_card(e)->extended);
    assert_int_equal(encoder_card(e)->protocol, 1);
    assert_int_equal(encoder_card(e)->max_command_data, 65535);
    assert_int_equal(encoder_card(e)->atr_len, 9);
    encoder_close(e);
    e = connected(ENCODER_SHORT_APDUS);
    assert_false(encoder_card(e)->extended);
    assert_int_equal(encoder_card(e)->max_command_data, 255);
    encoder_close(e);
    g_maxinput = 261; /* a reader that takes short APDUs only */
    e = connected(0);
    assert_false(encoder_card(e)->extended);
    encoder_close(e);
    g_maxinput = 1034;
    e = connected(0);
    assert_true(encoder_card(e)->extended);
    assert_int_equal(encoder_card(e)->max_command_data, 1024);
    encoder_close(e);
    fake_reset();
    memcpy(g_atr, no_caps, sizeof(no_caps));
    g_atr_len = sizeof(no_caps);
    e = connected(0);
    assert_false(encoder_card(e)->extended);
    encoder_close(e);
    fake_reset();
    memcpy(g_atr, t0, sizeof(t0));
    g_atr_len = sizeof(t0);
    g_protocol = SCARD_PROTOCOL_T0;
    e = connected(0);
    assert_int_equal(encoder_card(e)->protocol, 0);
    assert_false(encoder_card(e)->extended);
    encoder_close(e);
}

static void connect_errors(void **state)
{
    static const LONG rvs[] = { SCARD_E_NO_SMARTCARD, SCARD_W_REMOVED_CARD,
                                SCARD_E_SHARING_VIOLATION, SCARD_W_UNRESPONSIVE_CARD,
                                SCARD_E_TIMEOUT };
    static const int want[] = { -ENODEV, -ENODEV, -EBUSY, -EIO, -ETIMEDOUT };
    struct encoder *e = NULL;

    (void)state;
    for (size_t i = 0; i < 5; i++) {
        fake_reset();
        g_connect_rv = rvs[i];
        assert_int_equal(encoder_open(&encoder_pcsc_ops, "Virtual PCD 00 00", 0, &e), 0);
        assert_int_equal(encoder_connect(e), want[i]);
        assert_null(encoder_card(e));
        encoder_close(e);
    }
}

static void apdu_encoding(void **state)
{
    static const uint8_t ok[] = { 0x90, 0x00 };
    static uint8_t data[300];
    uint8_t buf[300];
    struct apdu_resp rs = { .data = buf, .cap = sizeof(buf) };
    struct encoder *e;

    (void)state;
    fake_reset();
    memset(data, 0xAB, sizeof(data));
    e = connected(0);
    will_transmit(0, ok, 2);
    assert_int_equal(
        encoder_transmit(e, &(struct apdu){ .ins = 0xDA, .p1 = 0xDE, .p2 = 0xAD }, &rs), 0);
    assert_int_equal(g_sent_len[0], 4); /* case 1 */
    will_transmit(0, ok, 2);
    encoder_transmit(e, &(struct apdu){ .ins = 0xB0, .le = 256 }, &rs);
    assert_int_equal(g_sent_len[1], 5); /* case 2S, 00 = 256 */
    assert_int_equal(g_sent[1][4], 0x00);
    will_transmit(0, ok, 2);
    encoder_transmit(e, &(struct apdu){ .ins = 0xD6, .data = data, .lc = 255 }, &rs);
    assert_int_equal(g_sent_len[2], 5 + 255); /* case 3S */
    assert_int_equal(g_sent[2][4], 0xFF);
    will_transmit(0, ok, 2);
    encoder_transmit(e, &(struct apdu){ .ins = 0xD6, .data = data, .lc = 256 }, &rs);
    assert_int_equal(g_sent_len[3], 7 + 256); /* case 3E */
    assert_memory_equal(g_sent[3] + 4, "\x00\x01\x00", 3);
    will_transmit(0, ok, 2);
    encoder_transmit(e, &(struct apdu){ .ins = 0xB0, .le = 65536 }, &rs);
    assert_int_equal(g_sent_len[4], 7); /* case 2E, 0000 = 65536 */
    assert_memory_equal(g_sent[4] + 4, "\x00\x00\x00", 3);
    will_transmit(0, ok, 2);
    encoder_transmit(e, &(struct apdu){ .ins = 0x88, .data = data, .lc = 10, .le = 257 }, &rs);
    assert_int_equal(g_sent_len[5], 7 + 10 + 2); /* case 4E */
    assert_memory_equal(g_sent[5] + 17, "\x01\x01", 2);
    assert_int_equal(encoder_apdu_count(e), 6);
    encoder_close(e);

    /* Short only: a long command is refused before anything is sent. */
    e = connected(ENCODER_SHORT_APDUS);
    assert_int_equal(
        encoder_transmit(e, &(struct apdu){ .ins = 0xD6, .data = data, .lc = 256 }, &rs),
        -EMSGSIZE);
    assert_int_equal(encoder_transmit(e, &(struct apdu){ .ins = 0xD6, .lc = 1 }, &rs), -EINVAL);
    /* An answer bigger than the caller's buffer. */
    {
        static uint8_t big[12];
        struct apdu_resp small = { .data = buf, .cap = 4 };

        memset(big, 0x11, sizeof(big));
        big[10] = 0x90;
        big[11] = 0x00;
        will_transmit(0, big, sizeof(big));
        assert_int_equal(encoder_transmit(e, &(struct apdu){ .ins = 0xB0, .le = 10 }, &small),
                         -EMSGSIZE);
    }
    will_transmit(0, "\x6A\x82", 2);
    assert_int_equal(encoder_command(e, &(struct apdu){ .ins = 0xA4 }, &rs), -ENCODER_E_STATUS);
    assert_int_equal(rs.sw, 0x6A82);
    encoder_close(e);
}

static void t0_get_response_and_wrong_le(void **state)
{
    static const uint8_t first[] = { 0x61, 0x10 };
    static uint8_t part1[16 + 2], part2[5 + 2];
    static const uint8_t wrong_le[] = { 0x6C, 0x20 };
    static uint8_t right[0x20 + 2];
    static const uint8_t t0[] = { 0x3B, 0x05, 0x80, 0x73, 0x80, 0x21, 0x80 };
    uint8_t buf[300];
    struct apdu_resp rs = { .data = buf, .cap = sizeof(buf) };
    struct encoder *e;

    (void)state;
    fake_reset();
    memcpy(g_atr, t0, sizeof(t0));
    g_atr_len = sizeof(t0);
    g_protocol = SCARD_PROTOCOL_T0;
    memset(part1, 0x41, 16);
    part1[16] = 0x61;
    part1[17] = 0x05;
    memset(part2, 0x42, 5);
    part2[5] = 0x90;
    part2[6] = 0x00;
    e = connected(0);
    will_transmit(0, first, 2);
    will_transmit(0, part1, sizeof(part1));
    will_transmit(0, part2, sizeof(part2));
    assert_int_equal(encoder_transmit(e, &(struct apdu){ .ins = 0xB0, .le = 256 }, &rs), 0);
    assert_int_equal(rs.sw, 0x9000);
    assert_int_equal(rs.len, 21);
    assert_int_equal(buf[15], 0x41);
    assert_int_equal(buf[16], 0x42);
    assert_memory_equal(g_sent[1], "\x00\xC0\x00\x00\x10", 5);
    assert_memory_equal(g_sent[2], "\x00\xC0\x00\x00\x05", 5);
    assert_int_equal(encoder_apdu_count(e), 3);

    memset(right, 0x43, 0x20);
    right[0x20] = 0x90;
    right[0x21] = 0x00;
    g_nsent = 0;
    will_transmit(0, wrong_le, 2);
    will_transmit(0, right, sizeof(right));
    assert_int_equal(encoder_transmit(e, &(struct apdu){ .ins = 0xB0, .p2 = 0x10, .le = 256 }, &rs),
                     0);
    assert_int_equal(rs.len, 0x20);
    assert_memory_equal(g_sent[1], "\x00\xB0\x00\x10\x20", 5);
    encoder_close(e);
}

static void transmit_failures_are_told_apart(void **state)
{
    uint8_t buf[16];
    struct apdu_resp rs = { .data = buf, .cap = sizeof(buf) };
    struct apdu sel = { .ins = 0xA4 };
    struct encoder *e;

    (void)state;
    fake_reset();
    e = connected(0);
    /* Removed: said at once. */
    will_transmit(SCARD_W_REMOVED_CARD, NULL, 0);
    assert_int_equal(encoder_transmit(e, &sel, &rs), -ENODEV);
    /* Not transacted, and the reader then reports the slot empty. */
    will_transmit(SCARD_E_NOT_TRANSACTED, NULL, 0);
    will_status(SCARD_S_SUCCESS, SCARD_STATE_PRESENT | SCARD_STATE_EXCLUSIVE);
    will_status(SCARD_S_SUCCESS, SCARD_STATE_EMPTY | SCARD_STATE_CHANGED);
    assert_int_equal(encoder_transmit(e, &sel, &rs), -ENODEV);
    /* Not transacted, card still there after the grace period: I/O error. */
    will_transmit(SCARD_E_NOT_TRANSACTED, NULL, 0);
    will_status(SCARD_S_SUCCESS, SCARD_STATE_PRESENT | SCARD_STATE_EXCLUSIVE);
    will_status(SCARD_E_TIMEOUT, SCARD_STATE_PRESENT | SCARD_STATE_EXCLUSIVE);
    assert_int_equal(encoder_transmit(e, &sel, &rs), -EIO);
    /* pcscd already knows the card is absent. */
    g_status_state = SCARD_ABSENT;
    will_transmit(SCARD_E_NOT_TRANSACTED, NULL, 0);
    assert_int_equal(encoder_transmit(e, &sel, &rs), -ENODEV);
    g_status_state = SCARD_PRESENT;
    /* An empty answer from a card that stays: I/O error. */
    will_transmit(0, "", 0);
    will_status(SCARD_S_SUCCESS, SCARD_STATE_PRESENT);
    will_status(SCARD_E_TIMEOUT, SCARD_STATE_PRESENT);
    assert_int_equal(encoder_transmit(e, &sel, &rs), -EIO);
    /* Time-out of the reader. */
    will_transmit(SCARD_E_TIMEOUT, NULL, 0);
    will_status(SCARD_S_SUCCESS, SCARD_STATE_PRESENT);
    will_status(SCARD_E_TIMEOUT, SCARD_STATE_PRESENT);
    assert_int_equal(encoder_transmit(e, &sel, &rs), -ETIMEDOUT);
    assert_int_equal(encoder_disconnect(e), 0);
    assert_int_equal(encoder_transmit(e, &sel, &rs), -ENOTCONN);
    encoder_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reader_by_name),
        cmocka_unit_test(wait_for_card),
        cmocka_unit_test(atr_and_reader_decide_extended),
        cmocka_unit_test(connect_errors),
        cmocka_unit_test(apdu_encoding),
        cmocka_unit_test(t0_get_response_and_wrong_le),
        cmocka_unit_test(transmit_failures_are_told_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
