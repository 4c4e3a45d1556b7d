/*
 * it_printer - the Evolis driver through the real libusb against the
 * emulated printer (build/emu-printer under umockdev): every command the
 * driver uses, every NACK code, a time-out, an unplug in the middle of a
 * job, and the face that comes out in the output hopper.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cairo.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "face.h"
#include "printer.h"
#include "face_check.h"
#include "usb_env.h"

#define VID     0x0f49
#define PID     0x0a00
#define SERIAL  "EVO-IT-0001"
#define SERIAL2 "EVO-IT-0002" /* a second station in the same emulator */

/* fontconfig keeps its pattern cache until exit (reached through pango's
 * default font map); LeakSanitizer would report it on every run. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libfontconfig.so\n";
}

static struct usb_env env;

#define FIRST_CARD_SERIAL 5000
#define TRANSPORT_KEY     "00112233445566AA"

/*
 * A stand-in for the chip reader's card emulator (tools/emu/card): it
 * takes the same control lines ("insert <serial> <key>", "remove"),
 * records them and answers "ok", so the station coupling is tested here
 * without a PC/SC stack.
 */
static struct {
    int fd;
    pthread_t thread;
    pthread_mutex_t lock;
    char path[300];
    char chip_dir[300];
    char last[256];
    unsigned int lines;
} reader = { .fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER };

static void *reader_thread(void *arg)
{
    (void)arg;
    for (;;) {
        char buf[256];
        ssize_t n;
        int fd = accept(reader.fd, NULL, NULL);

        if (fd < 0)
            return NULL;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n > 0) {
            buf[n] = '\0';
            buf[strcspn(buf, "\n")] = '\0';
            pthread_mutex_lock(&reader.lock);
            snprintf(reader.last, sizeof(reader.last), "%s", buf);
            reader.lines++;
            pthread_mutex_unlock(&reader.lock);
            if (write(fd, "ok\n", 3) != 3)
                fprintf(stderr, "reader stand-in: reply lost\n");
        }
        close(fd);
    }
}

static int reader_start(const char *dir)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    snprintf(reader.path, sizeof(reader.path), "%s/reader", dir);
    snprintf(reader.chip_dir, sizeof(reader.chip_dir), "%s/chips", dir);
    if (mkdir(reader.chip_dir, 0755) < 0 || strlen(reader.path) >= sizeof(sa.sun_path))
        return -1;
    strcpy(sa.sun_path, reader.path);
    reader.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (reader.fd < 0 || bind(reader.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(reader.fd, 4) < 0)
        return -1;
    return pthread_create(&reader.thread, NULL, reader_thread, NULL) ? -1 : 0;
}

static void reader_stop(void)
{
    if (reader.fd < 0)
        return;
    shutdown(reader.fd, SHUT_RDWR);
    pthread_join(reader.thread, NULL);
    close(reader.fd);
    reader.fd = -1;
}

static void reader_last(char *out, size_t size)
{
    pthread_mutex_lock(&reader.lock);
    snprintf(out, size, "%s", reader.last);
    pthread_mutex_unlock(&reader.lock);
}

static char reader_dir[] = "/tmp/it_printer_reader.XXXXXX";

static char hopper2[320], control2[320];

static int group_setup(void **state)
{
    char first[16];
    const char *args[] = { "--card-control",  reader.path,      "--chip-dir",
                           reader.chip_dir,   "--first-serial", first,
                           "--transport-key", TRANSPORT_KEY,    "--serial",
                           SERIAL2,           "--hopper",       hopper2,
                           "--control",       control2,         NULL };

    (void)state;
    snprintf(first, sizeof(first), "%u", FIRST_CARD_SERIAL);
    if (!mkdtemp(reader_dir) || reader_start(reader_dir))
        return -1;
    snprintf(hopper2, sizeof(hopper2), "%s/hopper2", reader_dir);
    snprintf(control2, sizeof(control2), "%s/control2", reader_dir);
    return usb_env_start(&env, SERIAL, args) ? -1 : 0;
}

static int group_teardown(void **state)
{
    char cmd[512];

    (void)state;
    usb_env_stop(&env);
    reader_stop();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", reader_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "it_printer: cannot remove %s\n", reader_dir);
    return 0;
}

