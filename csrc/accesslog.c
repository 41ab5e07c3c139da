/* accesslog.c -- see accesslog.h. */
#include "accesslog.h"
#include "reactor.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE PW_ACCESS_LOG_BUFFER
#define LINE_MAX_LEN 8192

enum item_kind {
    IT_END, /* nothing: carries the text after the last code */
    IT_HOST,
    IT_DASH,
    IT_TIME,
    IT_REQUEST,
    IT_STATUS,
    IT_BYTES_CLF,
    IT_BYTES,
    IT_MICROS,
    IT_SECONDS,
    IT_METHOD,
    IT_PATH,
    IT_QUERY,
    IT_PROTOCOL,
    IT_PID,
    IT_HEADER,
    IT_CONN_HOST
};

/* A code of the format and the literal text before it: one step of the line per code, the
 * text copied on the way (a format is mostly short texts between codes). */
typedef struct {
    int kind;
    int arg;        /* IT_HEADER: header index */
    int prefix;     /* the text before the code: offset into text */
    int prefix_len; /* its length */
} item;

struct pw_access_log {
    int fd;
    item items[128];
    int nitems;
    int timed;            /* the format has %D or %T: each line reads the clock */
    char text[1024 + 16]; /* the literal parts of the format (+16: see copy_prefix) */
    int text_len;
    int pending; /* where the text not yet given to an item begins */
    char *names[PW_LOG_MAX_HEADERS];
    int nnames;
    pthread_mutex_t lock;
    char buf[BUF_SIZE];
    size_t len;
    /* failed writes (accesslog.h); all under the lock */
    int failing;                       /* errno of the write that failed; 0: writes work */
    int midline;                       /* buf begins with the rest of a line begun in the file */
    int reported;                      /* this spell of failures has been told to the error log */
    double window_start;               /* monotonic: since when dropped_window counts */
    unsigned long long dropped_window; /* lines dropped and not yet reported */
    unsigned long long dropped_spell;  /* lines dropped since writes began to fail */
    pw_access_log_report_fn report;
    void *report_arg;
    uint64_t *dropped_counter;
};

static int add_text(pw_access_log *l, const char *p, size_t n)
{
    if (l->text_len + n > 1024)
        return -1;
    memcpy(l->text + l->text_len, p, n);
    l->text_len += (int)n;
    return 0;
}

/* A code, with the text added since the previous one as its prefix. */
static int add_item(pw_access_log *l, int kind, int arg)
{
    if (l->nitems >= (int)(sizeof l->items / sizeof l->items[0]))
        return -1;
    l->items[l->nitems++] = (item){kind, arg, l->pending, l->text_len - l->pending};
    l->pending = l->text_len;
    return 0;
}

