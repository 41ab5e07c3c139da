/*
 * static.c -- static files served from C: path resolution under a root, conditional and range
 * requests (RFC 9110 sections 13 and 14), precompressed siblings, sendfile.  Plain C, no
 * Python; called by worker threads without the GIL (pywsgi/_static.pxi).
 *
 * Safety of the mapping from URL to file:
 *  - the path comes decoded and dot-normalised from the core; a NUL, a backslash or a ".."
 *    segment left in it is refused here anyway;
 *  - the file is opened, then (unless follow_symlinks) the realpath of the name is checked to
 *    lie inside the root and to be the very inode that was opened, so a symlink leading out
 *    of the root, or one swapped in between the check and the open, never yields a byte;
 *  - only regular files are opened (stat() first, so a device or FIFO is never opened);
 *  - ".ht*" files (.htaccess, .htpasswd) are refused, as in Apache's default configuration.
 */
#include "static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef __APPLE__
#  define ST_MTIM(st) ((st).st_mtimespec)
#  define ST_CTIM(st) ((st).st_ctimespec)
#else
#  define ST_MTIM(st) ((st).st_mtim)
#  define ST_CTIM(st) ((st).st_ctim)
#endif

#ifndef PATH_MAX
#  define PATH_MAX 4096
#endif

#define CACHE_SLOTS 48   /* open files kept per root */
#define SMALL_FILE 16384 /* up to this, head and body leave in one writev */

typedef struct {
    char *path; /* NULL: empty slot */
    int fd;
    int refs;           /* requests using fd right now */
    int valid;          /* 0: evicted or stale; fd closes when refs drops to 0 */
    struct stat st;     /* identity at open time */
    unsigned long used; /* LRU clock */
} cache_slot;

typedef struct {
    char *ext;
    char *type;
} type_entry;

struct pw_static_root {
    char *root;
    size_t root_len;
    int is_file;
    char **index;
    int n_index;
    int follow_symlinks;
    int precompressed;
    char *cache_control; /* NULL: none */
    char *server;
    char *default_type;
    type_entry *types;
    int n_types;
    pthread_mutex_t lock; /* guards cache[] and clock */
    cache_slot cache[CACHE_SLOTS];
    unsigned long clock;
};

typedef struct {
    int fd;   /* -1 for a directory */
    int slot; /* cache slot holding fd, or -1: fd is ours to close */
    struct stat st;
} open_file;

/* ---------------------------------------------------------------- root */

static int cmp_type(const void *a, const void *b)
{
    return strcmp(((const type_entry *)a)->ext, ((const type_entry *)b)->ext);
}

static char *dup_or_null(const char *s)
{
    return (s && *s) ? strdup(s) : NULL;
}

pw_static_root *pw_static_root_new(const pw_static_options *o, char *err, size_t errlen)
{
    pw_static_root *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char real[PATH_MAX];
    if (!o->root || !realpath(o->root, real)) {
        snprintf(err, errlen, "static files: %s: %s", o->root ? o->root : "(null)",
                 strerror(errno));
        free(r);
        return NULL;
    }
    r->root = strdup(real);
    r->root_len = strlen(real);
    r->is_file = o->is_file;
    r->follow_symlinks = o->follow_symlinks;
    r->precompressed = o->precompressed;
    r->cache_control = dup_or_null(o->cache_control);
    { /* the whole header line, as pw_head_finish adds it */
        const char *name = o->server && *o->server ? o->server : "pywsgi";
        size_t len = strlen(name) + sizeof "Server: \r\n";
        r->server = malloc(len);
        if (r->server)
            snprintf(r->server, len, "Server: %s\r\n", name);
    }
    r->default_type =
        strdup(o->default_type && *o->default_type ? o->default_type : "application/octet-stream");
    for (const char *p = o->index; p && *p; p += strlen(p) + 1)
        r->n_index++;
    r->index = calloc(r->n_index + 1, sizeof *r->index);
    int i = 0;
    for (const char *p = o->index; p && *p; p += strlen(p) + 1)
        r->index[i++] = strdup(p);
    for (const char *p = o->types; p && *p;) {
        const char *t = p + strlen(p) + 1;
        if (!*t)
            break;
        r->n_types++;
        p = t + strlen(t) + 1;
    }
    r->types = calloc(r->n_types + 1, sizeof *r->types);
    i = 0;
    for (const char *p = o->types; p && *p && i < r->n_types;) {
        const char *t = p + strlen(p) + 1;
        r->types[i].ext = strdup(p);
        r->types[i].type = strdup(t);
        i++;
        p = t + strlen(t) + 1;
    }
    qsort(r->types, r->n_types, sizeof *r->types, cmp_type);
    for (i = 0; i < CACHE_SLOTS; i++)
        r->cache[i].fd = -1;
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void pw_static_root_free(pw_static_root *r)
{
    if (!r)
        return;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        if (r->cache[i].path) {
            close(r->cache[i].fd);
            free(r->cache[i].path);
        }
    }
    for (int i = 0; i < r->n_index; i++)
        free(r->index[i]);
    free(r->index);
    for (int i = 0; i < r->n_types; i++) {
        free(r->types[i].ext);
        free(r->types[i].type);
    }
    free(r->types);
    free(r->root);
    free(r->cache_control);
    free(r->server);
    free(r->default_type);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static const char *content_type(pw_static_root *r, const char *name)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base || strlen(dot + 1) >= 32)
        return r->default_type;
    char ext[32];
    size_t n = 0;
    for (const char *p = dot + 1; *p; p++)
        ext[n++] = (*p >= 'A' && *p <= 'Z') ? *p + 32 : *p;
    ext[n] = 0;
    type_entry key = {ext, NULL};
    type_entry *hit = bsearch(&key, r->types, r->n_types, sizeof *r->types, cmp_type);
    return hit ? hit->type : r->default_type;
}

