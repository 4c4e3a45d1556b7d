/* harness.c — see harness.h. */
#include "harness.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *harness_bin(const char *name, char *buf, size_t len)
{
    const char *root = getenv("CARDD_ROOT");
    const char *build = getenv("BUILD");
    snprintf(buf, len, "%s/%s/%s", root ? root : ".", build ? build : "build", name);
    return buf;
}

const char *harness_src(const char *rel, char *buf, size_t len)
{
    const char *root = getenv("CARDD_ROOT");
    snprintf(buf, len, "%s/%s", root ? root : ".", rel);
    return buf;
}

/* The two roles of the service's database (README, Security model): the
 * owner, which migrates, and the service's role, which reads and writes
 * rows and nothing more. Roles belong to the whole cluster; each test's
 * database is owned by the owner role. */
#define IT_OWNER            "cardd_it_owner"
#define IT_OWNER_PASSWORD   "it-owner-pw"
#define IT_SERVICE          "cardd_it_service"
#define IT_SERVICE_PASSWORD "it-service-pw"

static int run_sql_as(const char *conninfo, const char *sql, char *out, size_t outlen)
{
    PGconn *c = PQconnectdb(conninfo);
    int rc = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK) {
            rc = 0;
            if (out && outlen) {
                out[0] = '\0';
                if (PQntuples(r) > 0 && PQnfields(r) > 0)
                    snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
            }
        } else {
            fprintf(stderr, "harness: SQL failed: %s\n", PQerrorMessage(c));
        }
        PQclear(r);
    } else {
        fprintf(stderr, "harness: cannot connect: %s\n", PQerrorMessage(c));
    }
    PQfinish(c);
    return rc;
}

static int run_sql_in(const char *dbname, const char *sql, char *out, size_t outlen)
{
    char conninfo[256];
    snprintf(conninfo, sizeof(conninfo), "dbname=%s", dbname);
    return run_sql_as(conninfo, sql, out, outlen);
}

int harness_sql(char *out, size_t outlen, const char *sql)
{
    const char *db = getenv("PGDATABASE");
    return run_sql_in(db ? db : "postgres", sql, out, outlen);
}

/* A connection string for the test database as one of the two roles. */
static void role_conninfo(bool owner, char *out, size_t len)
{
    const char *db = getenv("PGDATABASE");
    snprintf(out, len, "dbname=%s user=%s password=%s", db ? db : "postgres",
             owner ? IT_OWNER : IT_SERVICE, owner ? IT_OWNER_PASSWORD : IT_SERVICE_PASSWORD);
}

int harness_sql_as_service(char *out, size_t outlen, const char *sql)
{
    char conninfo[256];
    role_conninfo(false, conninfo, sizeof(conninfo));
    return run_sql_as(conninfo, sql, out, outlen);
}

int harness_sql_as_owner(char *out, size_t outlen, const char *sql)
{
    char conninfo[256];
    role_conninfo(true, conninfo, sizeof(conninfo));
    return run_sql_as(conninfo, sql, out, outlen);
}

/* Creates the two roles once per cluster (another test binary may have). */
static int ensure_roles(void)
{
    static const char sql[] =
        "DO $$ BEGIN"
        " IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '" IT_OWNER "') THEN"
        "  CREATE ROLE " IT_OWNER " LOGIN PASSWORD '" IT_OWNER_PASSWORD "';"
        " END IF;"
        " IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '" IT_SERVICE "') THEN"
        "  CREATE ROLE " IT_SERVICE " LOGIN PASSWORD '" IT_SERVICE_PASSWORD "';"
        " END IF; END $$";
    for (int attempt = 0; attempt < 3; attempt++)
        if (run_sql_in("postgres", sql, NULL, 0) == 0)
            return 0;
    return -1;
}

long harness_sql_long(const char *fmt, ...)
{
    char sql[2048], out[64] = "";
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(sql) || harness_sql(out, sizeof(out), sql) != 0)
        return -1;
    return atol(out);
}

