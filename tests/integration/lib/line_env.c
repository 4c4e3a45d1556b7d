/* line_env.c — see line_env.h. */
#include "line_env.h"
#include "harness.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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
        /* Emulators die with the test, however it ends. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static bool can_bind(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_ANY) };
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* Two consecutive free ports for a vpcd entry (vpcd binds without
 * SO_REUSEADDR, so a port in TIME_WAIT will not do either). */
static int free_port_pair(void)
{
    static unsigned seed;
    if (!seed)
        seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    for (int i = 0; i < 1000; i++) {
        int port = 20000 + (int)(rand_r(&seed) % 4000) * 10;
        if (can_bind(port) && can_bind(port + 1))
            return port;
    }
    return -1;
}

static int tcp_listening(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
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
    /* The card emulator answers "err busy" while a card is coming or going. */
    char buf[200] = "";
    int rc = -EPROTO;
    for (int i = 0; i < 500; i++) {
        rc = control(env->card_control[k], line, buf, sizeof(buf));
        if (rc == 0 || strncmp(buf, "err busy", 8) != 0)
            break;
        sleep_ms(10);
    }
    if (reply)
        snprintf(reply, len, "%s", buf);
    return rc;
}

/* Writes host h's reader.conf for a fresh vpcd port pair and starts its
 * pcscd; the client reaches it through a symbolic link of the host's own
 * (host->csock), re-pointed at each start, as a real host's clients reach
 * /run/pcscd/pcscd.comm whichever pcscd serves it. */
static int start_pcscd(struct line_env *env, int h)
{
    struct line_host *host = &env->host[h];
    char path[600], conf[300], target[300];
    int port = free_port_pair();
    if (port < 0)
        return -EADDRINUSE;
    host->vpcd_port = port;
    snprintf(conf, sizeof(conf), "%s/pcsc%d", env->dir, h);
    mkdir(conf, 0755);
    snprintf(path, sizeof(path), "%s/vpcd", conf);
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    fprintf(f,
            "FRIENDLYNAME \"Station Reader\"\nDEVICENAME   /dev/null:%d\nLIBPATH      %s\n"
            "CHANNELID    %d\n",
            port, VPCD_DRIVER, port);
    fclose(f);
    snprintf(path, sizeof(path), "%s/pcscd%d.log", env->dir, h);
    char *pargv[] = {
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mkdir -p /run/pcscd && mount -t tmpfs tmpfs /run/pcscd && exec pcscd -f -c \"$0\"",
        conf,
        NULL
    };
    host->pcscd = spawn_logged(pargv, path);
    snprintf(target, sizeof(target), "/proc/%d/root/run/pcscd/pcscd.comm", (int)host->pcscd);
    snprintf(host->csock, sizeof(host->csock), "%s/pcscd%d.comm", env->dir, h);
    char tmp[320];
    snprintf(tmp, sizeof(tmp), "%s.new", host->csock);
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, host->csock) != 0)
        return -errno;
    int i;
    for (i = 0; i < 200; i++) {
        if (access(target, F_OK) == 0 && tcp_listening(port) && tcp_listening(port + 1))
            break;
        sleep_ms(25);
    }
    if (i == 200) {
        fprintf(stderr, "line_env: pcscd of host %d did not come up (see %s)\n", h, path);
        return -ETIMEDOUT;
    }
    return 0;
}

/* Starts the emulated card of station k on its host's current vpcd port. */
static int start_card(struct line_env *env, int k)
{
    char path[600], bin[512], portstr[16];
    int h = k / LINE_STATIONS_PER_HOST, slot = k % LINE_STATIONS_PER_HOST;
    snprintf(portstr, sizeof(portstr), "%d", env->host[h].vpcd_port + slot);
    snprintf(path, sizeof(path), "%s/card%d.log", env->dir, k);
    unlink(env->card_control[k]);
    char *cargv[] = { (char *)harness_bin("emu-card", bin, sizeof(bin)),
                      "--vpcd-port",
                      portstr,
                      "--control",
                      env->card_control[k],
                      "--outdir",
                      env->chips[k],
                      NULL };
    env->card[k] = spawn_logged(cargv, path);
    for (int i = 0; i < 200 && access(env->card_control[k], F_OK) != 0; i++)
        sleep_ms(10);
    return access(env->card_control[k], F_OK) == 0 ? 0 : -ETIMEDOUT;
}

static void stop_pid(pid_t *pid, int sig)
{
    if (*pid > 0) {
        kill(*pid, sig);
        waitpid(*pid, NULL, 0);
        *pid = 0;
    }
}

int line_env_pcscd_stop(struct line_env *env, int h)
{
    if (h < 0 || h >= env->hosts)
        return -EINVAL;
    stop_pid(&env->host[h].pcscd, SIGKILL);
    return 0;
}

int line_env_pcscd_start(struct line_env *env, int h)
{
    if (h < 0 || h >= env->hosts || env->host[h].pcscd > 0)
        return -EINVAL;
    /* A port the killed vpcd had a card connected on may sit in TIME_WAIT:
     * the new pcscd gets new ports, and the host's cards follow them. */
    int first = h * LINE_STATIONS_PER_HOST;
    for (int k = first; k < first + LINE_STATIONS_PER_HOST && k < env->n; k++)
        stop_pid(&env->card[k], SIGTERM);
    int rc = start_pcscd(env, h);
    for (int k = first; !rc && k < first + LINE_STATIONS_PER_HOST && k < env->n; k++)
        rc = start_card(env, k);
    return rc;
}