/* ---------------------------------------------------------------- open-file cache */

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
        a->st_mode == b->st_mode && ST_MTIM(*a).tv_sec == ST_MTIM(*b).tv_sec &&
        ST_MTIM(*a).tv_nsec == ST_MTIM(*b).tv_nsec && ST_CTIM(*a).tv_sec == ST_CTIM(*b).tv_sec &&
        ST_CTIM(*a).tv_nsec == ST_CTIM(*b).tv_nsec;
}

/* Drop a slot's fd and path (lock held, refs == 0). */
static void slot_clear(cache_slot *e)
{
    close(e->fd);
    free(e->path);
    e->path = NULL;
    e->fd = -1;
    e->valid = 0;
}

static void file_release(pw_static_root *r, open_file *f)
{
    if (f->fd < 0)
        return;
    if (f->slot < 0) {
        close(f->fd);
    } else {
        pthread_mutex_lock(&r->lock);
        cache_slot *e = &r->cache[f->slot];
        if (--e->refs == 0 && !e->valid)
            slot_clear(e);
        pthread_mutex_unlock(&r->lock);
    }
    f->fd = -1;
}

static void slot_invalidate(pw_static_root *r, int i)
{
    pthread_mutex_lock(&r->lock);
    cache_slot *e = &r->cache[i];
    e->valid = 0;
    if (--e->refs == 0)
        slot_clear(e);
    pthread_mutex_unlock(&r->lock);
}

/* A cached fd for `path` whose file is still the one at that name (stat unchanged), or -1. */
static int cache_lookup(pw_static_root *r, const char *path, open_file *f)
{
    int hit = -1;
    struct stat then;
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < CACHE_SLOTS; i++) {
        cache_slot *e = &r->cache[i];
        if (e->valid && strcmp(e->path, path) == 0) {
            e->refs++;
            e->used = ++r->clock;
            f->fd = e->fd;
            then = e->st;
            hit = i;
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
    if (hit < 0)
        return -1;
    struct stat now;
    if (stat(path, &now) == 0 && same_file(&now, &then)) {
        f->slot = hit;
        f->st = now;
        return 0;
    }
    /* Changed, replaced or gone: forget it and resolve the name again. */
    slot_invalidate(r, hit);
    f->fd = -1;
    return -1;
}

static void cache_insert(pw_static_root *r, const char *path, open_file *f)
{
    f->slot = -1;
    char *copy = strdup(path);
    if (!copy)
        return;
    pthread_mutex_lock(&r->lock);
    int pick = -1;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        cache_slot *e = &r->cache[i];
        if (e->valid && strcmp(e->path, path) == 0) { /* a twin opened by another thread */
            e->valid = 0;
            if (e->refs == 0)
                slot_clear(e);
        }
        if (e->path == NULL) {
            if (pick < 0 || r->cache[pick].path)
                pick = i;
        } else if (e->refs == 0 &&
                   (pick < 0 || (r->cache[pick].path && e->used < r->cache[pick].used))) {
            pick = i;
        }
    }
    if (pick >= 0) {
        cache_slot *e = &r->cache[pick];
        if (e->path)
            slot_clear(e);
        e->path = copy;
        e->fd = f->fd;
        e->st = f->st;
        e->refs = 1;
        e->valid = 1;
        e->used = ++r->clock;
        f->slot = pick;
        copy = NULL;
    }
    pthread_mutex_unlock(&r->lock);
    free(copy);
}

