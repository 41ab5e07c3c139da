/*
 * reactor.c -- accept, read and parse heads, hold idle connections, hand complete requests to
 * workers, and the blocking-with-deadline I/O the workers use.  No Python here: the Cython
 * core calls these functions with the GIL released.  See reactor.h for the ownership rules.
 */
#include "reactor.h"
#include "scoreboard.h"
#include "relay.h"
#include "proxy_protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#ifdef __GLIBC__
#  include <malloc.h>  /* malloc_trim */
#endif
#include <sys/time.h>
#include <unistd.h>
#ifdef __linux__
#  include <linux/sockios.h>   /* SIOCOUTQ */
#endif

#if defined(__linux__)
#  define PW_USE_EPOLL 1
#  include <sys/epoll.h>
#  include <sys/sendfile.h>
#else
#  define PW_USE_KQUEUE 1
#  include <sys/event.h>
#endif

#ifndef MSG_NOSIGNAL
#  define MSG_NOSIGNAL 0  /* macOS: SO_NOSIGPIPE is set on each socket instead */
#endif

#define PW_INITIAL_BUF 8192
#define PW_KEEP_BUF 65536          /* a buffer grown past this is shrunk back between requests */
#define PW_DRAIN_LIMIT (256 * 1024) /* unread body we still read and discard to keep a connection */
#define PW_SCAN_INTERVAL 0.25
/* Lingering close (Apache's SECONDS_TO_LINGER and MAX_SECS_TO_LINGER): after answering a
 * request whose body was not read, the rest is read and dropped until the client closes, it
 * pauses this long, or the total passes - so closing never resets the answer away. */
#define PW_LINGER_PAUSE 2.0
#define PW_LINGER_MAX 30.0
/* Out of descriptors (EMFILE/ENFILE) with no idle connection to close: stop accepting this
 * long (nginx's accept_mutex_delay), instead of spinning on a listening socket that stays
 * readable.  The clients wait in the listen backlog meanwhile. */
#define PW_ACCEPT_PAUSE 0.5
/* A condition that repeats (out of descriptors, refusals and evictions at --max-clients) is
 * logged at once, then at most once per this interval with a count. */
#define PW_LOG_EVERY 10.0
/* A connection is idle enough to be closed to make room once it has sent nothing for this
 * long: younger, its request is most likely on its way (a client writes right after connecting,
 * and again right after reading a response), and closing it would only swap one client for
 * another. */
#define PW_EVICT_MIN_IDLE 0.1
/* Most connections closed by one eviction (nginx's ngx_drain_connections: 32, or an eighth
 * of the candidates): one walk makes room for a run of new connections. */
#define PW_EVICT_BATCH 32
/* An idle connection's read buffer, header table and access-log capture are freed after this
 * long (conn_shed_memory), so thousands of idle keep-alive connections cost little; a busy one
 * keeps them. */
#define PW_IDLE_FREE 1.0

/* Connection structures come in slabs of this many, apart from the buffers a connection
 * allocates and frees: the pages an idle connection's freed buffers leave are then whole and go
 * back to the system, instead of each staying resident around one small live structure. */
#define PW_CONN_SLAB 64

typedef struct pw_conn_slab {
    struct pw_conn_slab *next;
    int used;
    pw_conn conns[PW_CONN_SLAB];
} pw_conn_slab;

/* A condition logged at most once per PW_LOG_EVERY (log_limited). */
typedef struct {
    double last;                  /* when a line was last written; 0: never */
    unsigned suppressed;          /* occurrences since then, not written yet */
    int level;
    char text[320];               /* the latest of them */
} pw_log_limit;

struct pw_server {
    pw_config cfg;
    int poll_fd;
    int wake_rd, wake_wr;
    pthread_t reactor;
    int reactor_started;
    pw_conn **conns;              /* indexed by fd; reactor thread only */
    int conns_cap;
    pw_conn_slab *slabs;          /* where the conns[] entries live (conn_slot) */
    pw_conn **relay_owner;        /* daemon connection fd -> the client it relays for */
    int relay_owner_cap;
    int relay_inflight;           /* relays the reactor follows (reactor thread only) */
    pw_conn *relay_wait_head, *relay_wait_tail;  /* waiting for one of them to finish */
    pw_conn *handoff;             /* relays threads left to the reactor (under qlock) */
    int open_conns;               /* atomic */
    int stopping;                 /* atomic: no new connections, no keep-alive */
    int shutdown;                 /* atomic: reactor and workers end */
    int listening;                /* reactor: listen fds registered */
    int busy;                     /* atomic: connections queued or with a worker */
    int accept_paused;            /* atomic: listen fds left out while busy */
    int pending;                  /* reactor only: fresh connections not yet dispatched */
    pthread_mutex_t lock;         /* hand-back vs. deadline scan */
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    pw_conn *qhead, *qtail;
    /* The queue's wake-up bookkeeping (under qlock; see queue_to_worker).  running: workers
     * serving a connection, who will come back to the queue; signaled: wake-ups sent and not
     * yet taken; waiting: workers asleep in pw_queue_pop; queue_moved: when the queue last
     * moved (a pop, or a push onto an empty queue). */
    int running, signaled, waiting, queued;
    double queue_moved;
    /* Leader mode (cfg.leader_follower; see leader_pop), under qlock: a worker holds the
     * reactor (token), since when nobody does (token_freed), whether a sleeping worker watches
     * with a timeout (watcher) and whether one was asked to (recruit). */
    int token, watcher, recruit, poller_failed;
    double token_freed;
    long long lazy_due_us;        /* atomic: when the reactor checks the queue again, 0 never */
    double last_scan;
    /* Connection limits.  Out of descriptors, accepting resumes at accept_resume_at (0: not
     * paused for that).  An eviction walk that found nothing is not repeated until something
     * may have become evictable (evict_idle): a connection handed back idle or lingering
     * (handbacks, atomic: workers count it under s->lock) or one the reactor accepted.  The
     * rest is the reactor's. */
    double accept_resume_at;
    int pause_handbacks;          /* handbacks when accepting paused: one more resumes it */
    int fds_paused;               /* atomic: accept_resume_at is set (busy_done wakes us) */
    int handbacks;
    int evict_fruitless, evict_fruitless_at;  /* the last walk found nothing; handbacks then */
    double evict_ripe_at;         /* ... and when one it saw will have been idle long enough */
    pw_log_limit log_no_fds, log_evicted, log_refused;
    size_t idle_freed;            /* bytes of idle buffers freed since the heap was trimmed */
    double last_trim;
};

/* A worker thread counts in s->running from the connection it pops until its next pop. */
static __thread int worker_running;

/* ---------------------------------------------------------------- utilities */

