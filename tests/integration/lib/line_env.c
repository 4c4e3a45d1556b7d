/* line_env.c — see line_env.h. */
#include "line_env.h"
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VPCD_DRIVER "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static pid_t spawn_logged(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        setpgid(0, 0);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* A base port with n*10 free ports after it, chosen from the pid so that
 * parallel test binaries do not collide. */
static int base_port(void)
{
    return 20000 + (int)(getpid() % 2000) * 10;
}

static int tcp_listening(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static int control(const char *path, const char *line, char *reply, size_t len)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -errno;
    }
    char buf[600];
    snprintf(buf, sizeof(buf), "%s\n", line);
    if (write(fd, buf, strlen(buf)) < 0) {
        close(fd);
        return -EIO;
    }
    size_t used = 0;
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (used < sizeof(buf) - 1) {
        ssize_t n = read(fd, buf + used, sizeof(buf) - 1 - used);
        if (n <= 0)
            break;
        used += (size_t)n;
        buf[used] = '\0';
        if (strchr(buf, '\n'))
            break;
    }
    close(fd);
    buf[used] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    if (reply)
        snprintf(reply, len, "%s", buf);
    return strncmp(buf, "ok", 2) == 0 ? 0 : -EPROTO;
}

int line_env_printer(const struct line_env *env, int k, const char *line, char *reply, size_t len)
{
    return control(env->printer_control[k], line, reply, len);
}

int line_env_card(const struct line_env *env, int k, const char *line, char *reply, size_t len)
{
    return control(env->card_control[k], line, reply, len);
}

int line_env_start(struct line_env *env, int n, int cycle_ms)
{
    char path[600], bin[512], conf[300];
    memset(env, 0, sizeof(*env));
    env->n = n;
    snprintf(env->dir, sizeof(env->dir), "/tmp/cardd-line-XXXXXX");
    if (n < 1 || n > LINE_MAX_STATIONS || !mkdtemp(env->dir))
        return -EINVAL;
    snprintf(conf, sizeof(conf), "%s/pcsc", env->dir);
    mkdir(conf, 0755);
    snprintf(env->transport_key, sizeof(env->transport_key), "0102030405060708");

    /* Each vpcd entry gives two readers, "<name> 00 00" and "<name> 00 01",
     * on its port and the next; the names must differ between entries.
     * A station uses the first reader of an entry of its own. */
    int base = base_port();
    for (int e = 0; e < n; e++) {
        snprintf(path, sizeof(path), "%s/vpcd%d", conf, e);
        FILE *f = fopen(path, "w");
        if (!f)
            return -errno;
        fprintf(f, "FRIENDLYNAME \"Station Reader %d\"\nDEVICENAME   /dev/null:%d\nLIBPATH      %s\n"
                   "CHANNELID    %d\n", e + 1, base + 10 * e, VPCD_DRIVER, base + 10 * e);
        fclose(f);
    }
    snprintf(path, sizeof(path), "%s/pcscd.log", env->dir);
    char *pargv[] = { "unshare", "-m", "--propagation", "private", "sh", "-c",
                      "mkdir -p /run/pcscd && mount -t tmpfs tmpfs /run/pcscd && exec pcscd -f -c \"$0\"",
                      conf, NULL };
    env->pcscd = spawn_logged(pargv, path);
    snprintf(env->csock, sizeof(env->csock), "/proc/%d/root/run/pcscd/pcscd.comm", (int)env->pcscd);
    int i;
    for (i = 0; i < 200; i++) {
        if (access(env->csock, F_OK) == 0 && tcp_listening(base + 10 * (n - 1)))
            break;
        sleep_ms(25);
    }
    if (i == 200) {
        fprintf(stderr, "line_env: pcscd did not come up (see %s/pcscd.log)\n", env->dir);
        return -ETIMEDOUT;
    }

    const char *extra[200];
    int ne = 0;
    char cycle[16];
    snprintf(cycle, sizeof(cycle), "%d", cycle_ms);
    for (int k = 0; k < n; k++) {
        int port = base + 10 * k;
        snprintf(env->reader[k], sizeof(env->reader[k]), "Station Reader %d 00 00", k + 1);
        snprintf(env->serial[k], sizeof(env->serial[k]), "EVO-%04d", k + 1);
        snprintf(env->card_control[k], sizeof(env->card_control[k]), "%s/card%d.sock", env->dir, k);
        snprintf(env->chips[k], sizeof(env->chips[k]), "%s/chips%d", env->dir, k);
        snprintf(env->hopper[k], sizeof(env->hopper[k]), "%s/hopper%d", env->dir, k);
        mkdir(env->chips[k], 0755);
        char portstr[16];
        snprintf(portstr, sizeof(portstr), "%d", port);
        snprintf(path, sizeof(path), "%s/card%d.log", env->dir, k);
        char *cargv[] = { (char *)harness_bin("emu-card", bin, sizeof(bin)), "--vpcd-port", portstr,
                          "--control", env->card_control[k], "--outdir", env->chips[k], NULL };
        env->card[k] = spawn_logged(cargv, path);
        for (i = 0; i < 200 && access(env->card_control[k], F_OK) != 0; i++)
            sleep_ms(10);
        if (k > 0) {
            extra[ne++] = "--serial";
            extra[ne++] = env->serial[k];
            extra[ne++] = "--hopper";
            extra[ne++] = env->hopper[k];
            extra[ne++] = "--control";
            snprintf(env->printer_control[k], sizeof(env->printer_control[k]), "%s/printer%d.sock",
                     env->dir, k);
            extra[ne++] = env->printer_control[k];
        }
        extra[ne++] = "--card-control";
        extra[ne++] = env->card_control[k];
        extra[ne++] = "--transport-key";
        extra[ne++] = env->transport_key;
        extra[ne++] = "--chip-dir";
        extra[ne++] = env->chips[k];
        if (cycle_ms > 0) {
            extra[ne++] = "--cycle-ms";
            extra[ne++] = cycle;
        }
    }
    extra[ne] = NULL;
    int rc = usb_env_start(&env->usb, env->serial[0], extra);
    if (rc) {
        fprintf(stderr, "line_env: emu-printer did not start (%d)\n", rc);
        return rc;
    }
    snprintf(env->printer_control[0], sizeof(env->printer_control[0]), "%s", env->usb.control);
    snprintf(env->hopper[0], sizeof(env->hopper[0]), "%s", env->usb.hopper);
    unsetenv("UMOCKDEV_DIR");   /* only the service under test gets it */
    return 0;
}