/* ---------------------------------------------------------------- resolving a name */

static int inside_root(pw_static_root *r, const char *real)
{
    if (r->is_file)
        return strcmp(real, r->root) == 0;
    if (strncmp(real, r->root, r->root_len) != 0)
        return 0;
    return real[r->root_len] == '\0' || real[r->root_len] == '/' ||
        (r->root_len == 1 && r->root[0] == '/');
}

/* Is the inode `st` what `path` resolves to, and does it lie inside the root? */
static int contained(pw_static_root *r, const char *path, const struct stat *st)
{
    if (r->follow_symlinks)
        return 1;
    char real[PATH_MAX];
    struct stat st2;
    if (!realpath(path, real) || !inside_root(r, real) || stat(real, &st2) != 0)
        return 0;
    return st2.st_dev == st->st_dev && st2.st_ino == st->st_ino;
}

static int errno_status(int e)
{
    return (e == ENOENT || e == ENOTDIR || e == ENAMETOOLONG) ? 404 : 403;
}

/*
 * Open `path` for serving: 0 with f filled (a regular file, fd open; or a directory, fd -1),
 * or the HTTP status that refuses it (403 / 404).
 */
static int open_checked(pw_server *s, pw_static_root *r, const char *path, open_file *f)
{
    f->fd = -1;
    f->slot = -1;
    if (cache_lookup(r, path, f) == 0)
        return 0;
    struct stat st;
    if (stat(path, &st) != 0)
        return errno_status(errno);
    if (S_ISDIR(st.st_mode)) {
        if (!contained(r, path, &st)) {
            pw_log(s, PW_LOG_INFO, "static: symbolic link leads out of %s: %s", r->root, path);
            return 403;
        }
        f->st = st;
        return 0;
    }
    if (!S_ISREG(st.st_mode))
        return 403;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return errno_status(errno);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 403;
    }
    if (!contained(r, path, &st)) {
        close(fd);
        pw_log(s, PW_LOG_INFO, "static: symbolic link leads out of %s: %s", r->root, path);
        return 403;
    }
    f->fd = fd;
    f->st = st;
    cache_insert(r, path, f);
    return 0;
}

/* ---------------------------------------------------------------- request headers */

typedef struct {
    const char *p;
    size_t n;
} str_t;

/* The next field line named `name` at index >= *i (case-insensitive); 1 found, 0 none. */
static int next_header(pw_conn *c, const char *name, uint32_t *i, str_t *value)
{
    size_t len = strlen(name);
    for (; *i < c->req.num_headers; (*i)++) {
        pw_header *h = &c->req.headers[*i];
        if (h->name.len == len && strncasecmp(c->buf + h->name.off, name, len) == 0) {
            value->p = c->buf + h->value.off;
            value->n = h->value.len;
            (*i)++;
            return 1;
        }
    }
    return 0;
}

static int header_count(pw_conn *c, const char *name, str_t *last)
{
    uint32_t i = 0;
    int n = 0;
    str_t v;
    while (next_header(c, name, &i, &v)) {
        *last = v;
        n++;
    }
    return n;
}

static int is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

/*
 * Does a field of entity tags match `etag` ('"..."')?  RFC 9110 13.1.1 / 13.1.2:
 *   If-None-Match = "*" / #entity-tag      entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE
 * weak: weak comparison (If-None-Match); otherwise strong (If-Match, If-Range).
 * Every field line named `name` is a part of the one list.
 */
static int etag_list_matches(pw_conn *c, const char *name, const char *etag, int weak)
{
    uint32_t i = 0;
    str_t v;
    size_t elen = strlen(etag);
    while (next_header(c, name, &i, &v)) {
        size_t k = 0;
        while (k < v.n) {
            while (k < v.n && (is_ows(v.p[k]) || v.p[k] == ','))
                k++;
            if (k >= v.n)
                break;
            if (v.p[k] == '*')
                return 1;
            int is_weak = 0;
            if (k + 1 < v.n && v.p[k] == 'W' && v.p[k + 1] == '/') {
                is_weak = 1;
                k += 2;
            }
            if (k >= v.n || v.p[k] != '"')
                return 0; /* malformed: no match */
            size_t start = k++;
            while (k < v.n && v.p[k] != '"')
                k++;
            if (k >= v.n)
                return 0;
            k++;
            if ((weak || !is_weak) && k - start == elen && memcmp(v.p + start, etag, elen) == 0)
                return 1;
        }
    }
    return 0;
}