static double pw_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int atomic_load_int(int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void atomic_store_int(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static int atomic_add_int(int *p, int v) { return __atomic_add_fetch(p, v, __ATOMIC_ACQ_REL); }
/* --server-status counters of this process (csrc/scoreboard.h); nothing when it is off */
#define SB_ADD(s, field, v) do { if ((s)->cfg.scoreboard) PW_SB_ADD((s)->cfg.scoreboard->field, (v)); } while (0)

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
static void log_limited(pw_server *s, pw_log_limit *l, double now, int level,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void log_limited(pw_server *s, pw_log_limit *l, double now, int level,
                        const char *fmt, ...)
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

static void log_limited_flush(pw_server *s, pw_log_limit *l, double now)
{
    if (l->suppressed == 0 || now - l->last < PW_LOG_EVERY)
        return;
    pw_log(s, l->level, "%s (%u times in the last %.0f s)", l->text, l->suppressed,
           now - l->last);
    l->suppressed = 0;
    l->last = now;
}

void pw_http_date(char out[30])
{
    /* Per thread, so no lock: each worker formats at most once a second. */
    static __thread time_t cached_sec;
    static __thread char cached[30];
    time_t now = time(NULL);
    if (now != cached_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(cached, sizeof cached, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached_sec = now;
    }
    memcpy(out, cached, 30);
}

const char *pw_status_reason(int status)
{
    switch (status) {
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* ---------------------------------------------------------------- poller */

static int poller_create(void)
{
#ifdef PW_USE_EPOLL
    return epoll_create1(EPOLL_CLOEXEC);
#else
    int fd = kqueue();
    if (fd >= 0)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
#endif
}

/* Level-triggered, for listening sockets, the wake pipe and the reactor relay's daemon
 * connections (which stay registered while idle in its pool: no system call per request). */
static int poller_add_level(pw_server *s, int fd, int exclusive)
{
#ifdef PW_USE_EPOLL
    struct epoll_event ev = {0};
    ev.events = EPOLLIN;
#ifdef EPOLLEXCLUSIVE
    /* Several server processes wait on one listening socket: wake one, not all. */
    if (exclusive)
        ev.events |= EPOLLEXCLUSIVE;
#endif
    ev.data.fd = fd;
    return epoll_ctl(s->poll_fd, EPOLL_CTL_ADD, fd, &ev);
#else
    (void)exclusive;
    struct kevent kev;
    EV_SET(&kev, fd, EVFILT_READ, EV_ADD, 0, 0, NULL);
    return kevent(s->poll_fd, &kev, 1, NULL, 0, NULL);
#endif
}

static void poller_del(pw_server *s, int fd)
{
#ifdef PW_USE_EPOLL
    struct epoll_event ev = {0};
    epoll_ctl(s->poll_fd, EPOLL_CTL_DEL, fd, &ev);
#else
    struct kevent kev;
    EV_SET(&kev, fd, EVFILT_READ, EV_DELETE, 0, 0, NULL);
    kevent(s->poll_fd, &kev, 1, NULL, 0, NULL);
#endif
}

/*
 * A client connection stays registered, level-triggered, for its whole life, so handing it
 * back to the reactor after a response costs no system call.  While a worker (or the reactor's
 * relay) has it, an event for it - a pipelined request, the body a worker reads itself, the
 * client closing - makes the reactor take it out of the poller (conn_disarm, under s->lock),
 * and the hand-back puts it in again.  Only first registration and that re-add cost a call.
 * While the reactor sends output a slow client has not taken (WRITING), it watches for room
 * to write instead of for input (which stays in the socket until the response is out).
 */
enum { PW_WATCH_NONE = 0, PW_WATCH_IN, PW_WATCH_OUT };

static int conn_watch(pw_server *s, pw_conn *c, int want)
{
    if (c->watch == want)
        return 0;
    int had = c->watch;
    c->watch = want;
#ifdef PW_USE_EPOLL
    struct epoll_event ev = {0};
    ev.events = want == PW_WATCH_OUT ? EPOLLOUT : (EPOLLIN | EPOLLRDHUP);
    ev.data.fd = c->fd;
    return epoll_ctl(s->poll_fd, had == PW_WATCH_NONE ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ev);
#else
    struct kevent kev[2];
    int n = 0;
    if (had != PW_WATCH_NONE)
        EV_SET(&kev[n++], c->fd, had == PW_WATCH_OUT ? EVFILT_WRITE : EVFILT_READ, EV_DELETE,
               0, 0, NULL);
    EV_SET(&kev[n++], c->fd, want == PW_WATCH_OUT ? EVFILT_WRITE : EVFILT_READ, EV_ADD, 0, 0,
           NULL);
    return kevent(s->poll_fd, kev, n, NULL, 0, NULL);
#endif
}

static int conn_arm(pw_server *s, pw_conn *c, int first)
{
    if (first)
        c->watch = PW_WATCH_NONE;  /* a new descriptor (the number may have been another's) */
    return conn_watch(s, c, PW_WATCH_IN);
}

/* Take c out of the poller while a worker has it (the caller holds s->lock, or owns c). */
static void conn_unwatch(pw_server *s, pw_conn *c)
{
    if (c->watch == PW_WATCH_NONE)
        return;
#ifdef PW_USE_EPOLL
    poller_del(s, c->fd);
#else
    struct kevent kev;
    EV_SET(&kev, c->fd, c->watch == PW_WATCH_OUT ? EVFILT_WRITE : EVFILT_READ, EV_DELETE, 0, 0,
           NULL);
    kevent(s->poll_fd, &kev, 1, NULL, 0, NULL);
#endif
    c->watch = PW_WATCH_NONE;
}

/* Reactor thread: an event for connection c at fd, which the reactor does not own now.
 * Returns its state under the lock: READING, LINGERING or WRITING when it was handed back
 * meanwhile and should be handled as usual. */
static int conn_disarm(pw_server *s, pw_conn *c, int fd)
{
    pthread_mutex_lock(&s->lock);
    int state = atomic_load_int(&c->state);
    if ((state == PW_CONN_BUSY || state == PW_CONN_RELAYING) && c->fd == fd)
        conn_unwatch(s, c);
    pthread_mutex_unlock(&s->lock);
    return state;
}

/* ---------------------------------------------------------------- server */

/* The access log's failed writes (accesslog.h) go to the error log. */
static void access_log_report(void *arg, int level, const char *line)
{
    pw_log(arg, level, "%s", line);
}

pw_server *pw_server_new(const pw_config *cfg, char *err, size_t errlen)
{
    pw_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->poll_fd = -1;
    s->wake_rd = s->wake_wr = -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->qlock, NULL);
    pthread_cond_init(&s->qcond, NULL);
    s->poll_fd = poller_create();
    int p[2];
    if (s->poll_fd < 0 || pipe(p) != 0) {
        snprintf(err, errlen, "poller: %s", strerror(errno));
        pw_server_free(s);
        return NULL;
    }
    s->wake_rd = p[0];
    s->wake_wr = p[1];
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
    }
    if (poller_add_level(s, s->wake_rd, 0) != 0) {
        snprintf(err, errlen, "poller: %s", strerror(errno));
        pw_server_free(s);
        return NULL;
    }
    for (int i = 0; i < cfg->num_listen; i++) {
        int fd = cfg->listen_fds[i];
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        if (poller_add_level(s, fd, 1) != 0) {
            snprintf(err, errlen, "listen fd %d: %s", fd, strerror(errno));
            pw_server_free(s);
            return NULL;
        }
    }
    s->listening = 1;
    if (s->cfg.access_log)
        pw_access_log_on_failure(s->cfg.access_log, access_log_report, s,
                                 s->cfg.scoreboard ? &s->cfg.scoreboard->access_log_dropped
                                                   : NULL);
    return s;
}

static void wake_reactor(pw_server *s)
{
    char b = 1;
    ssize_t w = write(s->wake_wr, &b, 1);
    (void)w;
}

void pw_server_stop_accepting(pw_server *s)
{
    atomic_store_int(&s->stopping, 1);
    wake_reactor(s);
}

int pw_server_stopping(pw_server *s) { return atomic_load_int(&s->stopping); }
int pw_server_open_conns(pw_server *s) { return atomic_load_int(&s->open_conns); }
const pw_config *pw_server_config(pw_server *s) { return &s->cfg; }

static void clear_pending(pw_server *s, pw_conn *c)
{
    if (c->pending) {
        c->pending = 0;
        s->pending--;
    }
}

static void conn_close(pw_server *s, pw_conn *c)
{
    int fd = c->fd;
    clear_pending(s, c);
    /* Read what the client already sent, so closing does not turn into a reset that could
     * destroy the response it has not read yet.  Not in a daemon: a UNIX socket delivers what
     * was sent before the reset, and the reset is how the relay learns that a request on a
     * pooled connection was never read (so it may retry it). */
    char sink[4096];
    for (int i = 0; i < 16 && !s->cfg.daemon_role; i++)
        if (recv(fd, sink, sizeof sink, MSG_DONTWAIT) <= 0)
            break;
    c->fd = -1;
    c->watch = PW_WATCH_NONE;
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = c->out_cap = 0;
    if (c->out_file_fd >= 0)
        close(c->out_file_fd);
    c->out_file_fd = -1;
    c->out_file_left = 0;
    c->after_output = 0;
    c->resuming = 0;
    pw_relay_progress_free(c);
    if (c->cap > PW_KEEP_BUF) {
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
    c->len = 0;
    atomic_store_int(&c->state, PW_CONN_FREE);
    close(fd);  /* after FREE: the fd number (and so this slot) may be reused at once */
    atomic_add_int(&s->open_conns, -1);
    SB_ADD(s, connections, -1);
}

/* Does the client still have request-body bytes to send (the body was not read to its end)? */
static int body_unread(const pw_conn *c)
{
    switch (c->req.body_kind) {
    case PW_BODY_LENGTH: return c->body_left > 0;
    case PW_BODY_CHUNKED: return !c->body_done;
    default: return 0;
    }
}

/*
 * End a connection after its last response.  If the client may still be sending its request
 * body (an upload answered 413, or any early answer), closing now would make the kernel answer
 * its next bytes with a reset, which can destroy the response before the client reads it (curl:
 * "Connection reset by peer").  So, as Apache's lingering close does, shut the sending side and
 * hand the connection to the reactor, which reads and drops what still comes until the client
 * closes (conn_linger_read, the scan).  Caller: the owner (reactor, or a worker from
 * conn_release); the connection must be registered or disarmed as in state READING.
 */
static void conn_end(pw_server *s, pw_conn *c)
{
    if (s->cfg.daemon_role || c->broken || !body_unread(c) || c->fd < 0) {
        conn_close(s, c);
        return;
    }
    clear_pending(s, c);
    shutdown(c->fd, SHUT_WR);
    double now = pw_now();
    pthread_mutex_lock(&s->lock);
    c->linger_until = now + PW_LINGER_MAX;
    c->deadline = now + PW_LINGER_PAUSE;
    atomic_store_int(&c->state, PW_CONN_LINGERING);
    __atomic_add_fetch(&s->handbacks, 1, __ATOMIC_RELAXED);  /* evictable (evict_idle) */
    int armed = conn_arm(s, c, 0);
    pthread_mutex_unlock(&s->lock);
    if (armed != 0)
        conn_close(s, c);
}

/* Reactor: a lingering connection is readable: drop what came; close at its end. */
static void conn_linger_read(pw_server *s, pw_conn *c)
{
    char sink[16384];
    for (int i = 0; i < 64; i++) {  /* up to 1 MiB per event: other connections get their turn */
        ssize_t n = recv(c->fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            break;
        conn_close(s, c);  /* the client closed (or reset): done */
        return;
    }
    double next = pw_now() + PW_LINGER_PAUSE;
    c->deadline = next < c->linger_until ? next : c->linger_until;
}

void pw_send_error(pw_server *s, pw_conn *c, int status)
{
    char body[256], head[512], date[30];
    const char *reason = pw_status_reason(status);
    int blen = snprintf(body, sizeof body,
                        "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>"
                        "<body><h1>%s</h1></body></html>\n", status, reason, reason);
    pw_http_date(date);
    int hlen = snprintf(head, sizeof head,
                        "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: pywsgi\r\n"
                        "Content-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n"
                        "Connection: close\r\n\r\n", status, reason, date, blen);
    struct iovec iov[2] = {{head, (size_t)hlen}, {body, (size_t)blen}};
    c->resp_status = status;
    c->resp_bytes = blen;
    pw_conn_writev(s, c, iov, 2);
    shutdown(c->fd, SHUT_WR);
}

/* An answer the reactor gave itself (parse error, limit, timeout): log it, with the request
 * line when the head was parsed (captured), else "-". */
static void log_reactor_answer(pw_server *s, pw_conn *c, int captured)
{
    if (s->cfg.scoreboard)
        pw_sb_request_done(s->cfg.scoreboard, c->resp_status, c->resp_bytes,
                           captured ? pw_now() - c->req_start : 0);
    if (!s->cfg.access_log)
        return;
    if (!captured) {
        c->log_rl_len = 0;
        for (int i = 0; i < PW_LOG_MAX_HEADERS; i++)
            c->log_hdr_len[i] = 0xffff;
        c->req_time = time(NULL);
        c->req_start = pw_now();
    }
    pw_access_log_write(s->cfg.access_log, c);
}

/* Make an fd-indexed table (*table, *cap entries) hold index fd; new entries are NULL. */
static int fd_table_fit(pw_conn ***table, int *cap, int fd)
{
    if (fd < *cap)
        return 0;
    int want = *cap ? *cap : 1024;
    while (want <= fd)
        want *= 2;
    pw_conn **n = realloc(*table, want * sizeof *n);
    if (!n)
        return -1;
    memset(n + *cap, 0, (want - *cap) * sizeof *n);
    *table = n;
    *cap = want;
    return 0;
}

static pw_conn *conn_slot(pw_server *s, int fd)
{
    if (fd_table_fit(&s->conns, &s->conns_cap, fd) != 0)
        return NULL;
    pw_conn *c = s->conns[fd];
    if (!c) {
        if (!s->slabs || s->slabs->used == PW_CONN_SLAB) {
            pw_conn_slab *slab = calloc(1, sizeof *slab);
            if (!slab)
                return NULL;
            slab->next = s->slabs;
            s->slabs = slab;
        }
        c = &s->slabs->conns[s->slabs->used++];  /* buffer, header table: with its first byte */
        c->fd = c->out_file_fd = -1;
        s->conns[fd] = c;
    }
    return c;
}

static void conn_reset_request(pw_server *s, pw_conn *c)
{
    pw_request_init(&c->req, c->headers, s->cfg.limits.max_fields);
}

/* The header table (limit_request_fields entries) of a connection about to parse a head: an
 * idle connection has none (conn_slot, reactor_scan), so a silent one costs ~1 KiB. */
static int conn_headers(pw_server *s, pw_conn *c)
{
    if (c->headers)
        return 0;
    c->headers = calloc(s->cfg.limits.max_fields ? s->cfg.limits.max_fields : 1,
                        sizeof(pw_header));
    if (!c->headers)
        return -1;
    conn_reset_request(s, c);  /* nothing parsed yet: the connection was idle */
    return 0;
}

/* The head is complete: set up body reading; 0 = hand to a worker, -1 = answered and closed. */
static void log_reactor_answer(pw_server *s, pw_conn *c, int captured);

/* Trusted proxies (docs/proxies.md): the client of this request, from the connection's peer
 * and - when that is a trusted proxy - its forwarding headers. */
static void conn_find_client(pw_server *s, pw_conn *c)
{
    memcpy(c->peer_host, c->conn_host, sizeof c->peer_host);
    c->peer_port = c->conn_port;
    c->fwd_https = c->proxy_https;
    c->fwd_host_len = 0;
    c->fwd_server_port = 0;
    if (!c->proxy_trusted || !s->cfg.trust.headers)
        return;
    pw_forwarded f;
    /* daemon role: the server process already put the client's address in the preamble */
    pw_forwarded_eval(&s->cfg.trust, c->buf, c->req.headers, c->req.num_headers,
                      !s->cfg.daemon_role, &f);
    if (f.error)
        pw_log(s, PW_LOG_INFO, "%s:%d: forwarding header from a trusted proxy ignored: %s",
               c->conn_host, c->conn_port, f.error);
    if (f.have_addr) {
        memcpy(c->peer_host, f.host, sizeof c->peer_host);
        c->peer_port = f.port;
    }
    if (f.https >= 0)
        c->fwd_https = f.https;
    c->fwd_host_off = f.host_off;
    c->fwd_host_len = f.host_len;
    c->fwd_server_port = f.server_port;
}

static int trust_on(pw_server *s)
{
    return s->cfg.trust.count > 0 || s->cfg.trust.unix_peers;
}

static int conn_head_done(pw_server *s, pw_conn *c)
{
    pw_request *r = &c->req;
    conn_find_client(s, c);
    c->req_start = pw_now();
    c->req_time = time(NULL);
    c->resp_status = 0;
    c->resp_bytes = 0;
    c->status_page = 0;
    if (s->cfg.access_log)
        pw_access_log_capture(s->cfg.access_log, c);
    c->body_pos = r->head_len;
    c->body_left = r->body_kind == PW_BODY_LENGTH ? r->content_length : 0;
    c->body_total = 0;
    c->chunk_off = c->chunk_len = 0;
    pw_chunked_init(&c->chunked);
    c->body_done = r->body_kind == PW_BODY_NONE;
    c->body_error = 0;
    c->sent_continue = c->expect_handled;
    c->idle = 0;
    if (c->client_closes)
        r->keep_alive = 0;  /* frames the response as for a client that asked to close */
    if (r->body_kind == PW_BODY_LENGTH && s->cfg.limit_request_body &&
        r->content_length > s->cfg.limit_request_body) {
        pw_log(s, PW_LOG_INFO, "%s:%d: request body of %llu bytes over --limit-request-body "
               "(%llu): 413", c->peer_host, c->peer_port, (unsigned long long)r->content_length,
               (unsigned long long)s->cfg.limit_request_body);
        pw_send_error(s, c, 413);
        log_reactor_answer(s, c, 1);
        return -1;
    }
    return 0;
}

/* A chunked body is over --limit-request-body once its data so far plus what the current
 * chunk's size line still announces passes it: known before those bytes arrive. */
static int chunked_over_limit(pw_server *s, uint64_t total, const pw_chunked *ch)
{
    return s->cfg.limit_request_body && total + ch->remaining > s->cfg.limit_request_body;
}

/* The 413 for a chunked body found over the limit: logged with the setting's name. */
static void log_chunked_413(pw_server *s, pw_conn *c)
{
    pw_log(s, PW_LOG_INFO, "%s:%d: chunked request body over --limit-request-body (%llu): 413",
           c->peer_host, c->peer_port, (unsigned long long)s->cfg.limit_request_body);
}

static int relay_async_start(pw_server *s, pw_conn *c);

static void queue_to_worker(pw_server *s, pw_conn *c);

/* The --server-status URL or below: answered by the Python layer, never relayed. */
static int is_status_target(pw_server *s, pw_conn *c)
{
    size_t n = s->cfg.status_url_len;
    const pw_span *p = &c->req.path;
    if (n == 0 || p->len < n || memcmp(c->buf + p->off, s->cfg.status_url, n) != 0)
        return 0;
    return p->len == n || c->buf[p->off + n] == '/';
}

static void queue_push(pw_server *s, pw_conn *c)
{
    if (s->cfg.relay_async && c->req.body_kind == PW_BODY_NONE && !is_status_target(s, c) &&
        relay_async_start(s, c) == 0)
        return;
    queue_to_worker(s, c);
}

static void queue_to_worker(pw_server *s, pw_conn *c)
{
    clear_pending(s, c);
    atomic_add_int(&s->busy, 1);
    SB_ADD(s, busy, 1);
    atomic_store_int(&c->state, PW_CONN_BUSY);
    if (s->cfg.dispatch) {
        s->cfg.dispatch(s, c);  /* inline mode: served (and released) right here */
        return;
    }
    c->next = NULL;
    pthread_mutex_lock(&s->qlock);
    if (s->qtail)
        s->qtail->next = c;
    else {
        s->qhead = c;
        s->queue_moved = pw_now();
    }
    s->qtail = c;
    s->queued++;
    /* Lazy wake-up (cfg.lazy_wake): only one thread runs Python at a time, so waking a sleeping
     * worker while another is serving mostly buys two context switches and a GIL hand-over.
     * The running worker takes this request when it comes back to the queue; if the queue does
     * not move for lazy_wake seconds (the running workers wait on something), the reactor
     * wakes sleeping workers then (queue_lazy_check). */
    if (s->cfg.lazy_wake > 0 && (s->running + s->signaled > 0 || s->cfg.leader_follower)) {
        if (!__atomic_load_n(&s->lazy_due_us, __ATOMIC_RELAXED))
            __atomic_store_n(&s->lazy_due_us,
                             (long long)((s->queue_moved + s->cfg.lazy_wake) * 1e6) + 1,
                             __ATOMIC_RELAXED);
    } else if (s->waiting > s->signaled) {
        s->signaled++;
        pthread_cond_signal(&s->qcond);
    }
    pthread_mutex_unlock(&s->qlock);
}

/* Reactor thread, once s->lazy_due_us has passed: wake a sleeping worker for every queued
 * request if the queue has not moved for lazy_wake seconds, else look again when it would. */
static void queue_lazy_check(pw_server *s, double now)
{
    pthread_mutex_lock(&s->qlock);
    long long due = 0;
    if (s->qhead) {
        if (now - s->queue_moved >= s->cfg.lazy_wake) {
            int want = s->queued - s->signaled;
            for (; want > 0 && s->waiting > s->signaled; want--) {
                s->signaled++;
                pthread_cond_signal(&s->qcond);
            }
            s->queue_moved = now;
        }
        due = (long long)((s->queue_moved + s->cfg.lazy_wake) * 1e6) + 1;
    }
    __atomic_store_n(&s->lazy_due_us, due, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&s->qlock);
}

static int reactor_turn(pw_server *s);

/* Leader mode: a worker that has the token hands the reactor over when it goes to serve; one
 * sleeping worker (the watcher) must then look again within lazy_wake. */
static void recruit_watcher(pw_server *s)
{
    if (!s->watcher && s->waiting > 0) {
        s->recruit = 1;
        pthread_cond_signal(&s->qcond);
    }
}

/*
 * Leader mode (workers that run Python): no reactor thread.  A worker with nothing to serve runs the
 * reactor itself (reactor_turn, holding the token), and then serves what it queued - so a
 * request that arrives at an idle process wakes one thread, not a reactor and then a worker.
 * The other workers sleep.  While the token holder serves, nobody polls; that is fine for as
 * long as it takes, up to lazy_wake: then the watcher (one sleeper with a timed wait) takes the
 * reactor, or the queued requests, itself.  A thread coming back from a request takes queued
 * work first, then the reactor; a woken one ("patient") only what was left for lazy_wake.
 */
static pw_conn *leader_pop(pw_server *s)
{
    int patient = 0, am_watcher = 0;
    pw_conn *c = NULL;
    pthread_mutex_lock(&s->qlock);
    if (worker_running) {
        worker_running = 0;
        s->running--;
    }
    while (!atomic_load_int(&s->shutdown)) {
        double now = patient ? pw_now() : 0;
        if (s->qhead && (!patient || now - s->queue_moved >= s->cfg.lazy_wake ||
                         (s->running == 0 && !s->token))) {
            c = s->qhead;
            s->qhead = c->next;
            if (!s->qhead)
                s->qtail = NULL;
            c->next = NULL;
            s->queued--;
            worker_running = 1;
            s->running++;
            s->queue_moved = pw_now();
            break;
        }
        if (!s->token && !s->poller_failed &&
            (!patient || s->running == 0 || now - s->token_freed >= s->cfg.lazy_wake)) {
            if (am_watcher) {
                am_watcher = 0;
                s->watcher = 0;
            }
            __atomic_store_n(&s->token, 1, __ATOMIC_SEQ_CST);  /* read unlocked by busy_done */
            pthread_mutex_unlock(&s->qlock);
            int rc = reactor_turn(s);
            pthread_mutex_lock(&s->qlock);
            __atomic_store_n(&s->token, 0, __ATOMIC_SEQ_CST);
            s->token_freed = pw_now();
            if (rc != 0)
                s->poller_failed = 1;
            patient = 0;
            continue;
        }
        if (s->recruit && !s->watcher) {
            s->recruit = 0;
            am_watcher = 1;
            s->watcher = 1;
        } else if (!am_watcher && !s->watcher && (s->running > 0 || s->qhead)) {
            s->recruit = 0;
            am_watcher = 1;
            s->watcher = 1;
        } else if (am_watcher && s->running == 0 && !s->qhead) {
            am_watcher = 0;  /* nobody serves: nothing can stall, sleep for good */
            s->watcher = 0;
        }
        s->waiting++;
        if (am_watcher) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            long long ns = until.tv_nsec + (long long)(s->cfg.lazy_wake * 1e9);
            until.tv_sec += ns / 1000000000;
            until.tv_nsec = ns % 1000000000;
            pthread_cond_timedwait(&s->qcond, &s->qlock, &until);
        } else {
            pthread_cond_wait(&s->qcond, &s->qlock);
        }
        s->waiting--;
        if (s->signaled > 0)
            s->signaled--;
        patient = 1;
    }
    if (am_watcher)
        s->watcher = 0;
    if (c && !s->token)
        recruit_watcher(s);
    pthread_mutex_unlock(&s->qlock);
    return c;
}

pw_conn *pw_queue_pop(pw_server *s)
{
    if (s->cfg.leader_follower)
        return leader_pop(s);
    pthread_mutex_lock(&s->qlock);
    if (worker_running) {
        worker_running = 0;
        s->running--;
    }
    while (!s->qhead && !atomic_load_int(&s->shutdown)) {
        s->waiting++;
        pthread_cond_wait(&s->qcond, &s->qlock);
        s->waiting--;
        if (s->signaled > 0)
            s->signaled--;
    }
    pw_conn *c = s->qhead;
    if (c) {
        s->qhead = c->next;
        if (!s->qhead)
            s->qtail = NULL;
        c->next = NULL;
        s->queued--;
        worker_running = 1;
        s->running++;
        if (s->cfg.lazy_wake > 0)
            s->queue_moved = pw_now();
    }
    pthread_mutex_unlock(&s->qlock);
    return c;
}

static int conn_parse(pw_server *s, pw_conn *c)
{
    int rc = pw_parse_head(&c->req, c->buf, c->len, &s->cfg.limits);
    if (rc == PW_ERROR) {
        pw_log(s, PW_LOG_INFO, "%s:%d: bad request (%d): %s", c->peer_host, c->peer_port,
               c->req.error_status, c->req.error_reason ? c->req.error_reason : "");
        pw_send_error(s, c, c->req.error_status ? c->req.error_status : 400);
        log_reactor_answer(s, c, 0);
        conn_close(s, c);
        return PW_ERROR;
    }
    return rc;
}

/* Make room to read more of a head: heads are bounded by max_head_size. */
static int conn_grow(pw_conn *c, size_t want)
{
    if (c->cap - c->len >= want)
        return 0;
    size_t cap = c->cap ? c->cap : PW_INITIAL_BUF;
    while (cap - c->len < want)
        cap *= 2;
    char *b = realloc(c->buf, cap);
    if (!b)
        return -1;
    c->buf = b;
    c->cap = cap;
    return 0;
}

/* Is the small body the reactor is collecting complete?  1 yes (or: stop waiting, let the
 * worker handle it, e.g. a malformed chunk), 0 not yet, PW_OVER_LIMIT: a chunked body is
 * over --limit-request-body (answer 413 before any application runs). */
#define PW_OVER_LIMIT 2
static int prebuffer_complete(pw_server *s, pw_conn *c)
{
    pw_request *r = &c->req;
    if (r->body_kind == PW_BODY_LENGTH)
        return c->len - r->head_len >= r->content_length;
    while (c->scan_pos < c->len) {
        size_t consumed = 0, off = 0, dlen = 0;
        int rc = pw_chunked_decode(&c->scan, c->buf + c->scan_pos, c->len - c->scan_pos,
                                   &consumed, &off, &dlen, &s->cfg.limits);
        c->scan_pos += consumed;
        if (rc == PW_CHUNK_DATA)
            c->scan_total += dlen;
        if (rc != PW_ERROR && chunked_over_limit(s, c->scan_total, &c->scan))
            return PW_OVER_LIMIT;
        if (rc == PW_DONE || rc == PW_ERROR)
            return 1;
        if (rc == PW_AGAIN)
            break;
    }
    /* larger than we buffer: the worker streams the rest */
    return c->len - r->head_len > s->cfg.body_buffer_size;
}

/* The reactor found the body over the limit while buffering it: 413, then a lingering close. */
static void prebuffer_refuse(pw_server *s, pw_conn *c)
{
    log_chunked_413(s, c);
    pw_send_error(s, c, 413);
    log_reactor_answer(s, c, 1);
    conn_end(s, c);
}

/*
 * The head is complete.  A small body (up to body_buffer_size) is read here, in the reactor,
 * before any worker is involved: a client that trickles its body then holds no thread.
 * Returns 1 when the connection should be queued now, 0 when it waits for more body bytes,
 * -1 when it was answered (413) and is no longer the caller's.
 */
static int prebuffer_start(pw_server *s, pw_conn *c)
{
    pw_request *r = &c->req;
    c->prebuffering = 0;
    /* A client that sent Expect: 100-continue waits for the worker's go-ahead. */
    if (r->expect_continue || s->cfg.body_buffer_size == 0)
        return 1;
    if (r->body_kind == PW_BODY_LENGTH) {
        if (r->content_length > s->cfg.body_buffer_size)
            return 1;
    } else if (r->body_kind == PW_BODY_CHUNKED) {
        pw_chunked_init(&c->scan);
        c->scan_pos = r->head_len;
        c->scan_total = 0;
    } else {
        return 1;
    }
    int rc = prebuffer_complete(s, c);
    if (rc == PW_OVER_LIMIT) {
        prebuffer_refuse(s, c);
        return -1;
    }
    if (rc)
        return 1;
    c->prebuffering = 1;
    c->deadline = pw_now() + s->cfg.body_timeout;
    return 0;
}

static void reactor_readable(pw_server *s, pw_conn *c)
{
    size_t room;
    if (c->prebuffering) {
        pw_request *r = &c->req;
        room = r->body_kind == PW_BODY_LENGTH
                   ? (size_t)(r->head_len + r->content_length - c->len) : 4096;
    } else {
        if (c->len >= (size_t)s->cfg.limits.max_head_size + 1024) {
            pw_send_error(s, c, 431);
            conn_close(s, c);
            return;
        }
        room = c->len < PW_INITIAL_BUF ? 1024 : 4096;
    }
    if (conn_grow(c, room) != 0 || conn_headers(s, c) != 0) {
        pw_send_error(s, c, 503);
        conn_close(s, c);
        return;
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        conn_close(s, c);
        return;
    }
    if (n > 0) {
        double now = pw_now();
        c->len += n;
        if (c->prebuffering) {
            c->deadline = now + s->cfg.body_timeout;
            int done = prebuffer_complete(s, c);
            if (done == PW_OVER_LIMIT) {
                c->prebuffering = 0;
                prebuffer_refuse(s, c);
                return;
            }
            if (done) {
                c->prebuffering = 0;
                queue_push(s, c);
                return;
            }
        } else {
            if (c->idle) {
                /* The first byte of a new request starts its header deadline. */
                c->idle = 0;
                c->head_start = now;
                c->deadline = now + s->cfg.header_timeout;
            }
            if (c->need_proxy_header) {
                pw_proxy_info info;
                const char *why;
                int plen = pw_proxy_parse(c->buf, c->len, &info, &why);
                if (plen < 0) {
                    pw_log(s, PW_LOG_WARNING, "%s:%d: %s (--proxy-protocol): connection closed",
                           c->conn_host, c->conn_port, why);
                    conn_close(s, c);
                    return;
                }
                if (plen == 0)
                    goto rearm;
                memmove(c->buf, c->buf + plen, c->len - plen);
                c->len -= plen;
                c->need_proxy_header = 0;
                if (info.has_addr) {
                    /* the proxy's client is now this connection's peer; its own forwarding
                     * headers count only if it is a trusted proxy too */
                    memcpy(c->conn_host, info.src, sizeof c->conn_host);
                    c->conn_port = info.src_port;
                    c->proxy_trusted = pw_trust_host(&s->cfg.trust, c->conn_host);
                }
                c->proxy_https = info.ssl ? 1 : -1;
                memcpy(c->peer_host, c->conn_host, sizeof c->peer_host);
                c->peer_port = c->conn_port;
                if (c->len == 0)
                    goto rearm;
            }
            if (c->need_preamble) {
                int plen = pw_preamble_parse(c);
                if (plen < 0) {
                    pw_log(s, PW_LOG_ERROR, "daemon: malformed relay preamble; connection closed");
                    conn_close(s, c);
                    return;
                }
                if (plen == 0)
                    goto rearm;
                /* the server process vouches for the client address it sends, and says whether
                 * it came through a trusted proxy (whose other headers then count here) */
                memcpy(c->conn_host, c->peer_host, sizeof c->conn_host);
                c->conn_port = c->peer_port;
                c->proxy_trusted = (c->buf[6] & PW_PREAMBLE_PROXY_TRUSTED) != 0;
                c->proxy_https = (c->buf[6] & PW_PREAMBLE_HTTPS) ? 1 : -1;
                c->client_closes = (c->buf[6] & PW_PREAMBLE_CLIENT_CLOSES) != 0;
                memmove(c->buf, c->buf + plen, c->len - plen);
                c->len -= plen;
                c->need_preamble = 0;
                if (c->len == 0)
                    goto rearm;
            }
            /* mod_reqtimeout's MinRate: data earns time, up to the maximum. */
            if (s->cfg.header_min_rate > 0) {
                double d = c->deadline + n / s->cfg.header_min_rate;
                double cap = c->head_start + s->cfg.header_max_timeout;
                c->deadline = d < cap ? d : cap;
            }
            int rc = conn_parse(s, c);
            if (rc == PW_ERROR)
                return;
            if (rc == PW_DONE) {
                if (conn_head_done(s, c) != 0) {
                    conn_end(s, c);  /* answered (413): the body may be on its way */
                    return;
                }
                int ready = prebuffer_start(s, c);
                if (ready < 0)
                    return;
                if (ready) {
                    queue_push(s, c);
                    return;
                }
            }
        }
    }
rearm:
    if (conn_arm(s, c, 0) != 0)
        conn_close(s, c);
}

/* Whether the listening sockets are in the poller.  Not while every worker here is busy with
 * several server processes (a burst then goes to the siblings instead of queueing behind one),
 * nor for a moment after accept ran out of descriptors (accept_resume_at). */
static void accept_balance(pw_server *s)
{
    if (!s->listening)
        return;
    int over = s->cfg.accept_busy_limit > 0 &&
               atomic_load_int(&s->busy) + s->pending >= s->cfg.accept_busy_limit;
    if (s->accept_resume_at > 0) {
        /* out of descriptors: try again after the pause, or as soon as a connection was
         * handed back idle (it can be closed to make room) */
        if (pw_now() < s->accept_resume_at &&
            __atomic_load_n(&s->handbacks, __ATOMIC_RELAXED) == s->pause_handbacks) {
            over = 1;
        } else {
            s->accept_resume_at = 0;
            atomic_store_int(&s->fds_paused, 0);
        }
    }
    if (over && !atomic_load_int(&s->accept_paused)) {
        for (int k = 0; k < s->cfg.num_listen; k++)
            poller_del(s, s->cfg.listen_fds[k]);
        atomic_store_int(&s->accept_paused, 1);
    } else if (!over && atomic_load_int(&s->accept_paused)) {
        atomic_store_int(&s->accept_paused, 0);
        for (int k = 0; k < s->cfg.num_listen; k++)
            poller_add_level(s, s->cfg.listen_fds[k], 1);
    }
}

/* ---------------------------------------------------------------- connection limits */

/*
 * Make room (at --max-clients, or out of descriptors) by closing connections that cost nothing
 * to drop, best first: idle keep-alive connections (least recently used first; a client that
 * sends on one just as it closes retries, as for any keep-alive close), then lingering ones
 * (answered already), then connections that have not sent a byte yet (longest silent first);
 * an idle or silent one only once it has been so for PW_EVICT_MIN_IDLE.  A connection with a
 * request under way (part of a head, a body being buffered, with a worker or a daemon, bytes
 * waiting unread in its socket) is never chosen, nor `keep` (the connection just accepted).
 * Closes an eighth of the candidates, at least 1 and at most PW_EVICT_BATCH (nginx's
 * ngx_drain_connections), so under a flood one walk of the table makes room for a run of new
 * connections.  Returns how many it closed.  Reactor only.
 */
static int evict_idle(pw_server *s, pw_conn *keep)
{
    double now = pw_now();
    /* Under a flood at the cap with nothing to close, every refusal would walk the table:
     * not again until a connection was handed back or one seen too young has aged. */
    if (s->evict_fruitless && now < s->evict_ripe_at &&
        __atomic_load_n(&s->handbacks, __ATOMIC_RELAXED) == s->evict_fruitless_at)
        return 0;
    struct { pw_conn *c; int rank; double since; } best[PW_EVICT_BATCH];
    int found = 0, candidates = 0;
    double ripe_at = now + 3600;
    pthread_mutex_lock(&s->lock);  /* a worker may be handing a connection back (conn_release) */
    int handbacks = __atomic_load_n(&s->handbacks, __ATOMIC_RELAXED);
    for (int fd = 0; fd < s->conns_cap; fd++) {
        pw_conn *c = s->conns[fd];
        if (!c || c == keep)
            continue;
        int state = atomic_load_int(&c->state), rank;
        double since;
        if (state == PW_CONN_READING && c->idle && !c->prebuffering && c->len == 0) {
            rank = c->requests > 0 ? 0 : 2;
            since = c->head_start;  /* keep-alive: since the last response; else since accept */
            if (now - since < PW_EVICT_MIN_IDLE) {
                if (since + PW_EVICT_MIN_IDLE < ripe_at)
                    ripe_at = since + PW_EVICT_MIN_IDLE;
                continue;
            }
        } else if (state == PW_CONN_LINGERING) {
            rank = 1;
            since = c->linger_until;
        } else {
            continue;
        }
        candidates++;
        /* keep the PW_EVICT_BATCH best, sorted by (rank, since) */
        if (found == PW_EVICT_BATCH &&
            (rank > best[found - 1].rank ||
             (rank == best[found - 1].rank && since >= best[found - 1].since)))
            continue;
        int i = found < PW_EVICT_BATCH ? found++ : found - 1;
        while (i > 0 && (best[i - 1].rank > rank ||
                         (best[i - 1].rank == rank && best[i - 1].since > since))) {
            best[i] = best[i - 1];
            i--;
        }
        best[i].c = c;
        best[i].rank = rank;
        best[i].since = since;
    }
    int want = candidates / 8, closed = 0;
    if (want < 1)
        want = 1;
    for (int i = 0; i < found && closed < want; i++) {
        /* Bytes waiting in the socket (a request that came just now, not read yet): not idle
         * after all, so not dropped. */
        char peek;
        if (best[i].rank != 1 &&
            recv(best[i].c->fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
            continue;
        conn_close(s, best[i].c);
        closed++;
    }
    pthread_mutex_unlock(&s->lock);
    s->evict_fruitless = closed == 0;
    s->evict_fruitless_at = handbacks;
    s->evict_ripe_at = ripe_at;
    return closed;
}

/* The open-file limit in force, for log lines. */
static long open_file_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return -1;
    return (long)rl.rlim_cur;
}

/*
 * accept() failed for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM).  Close
 * idle connections to make room (1: accept again now); with none to close, stop accepting for
 * PW_ACCEPT_PAUSE (0) - the listening socket stays readable, so trying again at once would
 * spin (and log) as fast as the CPU allows.
 */
static int accept_out_of_fds(pw_server *s, int err)
{
    double now = pw_now();
    int closed = evict_idle(s, NULL);
    if (closed > 0) {
        log_limited(s, &s->log_no_fds, now, PW_LOG_WARNING,
                    "accept: %s (open-file limit %ld, %d connections open): closed %d idle "
                    "connection(s) to make room", strerror(err), open_file_limit(),
                    atomic_load_int(&s->open_conns), closed);
        return 1;
    }
    log_limited(s, &s->log_no_fds, now, PW_LOG_ERROR,
                "accept: %s (open-file limit %ld, %d connections open, none idle): not "
                "accepting for up to %.1f s", strerror(err), open_file_limit(),
                atomic_load_int(&s->open_conns), PW_ACCEPT_PAUSE);
    /* ... or until an idle connection the walk saw has been idle long enough to be closed */
    s->accept_resume_at = now + PW_ACCEPT_PAUSE < s->evict_ripe_at ? now + PW_ACCEPT_PAUSE
                                                                   : s->evict_ripe_at;
    s->pause_handbacks = s->evict_fruitless_at;  /* as the walk just saw them */
    atomic_store_int(&s->fds_paused, 1);
    accept_balance(s);
    return 0;
}

/* Over --max-clients with connection c just accepted: make room by closing idle connections
 * (0), or refuse c with 503 when there is none (-1: c is closed). */
static int accept_over_cap(pw_server *s, pw_conn *c)
{
    double now = pw_now();
    int closed = evict_idle(s, c);
    if (closed > 0) {
        log_limited(s, &s->log_evicted, now, PW_LOG_WARNING,
                    "at --max-clients (%d): closed %d idle connection(s) to make room for "
                    "%s:%d", s->cfg.max_clients, closed, c->peer_host, c->peer_port);
        return 0;
    }
    log_limited(s, &s->log_refused, now, PW_LOG_WARNING,
                "%s:%d: over --max-clients (%d), no idle connection to close: 503",
                c->peer_host, c->peer_port, s->cfg.max_clients);
    pw_send_error(s, c, 503);
    conn_close(s, c);
    return -1;
}

static int accept_batch(pw_server *s, int lfd, int index, int most);

/* A new connection on a socket several processes wait on wakes the first of them in the
 * socket's wait queue that is waiting (EPOLLEXCLUSIVE): the same process whenever it is idle,
 * and in a burst whichever comes back to its poller first takes all that are queued.  A daemon
 * process of a group of several therefore accepts one connection per turn and then goes to the
 * back of the queue, so the relay's pooled connections, and with them its requests, spread
 * over the group's processes instead of leaving all but one idle under a light load.  That is
 * two epoll_ctl calls per accept, and a daemon accepts rarely: the relay keeps its connections
 * (test_daemon_pool.py, test_idle_requests_spread_over_the_daemon_processes). */
static void reactor_accept(pw_server *s, int lfd, int index)
{
    int take_turns = s->cfg.daemon_role && s->cfg.accept_busy_limit > 0;
    if (accept_batch(s, lfd, index, take_turns ? 1 : 64) > 0 && take_turns && s->listening &&
        !atomic_load_int(&s->accept_paused)) {
        poller_del(s, lfd);
        poller_add_level(s, lfd, 1);
    }
}

/* Accept what is waiting, `most` at most (then other events get their turn); how many. */
static int accept_batch(pw_server *s, int lfd, int index, int most)
{
    int accepted = 0;
    for (int i = 0; i < most; i++) {
        if (s->cfg.accept_busy_limit > 0 &&
            atomic_load_int(&s->busy) + s->pending >= s->cfg.accept_busy_limit)
            return accepted;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
#ifdef __linux__
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
        int fd = accept(lfd, (struct sockaddr *)&ss, &sl);
        if (fd >= 0) {
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
            fcntl(fd, F_SETFD, FD_CLOEXEC);
            int one = 1;
            setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
        }
#endif
        if (fd < 0) {
            int err = errno;
            if ((err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) &&
                accept_out_of_fds(s, err))
                continue;  /* idle connections were closed: there is room now */
            if (err == ECONNABORTED || err == EINTR)
                continue;  /* that client is gone; the next may be there */
            return accepted;  /* EAGAIN: another process took it, or nothing left */
        }
        accepted++;
        atomic_add_int(&s->open_conns, 1);
        pw_conn *c = conn_slot(s, fd);
        if (!c) {
            close(fd);
            atomic_add_int(&s->open_conns, -1);
            continue;
        }
        SB_ADD(s, connections, 1);
        c->fd = fd;
        c->relay_fd = c->rp.file_fd = c->out_file_fd = -1;
        c->out_off = c->out_len = c->out_file_left = 0;
        c->after_output = c->resuming = 0;
        c->relay_counted = c->relay_paused = 0;
        c->listen_index = index;
        c->len = 0;
        c->requests = 0;
        c->broken = 0;
        c->idle = 1;
        c->prebuffering = 0;
        c->head_start = c->accepted_at = pw_now();
        c->need_preamble = c->one_shot = s->cfg.daemon_role;
        c->expect_handled = c->client_closes = c->kept_while_stopping = 0;
        c->enqueued_at = 0;
        if (s->cfg.accept_busy_limit > 0) {
            c->pending = 1;  /* its request is about to come: count it as work here */
            s->pending++;
        }
        c->peer_port = 0;
        c->peer_host[0] = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, c->peer_host, sizeof c->peer_host);
            c->peer_port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, c->peer_host, sizeof c->peer_host);
            c->peer_port = ntohs(a->sin6_port);
        }
        if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        memcpy(c->conn_host, c->peer_host, sizeof c->conn_host);
        c->conn_port = c->peer_port;
        c->proxy_https = -1;
        c->fwd_https = -1;
        c->fwd_host_len = 0;
        c->fwd_server_port = 0;
        c->proxy_trusted = 0;
        c->need_proxy_header = 0;
        if (trust_on(s) && !s->cfg.daemon_role) {
            c->proxy_trusted = ss.ss_family == AF_UNIX ? s->cfg.trust.unix_peers
                                                       : pw_trust_host(&s->cfg.trust, c->peer_host);
            if (s->cfg.proxy_protocol) {
                if (!c->proxy_trusted) {
                    pw_log(s, PW_LOG_WARNING, "%s:%d: connection from a peer that is not a "
                           "trusted proxy (--proxy-protocol, --trust-proxy): closed",
                           c->peer_host[0] ? c->peer_host : "unix", c->peer_port);
                    conn_close(s, c);
                    continue;
                }
                c->need_proxy_header = 1;
            }
        }
        conn_reset_request(s, c);
        atomic_store_int(&c->state, PW_CONN_READING);
        if (s->cfg.max_clients > 0 && atomic_load_int(&s->open_conns) > s->cfg.max_clients &&
            accept_over_cap(s, c) != 0)
            continue;
        /* A fresh connection gets the header timeout (the client is about to send). */
        c->deadline = pw_now() + s->cfg.header_timeout;
        if (conn_arm(s, c, 1) != 0)
            conn_close(s, c);
        else
            s->evict_fruitless = 0;  /* while it sends nothing, it may be evicted */
    }
    return accepted;
}

/* ---------------------------------------------------------------- the reactor's relay */

static int conn_release(pw_server *s, pw_conn *c, int keep_alive);
static int conn_keep(pw_server *s, pw_conn *c);
static void busy_done(pw_server *s);
static void out_slow_start(pw_conn *c);
static void output_failed(pw_server *s, pw_conn *c);

static int relay_owner_set(pw_server *s, int fd, pw_conn *c)
{
    if (fd_table_fit(&s->relay_owner, &s->relay_owner_cap, fd) != 0)
        return -1;
    s->relay_owner[fd] = c;
    return 0;
}

/* A relay the reactor counted (relayed, in flight) goes to a thread, which counts it itself. */
static void relay_async_uncount(pw_server *s, pw_conn *c)
{
    if (c->relay_counted) {
        PW_SB_ADD(s->cfg.relay_counters->relayed, -1);
        PW_SB_ADD(s->cfg.relay_counters->in_flight, -1);
        c->relay_counted = 0;
    }
}

/* 0: the request is with a daemon (or waits its turn) and the reactor follows it; -1: a relay
 * thread must. */
static int relay_async_start(pw_server *s, pw_conn *c)
{
    if (s->cfg.relay_counters && !c->relay_counted) {
        pw_sb_relay_start(s->cfg.relay_counters);  /* waiting counts as queued, as in a daemon */
        c->relay_counted = 1;
    }
    if (s->cfg.relay_async_limit > 0 && s->relay_inflight >= s->cfg.relay_async_limit) {
        clear_pending(s, c);
        c->relay_fd = -1;
        c->next = NULL;
        if (s->relay_wait_tail)
            s->relay_wait_tail->next = c;
        else
            s->relay_wait_head = c;
        s->relay_wait_tail = c;
        c->deadline = pw_now() + s->cfg.relay_async->queue_timeout;
        atomic_store_int(&c->state, PW_CONN_RELAYING);
        return 0;
    }
    int fd = pw_relay_async_send(s, c, s->cfg.relay_async);
    if (fd < 0) {
        relay_async_uncount(s, c);
        return -1;
    }
    s->relay_inflight++;
    c->relay_slot_freed = c->relay_paused = 0;
    c->relay_timeout = s->cfg.relay_async->response_timeout;
    /* a pooled fd is still registered; a new one is added */
    if (relay_owner_set(s, fd, c) != 0 ||
        (!c->rp.reused && poller_add_level(s, fd, 0) != 0)) {
        if (fd < s->relay_owner_cap)
            s->relay_owner[fd] = NULL;
        close(fd);
        s->relay_inflight--;
        if (c->relay_counted) {
            pw_sb_relay_done(s->cfg.relay_counters, 502);
            c->relay_counted = 0;
        }
        /* the daemon may have the request: answering it here would be a guess, so 502 */
        pw_send_error(s, c, 502);
        log_reactor_answer(s, c, 1);
        conn_close(s, c);
        return 0;
    }
    clear_pending(s, c);
    c->relay_fd = fd;
    c->deadline = pw_now() + s->cfg.relay_async->response_timeout;
    atomic_store_int(&c->state, PW_CONN_RELAYING);
    return 0;
}



/* A relay the reactor followed is over (or went to a thread): start the next waiting one. */
static void relay_async_slot_free(pw_server *s)
{
    s->relay_inflight--;
    while (s->relay_wait_head && s->relay_inflight < s->cfg.relay_async_limit) {
        pw_conn *c = s->relay_wait_head;
        s->relay_wait_head = c->next;
        if (!s->relay_wait_head)
            s->relay_wait_tail = NULL;
        c->next = NULL;
        if (relay_async_start(s, c) != 0)
            queue_to_worker(s, c);
    }
}

/* The relay of c is over (answered, or failed with an error answer): count it, and keep or
 * close the client's connection as a worker's pw_conn_release would. */
static void relay_async_finish(pw_server *s, pw_conn *c, int keep, int status)
{
    if (c->relay_counted) {
        pw_sb_relay_done(s->cfg.relay_counters, status);
        c->relay_counted = 0;
    }
    atomic_store_int(&c->state, PW_CONN_BUSY);
    if (conn_release(s, c, keep))
        queue_push(s, c);  /* a pipelined request is already complete */
}

/* A relay the reactor followed no longer needs its in-flight slot (done, or only waiting
 * for a slow client now: its daemon thread is free). */
static void relay_slot_release(pw_server *s, pw_conn *c)
{
    if (!c->relay_slot_freed) {
        c->relay_slot_freed = 1;
        relay_async_slot_free(s);
    }
}

/* While the reactor relays a response, the client is watched for room to write only when
 * some of it is pending (state WRITING, after_output PW_AFTER_RELAY), else not at all. */
static void relay_client_watch(pw_server *s, pw_conn *c)
{
    int pending = pw_conn_out_pending(c) > 0;
    pthread_mutex_lock(&s->lock);
    if (pending) {
        if (atomic_load_int(&c->state) != PW_CONN_WRITING)
            out_slow_start(c);
        c->after_output = PW_AFTER_RELAY;
        atomic_store_int(&c->state, PW_CONN_WRITING);
        if (conn_watch(s, c, PW_WATCH_OUT) != 0) {
            c->broken = 1;
            c->out_progress_at = 0;  /* the next scan drops it */
        }
    } else {
        atomic_store_int(&c->state, PW_CONN_RELAYING);
        conn_unwatch(s, c);
    }
    pthread_mutex_unlock(&s->lock);
}

/* The relay of c is over with failure or success: the daemon fd is already closed or pooled. */
static void relay_async_over(pw_server *s, pw_conn *c, int fd)
{
    s->relay_owner[fd] = NULL;
    c->relay_fd = -1;
    c->relay_paused = 0;
    relay_slot_release(s, c);
}

static void relay_async_event(pw_server *s, int fd)
{
    pw_conn *c = s->relay_owner[fd];
    int keep = 0, status = 0;
    int rc = pw_relay_async_read(s, c, fd, &keep, &status);
    switch (rc) {
    case PW_RA_AGAIN:
        c->deadline = pw_now() + c->relay_timeout;
        relay_client_watch(s, c);  /* the fd stays registered: more comes with an event */
        return;
    case PW_RA_PAUSE:
        /* the client has plenty to take: read on once it has taken most of it */
        poller_del(s, fd);
        c->relay_paused = 1;
        relay_slot_release(s, c);
        relay_client_watch(s, c);
        return;
    case PW_RA_DONE:
        relay_async_over(s, c, fd);
        relay_async_finish(s, c, keep, 0);
        return;
    case PW_RA_RETRY:
        relay_async_over(s, c, fd);
        if (relay_async_start(s, c) != 0)
            queue_to_worker(s, c);
        return;
    default:
        relay_async_over(s, c, fd);
        relay_async_finish(s, c, 0, status);
        return;
    }
}

/* A relay thread's relay of c whose client is slow: the reactor carries it on (relay_adopt). */
void pw_relay_handoff(pw_server *s, pw_conn *c)
{
    pthread_mutex_lock(&s->qlock);
    c->next = s->handoff;
    s->handoff = c;
    pthread_mutex_unlock(&s->qlock);
    wake_reactor(s);
    busy_done(s);  /* c may belong to the reactor already: not touched here */
}

/* Reactor: take over the relays threads handed over.  The client is behind (that is why), so
 * the daemon fd waits out of the poller until the client has taken most of what is pending. */
static void relay_adopt(pw_server *s)
{
    pthread_mutex_lock(&s->qlock);
    pw_conn *c = s->handoff;
    s->handoff = NULL;
    pthread_mutex_unlock(&s->qlock);
    while (c) {
        pw_conn *next = c->next;
        c->next = NULL;
        c->relay_slot_freed = 1;  /* never counted: the thread's own relay */
        c->relay_counted = 0;
        c->relay_paused = 1;
        c->deadline = pw_now() + c->relay_timeout;
        if (relay_owner_set(s, c->relay_fd, c) != 0) {
            close(c->relay_fd);
            c->relay_fd = -1;
            c->broken = 1;
        }
        relay_client_watch(s, c);
        c = next;
    }
}

/* Reactor: the client of a relay took output: read from the daemon again when it has taken
 * most of it (the relay was paused), and stop watching it when it has taken all. */
static void relay_client_took(pw_server *s, pw_conn *c)
{
    if (c->relay_paused && c->relay_fd >= 0 && pw_conn_out_pending(c) < s->cfg.out_low) {
        if (poller_add_level(s, c->relay_fd, 0) != 0) {
            output_failed(s, c);
            return;
        }
        c->relay_paused = 0;
        c->deadline = pw_now() + c->relay_timeout;
    }
    if (pw_conn_out_pending(c) == 0)
        relay_client_watch(s, c);
}

/* The response timeout passed for relays the reactor follows (waiting for the daemon, not for
 * a slow client): 504 when nothing of the response was read yet, as the relay threads give
 * it, else the client connection is closed (the response stalled half-way). */
static void relay_async_timeouts(pw_server *s, double now)
{
    for (int fd = 0; fd < s->conns_cap; fd++) {
        pw_conn *c = s->conns[fd];
        if (!c || now < c->deadline)
            continue;
        int state = atomic_load_int(&c->state);
        if (state != PW_CONN_RELAYING &&
            !(state == PW_CONN_WRITING && c->after_output == PW_AFTER_RELAY && !c->relay_paused))
            continue;
        if (c->relay_fd < 0) {  /* still waiting for a relay slot: the group's queue-timeout */
            pw_conn **p = &s->relay_wait_head, *prev = NULL;
            while (*p && *p != c) {
                prev = *p;
                p = &(*p)->next;
            }
            if (*p) {
                *p = c->next;
                if (s->relay_wait_tail == c)
                    s->relay_wait_tail = prev;
            }
            c->next = NULL;
            pw_log(s, PW_LOG_ERROR, "%s:%d: no daemon process of the group was free within its "
                   "queue timeout: 503", c->peer_host, c->peer_port);
            pw_send_error(s, c, 503);
            relay_async_finish(s, c, 0, 503);
            continue;
        }
        int fresh = c->rp.relayed == 0;
        if (fresh)
            pw_log(s, PW_LOG_ERROR, "%s:%d: the daemon process did not answer in time: 504",
                   c->peer_host, c->peer_port);
        else
            pw_log(s, PW_LOG_ERROR, "%s:%d: the daemon process's response stalled: client "
                   "connection closed", c->peer_host, c->peer_port);
        int relay_fd = c->relay_fd;
        close(relay_fd);
        relay_async_over(s, c, relay_fd);
        pw_relay_progress_free(c);
        if (fresh)
            pw_send_error(s, c, 504);
        c->broken |= !fresh;
        relay_async_finish(s, c, 0, fresh ? 504 : 0);
    }
}

static int out_too_slow(pw_server *s, pw_conn *c, double now);
static void output_failed(pw_server *s, pw_conn *c);
static void conn_write_ready(pw_server *s, pw_conn *c);

/* Reactor, under s->lock: c has been idle (READING, no byte of a next request) for a while.
 * Free its read buffer, header table, access-log capture and (empty) output buffer - its next
 * request, if any, gets new ones - so thousands of idle keep-alive connections cost ~0.9 KiB
 * each (docs/security.md).  A busy keep-alive connection is never idle this long. */
static void conn_shed_memory(pw_server *s, pw_conn *c)
{
    if (c->len != 0 || c->out_off != c->out_len || c->out_file_fd >= 0)
        return;
    if (!c->buf && !c->headers && !c->log_capture && !c->out)
        return;
    s->idle_freed += c->cap + c->out_cap + (c->log_capture ? PW_LOG_CAPTURE : 0) +
                     (c->headers ? s->cfg.limits.max_fields * sizeof(pw_header) : 0);
    free(c->buf);
    c->buf = NULL;
    c->cap = 0;
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = c->out_cap = 0;
    free(c->log_capture);
    c->log_capture = NULL;
    free(c->headers);
    c->headers = NULL;
    conn_reset_request(s, c);
}

static void reactor_scan(pw_server *s, double now)
{
    if (s->cfg.access_log)
        pw_access_log_flush(s->cfg.access_log);
    pthread_mutex_lock(&s->lock);
    int late = 0, slow = 0;
    for (int fd = 0; fd < s->conns_cap; fd++) {
        pw_conn *c = s->conns[fd];
        if (c && atomic_load_int(&c->state) == PW_CONN_RELAYING && now >= c->deadline)
            late = 1;
        if (c && atomic_load_int(&c->state) == PW_CONN_LINGERING && now >= c->deadline) {
            conn_close(s, c);  /* the client paused, or lingered too long: enough */
            continue;
        }
        if (c && atomic_load_int(&c->state) == PW_CONN_WRITING &&
            (c->broken || out_too_slow(s, c, now))) {
            c->broken = 1;  /* dropped below, without the lock (it may go back to a worker) */
            slow = 1;
            continue;
        }
        if (!c || atomic_load_int(&c->state) != PW_CONN_READING)
            continue;
        /* A connection that sends nothing soon stops counting as work, so idle or slow
         * clients cannot make every process refuse to accept. */
        if (c->pending && now - c->accepted_at > 0.5)
            clear_pending(s, c);
        if (c->idle && now - c->head_start >= PW_IDLE_FREE && now < c->deadline)
            conn_shed_memory(s, c);
        if (now >= c->deadline) {
            if (c->need_proxy_header && c->len > 0) {
                /* a proxy, not a browser: no HTTP answer to a header it never finished */
                pw_log(s, PW_LOG_WARNING, "%s:%d: PROXY header not complete in time "
                       "(--proxy-protocol): connection closed", c->conn_host, c->conn_port);
            } else if (!c->idle && c->len > 0) {
                pw_log(s, PW_LOG_INFO, "%s:%d: request %s not complete in time: 408",
                       c->peer_host, c->peer_port, c->prebuffering ? "body" : "head");
                pw_send_error(s, c, 408);
                log_reactor_answer(s, c, 0);
            }
            conn_close(s, c);
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (late)
        relay_async_timeouts(s, now);
    for (int fd = 0; slow && fd < s->conns_cap; fd++) {
        pw_conn *c = s->conns[fd];
        if (c && atomic_load_int(&c->state) == PW_CONN_WRITING && c->broken)
            output_failed(s, c);
    }
    log_limited_flush(s, &s->log_no_fds, now);
    log_limited_flush(s, &s->log_evicted, now);
    log_limited_flush(s, &s->log_refused, now);
#ifdef __GLIBC__
    /* Freed buffers go back to malloc's free lists, not to the system: give the pages back
     * once a good many were freed (at most once a second; trimming walks the heap). */
    if (s->idle_freed >= (1u << 20) && now - s->last_trim >= 1.0) {
        malloc_trim(0);
        s->idle_freed = 0;
        s->last_trim = now;
    }
#endif
}

/* One round of the reactor: wait for events (up to the next scan or lazy wake-up), handle them,
 * then the housekeeping.  -1: the poller failed.  Run by the reactor thread, or in leader mode
 * by whichever worker holds the reactor (pw_queue_pop), never by two threads at once. */
static int reactor_turn(pw_server *s)
{
#ifdef PW_USE_EPOLL
    struct epoll_event evs[256];
#else
    struct kevent evs[256];
#endif
    double wait = PW_SCAN_INTERVAL;
    if (s->cfg.leader_follower) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);  /* token taken, then busy read (busy_done) */
        accept_balance(s);
    }
    long long due_us = __atomic_load_n(&s->lazy_due_us, __ATOMIC_RELAXED);
    if (due_us) {
        double left = due_us / 1e6 - pw_now();
        wait = left < 0 ? 0 : left < wait ? left : wait;
    }
    if (s->accept_resume_at > 0) {  /* out of descriptors: accept again then (accept_balance) */
        double left = s->accept_resume_at - pw_now();
        wait = left < 0 ? 0 : left < wait ? left : wait;
    }
#ifdef PW_USE_EPOLL
    /* rounded up: waking before the due time would only spin */
    int n = epoll_wait(s->poll_fd, evs, 256, (int)(wait * 1000 + 0.999));
#else
    struct timespec ts = {0, (long)(wait * 1e9)};
    int n = kevent(s->poll_fd, NULL, 0, evs, 256, &ts);
#endif
    if (n < 0 && errno != EINTR) {
        pw_log(s, PW_LOG_ERROR, "poller: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
#ifdef PW_USE_EPOLL
        int fd = evs[i].data.fd;
#else
        int fd = (int)evs[i].ident;
#endif
        if (fd == s->wake_rd) {
            char sink[64];
            while (read(s->wake_rd, sink, sizeof sink) > 0) {}
            continue;
        }
        int li = -1;
        for (int k = 0; k < s->cfg.num_listen; k++)
            if (s->cfg.listen_fds[k] == fd)
                li = k;
        if (li >= 0) {
            if (s->listening)
                reactor_accept(s, fd, li);
            continue;
        }
        if (fd < s->relay_owner_cap && s->relay_owner[fd]) {
            relay_async_event(s, fd);
            continue;
        }
        if (fd < s->conns_cap && s->conns[fd]) {
            pw_conn *c = s->conns[fd];
            int state = atomic_load_int(&c->state);
            if (state == PW_CONN_FREE)
                goto not_a_client;
            if (state == PW_CONN_BUSY || state == PW_CONN_RELAYING)
                state = conn_disarm(s, c, fd);
            if (state == PW_CONN_READING)
                reactor_readable(s, c);
            else if (state == PW_CONN_LINGERING)
                conn_linger_read(s, c);
            else if (state == PW_CONN_WRITING)
                conn_write_ready(s, c);
            continue;
        }
    not_a_client:
        if (s->cfg.relay_async)
            pw_relay_async_drop_idle(fd);  /* an idle daemon connection: its daemon closed it */
    }
    if (atomic_load_int(&s->stopping) && s->listening) {
        /* Stopping: an idle connection is not closed at once - its client may be sending
         * on it right now and would see a reset.  It gets at most the keep-alive timeout
         * from now; a request that comes meanwhile is served with Connection: close.
         * A daemon's idle connections are the relay's pool: a request the daemon never
         * read is retried elsewhere by the relay, so they go almost at once. */
        double cap = pw_now() + (s->cfg.daemon_role ? 0.1 : s->cfg.keep_alive_timeout);
        pthread_mutex_lock(&s->lock);
        for (int fd = 0; fd < s->conns_cap; fd++) {
            pw_conn *c = s->conns[fd];
            if (c && atomic_load_int(&c->state) == PW_CONN_READING && c->idle &&
                c->deadline > cap)
                c->deadline = cap;
            if (c && atomic_load_int(&c->state) == PW_CONN_LINGERING &&
                c->linger_until > cap + PW_LINGER_PAUSE)
                c->linger_until = cap + PW_LINGER_PAUSE;
        }
        pthread_mutex_unlock(&s->lock);
        if (!atomic_load_int(&s->accept_paused))
            for (int k = 0; k < s->cfg.num_listen; k++)
                poller_del(s, s->cfg.listen_fds[k]);
        s->listening = 0;
    }
    if (__atomic_load_n(&s->handoff, __ATOMIC_ACQUIRE))
        relay_adopt(s);
    accept_balance(s);
    double now = pw_now();
    due_us = __atomic_load_n(&s->lazy_due_us, __ATOMIC_RELAXED);
    if (due_us && now * 1e6 >= due_us)
        queue_lazy_check(s, now);
    if (now - s->last_scan >= PW_SCAN_INTERVAL) {
        s->last_scan = now;
        reactor_scan(s, now);
    }
    return 0;
}

static void *reactor_main(void *arg)
{
    pw_server *s = arg;
    if (s->cfg.thread_start)
        s->cfg.thread_start();
    while (!atomic_load_int(&s->shutdown))
        if (reactor_turn(s) != 0)
            break;
    if (s->cfg.thread_stop)
        s->cfg.thread_stop();
    return NULL;
}

int pw_server_start(pw_server *s)
{
    s->last_scan = pw_now();
    if (s->cfg.leader_follower)
        return 0;  /* the workers run the reactor (leader_pop) */
    if (pthread_create(&s->reactor, NULL, reactor_main, s) != 0)
        return -1;
    s->reactor_started = 1;
    return 0;
}

void pw_server_shutdown(pw_server *s)
{
    atomic_store_int(&s->stopping, 1);
    atomic_store_int(&s->shutdown, 1);
    wake_reactor(s);
    pthread_mutex_lock(&s->qlock);
    pthread_cond_broadcast(&s->qcond);
    pthread_mutex_unlock(&s->qlock);
    if (s->reactor_started) {
        pthread_join(s->reactor, NULL);
        s->reactor_started = 0;
    }
    if (s->cfg.access_log)
        pw_access_log_finish(s->cfg.access_log);
}

void pw_server_free(pw_server *s)
{
    if (!s)
        return;
    if (s->cfg.access_log)  /* it may outlive this server: nothing to report to any more */
        pw_access_log_on_failure(s->cfg.access_log, NULL, NULL, NULL);
    int busy = 0;
    for (int fd = 0; fd < s->conns_cap; fd++) {
        pw_conn *c = s->conns[fd];
        if (!c)
            continue;
        int st = atomic_load_int(&c->state);
        if (c->fd >= 0 && (st == PW_CONN_READING || st == PW_CONN_RELAYING ||
                           st == PW_CONN_LINGERING || st == PW_CONN_WRITING))
            close(c->fd);
        if (st != PW_CONN_BUSY && c->out_file_fd >= 0)
            close(c->out_file_fd);
        if ((st == PW_CONN_RELAYING || st == PW_CONN_WRITING) && c->relay_fd >= 0)
            close(c->relay_fd);
        if (st != PW_CONN_BUSY) {
            free(c->out);
            pw_relay_progress_free(c);
            free(c->log_capture);
            free(c->buf);
            free(c->headers);
        } else {
            busy = 1;
        }
        /* a BUSY connection may still be in a worker that outlived the graceful timeout;
         * the process is about to exit, so it is left alone rather than freed under it. */
    }
    while (s->slabs && !busy) {
        pw_conn_slab *next = s->slabs->next;
        free(s->slabs);
        s->slabs = next;
    }
    free(s->conns);
    free(s->relay_owner);
    if (s->poll_fd >= 0)
        close(s->poll_fd);
    if (s->wake_rd >= 0)
        close(s->wake_rd);
    if (s->wake_wr >= 0)
        close(s->wake_wr);
    free(s);
}

/* ---------------------------------------------------------------- worker I/O */

/* Wait until fd is ready for `events` or the timeout passes; 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, double timeout)
{
    struct pollfd p = {fd, events, 0};
    int ms = timeout <= 0 ? 0 : (int)(timeout * 1000);
    for (;;) {
        int n = poll(&p, 1, ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        return n > 0 ? 1 : 0;
    }
}

/* ---------------------------------------------------------------- response output
 * A slow client holds no thread: what the socket does not take at once is kept on the
 * connection and sent by its owner - the worker on its next write, or the reactor (WRITING).
 * A client that takes nothing for socket_timeout, or less than send_min_rate on average over a
 * socket_timeout window (a trickle that would hold the connection for hours), is dropped. */

size_t pw_conn_out_pending(const pw_conn *c)
{
    return c->out_len - c->out_off + c->out_file_left;
}

/* Bytes the kernel holds for the client, not yet acknowledged by it (0 where unknown). */
static int kernel_queued(int fd)
{
#ifdef SIOCOUTQ
    int queued = 0;
    if (ioctl(fd, SIOCOUTQ, &queued) == 0 && queued > 0)
        return queued;
#else
    (void)fd;
#endif
    return 0;
}

/* The socket did not take everything: from now on the client's pace is measured. */
static void out_slow_start(pw_conn *c)
{
    double now = pw_now();
    c->out_progress_at = c->out_window_start = now;
    c->out_window_bytes = c->out_sent = c->out_taken = 0;
    c->out_base = kernel_queued(c->fd);
}

static void out_progress(pw_conn *c, size_t n)
{
    c->out_sent += n;
}

/* Update what the client has taken (and when it last took any). */
static void out_measure(pw_conn *c, double now)
{
    int64_t taken = (int64_t)(c->out_sent + (uint64_t)c->out_base) - kernel_queued(c->fd);
    if (taken > (int64_t)c->out_taken) {
        c->out_window_bytes += (uint64_t)taken - c->out_taken;
        c->out_taken = (uint64_t)taken;
        c->out_progress_at = now;
    }
}

/* A client dropped for being too slow: its connection is reset when closed, so what the
 * kernel still holds for it (megabytes, on a fast link) is discarded, not trickled out. */
static void out_drop(pw_conn *c)
{
    struct linger now = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);
}

/* Is the client too slow to keep?  1 yes (logged, and to be reset): nothing taken for
 * socket_timeout, or less than send_min_rate on average over the window that just ended
 * (then a new one starts). */
static int out_too_slow(pw_server *s, pw_conn *c, double now)
{
    /* A daemon's reader is the server process, which reads only as fast as its client and
     * applies these limits to that client itself (then closes this connection). */
    if (s->cfg.daemon_role)
        return 0;
    out_measure(c, now);
    if (now - c->out_progress_at >= s->cfg.socket_timeout) {
        pw_log(s, PW_LOG_INFO, "%s:%d: client did not read the response in time "
               "(--socket-timeout %gs): connection closed", c->peer_host, c->peer_port,
               s->cfg.socket_timeout);
        out_drop(c);
        return 1;
    }
    double span = now - c->out_window_start;
    if (s->cfg.send_min_rate > 0 && span >= s->cfg.socket_timeout) {
        if (c->out_window_bytes < s->cfg.send_min_rate * span) {
            pw_log(s, PW_LOG_INFO, "%s:%d: client read the response at %.0f bytes/s, under "
                   "--send-min-rate (%g): connection closed", c->peer_host, c->peer_port,
                   c->out_window_bytes / span, s->cfg.send_min_rate);
            out_drop(c);
            return 1;
        }
        c->out_window_start = now;
        c->out_window_bytes = 0;
    }
    return 0;
}

/* Block until the socket may take more (worker threads that cannot hand the output over);
 * 0 ready, -1 the client is too slow or gone. */
static int out_wait_writable(pw_server *s, pw_conn *c)
{
    for (;;) {
        double now = pw_now();
        if (out_too_slow(s, c, now))
            return -1;
        double t = c->out_progress_at + s->cfg.socket_timeout - now;
        double w = c->out_window_start + s->cfg.socket_timeout - now;
        if (s->cfg.send_min_rate > 0 && w < t)
            t = w;
        if (s->cfg.daemon_role)
            t = s->cfg.socket_timeout;  /* (see out_too_slow) */
        int rc = wait_fd(c->fd, POLLOUT, t > 0.001 ? t : 0.001);
        if (rc == 1)
            return 0;
        if (rc < 0)
            return -1;
    }
}

/* Send without waiting: bytes sent, 0 when the socket is full, -1 failed. */
static ssize_t send_now(pw_conn *c, struct iovec *iov, int iovcnt)
{
    struct msghdr m = {0};
    m.msg_iov = iov;
    m.msg_iovlen = iovcnt;
    for (;;) {
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
}

/* Send file bytes without waiting: bytes sent, 0 when the socket is full, -1 failed (or the
 * file shrank under us). */
static ssize_t sendfile_now(pw_conn *c, int fd, off_t *off, size_t count)
{
    for (;;) {
#ifdef __linux__
        ssize_t n = sendfile(c->fd, fd, off, count > (1u << 30) ? (1u << 30) : count);
#else
        char chunk[65536];
        ssize_t n = pread(fd, chunk, count < sizeof chunk ? count : sizeof chunk, *off);
        if (n > 0) {
            struct iovec v = {chunk, (size_t)n};
            n = send_now(c, &v, 1);
            if (n > 0)
                *off += n;
            return n;
        }
#endif
        if (n > 0)
            return n;
        if (n == 0)
            return -1;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
}

/* Send what is pending, as far as the socket takes it now.  0 ok (maybe not all), -1 failed. */
static int out_flush_now(pw_conn *c)
{
    while (c->out_off < c->out_len) {
        struct iovec v = {c->out + c->out_off, c->out_len - c->out_off};
        ssize_t n = send_now(c, &v, 1);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        c->out_off += (size_t)n;
        out_progress(c, (size_t)n);
    }
    c->out_off = c->out_len = 0;
    if (c->out_cap > PW_KEEP_BUF) {  /* a big response's buffer is not kept */
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    while (c->out_file_left > 0) {
        ssize_t n = sendfile_now(c, c->out_file_fd, &c->out_file_off, c->out_file_left);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        c->out_file_left -= (size_t)n;
        out_progress(c, (size_t)n);
    }
    if (c->out_file_fd >= 0) {
        close(c->out_file_fd);
        c->out_file_fd = -1;
    }
    return 0;
}

/* Keep iov's bytes from `skip` on, after what is pending.  0 ok, -1 out of memory. */
static int out_append(pw_conn *c, const struct iovec *iov, int iovcnt, size_t skip)
{
    size_t more = 0;
    for (int i = 0; i < iovcnt; i++)
        more += iov[i].iov_len;
    more -= skip;
    if (c->out_off > 0 && c->out_len + more > c->out_cap) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + more > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 16384;
        while (cap < c->out_len + more)
            cap *= 2;
        char *b = realloc(c->out, cap);
        if (!b)
            return -1;
        c->out = b;
        c->out_cap = cap;
    }
    for (int i = 0; i < iovcnt; i++) {
        size_t len = iov[i].iov_len;
        const char *p = iov[i].iov_base;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(c->out + c->out_len, p + skip, len - skip);
        c->out_len += len - skip;
        skip = 0;
    }
    return 0;
}

int pw_conn_out_wait(pw_server *s, pw_conn *c, size_t below)
{
    if (below == 0)
        below = 1;
    while (!c->broken) {
        if (out_flush_now(c) != 0)
            break;
        if (pw_conn_out_pending(c) < below)
            return 0;
        if (out_wait_writable(s, c) != 0)
            break;
    }
    c->broken = 1;
    return -1;
}

/* Before more output: send what is pending as far as the socket takes it now, and all of a
 * pending file range (nothing can queue behind one; rare: a file ends a response).
 * 0 ok, -1 the client failed (c->broken set). */
static int out_before_more(pw_server *s, pw_conn *c)
{
    if (c->broken)
        return -1;
    if (!pw_conn_out_pending(c))
        return 0;
    if (out_flush_now(c) != 0) {
        c->broken = 1;
        return -1;
    }
    return c->out_file_left ? pw_conn_out_wait(s, c, 1) : 0;
}

int pw_conn_send(pw_server *s, pw_conn *c, struct iovec *iov, int iovcnt)
{
    size_t sent = 0;
    if (out_before_more(s, c) != 0)
        return -1;
    if (!pw_conn_out_pending(c)) {
        ssize_t n = send_now(c, iov, iovcnt);
        if (n < 0)
            goto failed;
        size_t total = 0;
        for (int i = 0; i < iovcnt; i++)
            total += iov[i].iov_len;
        if ((size_t)n == total)
            return 0;
        sent = (size_t)n;
        out_slow_start(c);
    }
    if (out_append(c, iov, iovcnt, sent) == 0)
        return 0;
    pw_log(s, PW_LOG_ERROR, "%s:%d: out of memory for the response: connection closed",
           c->peer_host, c->peer_port);
failed:
    c->broken = 1;
    return -1;
}

int pw_conn_sendfile(pw_server *s, pw_conn *c, int fd, off_t offset, size_t count)
{
    if (out_before_more(s, c) != 0)
        return -1;
    if (!pw_conn_out_pending(c)) {
        while (count > 0) {
            ssize_t n = sendfile_now(c, fd, &offset, count);
            if (n < 0)
                goto failed;
            if (n == 0)
                break;
            count -= (size_t)n;
        }
        if (count == 0)
            return 0;
        out_slow_start(c);
    }
    /* the rest goes out later, from a descriptor of our own: the caller may close its file */
    c->out_file_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (c->out_file_fd < 0) {
        pw_log(s, PW_LOG_ERROR, "%s:%d: cannot keep the file for a slow client (%s): "
               "connection closed", c->peer_host, c->peer_port, strerror(errno));
        goto failed;
    }
    c->out_file_off = offset;
    c->out_file_left = count;
    return 0;
failed:
    c->broken = 1;
    return -1;
}

/* Blocking: everything pending, then iov. */
int pw_conn_writev(pw_server *s, pw_conn *c, struct iovec *iov, int iovcnt)
{
    if (c->broken)
        return -1;
    if (pw_conn_out_pending(c) && pw_conn_out_wait(s, c, 1) != 0)
        return -1;
    int waited = 0;
    while (iovcnt > 0) {
        ssize_t n = send_now(c, iov, iovcnt);
        if (n < 0)
            break;
        if (n == 0) {
            if (!waited++)
                out_slow_start(c);
            if (out_wait_writable(s, c) != 0)
                break;
            continue;
        }
        if (waited)
            out_progress(c, (size_t)n);
        while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
            n -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= n;
        }
    }
    if (iovcnt == 0)
        return 0;
    c->broken = 1;
    return -1;
}

/* Hand c's pending output to the reactor (state WRITING; c->after_output says what then). */
static void out_to_reactor(pw_server *s, pw_conn *c)
{
    pthread_mutex_lock(&s->lock);
    atomic_store_int(&c->state, PW_CONN_WRITING);
    if (conn_watch(s, c, PW_WATCH_OUT) != 0) {
        c->broken = 1;
        c->out_progress_at = 0;  /* the next scan drops it (output_failed) */
    }
    pthread_mutex_unlock(&s->lock);
}

void pw_conn_suspend(pw_server *s, pw_conn *c)
{
    c->after_output = PW_AFTER_RESUME;
    out_to_reactor(s, c);
    busy_done(s);  /* c may belong to the reactor already: not touched here */
}

/* Reactor: the WRITING connection's output is sent (or, for a suspended response, down to
 * out_low): resume the response, or do what the release decided. */
static void output_done(pw_server *s, pw_conn *c)
{
    switch (c->after_output) {
    case PW_AFTER_RESUME:
        pthread_mutex_lock(&s->lock);
        conn_unwatch(s, c);
        pthread_mutex_unlock(&s->lock);
        c->resuming = 1;
        queue_to_worker(s, c);
        break;
    case PW_AFTER_KEEP:
        if (conn_keep(s, c)) {  /* a pipelined request was complete already */
            pthread_mutex_lock(&s->lock);
            conn_unwatch(s, c);
            pthread_mutex_unlock(&s->lock);
            queue_push(s, c);
        }
        break;
    default:
        conn_end(s, c);
    }
}

/* Reactor: the client failed (gone, or too slow): a suspended response goes back to a worker
 * to be closed by its application; a relay ends (the daemon connection is closed, the daemon
 * sees its response cut); anything else is closed here. */
static void output_failed(pw_server *s, pw_conn *c)
{
    c->broken = 1;
    if (c->after_output == PW_AFTER_RELAY) {
        int relay_fd = c->relay_fd;
        if (relay_fd >= 0) {
            close(relay_fd);
            relay_async_over(s, c, relay_fd);
        }
        if (c->relay_counted) {
            pw_sb_relay_done(s->cfg.relay_counters, 0);
            c->relay_counted = 0;
        }
        conn_close(s, c);
        return;
    }
    if (c->after_output != PW_AFTER_RESUME) {
        conn_close(s, c);
        return;
    }
    pthread_mutex_lock(&s->lock);
    conn_unwatch(s, c);
    pthread_mutex_unlock(&s->lock);
    c->resuming = 1;
    queue_to_worker(s, c);
}

/* Reactor: a WRITING connection's socket has room (or failed). */
static void conn_write_ready(pw_server *s, pw_conn *c)
{
    if (out_flush_now(c) != 0) {
        output_failed(s, c);
        return;
    }
    if (c->after_output == PW_AFTER_RELAY) {
        relay_client_took(s, c);
        return;
    }
    size_t left = pw_conn_out_pending(c);
    if (c->after_output == PW_AFTER_RESUME ? left < s->cfg.out_low : left == 0)
        output_done(s, c);
}

/* Read more body bytes into buf (everything before body_pos is already consumed). */
static int body_fill(pw_server *s, pw_conn *c)
{
    if (c->req.expect_continue && !c->sent_continue) {
        c->sent_continue = 1;
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        struct iovec iov = {(void *)cont, sizeof cont - 1};
        if (pw_conn_writev(s, c, &iov, 1) != 0) {
            c->body_error = 499;
            return -1;
        }
    }
    if (c->body_pos == c->len) {
        c->body_pos = c->len = 0;  /* the head was copied into the environ already */
    } else if (c->body_pos > 0) {
        memmove(c->buf, c->buf + c->body_pos, c->len - c->body_pos);
        c->len -= c->body_pos;
        c->body_pos = 0;
    }
    if (c->cap - c->len < 4096 && conn_grow(c, 4096) != 0) {
        c->body_error = 500;
        return -1;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n > 0) {
            c->len += n;
            return 0;
        }
        if (n == 0) {
            c->body_error = 400;  /* the client closed before the end of its body */
            c->broken = 1;
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = wait_fd(c->fd, POLLIN, s->cfg.body_timeout);
            if (w == 1)
                continue;
            if (w == 0) {
                pw_log(s, PW_LOG_INFO, "%s:%d: request body not received in time: 408",
                       c->peer_host, c->peer_port);
                c->body_error = 408;
                return -1;
            }
        }
        c->body_error = 400;
        c->broken = 1;
        return -1;
    }
}

ssize_t pw_body_peek(pw_server *s, pw_conn *c, const char **ptr)
{
    if (c->body_error)
        return -1;
    if (c->req.body_kind == PW_BODY_LENGTH) {
        if (c->body_left == 0)
            return 0;
        if (c->body_pos == c->len && body_fill(s, c) != 0)
            return -1;
        size_t avail = c->len - c->body_pos;
        if (avail > c->body_left)
            avail = (size_t)c->body_left;
        *ptr = c->buf + c->body_pos;
        return (ssize_t)avail;
    }
    if (c->req.body_kind != PW_BODY_CHUNKED)
        return 0;
    for (;;) {
        if (c->chunk_len > 0) {
            *ptr = c->buf + c->chunk_off;
            return (ssize_t)c->chunk_len;
        }
        if (c->body_done)
            return 0;
        size_t consumed = 0, off = 0, dlen = 0;
        int rc = pw_chunked_decode(&c->chunked, c->buf + c->body_pos, c->len - c->body_pos,
                                   &consumed, &off, &dlen, &s->cfg.limits);
        size_t base = c->body_pos;
        c->body_pos += consumed;
        if (rc == PW_CHUNK_DATA) {
            c->chunk_off = base + off;
            c->chunk_len = dlen;
            c->body_total += dlen;
        }
        if (rc != PW_ERROR && chunked_over_limit(s, c->body_total, &c->chunked)) {
            log_chunked_413(s, c);
            c->chunk_len = 0;
            c->body_error = 413;
            return -1;
        }
        if (rc == PW_CHUNK_DATA)
            continue;
        if (rc == PW_DONE) {
            c->body_done = 1;
            return 0;
        }
        if (rc == PW_ERROR) {
            pw_log(s, PW_LOG_INFO, "%s:%d: bad chunked body: %s", c->peer_host, c->peer_port,
                   c->chunked.error_reason ? c->chunked.error_reason : "");
            c->body_error = c->chunked.error_status ? c->chunked.error_status : 400;
            return -1;
        }
        if (body_fill(s, c) != 0)
            return -1;
    }
}

void pw_body_consume(pw_conn *c, size_t n)
{
    if (c->req.body_kind == PW_BODY_LENGTH) {
        c->body_pos += n;
        c->body_left -= n;
    } else {
        c->chunk_off += n;
        c->chunk_len -= n;
    }
}

/* Read and discard the rest of the body, so the next request on the connection is framed
 * right; gives up (returns -1: close) past PW_DRAIN_LIMIT or on any error. */
static int body_drain(pw_server *s, pw_conn *c)
{
    if (c->req.body_kind == PW_BODY_LENGTH && c->body_left > PW_DRAIN_LIMIT)
        return -1;
    /* Nothing was read and the client waits for 100 Continue: it will not send the body. */
    if (c->req.expect_continue && !c->sent_continue) {
        if (c->req.body_kind == PW_BODY_CHUNKED || c->body_left > c->len - c->body_pos)
            return -1;
    }
    size_t drained = 0;
    for (;;) {
        const char *p;
        ssize_t n = pw_body_peek(s, c, &p);
        if (n == 0)
            return 0;
        if (n < 0)
            return -1;
        pw_body_consume(c, (size_t)n);
        drained += (size_t)n;
        if (drained > PW_DRAIN_LIMIT)
            return -1;
    }
}

static void busy_done(pw_server *s)
{
    SB_ADD(s, busy, -1);
    if ((atomic_add_int(&s->busy, -1) < s->cfg.accept_busy_limit &&
         atomic_load_int(&s->accept_paused)) || atomic_load_int(&s->fds_paused)) {
        /* Accepting may resume.  In leader mode nobody needs waking while nobody polls: the
         * next poller re-balances before it waits (reactor_turn).  This load pairs with the
         * fence there, so one of the two sees the other's write. */
        if (s->cfg.leader_follower && !__atomic_load_n(&s->token, __ATOMIC_SEQ_CST))
            return;
        wake_reactor(s);
    }
}

static int conn_release(pw_server *s, pw_conn *c, int keep_alive)
{
    c->requests++;
    if (s->cfg.scoreboard && c->resp_status && !c->status_page)
        pw_sb_request_done(s->cfg.scoreboard, c->resp_status, c->resp_bytes,
                           pw_now() - c->req_start);
    if (s->cfg.access_log && c->resp_status)
        pw_access_log_write(s->cfg.access_log, c);
    /* Stopping: a response framed before the stop began promised the client a persistent
     * connection, and a close now would meet the client's next request (a reset, or an empty
     * answer to it).  Such a connection is kept like an idle one (the keep-alive timeout at
     * most) and its next request is answered with Connection: close - once, so a server that
     * stops ends.  A daemon's connection is the relay's, which retries a request the daemon
     * never read, so it closes at once. */
    int stop_close = 0;
    if (atomic_load_int(&s->stopping)) {
        stop_close = s->cfg.daemon_role || c->kept_while_stopping;
        c->kept_while_stopping = 1;
    }
    if (!keep_alive || c->one_shot || c->broken || c->body_error || stop_close ||
        body_drain(s, c) != 0) {
        if (pw_conn_out_pending(c) && !c->broken) {
            c->after_output = PW_AFTER_CLOSE;  /* the reactor sends the rest, then closes */
            out_to_reactor(s, c);
        } else {
            conn_end(s, c);
        }
        return 0;
    }
    if (pw_conn_out_pending(c)) {
        c->after_output = PW_AFTER_KEEP;  /* the reactor sends the rest, then conn_keep */
        out_to_reactor(s, c);
        return 0;
    }
    return conn_keep(s, c);
}

/* The response is out and the connection is kept: the pipelined bytes that follow it are the
 * next request's.  1: that request is complete (serve it, in order), 0: back to READING. */
static int conn_keep(pw_server *s, pw_conn *c)
{
    /* Keep the pipelined bytes that follow this request. */
    size_t rest = c->len - c->body_pos;
    if (s->cfg.daemon_role) {
        /* A pooled relay connection: the next request starts with its own preamble, and the
         * relay never sends it before this response is complete. */
        if (rest) {
            conn_close(s, c);
            return 0;
        }
        c->need_preamble = 1;
    }
    if (rest && c->body_pos)
        memmove(c->buf, c->buf + c->body_pos, rest);
    c->len = rest;
    c->body_pos = 0;
    if (c->cap > PW_KEEP_BUF && rest < PW_INITIAL_BUF) {
        char *b = realloc(c->buf, PW_INITIAL_BUF);
        if (b) {
            c->buf = b;
            c->cap = PW_INITIAL_BUF;
        }
    }
    conn_reset_request(s, c);
    /* the forwarded client was this request's: until the next head says otherwise, log lines
     * name the connection's peer */
    memcpy(c->peer_host, c->conn_host, sizeof c->peer_host);
    c->peer_port = c->conn_port;
    if (rest) {
        int rc = pw_parse_head(&c->req, c->buf, c->len, &s->cfg.limits);
        if (rc == PW_ERROR) {
            pw_log(s, PW_LOG_INFO, "%s:%d: bad request (%d): %s", c->peer_host, c->peer_port,
                   c->req.error_status, c->req.error_reason ? c->req.error_reason : "");
            pw_send_error(s, c, c->req.error_status ? c->req.error_status : 400);
            conn_close(s, c);
            return 0;
        }
        if (rc == PW_DONE) {
            if (conn_head_done(s, c) != 0) {
                conn_end(s, c);  /* answered (413): the body may be on its way */
                return 0;
            }
            return 1;  /* serve the pipelined request on this thread, in order */
        }
    }
    pthread_mutex_lock(&s->lock);
    c->idle = rest == 0;
    if (c->idle)
        __atomic_add_fetch(&s->handbacks, 1, __ATOMIC_RELAXED);  /* evictable (evict_idle) */
    c->prebuffering = 0;
    c->head_start = pw_now();
    c->deadline = pw_now() + (rest ? s->cfg.header_timeout : s->cfg.keep_alive_timeout);
    atomic_store_int(&c->state, PW_CONN_READING);
    int armed = conn_arm(s, c, 0);
    if (armed != 0)
        conn_close(s, c);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int pw_conn_release(pw_server *s, pw_conn *c, int keep_alive)
{
    int again = conn_release(s, c, keep_alive);
    if (!again)
        busy_done(s);  /* c may belong to the reactor already: not touched here */
    return again;
}
