/*
 * accesslog.h -- the access log, written by the core (plain C, no Python), in Apache's
 * LogFormat language.  Lines are formatted by whichever thread finished the request and
 * appended to one per-process buffer (a mutex), written out when it fills and at least every
 * quarter second by the reactor, so a busy server makes few write() calls.
 *
 * Supported codes: %h %a (client address) %l (always -) %u (always -: the core does no
 * authentication) %t (request time, [27/Nov/2026:22:04:12 +0000]) %r (request line) %s %>s
 * (status) %b (body bytes, - for 0) %B (body bytes) %D (microseconds) %T (seconds) %m (method)
 * %U (path) %q (?query or empty) %H (protocol) %P (pid) %{Name}i (a request header, up to 8
 * names per format) %% (a percent sign).  Anything else is refused when the format is compiled.
 *
 * A write that fails (a full disk: ENOSPC; a file over RLIMIT_FSIZE: EFBIG; a closed pipe)
 * loses nothing at first: the lines wait in the buffer, in order, and the reactor's flush
 * tries again 4 times a second.  Once the buffer is full, new lines are dropped and counted.
 * What a short write leaves over is the rest of a line already begun in the file; it stays at
 * the head of the buffer and goes out first, so that line is completed, never glued to the
 * next one.  The error log hears of it through a callback (the reactor's pw_log): once when
 * writes start failing, then at most every PW_ACCESS_LOG_REPORT_INTERVAL seconds while lines
 * are dropped, and once when writes work again.
 */
#ifndef PW_ACCESSLOG_H
#define PW_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

#define PW_LOG_COMBINED "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\""
#define PW_LOG_MAX_HEADERS 8
#define PW_LOG_CAPTURE 2048        /* per connection: request line + logged headers, truncated */
#define PW_ACCESS_LOG_BUFFER 65536 /* bytes of lines held per process */
#define PW_ACCESS_LOG_REPORT_INTERVAL 10.0 /* seconds between two "lines dropped" reports */

typedef struct pw_access_log pw_access_log;
struct pw_conn;

/* fd: where lines go (the log file opened O_APPEND, or 1 for stdout); NULL + err on a bad
 * format. */
pw_access_log *pw_access_log_new(int fd, const char *format, char *err, size_t errlen);
void pw_access_log_free(pw_access_log *l);

/* Names of the request headers the format logs (the reactor copies them at head time). */
int pw_access_log_headers(const pw_access_log *l, const char ***names);

/* Capture what the line needs from the request head while it is still in the buffer. */
void pw_access_log_capture(const pw_access_log *l, struct pw_conn *c);

/* One finished request (c->resp_status, c->resp_bytes, c->req_time, c->req_start). */
void pw_access_log_write(pw_access_log *l, const struct pw_conn *c);

/* Write out the buffer (the reactor, at least 4 times a second); reports failures. */
void pw_access_log_flush(pw_access_log *l);

/* The last flush, when the server stops: lines that still cannot be written are dropped,
 * counted and reported. */
void pw_access_log_finish(pw_access_log *l);

/* Where failures are told: report(arg, level, line) for error-log lines (level as reactor.h's
 * PW_LOG_*; NULL: none), and *dropped (NULL: none) counts dropped lines with relaxed atomic
 * adds (the --server-status slot of this process). */
typedef void (*pw_access_log_report_fn)(void *arg, int level, const char *line);
void pw_access_log_on_failure(pw_access_log *l, pw_access_log_report_fn report, void *arg,
                              uint64_t *dropped);

/* Point the log at a new fd (log reopen for logrotate); the old one is closed. */
void pw_access_log_set_fd(pw_access_log *l, int fd);

#endif