static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

static int month_index(const char *m)
{
    for (int i = 0; i < 12; i++)
        if (strncmp(m, month_names[i], 3) == 0 && m[3] == 0)
            return i;
    return -1;
}

/*
 * RFC 9110 5.6.7: HTTP-date = IMF-fixdate / obs-date; recipients accept all three forms:
 *   Sun, 06 Nov 1994 08:49:37 GMT  ;  Sunday, 06-Nov-94 08:49:37 GMT  ;  Sun Nov  6 08:49:37 1994
 * 0 and *out set, or -1.
 */
static int parse_http_date(str_t v, time_t *out)
{
    char buf[64], mon[4] = {0};
    if (v.n == 0 || v.n >= sizeof buf)
        return -1;
    memcpy(buf, v.p, v.n);
    buf[v.n] = 0;
    int day, year, hh, mm, ss, used = 0;
    const char *comma = strchr(buf, ',');
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (comma && comma - buf == 3) { /* IMF-fixdate */
        if (sscanf(comma + 1, " %2d %3c %4d %2d:%2d:%2d GMT%n", &day, mon, &year, &hh, &mm, &ss,
                   &used) != 6 ||
            comma[1 + used] != 0)
            return -1;
    } else if (comma) { /* rfc850-date */
        if (sscanf(comma + 1, " %2d-%3c-%2d %2d:%2d:%2d GMT%n", &day, mon, &year, &hh, &mm, &ss,
                   &used) != 6 ||
            comma[1 + used] != 0)
            return -1;
        year += year < 70 ? 2000 : 1900;
    } else { /* asctime-date */
        char wday[4] = {0};
        if (sscanf(buf, "%3c %3c %2d %2d:%2d:%2d %4d%n", wday, mon, &day, &hh, &mm, &ss, &year,
                   &used) != 7 ||
            buf[used] != 0)
            return -1;
    }
    int m = month_index(mon);
    if (m < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1970)
        return -1;
    tm.tm_year = year - 1900;
    tm.tm_mon = m;
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    *out = timegm(&tm);
    return *out == (time_t)-1 ? -1 : 0;
}