void line_env_config(const struct line_env *env, int first, int count, const char *prefix,
                     char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (int k = first; k < first + count && k < env->n; k++)
        used += (size_t)snprintf(out + used, len > used ? len - used : 0,
                                 "station = %s%d evolis %s %s\n", prefix, k + 1, env->serial[k],
                                 env->reader[k]);
}

int line_env_keys(const struct line_env *env, const char *keys_dir, const char *batch_no)
{
    char cmd[2048], path[600], script[512];
    snprintf(cmd, sizeof(cmd), "sh %s %s/pki >/dev/null 2>&1 && cp %s/pki/ds.key %s/pki/ds.pem %s/pki/csca.pem %s/",
             harness_src("tests/make-test-pki.sh", script, sizeof(script)), keys_dir, keys_dir,
             keys_dir, keys_dir, keys_dir);
    if (system(cmd) != 0)
        return -EIO;
    snprintf(path, sizeof(path), "%s/ds.key", keys_dir);
    chmod(path, 0600);
    snprintf(path, sizeof(path), "%s/transport", keys_dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/transport/%s.key", keys_dir, batch_no);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, env->transport_key, 16);
    close(fd);
    return w == 16 ? 0 : -EIO;
}

void line_env_export(const struct line_env *env)
{
    setenv("LD_PRELOAD", "libumockdev-preload.so.0", 1);
    setenv("UMOCKDEV_DIR", env->usb.umockdev_dir, 1);
    setenv("PCSCLITE_CSOCK_NAME", env->csock, 1);
}

void line_env_unexport(void)
{
    unsetenv("LD_PRELOAD");
    unsetenv("UMOCKDEV_DIR");
}

void line_env_stop(struct line_env *env)
{
    usb_env_stop(&env->usb);
    for (int k = 0; k < env->n; k++) {
        if (env->card[k] > 0) {
            kill(env->card[k], SIGTERM);
            waitpid(env->card[k], NULL, 0);
            env->card[k] = 0;
        }
    }
    if (env->pcscd > 0) {
        kill(env->pcscd, SIGTERM);
        waitpid(env->pcscd, NULL, 0);
        env->pcscd = 0;
    }
    if (env->dir[0] && !getenv("LINE_ENV_KEEP")) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", env->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "line_env: could not remove %s\n", env->dir);
    }
}