/* Starts host h: its pcscd with one vpcd entry (two readers), the two
 * emulated cards and the emu-printer holding its stations. */
static int start_host(struct line_env *env, int h, int cycle_ms)
{
    struct line_host *host = &env->host[h];
    int rc = start_pcscd(env, h);
    if (rc)
        return rc;

    const char *extra[64];
    int ne = 0;
    char cycle[16];
    snprintf(cycle, sizeof(cycle), "%d", cycle_ms);
    int first = h * LINE_STATIONS_PER_HOST;
    for (int k = first; k < first + LINE_STATIONS_PER_HOST && k < env->n; k++) {
        int slot = k - first;
        snprintf(env->reader[k], sizeof(env->reader[k]), "Station Reader 00 %02d", slot);
        snprintf(env->serial[k], sizeof(env->serial[k]), "EVO-%04d", k + 1);
        snprintf(env->card_control[k], sizeof(env->card_control[k]), "%s/card%d.sock", env->dir, k);
        snprintf(env->chips[k], sizeof(env->chips[k]), "%s/chips%d", env->dir, k);
        snprintf(env->hopper[k], sizeof(env->hopper[k]), "%s/hopper%d", env->dir, k);
        snprintf(env->printer_control[k], sizeof(env->printer_control[k]), "%s/printer%d.sock",
                 env->dir, k);
        mkdir(env->chips[k], 0755);
        start_card(env, k);
        if (slot > 0) {
            extra[ne++] = "--serial";
            extra[ne++] = env->serial[k];
            extra[ne++] = "--hopper";
            extra[ne++] = env->hopper[k];
            extra[ne++] = "--control";
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
    rc = usb_env_start(&host->usb, env->serial[first], extra);
    if (rc) {
        fprintf(stderr, "line_env: emu-printer of host %d did not start (%d)\n", h, rc);
        return rc;
    }
    memcpy(env->printer_control[first], host->usb.control, sizeof(env->printer_control[first]));
    memcpy(env->hopper[first], host->usb.hopper, sizeof(env->hopper[first]));
    unsetenv("UMOCKDEV_DIR"); /* only the service under test gets it */
    return 0;
}

int line_env_start(struct line_env *env, int n, int cycle_ms)
{
    memset(env, 0, sizeof(*env));
    env->n = n;
    env->hosts = (n + LINE_STATIONS_PER_HOST - 1) / LINE_STATIONS_PER_HOST;
    snprintf(env->dir, sizeof(env->dir), "/tmp/cardd-line-XXXXXX");
    if (n < 1 || n > LINE_MAX_STATIONS || !mkdtemp(env->dir))
        return -EINVAL;
    snprintf(env->transport_key, sizeof(env->transport_key), "0102030405060708");
    for (int h = 0; h < env->hosts; h++) {
        int rc = start_host(env, h, cycle_ms);
        if (rc)
            return rc;
    }
    return 0;
}

void line_env_config(const struct line_env *env, int h, const char *prefix, char *out, size_t len)
{
    size_t used = (size_t)snprintf(out, len, "instance = host%d\n", h + 1);
    int first = h * LINE_STATIONS_PER_HOST;
    for (int k = first; k < first + LINE_STATIONS_PER_HOST && k < env->n; k++)
        used += (size_t)snprintf(out + used, len > used ? len - used : 0,
                                 "station = %s%d evolis %s %s\n", prefix, k + 1, env->serial[k],
                                 env->reader[k]);
}

int line_env_keys(const struct line_env *env, const char *keys_dir, const char *batch_no)
{
    char path[600];
    if (harness_ds_files(keys_dir) != 0)
        return -EIO;
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

void line_env_export(const struct line_env *env, int h)
{
    usb_env_preload_export();
    setenv("UMOCKDEV_DIR", env->host[h].usb.umockdev_dir, 1);
    setenv("PCSCLITE_CSOCK_NAME", env->host[h].csock, 1);
}

void line_env_unexport(void)
{
    usb_env_preload_unexport();
    unsetenv("UMOCKDEV_DIR");
    unsetenv("PCSCLITE_CSOCK_NAME");
}

void line_env_stop(struct line_env *env)
{
    for (int h = 0; h < env->hosts; h++)
        usb_env_stop(&env->host[h].usb);
    for (int k = 0; k < env->n; k++) {
        if (env->card[k] > 0) {
            kill(env->card[k], SIGTERM);
            waitpid(env->card[k], NULL, 0);
            env->card[k] = 0;
        }
    }
    for (int h = 0; h < env->hosts; h++) {
        if (env->host[h].pcscd > 0) {
            kill(env->host[h].pcscd, SIGTERM);
            waitpid(env->host[h].pcscd, NULL, 0);
            env->host[h].pcscd = 0;
        }
    }
    if (env->dir[0] && !getenv("LINE_ENV_KEEP")) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", env->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "line_env: could not remove %s\n", env->dir);
    }
}