/* IMF-fixdate, without the C library's locale (29 bytes + NUL for years 1000-9999). */
static void format_http_date(time_t t, char out[40])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", day_names[tm.tm_wday % 7], tm.tm_mday,
             month_names[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int parse_uint(const char *p, size_t n, size_t *k, long long *out)
{
    size_t start = *k;
    long long v = 0;
    while (*k < n && p[*k] >= '0' && p[*k] <= '9') {
        if (v > (LLONG_MAX - 9) / 10)
            return -1;
        v = v * 10 + (p[*k] - '0');
        (*k)++;
    }
    if (*k == start)
        return -1;
    *out = v;
    return 0;
}

/*
 * RFC 9110 14.1.1 / 14.2:  Range = ranges-specifier = range-unit "=" range-set
 *   range-set = 1#range-spec ; range-spec = int-range / suffix-range / other-range
 *   int-range = first-pos "-" [ last-pos ] ; suffix-range = "-" suffix-length
 * Returns 1 with [*first, *last] for one satisfiable range, -1 unsatisfiable (416), 0 to
 * ignore the header and send the whole file (another unit, invalid syntax, several ranges:
 * a server MAY ignore Range, 14.2).
 */
static int parse_range(str_t v, long long size, long long *first, long long *last)
{
    const char *p = v.p;
    size_t n = v.n, k = 0;
    if (n < 6 || strncasecmp(p, "bytes=", 6) != 0 || size <= 0)
        return 0;
    k = 6;
    while (k < n && is_ows(p[k]))
        k++;
    long long a = -1, b = -1;
    if (k < n && p[k] == '-') {
        k++;
        if (parse_uint(p, n, &k, &b) != 0)
            return 0;
    } else {
        if (parse_uint(p, n, &k, &a) != 0 || k >= n || p[k] != '-')
            return 0;
        k++;
        if (k < n && p[k] >= '0' && p[k] <= '9' && parse_uint(p, n, &k, &b) != 0)
            return 0;
    }
    while (k < n && is_ows(p[k]))
        k++;
    if (k != n)
        return 0; /* several ranges (or junk): the whole representation instead */
    if (a < 0) {  /* suffix-range */
        if (b == 0)
            return -1;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return 1;
    }
    if (b >= 0 && b < a)
        return 0; /* invalid range-spec */
    if (a >= size)
        return -1;
    *first = a;
    *last = (b < 0 || b >= size) ? size - 1 : b;
    return 1;
}

/* Quality (0..1000) the client gives `coding` in Accept-Encoding (RFC 9110 12.5.3); -1 when the
 * field is absent (only identity is wanted then, in effect). */
static int coding_quality(pw_conn *c, const char *coding)
{
    uint32_t i = 0;
    str_t v;
    int seen = 0, q_named = -1, q_star = -1;
    size_t clen = strlen(coding);
    while (next_header(c, "accept-encoding", &i, &v)) {
        seen = 1;
        size_t k = 0;
        while (k < v.n) {
            while (k < v.n && (is_ows(v.p[k]) || v.p[k] == ','))
                k++;
            size_t start = k;
            while (k < v.n && v.p[k] != ',' && v.p[k] != ';' && !is_ows(v.p[k]))
                k++;
            size_t tlen = k - start;
            int q = 1000;
            while (k < v.n && v.p[k] != ',') { /* parameters: only q matters */
                while (k < v.n && (is_ows(v.p[k]) || v.p[k] == ';'))
                    k++;
                if (k + 1 < v.n && (v.p[k] == 'q' || v.p[k] == 'Q') && v.p[k + 1] == '=') {
                    k += 2;
                    q = 0;
                    int digits = 0, scale = 1000, whole = 1;
                    while (k < v.n && ((v.p[k] >= '0' && v.p[k] <= '9') || v.p[k] == '.')) {
                        if (v.p[k] == '.') {
                            whole = 0;
                        } else if (whole) {
                            q = (v.p[k] - '0') * 1000;
                        } else if (digits < 3) {
                            scale /= 10;
                            q += (v.p[k] - '0') * scale;
                            digits++;
                        }
                        k++;
                    }
                    if (q > 1000)
                        q = 1000;
                } else {
                    while (k < v.n && v.p[k] != ',' && v.p[k] != ';')
                        k++;
                }
            }
            if (tlen == clen && strncasecmp(v.p + start, coding, clen) == 0)
                q_named = q;
            else if (tlen == 6 && strncasecmp(v.p + start, "x-gzip", 6) == 0 &&
                     strcmp(coding, "gzip") == 0 && q_named < 0)
                q_named = q;
            else if (tlen == 1 && v.p[start] == '*')
                q_star = q;
        }
    }
    if (!seen)
        return -1;
    return q_named >= 0 ? q_named : (q_star >= 0 ? q_star : 0);
}

/* ---------------------------------------------------------------- responses */

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
    char local[2048];
} sbuf;

static void sb_init(sbuf *b)
{
    b->p = b->local;
    b->len = 0;
    b->cap = sizeof b->local;
    b->failed = 0;
}

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = b->p == b->local ? malloc(cap) : realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        if (b->p == b->local)
            memcpy(p, b->local, b->len);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void sb_fmt(sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->failed = 1;
        return;
    }
    sb_add(b, tmp, n);
}

static void sb_free(sbuf *b)
{
    if (b->p != b->local)
        free(b->p);
}

typedef struct {
    pw_server *s;
    pw_conn *c;
    pw_static_root *r;
    int is_get, is_head;
    int keep;
} exchange;

static void head_start(exchange *x, sbuf *b, int status)
{
    x->c->resp_status = status;
    sb_fmt(b, "HTTP/1.1 %d %s\r\n", status, pw_status_reason(status));
}

/* The head's end - Content-Length (-1: none, a 304), Date, Server, Connection - as every
 * response of the server frames it (pw_head_finish). */
static void head_end(exchange *x, sbuf *b, long long content_length)
{
    char tail[512];
    pw_head h = {.status = x->c->resp_status,
                 .http10 = x->c->req.version_minor == 0,
                 .no_body = x->is_head || x->c->resp_status == 304,
                 .content_length = content_length,
                 .keep_alive = x->keep,
                 .server_line = x->r->server,
                 .extra_lines = pw_conn_hsts(x->s, x->c)};
    sb_add(b, tail, (size_t)pw_head_finish(&h, tail, sizeof tail));
}