static void control(const char *line)
{
    char reply[256];

    assert_int_equal(usb_env_control(&env, line, reply, sizeof(reply)), 0);
}

/* A printer ready for a test: faults off, card path cleared. */
static struct printer *open_ready(unsigned int timeout_ms)
{
    struct printer *p = NULL;

    control("clear");
    assert_int_equal(printer_open(VID, PID, SERIAL, timeout_ms, &p), 0);
    assert_int_equal(printer_reset(p, NULL), 0);
    return p;
}

static struct face_data sample(void)
{
    struct face_data d = {
        .kind = FACE_NATIONAL_ID,
        .name_ar = "محمد عبدالله القحطاني",
        .name_latin = "MOHAMMED ABDULLAH ALQAHTANI",
        .national_id = "1012345678",
        .birth_date = "1985-03-14",
        .expiry_date = "2031-11-26",
        .card_serial = "A00012345",
    };
    return d;
}

static unsigned int cards_done(void)
{
    char reply[256];
    const char *c;

    assert_int_equal(usb_env_control(&env, "status", reply, sizeof(reply)), 0);
    c = strstr(reply, "cards=");
    assert_non_null(c);
    return (unsigned int)strtoul(c + 6, NULL, 10);
}

static void test_open_and_status(void **state)
{
    struct printer *p = NULL;
    struct printer_status st;

    (void)state;
    p = open_ready(2000);
    assert_int_equal(printer_status(p, &st), 0);
    assert_string_equal(st.serial, SERIAL);
    assert_true(st.firmware[0] != '\0');
    assert_false(st.card_inside);
    assert_int_equal(st.fault, PRINTER_FAULT_NONE);
    /* One owner at a time: a second handle finds the printer taken. */
    struct printer *again = NULL;
    assert_int_equal(printer_open(VID, PID, SERIAL, 2000, &again), -EBUSY);
    assert_null(again);
    printer_close(p);

    p = NULL;
    assert_int_equal(printer_open(VID, PID, "NO-SUCH-SERIAL", 2000, &p), -ENODEV);
    assert_null(p);
    assert_int_equal(printer_open(0x1234, 0x5678, SERIAL, 2000, &p), -ENODEV);
    assert_int_equal(printer_open(VID, PID, NULL, 2000, &p), -EINVAL);
    printer_close(NULL);
}

/* Pixel-wise comparison of the hopper PNG with the rendered face: the
 * 5-bit levels lose at most 8 per channel. */
static void assert_png_matches(const char *path, const struct face_image *img)
{
    assert_int_equal(face_png_mismatches(path, img), 0);
}

static void print_one(struct printer *p, bool reject, struct face_image **img_out)
{
    struct face_data d = sample();
    struct face_image *img = NULL;
    struct printer_panels panels = { 0 };
    struct printer_status st;
    enum printer_fault fault;

    assert_int_equal(face_render(&d, &img), 0);
    assert_int_equal(face_to_panels(img, &panels), 0);
    assert_int_equal(printer_feed_to_chip(p, &fault), 0);
    assert_int_equal(fault, PRINTER_FAULT_NONE);
    assert_int_equal(printer_status(p, &st), 0);
    assert_true(st.card_inside);
    assert_int_equal(printer_print_front(p, &panels, &fault), 0);
    if (reject)
        assert_int_equal(printer_reject(p, &fault), 0);
    else
        assert_int_equal(printer_eject(p, &fault), 0);
    assert_int_equal(printer_status(p, &st), 0);
    assert_false(st.card_inside);
    face_panels_free(&panels);
    *img_out = img;
}

/* The station thread writes the hopper just before the answer to Se/Ser,
 * so the file is there when the call returns. */
static void test_job_leaves_face_in_hopper(void **state)
{
    struct printer *p = NULL;
    struct face_image *img = NULL;
    char path[512];
    unsigned int n;

    (void)state;
    p = open_ready(5000);
    print_one(p, false, &img);
    n = cards_done();
    snprintf(path, sizeof(path), "%s/%u-front.png", env.hopper, n);
    assert_png_matches(path, img);
    face_image_free(img);
    printer_close(p);
}