int harness_ds_files(const char *keys_dir)
{
    char cmd[2048], path[600], script[512];
    snprintf(cmd, sizeof(cmd),
             "sh %s %s/pki >/dev/null 2>&1 && cp %s/pki/ds.key %s/pki/ds.pem %s/pki/csca.pem %s/",
             harness_src("tests/make-test-pki.sh", script, sizeof(script)), keys_dir, keys_dir,
             keys_dir, keys_dir, keys_dir);
    if (system(cmd) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/ds.key", keys_dir);
    return chmod(path, 0600) == 0 ? 0 : -1;
}

unsigned char *harness_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0)
        buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0'; /* a text file can be read as a string */
        *len = (size_t)n;
    }
    return buf;
}

bool harness_wait_sql(int seconds, const char *fmt, ...)
{
    char sql[2048], out[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(sql))
        return false;
    for (int i = 0; i < seconds * 10; i++) {
        out[0] = '\0';
        if (harness_sql(out, sizeof(out), sql) == 0 && atol(out) > 0)
            return true;
        usleep(100000);
    }
    return false;
}

/* Runs argv; input (may be NULL: stdin is inherited) is what it reads on
 * its standard input. Its standard output (and its standard error too when
 * with_stderr) is copied to out, trimmed. Returns the exit status. */
