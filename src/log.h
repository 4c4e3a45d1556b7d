/* log.h — one line per event: time, level, request id, message. */
#ifndef CARDD_LOG_H
#define CARDD_LOG_H

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

/* Writes one line to stderr. Never pass secrets: tokens, keys and HMAC
 * secrets must not reach the log. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