pw_access_log *pw_access_log_new(int fd, const char *format, char *err, size_t errlen)
{
    pw_access_log *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->fd = fd;
    pthread_mutex_init(&l->lock, NULL);
    const char *p = format;
    while (*p) {
        if (*p != '%') {
            const char *q = strchr(p, '%');
            size_t n = q ? (size_t)(q - p) : strlen(p);
            if (add_text(l, p, n) != 0)
                goto too_long;
            p += n;
            continue;
        }
        p++;
        if (*p == '>') /* %>s: the final status - the only one there is here */
            p++;
        int kind = -1, arg = 0;
        switch (*p) {
        case 'h':
        case 'a': kind = IT_HOST; break;
        case 'l':
        case 'u': kind = IT_DASH; break;
        case 't': kind = IT_TIME; break;
        case 'r': kind = IT_REQUEST; break;
        case 's': kind = IT_STATUS; break;
        case 'b': kind = IT_BYTES_CLF; break;
        case 'B': kind = IT_BYTES; break;
        case 'D': kind = IT_MICROS, l->timed = 1; break;
        case 'T': kind = IT_SECONDS, l->timed = 1; break;
        case 'm': kind = IT_METHOD; break;
        case 'U': kind = IT_PATH; break;
        case 'q': kind = IT_QUERY; break;
        case 'H': kind = IT_PROTOCOL; break;
        case 'P': kind = IT_PID; break;
        case '%':
            if (add_text(l, "%", 1) != 0)
                goto too_long;
            p++;
            continue;
        case '{': {
            const char *end = strchr(p, '}');
            /* %{c}a: the connection's peer, which %a is not behind a trusted proxy
             * (mod_remoteip; docs/proxies.md) */
            if (end == p + 2 && p[1] == 'c' && end[1] == 'a') {
                if (add_item(l, IT_CONN_HOST, 0) != 0)
                    goto too_long;
                p = end + 2;
                continue;
            }
            if (!end || end[1] != 'i' || end == p + 1) {
                snprintf(err, errlen,
                         "access log format: only %%{Header}i and %%{c}a are supported among "
                         "the %%{...} codes (at \"%.20s\")",
                         p - 1);
                pw_access_log_free(l);
                return NULL;
            }
            size_t n = (size_t)(end - p - 1);
            int found = -1;
            for (int i = 0; i < l->nnames; i++)
                if (strlen(l->names[i]) == n && strncasecmp(l->names[i], p + 1, n) == 0)
                    found = i;
            if (found < 0) {
                if (l->nnames >= PW_LOG_MAX_HEADERS) {
                    snprintf(err, errlen, "access log format: at most %d different headers",
                             PW_LOG_MAX_HEADERS);
                    pw_access_log_free(l);
                    return NULL;
                }
                l->names[l->nnames] = strndup(p + 1, n);
                found = l->nnames++;
            }
            if (add_item(l, IT_HEADER, found) != 0)
                goto too_long;
            p = end + 2;
            continue;
        }
        default:
            snprintf(
                err, errlen,
                "access log format: unsupported code %%%c (supported: %%h %%a "
                "%%{c}a %%l %%u %%t %%r %%s %%>s %%b %%B %%D %%T %%m %%U %%q %%H %%P %%{Header}i "
                "%%%%)",
                *p ? *p : ' ');
            pw_access_log_free(l);
            return NULL;
        }
        if (add_item(l, kind, arg) != 0)
            goto too_long;
        p++;
    }
    if (l->pending < l->text_len && add_item(l, IT_END, 0) != 0)
        goto too_long;
    return l;
too_long:
    snprintf(err, errlen, "access log format too long");
    pw_access_log_free(l);
    return NULL;
}

void pw_access_log_free(pw_access_log *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->nnames; i++)
        free(l->names[i]);
    free(l);
}

int pw_access_log_headers(const pw_access_log *l, const char ***names)
{
    *names = (const char **)l->names;
    return l->nnames;
}

void pw_access_log_capture(const pw_access_log *l, pw_conn *c)
{
    if (!c->log_capture && !(c->log_capture = malloc(PW_LOG_CAPTURE)))
        return;
    const pw_request *r = &c->req;
    size_t used = 0;
    /* the request line: from the method to the end of the line */
    const char *start = c->buf + r->method.off;
    const char *eol = memchr(start, '\r', r->head_len - r->method.off);
    size_t n = eol ? (size_t)(eol - start) : 0;
    if (n > 1024)
        n = 1024;
    memcpy(c->log_capture, start, n);
    c->log_rl_len = (uint16_t)n;
    used = n;
    for (int i = 0; i < l->nnames; i++) {
        c->log_hdr_len[i] = 0xffff; /* absent */
        size_t want = strlen(l->names[i]);
        for (uint32_t h = 0; h < r->num_headers; h++) {
            const pw_header *hd = &r->headers[h];
            if (hd->name.len == want &&
                strncasecmp(c->buf + hd->name.off, l->names[i], want) == 0) {
                size_t v = hd->value.len;
                if (v > PW_LOG_CAPTURE - used)
                    v = PW_LOG_CAPTURE - used;
                memcpy(c->log_capture + used, c->buf + hd->value.off, v);
                c->log_hdr_off[i] = (uint16_t)used;
                c->log_hdr_len[i] = (uint16_t)v;
                used += v;
                break;
            }
        }
    }
}

/* The bytes Apache logs as they are: printable ASCII but the quote and the backslash (bit ch
 * of the four words). */
static const uint64_t plain_bytes[4] = {0xfffffffb00000000ULL, 0x7fffffffefffffffULL, 0, 0};

static inline int is_plain(unsigned char ch)
{
    return (int)((plain_bytes[ch >> 6] >> (ch & 63)) & 1);
}

/* Eight bytes all plain: none below 0x20, none above 0x7e, no quote, no backslash (the
 * "determine if a word has a byte less than n" tricks, exact for existence; a User-Agent
 * is mostly such words). */