static int send_buf(exchange *x, sbuf *head, const char *body, size_t body_len)
{
    struct iovec iov[2];
    int n = 0;
    if (head->failed) {
        x->keep = 0;
        x->c->broken = 1;
        return -1;
    }
    iov[n].iov_base = head->p;
    iov[n++].iov_len = head->len;
    if (body_len && !x->is_head) {
        iov[n].iov_base = (void *)body;
        iov[n++].iov_len = body_len;
        x->c->resp_bytes += (long long)body_len;
    }
    return pw_conn_send(x->s, x->c, iov, n); /* what a slow client leaves is sent later */
}

/* A small complete HTML response for an error or a redirect; extra: more header lines. */
static void send_status(exchange *x, int status, const char *extra)
{
    char body[256];
    int blen = pw_error_page(status, NULL, body, sizeof body);
    if (status == 400)
        x->keep = 0;
    sbuf b;
    sb_init(&b);
    head_start(x, &b, status);
    sb_str(&b, "Content-Type: text/html; charset=utf-8\r\n");
    if (extra)
        sb_str(&b, extra);
    head_end(x, &b, blen);
    send_buf(x, &b, body, blen);
    sb_free(&b);
}

static void redirect_to_slash(exchange *x)
{
    pw_request *q = &x->c->req;
    sbuf b;
    sb_init(&b);
    sb_str(&b, "Location: ");
    const char *p = x->c->buf + q->path.off;
    size_t n = q->path.len;
    /* "//host/dir" would redirect to another host (a scheme-relative reference): one slash. */
    while (n > 1 && p[0] == '/' && p[1] == '/') {
        p++;
        n--;
    }
    if (n && p[0] == '/')
        sb_add(&b, p, n);
    sb_str(&b, "/");
    if (q->has_query) {
        sb_str(&b, "?");
        sb_add(&b, x->c->buf + q->query.off, q->query.len);
    }
    sb_str(&b, "\r\n");
    if (b.failed)
        send_status(x, 500, NULL);
    else
        send_status(x, 301, b.p);
    sb_free(&b);
}

/* ---------------------------------------------------------------- serving */

static int segment_is(const char *p, size_t n, const char *word)
{
    return n == strlen(word) && memcmp(p, word, n) == 0;
}

/* 0 when the relative path is acceptable, else the status refusing it. */
static int check_rel(const char *rel, size_t n)
{
    if (memchr(rel, '\0', n))
        return 400;
    if (memchr(rel, '\\', n))
        return 404;
    size_t start = 0;
    for (size_t k = 0; k <= n; k++) {
        if (k == n || rel[k] == '/') {
            if (segment_is(rel + start, k - start, ".."))
                return 400;
            start = k + 1;
        }
    }
    return 0;
}

static int base_is_ht(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return strncmp(base, ".ht", 3) == 0;
}

/* Apache logs "File does not exist: PATH" at info level; so do we, naming the file when the
 * request got as far as one, else the request target. */
static void log_refusal(exchange *x, int status, const char *path)
{
    pw_request *q = &x->c->req;
    if (path)
        pw_log(x->s, PW_LOG_INFO, "%s:%d: static: %d for %s", x->c->peer_host, x->c->peer_port,
               status, path);
    else
        pw_log(x->s, PW_LOG_INFO, "%s:%d: static: %d for %.*s", x->c->peer_host, x->c->peer_port,
               status, (int)q->target.len, x->c->buf + q->target.off);
}

