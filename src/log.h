/* log.h — one line per event: time, level, request id, message. */
#ifndef CARDD_LOG_H
#define CARDD_LOG_H

#include <stddef.h>

enum log_level {
    LOG_DEBUG,
    LOG_INFO,
    LOG_WARN,
    LOG_ERROR
};

/* Sets the minimum level written; lines below it are dropped. */
void log_set_level(enum log_level level);

/* Parses "debug", "info", "warn" or "error". Returns 0 or -EINVAL. */
int log_parse_level(const char *name, enum log_level *out);

/* Binds a request id (or NULL) to the calling thread; every line the thread
 * logs until the next call carries it. The string must outlive the binding. */
void log_set_request_id(const char *id);

/* Writes one line to stderr. Never pass secrets (tokens, keys, HMAC
 * secrets) or personal data (national IDs, names, phones, addresses). Control
 * bytes and backslashes in the message are written as \xNN, so nothing a
 * client sends (a path with %0A) can break a line or forge another. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The escaping log_msg applies: in to out (NUL-terminated, cut to fit). */
void log_escape(const char *in, char *out, size_t outlen);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