static int run_process_input(char *const argv[], const char *input, bool with_stderr, char *out,
                             size_t outlen)
{
    int pipefd[2], infd[2] = { -1, -1 };
    if (pipe(pipefd) != 0)
        return -1;
    if (input && pipe(infd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (input) {
            dup2(infd[0], 0);
            close(infd[0]);
            close(infd[1]);
        }
        dup2(pipefd[1], 1);
        if (with_stderr)
            dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pipefd[1]);
    if (input) {
        close(infd[0]);
        /* A child that exits without reading must not take the test down. */
        void (*was)(int) = signal(SIGPIPE, SIG_IGN);
        size_t n = strlen(input);
        if (write(infd[1], input, n) != (ssize_t)n)
            fprintf(stderr, "harness: short write to a child's input\n");
        close(infd[1]);
        signal(SIGPIPE, was);
    }
    size_t used = 0;
    char tmp[4096];
    ssize_t n;
    while ((n = read(pipefd[0], tmp, sizeof(tmp))) > 0) {
        if (out && used + 1 < outlen) {
            size_t k = (size_t)n < outlen - 1 - used ? (size_t)n : outlen - 1 - used;
            memcpy(out + used, tmp, k);
            used += k;
        }
    }
    close(pipefd[0]);
    if (out && outlen) {
        out[used] = '\0';
        while (used > 0 && (out[used - 1] == '\n' || out[used - 1] == ' '))
            out[--used] = '\0';
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int ctl_va(struct service *svc, const char *input, char *out, size_t outlen, const char *arg,
                  va_list ap)
{
    char bin[512];
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)harness_bin("cardctl", bin, sizeof(bin));
    argv[n++] = (char *)"-c";
    argv[n++] = svc->config;
    for (const char *a = arg; a && n < 31; a = va_arg(ap, const char *))
        argv[n++] = (char *)a;
    argv[n] = NULL;
    return run_process_input(argv, input, false, out, outlen);
}

int harness_ctl(struct service *svc, char *out, size_t outlen, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    int rc = ctl_va(svc, NULL, out, outlen, arg, ap);
    va_end(ap);
    return rc;
}

int harness_ctl_input(struct service *svc, const char *input, char *out, size_t outlen,
                      const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    int rc = ctl_va(svc, input, out, outlen, arg, ap);
    va_end(ap);
    return rc;
}

int harness_token(struct service *svc, const char *role, const char *name, char *token, size_t len)
{
    return harness_ctl(svc, token, len, "token", "create", "--role", role, "--name", name, NULL) ==
                   0
               ? 0
               : -1;
}

int harness_branch_token(struct service *svc, const char *branch, const char *name, char *token,
                         size_t len)
{
    return harness_ctl(svc, token, len, "token", "create", "--role", "branch", "--branch", branch,
                       "--name", name, NULL) == 0
               ? 0
               : -1;
}

/* Makes svc's private folder and config; keys and the master key live in
 * keys_owner's folder (svc's own when it is svc). */
static int write_service_config(struct service *svc, const char *keys_owner,
                                const char *extra_config)
{
    char path[512];
    snprintf(svc->dir, sizeof(svc->dir), "/tmp/cardd-it-XXXXXX");
    if (!mkdtemp(svc->dir))
        return -1;
    snprintf(svc->config, sizeof(svc->config), "%s/cardd.conf", svc->dir);
    snprintf(svc->log, sizeof(svc->log), "%s/cardd.log", svc->dir);
    FILE *f = fopen(svc->config, "w");
    if (!f)
        return -1;
    if (!keys_owner)
        keys_owner = svc->dir;
    char service[256], owner[256];
    role_conninfo(false, service, sizeof(service));
    role_conninfo(true, owner, sizeof(owner));
    fprintf(f,
            "port = 0\nsql_dir = %s\nmaster_key_file = %s/master.key\nkeys_dir = %s\n"
            "log_level = info\ndatabase = %s\nmigrate_database = %s\nservice_role = %s\n"
            /* The test PKI's key is a file; a test of the token says signer = pkcs11. */
            "signer = file\nallow_file_signer = 1\n",
            harness_src("sql", path, sizeof(path)), keys_owner, keys_owner, service, owner,
            IT_SERVICE);
    if (extra_config)
        fputs(extra_config, f);
    fclose(f);
    return 0;
}

int harness_setup_unmigrated(struct service *svc, const char *extra_config)
{
    static int counter;
    char dbname[64], sql[128];
    memset(svc, 0, sizeof(*svc));
    snprintf(dbname, sizeof(dbname), "it_%d_%d", (int)getpid(), counter++);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s OWNER " IT_OWNER, dbname);
    if (ensure_roles() != 0 || run_sql_in("postgres", sql, NULL, 0) != 0)
        return -1;
    setenv("PGDATABASE", dbname, 1);
    if (write_service_config(svc, NULL, extra_config) != 0)
        return -1;

    char out[256];
    if (harness_ctl(svc, out, sizeof(out), "keys", "init", NULL) != 0)
        return -1;
    return 0;
}

int harness_migrate(struct service *svc, char *out, size_t outlen)
{
    char bin[512];
    char *argv[] = { (char *)harness_bin("cardd", bin, sizeof(bin)), (char *)"-c", svc->config,
                     (char *)"migrate", NULL };
    return run_process_input(argv, NULL, true, out, outlen);
}

int harness_setup(struct service *svc, const char *extra_config)
{
    char out[512];
    if (harness_setup_unmigrated(svc, extra_config) != 0)
        return -1;
    if (harness_migrate(svc, out, sizeof(out)) != 0) {
        fprintf(stderr, "harness: migrate failed: %s\n", out);
        return -1;
    }
    return 0;
}

int harness_clone(const struct service *base, struct service *svc, const char *extra_config)
{
    memset(svc, 0, sizeof(*svc));
    return write_service_config(svc, base->dir, extra_config);
}

int harness_start(struct service *svc)
{
    char bin[512], portfile[300];
    snprintf(portfile, sizeof(portfile), "%s/port", svc->dir);
    unlink(portfile);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(svc->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        execl(harness_bin("cardd", bin, sizeof(bin)), "cardd", "-c", svc->config, "serve",
              "--port-file", portfile, (char *)NULL);
        _exit(127);
    }
    svc->pid = pid;
    for (int i = 0; i < 1000; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            int port = 0;
            int ok = fscanf(f, "%d", &port);
            fclose(f);
            if (ok == 1 && port > 0) {
                svc->port = port;
                snprintf(svc->base, sizeof(svc->base), "http://127.0.0.1:%d", port);
                return 0;
            }
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "harness: cardd exited early; see %s\n", svc->log);
            svc->pid = 0;
            return -1;
        }
        usleep(10000);
    }
    return -1;
}