static inline int plain_word(const char *s)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t w, quote, backslash;
    memcpy(&w, s, 8);
    quote = w ^ (ones * '"');
    backslash = w ^ (ones * '\\');
    uint64_t below = (w - ones * 0x20) & ~w;
    uint64_t above = (w + ones * (127 - 0x7e)) | w;
    uint64_t zero = ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash);
    return ((below | above | zero) & highs) == 0;
}

/* Apache's escaping for %r and %i: quotes, backslashes and non-printables as \x..; runs of
 * plain bytes are copied whole (a request line is nearly always one run). */
static size_t put_escaped(char *out, size_t room, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t k = 0, i = 0;
    while (i < n) {
        size_t run = i;
        while (run + 8 <= n && plain_word(s + run))
            run += 8;
        while (run < n && is_plain((unsigned char)s[run]))
            run++;
        size_t take = run - i < room - k ? run - i : room - k;
        memcpy(out + k, s + i, take);
        k += take;
        if (run == n || k + 4 > room)
            break;
        unsigned char ch = (unsigned char)s[run];
        out[k++] = '\\';
        if (ch == '"' || ch == '\\') {
            out[k++] = (char)ch;
        } else {
            out[k++] = 'x';
            out[k++] = hex[ch >> 4];
            out[k++] = hex[ch & 15];
        }
        i = run + 1;
    }
    return k;
}

static size_t put(char *out, size_t room, const char *s, size_t n)
{
    if (n > room)
        n = room;
    memcpy(out, s, n);
    return n;
}

