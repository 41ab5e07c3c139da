/*
 * errorlog.c -- the error log's lines (Apache's format), and conditions logged at most once per
 * interval.  Plain C, no Python; see server.h and reactor.h.
 */
#include "server.h"

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* The error log's descriptor: stderr, or the --error-log file.  The Python side keeps that
 * number for the process's life (a reopen dup2()s the new file onto it), so a line written
 * here never lands in a descriptor that was closed and reused meanwhile. */
static int log_fd = 2;

void pw_log_set_fd(int fd)
{
    __atomic_store_n(&log_fd, fd, __ATOMIC_RELAXED);
}

void pw_log(pw_server *s, int level, const char *fmt, ...)
{
    if (s && level > s->cfg.log_level)
        return;
    char line[1024];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    char stamp[64];
    strftime(stamp, sizeof stamp, "%a %b %d %H:%M:%S", &tm);
    int n = snprintf(line, sizeof line, "[%s.%06ld %d] [pywsgi:%s] [pid %d] ", stamp,
                     (long)tv.tv_usec, tm.tm_year + 1900, level_names[level & 3], (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        n += vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(__atomic_load_n(&log_fd, __ATOMIC_RELAXED), line, n);
    (void)w;
}

/* A condition that may repeat many times a second (a flood of connections, a process out of
 * descriptors): the first occurrence is logged at once, the ones within PW_LOG_EVERY after it
 * are counted and summed up by log_limited_flush as one line, "... (N times in the last 10 s)",
 * written with the latest occurrence's text.  Reactor only (accept path and scan). */
void log_limited(pw_server *s, pw_log_limit *l, double now, int level, const char *fmt, ...)
{
    if (level > s->cfg.log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->text, sizeof l->text, fmt, ap);
    va_end(ap);
    l->level = level;
    if (l->last > 0 && now - l->last < PW_LOG_EVERY) {
        l->suppressed++;
        return;
    }
    l->last = now;
    pw_log(s, level, "%s", l->text);
}

void log_limited_flush(pw_server *s, pw_log_limit *l, double now)
{
    if (l->suppressed == 0 || now - l->last < PW_LOG_EVERY)
        return;
    pw_log(s, l->level, "%s (%u times in the last %.0f s)", l->text, l->suppressed, now - l->last);
    l->suppressed = 0;
    l->last = now;
}