/* Looks for what the sanitizers write in the part of the service's log not
 * read yet, and copies their lines (the ones that are not the service's
 * own, which start with a time stamp) to stderr, so that the test's output
 * holds the report: a service under umockdev's preload writes its
 * ThreadSanitizer reports there (usb_env.c says why), and tests/run.sh fails
 * a test whose output holds one. */
static bool log_has_sanitizer_report(struct service *svc)
{
    FILE *f = fopen(svc->log, "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    if (fseek(f, svc->log_seen, SEEK_SET) != 0)
        rewind(f);
    while (fgets(line, sizeof(line), f))
        if (strstr(line, "Sanitizer") || strstr(line, "runtime error:"))
            found = true;
    if (found && fseek(f, svc->log_seen, SEEK_SET) == 0) {
        fprintf(stderr, "harness: sanitizer report in %s:\n", svc->log);
        while (fgets(line, sizeof(line), f))
            if (!(line[0] >= '0' && line[0] <= '9'))
                fputs(line, stderr);
    }
    long end = ftell(f);
    if (end > 0)
        svc->log_seen = end;
    fclose(f);
    return found;
}

int harness_stop(struct service *svc, bool hard)
{
    if (svc->pid <= 0)
        return 0;
    kill(svc->pid, hard ? SIGKILL : SIGTERM);
    int status = 0;
    waitpid(svc->pid, &status, 0);
    svc->pid = 0;
    if (log_has_sanitizer_report(svc))
        return -1;
    if (!hard && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        fprintf(stderr, "harness: cardd did not stop cleanly (status %d); see %s\n", status,
                svc->log);
        return -1;
    }
    return 0;
}

static bool national_id_like(const char *s)
{
    int sum = 0;
    if (s[0] != '1' && s[0] != '2')
        return false;
    for (int i = 0; i < 10; i++) {
        int d = s[i] - '0';
        if (i % 2 == 0 && (d *= 2) > 9)
            d -= 9;
        sum += d;
    }
    return sum % 10 == 0;
}

int harness_log_personal_data(const struct service *svc, char *found, size_t len)
{
    static const char *const words[] = { "MOHAMMED",      "ALQAHTANI", "القحطاني", "محمد",
                                         "Al Takhassusi", "RRRD2929",  "+9665",    "9665012" };
    FILE *f = fopen(svc->log, "r");
    if (!f) {
        snprintf(found, len, "no log at %s", svc->log);
        return 1;
    }
    char line[8192];
    int hits = 0;
    found[0] = '\0';
    while (fgets(line, sizeof(line), f)) {
        const char *what = NULL;
        for (size_t w = 0; !what && w < sizeof(words) / sizeof(words[0]); w++)
            if (strstr(line, words[w]))
                what = words[w];
        /* A run of exactly ten digits that checks out as a national ID. */
        for (size_t i = 0; !what && line[i]; i++) {
            if (i > 0 && isalnum((unsigned char)line[i - 1]))
                continue;
            size_t n = strspn(line + i, "0123456789");
            if (n == 10 && !isalnum((unsigned char)line[i + n]) && national_id_like(line + i))
                what = "a national ID";
        }
        if (what && hits++ == 0)
            snprintf(found, len, "%s in: %.80s", what, line);
    }
    fclose(f);
    return hits;
}

/* ---- HTTP ---- */

const char *harness_source_ip;

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct reply *r = userp;
    size_t n = size * nmemb;
    char *nb = realloc(r->body, r->len + n + 1);
    if (!nb)
        return 0;
    r->body = nb;
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static void header_value(const char *line, size_t n, const char *name, char *out, size_t outlen)
{
    size_t k = strlen(name);
    if (n <= k + 1 || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return;
    const char *v = line + k + 1;
    while (*v == ' ')
        v++;
    size_t vl = n - (size_t)(v - line);
    while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
        vl--;
    if (vl >= outlen)
        vl = outlen - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    struct reply *r = userp;
    size_t n = size * nmemb;
    header_value(data, n, "Content-Type", r->content_type, sizeof(r->content_type));
    header_value(data, n, "X-Request-Id", r->request_id, sizeof(r->request_id));
    header_value(data, n, "Retry-After", r->retry_after, sizeof(r->retry_after));
    return n;
}

int http_call(struct service *svc, const char *method, const char *path, const char *const *headers,
              const char *body, size_t body_len, struct reply *r)
{
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", svc->base, path);
    struct curl_slist *hl = NULL;
    for (const char *const *h = headers; h && *h; h++)
        hl = curl_slist_append(hl, *h);
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (harness_source_ip)
        curl_easy_setopt(c, CURLOPT_INTERFACE, harness_source_ip);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        fprintf(stderr, "harness: %s %s: %s\n", method, path, curl_easy_strerror(rc));
        return -1;
    }
    if (r->body)
        r->json = json_loadb(r->body, r->len, 0, NULL);
    return 0;
}

void reply_free(struct reply *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

int http_get(struct service *svc, const char *token, const char *path, struct reply *r)
{
    char auth[256];
    const char *headers[] = { auth, NULL };
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token ? token : "");
    return http_call(svc, "GET", path, token ? headers : NULL, NULL, 0, r);
}

int http_post_json(struct service *svc, const char *token, const char *path, const char *json,
                   struct reply *r)
{
    char auth[256];
    const char *headers[] = { "Content-Type: application/json", auth, NULL };
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token ? token : "");
    if (!token)
        headers[1] = NULL;
    return http_call(svc, "POST", path, headers, json ? json : "", json ? strlen(json) : 0, r);
}