/* Sis puts a card in the reader before it is acknowledged, Se takes it
 * out; what the chip received is filed next to the face. */
static void test_station_moves_card_through_reader(void **state)
{
    struct printer *p = NULL;
    enum printer_fault fault;
    char last[256], expect[256], path[512];
    unsigned long serial;
    struct stat sb;
    unsigned int n;
    FILE *f;

    (void)state;
    p = open_ready(5000);
    assert_int_equal(printer_feed_to_chip(p, &fault), 0);
    reader_last(last, sizeof(last));
    assert_int_equal(sscanf(last, "insert %lu", &serial), 1);
    assert_true(serial >= FIRST_CARD_SERIAL);
    snprintf(expect, sizeof(expect), "insert %lu %s", serial, TRANSPORT_KEY);
    assert_string_equal(last, expect);

    /* What the card emulator would have recorded for this card. */
    snprintf(path, sizeof(path), "%s/%lu", reader.chip_dir, serial);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/%lu/0101.bin", reader.chip_dir, serial);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("DG1", f);
    fclose(f);

    assert_int_equal(printer_eject(p, &fault), 0);
    reader_last(last, sizeof(last));
    assert_string_equal(last, "remove");
    n = cards_done();
    snprintf(path, sizeof(path), "%s/%u-chip/0101.bin", env.hopper, n);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, 3);

    /* The next card gets the next serial; a reject also takes it out. */
    assert_int_equal(printer_feed_to_chip(p, &fault), 0);
    reader_last(last, sizeof(last));
    snprintf(expect, sizeof(expect), "insert %lu %s", serial + 1, TRANSPORT_KEY);
    assert_string_equal(last, expect);
    assert_int_equal(printer_reject(p, &fault), 0);
    reader_last(last, sizeof(last));
    assert_string_equal(last, "remove");
    printer_close(p);
}

static void test_reject_goes_to_reject_box(void **state)
{
    struct printer *p = NULL;
    struct face_image *img = NULL;
    char path[512];
    struct stat sb;
    unsigned int n;

    (void)state;
    p = open_ready(5000);
    print_one(p, true, &img);
    n = cards_done();
    snprintf(path, sizeof(path), "%s/reject/%u-front.png", env.hopper, n);
    assert_png_matches(path, img);
    snprintf(path, sizeof(path), "%s/reject/%u.txt", env.hopper, n);
    assert_int_equal(stat(path, &sb), 0);
    snprintf(path, sizeof(path), "%s/%u-front.png", env.hopper, n);
    assert_int_equal(stat(path, &sb), -1);
    face_image_free(img);
    printer_close(p);
}

/* Every NACK code the printer can send, on the command it answers. */
static void test_every_nack_code(void **state)
{
    static const struct {
        const char *code;
        enum printer_fault fault;
    } cases[] = {
        { "1", PRINTER_FAULT_COMMAND_ERROR }, { "2", PRINTER_FAULT_COMMAND_ERROR },
        { "T", PRINTER_FAULT_CARD_JAM },      { "C", PRINTER_FAULT_COVER_OPEN },
        { "F", PRINTER_FAULT_FEEDER_EMPTY },  { "R", PRINTER_FAULT_RIBBON_OUT },
    };
    struct printer *p = NULL;

    (void)state;
    p = open_ready(2000);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum printer_fault fault = PRINTER_FAULT_NONE;
        char line[32];

        snprintf(line, sizeof(line), "fault nack %s", cases[i].code);
        control(line);
        assert_int_equal(printer_feed_to_chip(p, &fault), PRINTER_E_FAULT);
        assert_int_equal(fault, cases[i].fault);
        assert_string_not_equal(printer_fault_name(fault), "unknown");
        assert_int_equal(printer_reset(p, NULL), 0);
    }
    printer_close(p);
}

/* Answers the driver cannot read are protocol errors, and leave the card
 * for an operator: nobody knows what the printer did. */