/* Serve regular file f (name: for its type) with headers, conditionals and ranges. */
static void serve_file(exchange *x, const char *name, open_file *f)
{
    pw_static_root *r = x->r;
    pw_conn *c = x->c;
    open_file variant = {.fd = -1, .slot = -1};
    const char *encoding = NULL;
    int vary = 0;
    str_t range_value = {NULL, 0};
    int has_range = x->is_get && header_count(c, "range", &range_value) > 0;

    if (r->precompressed) {
        static const struct {
            const char *coding, *suffix;
        } codings[] = {{"br", ".br"}, {"gzip", ".gz"}};
        int q[2] = {coding_quality(c, "br"), coding_quality(c, "gzip")};
        int order[2] = {0, 1};
        if (q[1] > q[0]) {
            order[0] = 1;
            order[1] = 0;
        }
        size_t nlen = strlen(name);
        char sibling[PATH_MAX + 4];
        for (int j = 0; j < 2 && nlen + 4 < sizeof sibling; j++) {
            int k = order[j];
            memcpy(sibling, name, nlen);
            strcpy(sibling + nlen, codings[k].suffix);
            if (!encoding && !has_range && q[k] > 0) {
                if (open_checked(x->s, r, sibling, &variant) == 0) {
                    /* A sibling older than the file is stale: never serve it. */
                    if (variant.fd >= 0 &&
                        (ST_MTIM(variant.st).tv_sec > ST_MTIM(f->st).tv_sec ||
                         (ST_MTIM(variant.st).tv_sec == ST_MTIM(f->st).tv_sec &&
                          ST_MTIM(variant.st).tv_nsec >= ST_MTIM(f->st).tv_nsec))) {
                        encoding = codings[k].coding;
                        vary = 1;
                        continue;
                    }
                    file_release(r, &variant);
                }
            }
            struct stat st;
            if (!vary && stat(sibling, &st) == 0 && S_ISREG(st.st_mode))
                vary = 1;
        }
    }
    open_file *served = encoding ? &variant : f;
    const struct stat *st = &served->st;
    long long size = (long long)st->st_size;
    char etag[80], modified[40];
    snprintf(etag, sizeof etag, "\"%llx-%llx%s%s\"", (unsigned long long)size,
             (unsigned long long)ST_MTIM(*st).tv_sec * 1000000000ull +
                 (unsigned long long)ST_MTIM(*st).tv_nsec,
             encoding ? "-" : "", encoding ? encoding : "");
    format_http_date(ST_MTIM(*st).tv_sec, modified);
    time_t mtime = ST_MTIM(*st).tv_sec, when;
    str_t v;

    /* RFC 9110 13.2.2: the order in which preconditions are evaluated. */
    int status = 200;
    if (header_count(c, "if-match", &v) > 0) {
        if (!etag_list_matches(c, "if-match", etag, 0))
            status = 412;
    } else if (header_count(c, "if-unmodified-since", &v) == 1 && parse_http_date(v, &when) == 0) {
        if (mtime > when)
            status = 412;
    }
    if (status == 200) {
        if (header_count(c, "if-none-match", &v) > 0) {
            if (etag_list_matches(c, "if-none-match", etag, 1))
                status = 304;
        } else if (header_count(c, "if-modified-since", &v) == 1 &&
                   parse_http_date(v, &when) == 0) {
            if (mtime <= when)
                status = 304;
        }
    }
    long long first = 0, last = size - 1;
    if (status == 200 && has_range && !encoding) {
        int use = 1;
        if (header_count(c, "if-range", &v) > 0) {
            /* 13.1.5: a strong entity tag, or the exact Last-Modified date. */
            if (v.n && v.p[0] == '"')
                use = v.n == strlen(etag) && memcmp(v.p, etag, v.n) == 0;
            else
                use = parse_http_date(v, &when) == 0 && when == mtime;
        }
        if (use && header_count(c, "range", &range_value) == 1) {
            int rc = parse_range(range_value, size, &first, &last);
            if (rc == 1)
                status = 206;
            else if (rc < 0)
                status = 416;
        }
    }

    sbuf b;
    sb_init(&b);
    if (status == 412) {
        send_status(x, 412, NULL);
        goto done;
    }
    if (status == 416) {
        char extra[64];
        snprintf(extra, sizeof extra, "Content-Range: bytes */%lld\r\n", size);
        send_status(x, 416, extra);
        goto done;
    }
    head_start(x, &b, status);
    if (status != 304) {
        sb_fmt(&b, "Content-Type: %s\r\n", content_type(r, name));
        if (status == 206)
            sb_fmt(&b, "Content-Range: bytes %lld-%lld/%lld\r\n", first, last, size);
        if (encoding)
            sb_fmt(&b, "Content-Encoding: %s\r\n", encoding);
        else
            sb_str(&b, "Accept-Ranges: bytes\r\n");
    }
    sb_fmt(&b, "Last-Modified: %s\r\nETag: %s\r\n", modified, etag);
    if (vary)
        sb_str(&b, "Vary: Accept-Encoding\r\n");
    if (r->cache_control)
        sb_fmt(&b, "Cache-Control: %s\r\n", r->cache_control);
    head_end(x, &b, status == 304 ? -1 : last - first + 1);
    long long count = status == 304 || x->is_head ? 0 : last - first + 1;
    if (count > 0 && count <= SMALL_FILE) {
        char body[SMALL_FILE];
        ssize_t got = pread(served->fd, body, count, first);
        if (got != count) { /* the file shrank under us: send what there is, then close */
            x->keep = 0;
            got = got < 0 ? 0 : got;
        }
        send_buf(x, &b, body, got);
    } else {
        if (send_buf(x, &b, NULL, 0) == 0 && count > 0 &&
            pw_conn_sendfile(x->s, c, served->fd, first, count) == 0)
            c->resp_bytes += count;
    }
done:
    sb_free(&b);
    file_release(r, &variant);
}