const char *problem_code_for(const struct reply *r, const char *field)
{
    json_t *errors = json_object_get(r->json, "errors");
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *f = json_string_value(json_object_get(e, "field"));
        if (f && strcmp(f, field) == 0)
            return json_string_value(json_object_get(e, "code"));
    }
    return NULL;
}

void make_national_id(const char *nine, char out[11])
{
    int sum = 0;
    memcpy(out, nine, 9);
    for (int i = 0; i < 9; i++) {
        int d = nine[i] - '0';
        if (i % 2 == 0) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    out[9] = (char)('0' + (10 - sum % 10) % 10);
    out[10] = '\0';
}

char *sample_request(const char *request_no, const char *national_id, const char *kind,
                     const char *reason)
{
    bool lost = strcmp(reason, "lost") == 0;
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s,"
        " s:{s:s, s:s, s:s, s:s, s:s},"
        " s:s,"
        " s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:f},"
        " s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}],"
        " s:s, s:s}",
        "request_no", request_no, "kind", kind, "reason", reason, "national_id", national_id,
        "holder", "name_ar", "محمد عبدالله القحطاني", "name_en", "MOHAMMED ABDULLAH ALQAHTANI",
        "birth_date", "1990-04-12", "sex", "M", "nationality", "SAU", "phone", "+966501234567",
        "address", "short_address", "RRRD2929", "building_no", "2929", "street", "Al Takhassusi",
        "district", "Al Olaya", "city", "Riyadh", "postal_code", "12345", "additional_no", "7788",
        "lat", 24.6920, "lon", 46.6850, "documents", "type", "id_copy", "sha256",
        "0f343b0931126a20f133d67c2b018a3b5e3b5e2f1c1f5a3d9c8b7a6f5e4d3c2b", "uri", "docs://id/1",
        "type", lost ? "loss_report" : "damage_report", "sha256",
        "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809", "uri",
        "docs://report/1", "terms_accepted_at", "2026-11-20T10:00:00Z", "approved_at",
        "2026-11-21T08:00:00Z");
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

json_t *sample_json(const char *request_no, const char *national_id, const char *kind,
                    const char *reason)
{
    char *text = sample_request(request_no, national_id, kind, reason);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    return j;
}

static int fresh_counter = 100;

void harness_fresh_nid(char out[11])
{
    char nine[16];
    snprintf(nine, sizeof(nine), "1%08d", fresh_counter++ % 100000000);
    make_national_id(nine, out);
}

void harness_fresh_no(const char *prefix, char *out, size_t len)
{
    snprintf(out, len, "%s-%06d", prefix, fresh_counter++);
}