static void test_garbled_answers(void **state)
{
    static const char *const replies[] = { "NACK;Z", "NACK", "NACK;TT", "BANANA" };
    struct printer *p = NULL;
    struct printer_status st;

    (void)state;
    p = open_ready(2000);
    for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
        enum printer_fault fault = PRINTER_FAULT_NONE;
        char line[64];
        int rc;

        snprintf(line, sizeof(line), "fault reply %s", replies[i]);
        control(line);
        rc = printer_feed_to_chip(p, &fault);
        assert_int_equal(rc, -EPROTO);
        assert_int_equal(printer_card_fate(rc, fault, false), PRINTER_CARD_OPERATOR);
        assert_int_equal(printer_reset(p, NULL), 0);
    }
    /* A read answered with a string longer than its field. */
    control("fault reply SERIAL-NUMBER-MUCH-LONGER-THAN-THIRTY-ONE-CHARS");
    assert_int_equal(printer_status(p, &st), -EPROTO);
    assert_int_equal(printer_status(p, &st), 0);
    printer_close(p);
}

/* Faults as states: each stops the step it concerns and shows in status. */
static void test_station_faults(void **state)
{
    static const struct {
        const char *fault;
        enum printer_fault expect;
    } cases[] = {
        { "cover_open", PRINTER_FAULT_COVER_OPEN },
        { "ribbon_out", PRINTER_FAULT_RIBBON_OUT },
        { "feeder_empty", PRINTER_FAULT_FEEDER_EMPTY },
        { "jam", PRINTER_FAULT_CARD_JAM },
    };
    struct printer *p = NULL;

    (void)state;
    p = open_ready(2000);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum printer_fault fault = PRINTER_FAULT_NONE;
        struct printer_status st;
        char line[64];

        snprintf(line, sizeof(line), "fault %s", cases[i].fault);
        control(line);
        assert_int_equal(printer_feed_to_chip(p, &fault), PRINTER_E_FAULT);
        assert_int_equal(fault, cases[i].expect);
        assert_int_equal(printer_status(p, &st), 0);
        assert_int_equal(st.fault, cases[i].expect);
        control("clear");
        assert_int_equal(printer_reset(p, &fault), 0);
        assert_int_equal(printer_status(p, &st), 0);
        assert_int_equal(st.fault, PRINTER_FAULT_NONE);
        assert_false(st.card_inside);
    }

    /* Ribbon runs out after the card reached the chip station: the end
	 * of the sequence is refused and the card stays in for a reject. */
    enum printer_fault fault;
    assert_int_equal(printer_feed_to_chip(p, &fault), 0);
    control("fault ribbon_out");
    assert_int_equal(printer_eject(p, &fault), PRINTER_E_FAULT);
    assert_int_equal(fault, PRINTER_FAULT_RIBBON_OUT);
    assert_int_equal(printer_reject(p, &fault), 0);
    control("clear");
    printer_close(p);
}

static void test_timeout_then_recovers(void **state)
{
    struct printer *p = NULL;
    struct printer_status st;
    enum printer_fault fault;
    struct timespec t0, t1;

    (void)state;
    p = open_ready(300);
    control("fault hang");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(printer_feed_to_chip(p, &fault), -ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 3);
    assert_false(printer_is_gone(p));
    control("clear");
    assert_int_equal(printer_status(p, &st), 0);
    assert_string_equal(st.serial, SERIAL);
    printer_close(p);
}