/* A decimal number, as "%lld" would print it (snprintf costs ~600 instructions a call). */
static size_t put_number(char *out, size_t room, long long value)
{
    char digits[24];
    size_t n = 0;
    unsigned long long u = value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
    do {
        digits[sizeof digits - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (value < 0)
        digits[sizeof digits - 1 - n++] = '-';
    return put(out, room, digits + sizeof digits - n, n);
}

/* %t: "[10/Oct/2000:13:55:36 -0700]", formatted once a second per thread (localtime_r and
 * strftime cost ~1,300 instructions, about a third of a line). */
static size_t put_time(char *out, size_t room, time_t when)
{
    static __thread time_t cached_when = (time_t)-1;
    static __thread char cached[64];
    static __thread size_t cached_len;
    if (when != cached_when) {
        struct tm tm;
        localtime_r(&when, &tm);
        cached_len = strftime(cached, sizeof cached, "[%d/%b/%Y:%H:%M:%S %z]", &tm);
        cached_when = when;
    }
    return put(out, room, cached, cached_len);
}

/* Pieces of the captured request line: method, target (path, query), protocol. */
static void split_request_line(const char *rl, size_t n, const char **m, size_t *ml, const char **t,
                               size_t *tl, const char **v, size_t *vl)
{
    const char *sp1 = memchr(rl, ' ', n);
    *m = rl;
    *ml = sp1 ? (size_t)(sp1 - rl) : n;
    *t = sp1 ? sp1 + 1 : rl + n;
    const char *sp2 = sp1 ? memchr(*t, ' ', rl + n - *t) : NULL;
    *tl = sp2 ? (size_t)(sp2 - *t) : (size_t)(rl + n - *t);
    *v = sp2 ? sp2 + 1 : rl + n;
    *vl = (size_t)(rl + n - *v);
}

/* Write the buffer out (lock held).  0 when all of it went, else the errno of the write that
 * failed; what did not go stays in the buffer, in order.  After a short write (the disk had
 * room for part of it) the buffer begins with the rest of a line whose start is in the file:
 * it goes out first on the next try, completing that line.  (Another process appending to
 * the same file in between would still land after the fragment: O_APPEND writes are atomic
 * only as a whole.) */
static int drain(pw_access_log *l)
{
    size_t off = 0;
    int err = 0;
    while (off < l->len) {
        ssize_t n = write(l->fd, l->buf + off, l->len - off);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        err = n < 0 ? errno : EIO;
        break;
    }
    if (off > 0) {
        l->midline = l->buf[off - 1] != '\n';
        memmove(l->buf, l->buf + off, l->len - off);
        l->len -= off;
    }
    return err;
}

static double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void note_failure(pw_access_log *l, int err, double now)
{
    if (!l->failing) { /* a new spell of failures */
        l->reported = 0;
        l->dropped_window = l->dropped_spell = 0;
        l->window_start = now;
    }
    l->failing = err;
}

static void drop_lines(pw_access_log *l, unsigned long long n)
{
    l->dropped_window += n;
    l->dropped_spell += n;
    if (l->dropped_counter)
        __atomic_add_fetch(l->dropped_counter, n, __ATOMIC_RELAXED);
}

/* An item's prefix: texts of up to 16 bytes (nearly all) as one fixed-size copy, which the
 * line's and the text's 16 spare bytes make safe. */
static inline size_t copy_prefix(char *out, size_t room, const char *text, size_t n)
{
    if (n <= 16 && n <= room) {
        memcpy(out, text, 16);
        return n;
    }
    return put(out, room, text, n);
}

void pw_access_log_write(pw_access_log *l, const pw_conn *c)
{
    char line[LINE_MAX_LEN + 16];
    size_t k = 0, room = LINE_MAX_LEN - 1;
    const char *rl = c->log_capture ? c->log_capture : "";
    size_t rll = c->log_capture ? c->log_rl_len : 0;
    double dur = 0;
    if (l->timed) { /* %D or %T: the clock is read only for them */
        dur = monotonic_now() - c->req_start;
        if (dur < 0 || c->req_start == 0)
            dur = 0;
    }
    for (int i = 0; i < l->nitems && k < room; i++) {
        const item *it = &l->items[i];
        const char *m, *t, *v;
        size_t ml, tl, vl;
        k += copy_prefix(line + k, room - k, l->text + it->prefix, (size_t)it->prefix_len);
        switch (it->kind) {
        case IT_END: break;
        case IT_HOST:
            k += put(line + k, room - k, c->peer_host[0] ? c->peer_host : "-",
                     c->peer_host[0] ? strlen(c->peer_host) : 1);
            break;
        case IT_CONN_HOST:
            k += put(line + k, room - k, c->conn_host[0] ? c->conn_host : "-",
                     c->conn_host[0] ? strlen(c->conn_host) : 1);
            break;
        case IT_DASH: k += put(line + k, room - k, "-", 1); break;
        case IT_TIME:
            k += put_time(line + k, room - k, c->req_time ? c->req_time : time(NULL));
            break;
        case IT_REQUEST:
            k += rll ? put_escaped(line + k, room - k, rl, rll) : put(line + k, room - k, "-", 1);
            break;
        case IT_STATUS: k += put_number(line + k, room - k, c->resp_status); break;
        case IT_BYTES_CLF:
        case IT_BYTES:
            if (c->resp_bytes == 0 && it->kind == IT_BYTES_CLF)
                k += put(line + k, room - k, "-", 1);
            else
                k += put_number(line + k, room - k, (long long)c->resp_bytes);
            break;
        case IT_MICROS: k += put_number(line + k, room - k, (long long)(dur * 1e6)); break;
        case IT_SECONDS: k += put_number(line + k, room - k, (long long)dur); break;
        case IT_METHOD:
        case IT_PATH:
        case IT_QUERY:
        case IT_PROTOCOL: {
            split_request_line(rl, rll, &m, &ml, &t, &tl, &v, &vl);
            const char *q = memchr(t, '?', tl);
            if (it->kind == IT_METHOD)
                k += put_escaped(line + k, room - k, m, ml);
            else if (it->kind == IT_PATH)
                k += put_escaped(line + k, room - k, t, q ? (size_t)(q - t) : tl);
            else if (it->kind == IT_QUERY)
                k += q ? put_escaped(line + k, room - k, q, (size_t)(t + tl - q)) : 0;
            else
                k += put_escaped(line + k, room - k, v, vl);
            break;
        }
        case IT_PID: k += put_number(line + k, room - k, (long long)getpid()); break;
        case IT_HEADER:
            if (c->log_capture && c->log_hdr_len[it->arg] != 0xffff)
                k += put_escaped(line + k, room - k, c->log_capture + c->log_hdr_off[it->arg],
                                 c->log_hdr_len[it->arg]);
            else
                k += put(line + k, room - k, "-", 1);
            break;
        }
    }
    line[k++] = '\n';
    pthread_mutex_lock(&l->lock);
    /* While writes fail only the reactor's flush tries again: no system call per request. */
    if (l->len + k > BUF_SIZE && !l->failing) {
        int err = drain(l);
        if (err)
            note_failure(l, err, monotonic_now());
    }
    if (l->len + k <= BUF_SIZE) {
        memcpy(l->buf + l->len, line, k);
        l->len += k;
    } else {
        drop_lines(l, 1);
    }
    pthread_mutex_unlock(&l->lock);
}

static const char *plural(unsigned long long n)
{
    return n == 1 ? "" : "s";
}

void pw_access_log_flush(pw_access_log *l)
{
    char lines[2][320];
    int levels[2], n = 0;
    double now = monotonic_now();
    pthread_mutex_lock(&l->lock);
    int err = -1; /* -1: nothing to write, so nothing learnt */
    if (l->len) {
        err = drain(l);
        if (err)
            note_failure(l, err, now);
    }
    if (l->failing && !l->reported) {
        snprintf(lines[n], sizeof lines[n],
                 "access log: write failed: %s; lines are kept in "
                 "memory (up to %d KiB) until a write succeeds, and dropped beyond that",
                 strerror(l->failing), BUF_SIZE / 1024);
        levels[n++] = PW_LOG_ERROR;
        l->reported = 1;
    }
    if (err == 0 && l->failing) {
        snprintf(lines[n], sizeof lines[n],
                 "access log: writing again; %llu line%s dropped "
                 "while writes failed",
                 l->dropped_spell, plural(l->dropped_spell));
        levels[n++] = PW_LOG_WARNING;
        l->failing = 0;
        l->dropped_window = l->dropped_spell = 0;
    } else if (l->failing && l->dropped_window &&
               now - l->window_start >= PW_ACCESS_LOG_REPORT_INTERVAL) {
        snprintf(lines[n], sizeof lines[n],
                 "access log: %llu line%s dropped in the last %.0f s: "
                 "%s",
                 l->dropped_window, plural(l->dropped_window), now - l->window_start,
                 strerror(l->failing));
        levels[n++] = PW_LOG_ERROR;
        l->dropped_window = 0;
        l->window_start = now;
    }
    pw_access_log_report_fn report = l->report;
    void *arg = l->report_arg;
    pthread_mutex_unlock(&l->lock);
    for (int i = 0; i < n && report; i++)
        report(arg, levels[i], lines[i]);
}

void pw_access_log_finish(pw_access_log *l)
{
    pw_access_log_flush(l);
    char line[320];
    pthread_mutex_lock(&l->lock);
    unsigned long long lost = 0;
    for (size_t i = 0; i < l->len; i++)
        lost += l->buf[i] == '\n';
    if (lost) {
        drop_lines(l, lost);
        snprintf(line, sizeof line, "access log: %llu line%s dropped as the server stops: %s", lost,
                 plural(lost), strerror(l->failing ? l->failing : EIO));
    }
    l->len = 0;
    l->midline = 0;
    pw_access_log_report_fn report = l->report;
    void *arg = l->report_arg;
    pthread_mutex_unlock(&l->lock);
    if (lost && report)
        report(arg, PW_LOG_ERROR, line);
}

void pw_access_log_set_fd(pw_access_log *l, int fd)
{
    pthread_mutex_lock(&l->lock);
    if (l->len) {
        int err = drain(l);
        if (err) {
            note_failure(l, err, monotonic_now());
            /* The rest of a line begun in the old file is no use in the new one; the whole
             * lines after it go there. */
            if (l->midline) {
                char *end = memchr(l->buf, '\n', l->len);
                size_t cut = end ? (size_t)(end - l->buf) + 1 : l->len;
                memmove(l->buf, l->buf + cut, l->len - cut);
                l->len -= cut;
                l->midline = 0;
                drop_lines(l, 1);
            }
        }
    }
    int old = l->fd;
    l->fd = fd;
    pthread_mutex_unlock(&l->lock);
    if (old > 2)
        close(old);
}

void pw_access_log_on_failure(pw_access_log *l, pw_access_log_report_fn report, void *arg,
                              uint64_t *dropped)
{
    pthread_mutex_lock(&l->lock);
    l->report = report;
    l->report_arg = arg;
    l->dropped_counter = dropped;
    pthread_mutex_unlock(&l->lock);
}