int pw_static_serve(pw_server *s, pw_conn *c, pw_static_root *r, const char *rel, size_t rel_len)
{
    exchange x = {s, c, r, 0, 0, 0};
    const char *method = c->buf + c->req.method.off;
    size_t mlen = c->req.method.len;
    x.is_get = mlen == 3 && memcmp(method, "GET", 3) == 0;
    x.is_head = mlen == 4 && memcmp(method, "HEAD", 4) == 0;
    x.keep = c->req.keep_alive && !pw_server_stopping(s);

    int status = check_rel(rel, rel_len);
    if (status == 0 && r->is_file && rel_len != 0)
        status = 404;
    char path[PATH_MAX];
    size_t plen = r->root_len;
    int path_built = 0;
    if (status == 0) {
        if (r->is_file)
            rel_len = 0;
        if (plen + rel_len + 1 > sizeof path) {
            status = 404;
        } else {
            memcpy(path, r->root, plen);
            memcpy(path + plen, rel, rel_len);
            plen += rel_len;
            path[plen] = 0;
            path_built = 1;
            if (base_is_ht(path))
                status = 403;
        }
    }
    open_file f = {.fd = -1, .slot = -1};
    if (status == 0)
        status = open_checked(s, r, path, &f);
    if (status == 0 && f.fd < 0) { /* a directory */
        if (rel_len == 0 || rel[rel_len - 1] != '/') {
            redirect_to_slash(&x);
            return x.keep && !c->broken;
        }
        status = 403; /* no index file: no listing */
        for (int i = 0; i < r->n_index; i++) {
            size_t ilen = strlen(r->index[i]);
            if (plen + ilen + 1 > sizeof path)
                continue;
            memcpy(path + plen, r->index[i], ilen + 1);
            if (open_checked(s, r, path, &f) == 0) {
                if (f.fd >= 0) {
                    status = 0;
                    break;
                }
            }
        }
        if (status)
            path[plen] = 0;
    }
    if (status) {
        log_refusal(&x, status, path_built ? path : NULL);
        send_status(&x, status, NULL);
        return x.keep && !c->broken;
    }
    if (!x.is_get && !x.is_head) {
        file_release(r, &f);
        send_status(&x, 405, "Allow: GET, HEAD\r\n");
        return x.keep && !c->broken;
    }
    serve_file(&x, path, &f);
    file_release(r, &f);
    return x.keep && !c->broken;
}

int pw_static_lookup(pw_server *s, pw_static_root *r, const char *rel, size_t rel_len)
{
    if (check_rel(rel, rel_len) != 0 || (r->is_file && rel_len != 0))
        return 0;
    char path[PATH_MAX];
    size_t plen = r->root_len;
    if (r->is_file)
        rel_len = 0;
    if (plen + rel_len + 1 > sizeof path)
        return 0;
    memcpy(path, r->root, plen);
    memcpy(path + plen, rel, rel_len);
    plen += rel_len;
    path[plen] = 0;
    if (base_is_ht(path))
        return 0;
    open_file f = {.fd = -1, .slot = -1};
    if (open_checked(s, r, path, &f) != 0)
        return 0;
    if (f.fd >= 0) {
        file_release(r, &f);
        return 1;
    }
    if (plen + 1 < sizeof path && path[plen - 1] != '/')
        path[plen++] = '/';
    for (int i = 0; i < r->n_index; i++) {
        size_t ilen = strlen(r->index[i]);
        if (plen + ilen + 1 > sizeof path)
            continue;
        memcpy(path + plen, r->index[i], ilen + 1);
        if (open_checked(s, r, path, &f) == 0 && f.fd >= 0) {
            file_release(r, &f);
            return 1;
        }
    }
    return 0;
}