static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static double now_seconds(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A realistic print cycle: the job waits for it, and the waiting costs
 * next to no CPU (libusb would otherwise spin on the device node). */
static void test_print_cycle_does_not_spin(void **state)
{
    struct printer *p = NULL;
    enum printer_fault fault;
    double t0, c0, wall, cpu;

    (void)state;
    p = open_ready(5000);
    /* The cycle runs from feed to eject. */
    control("cycle 600");
    t0 = now_seconds();
    c0 = cpu_seconds();
    assert_int_equal(printer_feed_to_chip(p, &fault), 0);
    assert_int_equal(printer_eject(p, &fault), 0);
    wall = now_seconds() - t0;
    cpu = cpu_seconds() - c0;
    control("cycle 0");
    assert_true(wall >= 0.6);
    /* Spinning through 600 ms would take most of that in CPU. */
    assert_true(cpu < 0.1);
    printer_close(p);
}

struct station_run {
    const char *serial;
    int rc;
};

static void *run_station_job(void *arg)
{
    struct station_run *run = arg;
    struct printer *p = NULL;
    struct face_data d = sample();
    struct face_image *img = NULL;
    struct printer_panels panels = { 0 };
    enum printer_fault fault;

    run->rc = face_render(&d, &img);
    if (!run->rc)
        run->rc = face_to_panels(img, &panels);
    if (!run->rc)
        run->rc = printer_open(VID, PID, run->serial, 5000, &p);
    if (!run->rc)
        run->rc = printer_feed_to_chip(p, &fault);
    if (!run->rc)
        run->rc = printer_print_front(p, &panels, &fault);
    if (!run->rc)
        run->rc = printer_eject(p, &fault);
    printer_close(p);
    face_panels_free(&panels);
    face_image_free(img);
    return NULL;
}

/* Two stations on one bus, driven at once from two threads: each card
 * comes out of its own printer. */
static void test_two_stations_at_once(void **state)
{
    struct station_run runs[2] = { { .serial = SERIAL }, { .serial = SERIAL2 } };
    pthread_t t[2];
    char path[512];
    struct stat sb;

    (void)state;
    control("clear");
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, run_station_job, &runs[i]), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(runs[i].rc, 0);
    }
    snprintf(path, sizeof(path), "%s/1-front.png", hopper2);
    assert_int_equal(stat(path, &sb), 0);
}

/* Unplugged in the middle of a job: that job fails with -ENODEV on every
 * call, the other station goes on, and the printer plugged back in is
 * found again by a new open, its card still inside for a reject. */
static void test_unplug_mid_job(void **state)
{
    struct printer *p = NULL;
    struct face_data d = sample();
    struct face_image *img = NULL;
    struct printer_panels panels = { 0 };
    struct printer_status st;
    enum printer_fault fault;

    (void)state;
    p = open_ready(2000);
    assert_int_equal(face_render(&d, &img), 0);
    assert_int_equal(face_to_panels(img, &panels), 0);
    assert_int_equal(printer_feed_to_chip(p, &fault), 0);
    control("fault unplug");
    assert_int_equal(printer_print_front(p, &panels, &fault), -ENODEV);
    assert_true(printer_is_gone(p));
    assert_int_equal(printer_eject(p, &fault), -ENODEV);
    assert_int_equal(printer_reject(p, &fault), -ENODEV);
    assert_int_equal(printer_status(p, &st), -ENODEV);
    printer_close(p);
    p = NULL;
    assert_int_equal(printer_open(VID, PID, SERIAL, 2000, &p), -ENODEV);

    /* The other station on the bus is not affected. */
    assert_int_equal(printer_open(VID, PID, SERIAL2, 2000, &p), 0);
    assert_int_equal(printer_status(p, &st), 0);
    assert_string_equal(st.serial, SERIAL2);
    assert_int_equal(printer_feed_to_chip(p, &fault), 0);
    assert_int_equal(printer_print_front(p, &panels, &fault), 0);
    assert_int_equal(printer_eject(p, &fault), 0);
    printer_close(p);

    control("plug");
    p = NULL;
    assert_int_equal(printer_open(VID, PID, SERIAL, 2000, &p), 0);
    assert_int_equal(printer_status(p, &st), 0);
    assert_true(st.card_inside);
    assert_int_equal(printer_reject(p, &fault), 0);
    printer_close(p);
    face_panels_free(&panels);
    face_image_free(img);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_and_status),
        cmocka_unit_test(test_job_leaves_face_in_hopper),
        cmocka_unit_test(test_station_moves_card_through_reader),
        cmocka_unit_test(test_reject_goes_to_reject_box),
        cmocka_unit_test(test_every_nack_code),
        cmocka_unit_test(test_garbled_answers),
        cmocka_unit_test(test_station_faults),
        cmocka_unit_test(test_timeout_then_recovers),
        cmocka_unit_test(test_print_cycle_does_not_spin),
        cmocka_unit_test(test_two_stations_at_once),
        cmocka_unit_test(test_unplug_mid_job),
    };

    (void)argc;
    if (usb_env_preload(argv)) {
        fprintf(stderr, "it_printer: cannot load libumockdev-preload\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
