/*
 * server.h -- the inside of a server process's C core, shared by the files that make it up
 * (not for the Cython layer: that sees reactor.h, relay.h and the other public headers):
 *
 *   reactor.c      the server, the reactor's turn, a connection's life: reading and parsing
 *                  heads, small bodies, deadlines, keep-alive, lingering close, release
 *   accept.c       accepting, the connection cap, eviction, running out of descriptors
 *   poller.c       epoll / kqueue, and what the poller watches for each connection
 *   queue.c        handing connections to worker threads: the queue, lazy wake-ups, leader mode
 *   body.c         request bodies as a worker reads them
 *   output.c       response output that never waits for a slow client; error answers
 *   relay_async.c  daemon mode: the relay the reactor runs itself (relay.c: the threads' relay)
 *   errorlog.c     the error log's lines
 *   response.c     the sans-I/O parts of a response: status reasons, the Date header
 *   tls.c          HTTPS: OpenSSL loaded at run time, contexts, a TLS connection's handshake,
 *                  reads and writes (the I/O paths call it when c->tls is set)
 *   probes.c       --health-url and --ready-url, answered by the core (probes.h)
 *
 * Everything declared here is internal to the extension module (hidden visibility).
 */
#ifndef PW_SERVER_H
#define PW_SERVER_H

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
#  include <malloc.h> /* malloc_trim */
#endif
#include <sys/time.h>
#include <unistd.h>
#ifdef __linux__
#  include <linux/sockios.h> /* SIOCOUTQ */
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
#  define MSG_NOSIGNAL 0 /* macOS: SO_NOSIGPIPE is set on each socket instead */
#endif

#define PW_INITIAL_BUF 8192
#define PW_KEEP_BUF 65536           /* a buffer grown past this is shrunk back between requests */
#define PW_DRAIN_LIMIT (256 * 1024) /* unread body we still read and discard to keep a connection */
#define PW_SCAN_INTERVAL 0.25
/* Inline mode (out_hold): a complete response of at most PW_HOLD_BYTES waits for the end of
 * the reactor's turn, and is sent before the next request starts once it has waited
 * PW_HOLD_AGE. */
#define PW_HOLD_BYTES 16384
#define PW_HOLD_AGE 0.002
/* ... and nothing is held for PW_HOLD_PAUSE after a request that ran PW_HOLD_SLOW or more:
 * with the application's requests that long, a response held behind one would wait for it. */
#define PW_HOLD_SLOW 0.001
/* Leader mode holds only the responses of requests that took PW_HOLD_MIN or more (output.c) */
#define PW_HOLD_MIN 0.00002
#define PW_HOLD_PAUSE 1.0
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
/* An idle connection's read buffer, header table and access-log capture (and OpenSSL's record
 * buffers) are freed after this long (conn_shed_memory), so thousands of idle keep-alive
 * connections cost little; a busy one keeps them. */
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
    double last;         /* when a line was last written; 0: never */
    unsigned suppressed; /* occurrences since then, not written yet */
    int level;
    char text[320]; /* the latest of them */
} pw_log_limit;

/* Complete responses held back (out_hold), oldest first: when the oldest was held, and until
 * when nothing is (after a request that ran PW_HOLD_SLOW). */
typedef struct {
    pw_conn *head, *tail;
    double since, paused_until;
    unsigned turn; /* leader mode: the reactor turn that queued the oldest's request */
} pw_held;

struct pw_server {
    pw_config cfg;
    int poll_fd;
    int wake_rd, wake_wr;
    pthread_t reactor;
    int reactor_started;
    pw_conn **conns; /* indexed by fd; reactor thread only */
    int conns_cap;
    pw_conn_slab *slabs;   /* where the conns[] entries live (conn_slot) */
    pw_conn **relay_owner; /* daemon connection fd -> the client it relays for */
    int relay_owner_cap;
    int relay_inflight; /* relays the reactor follows (reactor thread only) */
    pw_conn *relay_wait_head, *relay_wait_tail; /* waiting for one of them to finish */
    pw_conn *handoff;     /* relays threads left to the reactor (under qlock) */
    int open_conns;       /* atomic */
    int stopping;         /* atomic: no new connections, no keep-alive */
    int shutdown;         /* atomic: reactor and workers end */
    int listening;        /* reactor: listen fds registered */
    int let_go;           /* atomic: stopping, the backlog was drained and the listening
                             sockets let go (pw_server_accepting) */
    int busy;             /* atomic: connections queued or with a worker */
    int accept_paused;    /* atomic: listen fds left out while busy */
    int pending;          /* reactor only: fresh connections not yet dispatched */
    pthread_mutex_t lock; /* hand-back vs. deadline scan */
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
    unsigned turns; /* reactor turns so far (written by the token holder; pw_conn.turn) */
    double token_freed;
    long long lazy_due_us; /* atomic: when the reactor checks the queue again, 0 never */
    double last_scan;
    /* Connection limits.  Out of descriptors, accepting resumes at accept_resume_at (0: not
     * paused for that).  An eviction walk that found nothing is not repeated until something
     * may have become evictable (evict_idle): a connection handed back idle or lingering
     * (handbacks, atomic: workers count it under s->lock) or one the reactor accepted.  The
     * rest is the reactor's. */
    double accept_resume_at;
    int pause_handbacks; /* handbacks when accepting paused: one more resumes it */
    int fds_paused;      /* atomic: accept_resume_at is set (busy_done wakes us) */
    int handbacks;
    int evict_fruitless, evict_fruitless_at; /* the last walk found nothing; handbacks then */
    double evict_ripe_at; /* ... and when one it saw will have been idle long enough */
    pw_log_limit log_no_fds, log_evicted, log_refused;
    size_t idle_freed; /* bytes of idle buffers freed since the heap was trimmed */
    double last_trim;
    /* Inline mode, reactor only: complete responses held for the end of the turn (out_hold);
     * hold_turn: the turn's requests' may be.  (Leader mode: each worker's own, output.c.) */
    pw_held held;
    int hold_turn;
    /* Leader mode (output.c): how many workers hold responses now, and until when (µs,
     * pw_now) none may after a request that ran PW_HOLD_SLOW.  Atomic: every worker reads
     * them on its way, so one that holds nothing never touches its thread-local list. */
    int workers_holding;
    long long hold_paused_until_us;
};

#pragma GCC visibility push(hidden)

static inline double pw_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline int atomic_load_int(int *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void atomic_store_int(int *p, int v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline int atomic_add_int(int *p, int v)
{
    return __atomic_add_fetch(p, v, __ATOMIC_ACQ_REL);
}
/* --server-status counters of this process (csrc/scoreboard.h); nothing when it is off */
#define SB_ADD(s, field, v)                             \
    do {                                                \
        if ((s)->cfg.scoreboard)                        \
            PW_SB_ADD((s)->cfg.scoreboard->field, (v)); \
    } while (0)

/* What the poller watches for a connection (conn_watch in poller.c). */
enum { PW_WATCH_NONE = 0, PW_WATCH_IN, PW_WATCH_OUT };

/* prebuffer_complete (reactor.c): a chunked body over --limit-request-body */
#define PW_OVER_LIMIT 2

/* reactor.c */
void clear_pending(pw_server *s, pw_conn *c);
void conn_close(pw_server *s, pw_conn *c);
void conn_end(pw_server *s, pw_conn *c);
int conn_grow(pw_conn *c, size_t want);
int conn_keep(pw_server *s, pw_conn *c);
int conn_release(pw_server *s, pw_conn *c, int keep_alive);
int conn_release_one(pw_server *s, pw_conn *c, int keep_alive);
void conn_reset_request(pw_server *s, pw_conn *c);
void log_reactor_answer(pw_server *s, pw_conn *c, int captured);
int reactor_turn(pw_server *s);
int trust_on(pw_server *s);
void conn_proxy_apply(pw_server *s, pw_conn *c, const pw_proxy_info *info);

/* accept.c */
void accept_balance(pw_server *s);
void accept_drain(pw_server *s, int index);
pw_conn *conn_slot(pw_server *s, int fd);
int evict_idle(pw_server *s, pw_conn *keep);
int fd_table_fit(pw_conn ***table, int *cap, int fd);
void reactor_accept(pw_server *s, int lfd, int index);

/* poller.c */
int conn_arm(pw_server *s, pw_conn *c, int first);
int conn_disarm(pw_server *s, pw_conn *c, int fd);
void conn_unwatch(pw_server *s, pw_conn *c);
int conn_watch(pw_server *s, pw_conn *c, int want);
int poller_add_level(pw_server *s, int fd, int exclusive);
int poller_create(void);
void poller_del(pw_server *s, int fd);
void wake_reactor(pw_server *s);

/* queue.c */
void busy_done(pw_server *s);
pw_conn *leader_pop(pw_server *s);
void queue_lazy_check(pw_server *s, double now);
void queue_push(pw_server *s, pw_conn *c);
void queue_to_worker(pw_server *s, pw_conn *c);

/* body.c */
int body_drain(pw_server *s, pw_conn *c);
int body_unread(const pw_conn *c);
int chunked_over_limit(pw_server *s, uint64_t total, const pw_chunked *ch);
void log_chunked_413(pw_server *s, pw_conn *c);

/* output.c */
void conn_write_ready(pw_server *s, pw_conn *c);
/* An answer of the server's own with Connection: close (pw_send_error with a message and
 * more header lines, e.g. a Location). */
void send_answer(pw_server *s, pw_conn *c, int status, const char *message, const char *headers);
void out_slow_start(pw_conn *c);
void out_to_reactor(pw_server *s, pw_conn *c);
void out_flush_held(pw_server *s);
void out_worker_flush(pw_server *s, int before_waiting);
int out_worker_holding(pw_server *s);
void out_worker_next(pw_server *s, pw_conn *c);
void out_dispatch_holding(pw_server *s, pw_conn *c);
void out_unhold(pw_server *s, pw_conn *c);
int out_too_slow(pw_server *s, pw_conn *c, double now);
void output_failed(pw_server *s, pw_conn *c);
int wait_fd(int fd, short events, double timeout);

/* Daemon mode.  relay.c: the wire and a response's progress (c->rp), shared by the relay
 * threads' loop (pw_relay) and the reactor's relay (relay_async.c): */
enum { RP_BODY_NONE, RP_BODY_LENGTH, RP_BODY_CHUNKED, RP_BODY_UNTIL_CLOSE };
#define RP_MALFORMED (-2) /* rp_recv: a malformed file record (502 answered) */
#define RP_FILE_ONLY (-3) /* rp_recv: a file record alone; the head follows */
/* The preamble's fixed part and address into pre (their length); *vars, *vars_len: the SSL
 * variables that follow them (none: length 0). */
size_t build_preamble(pw_server *s, pw_conn *c, int pooled, unsigned char *pre, const char **vars,
                      size_t *vars_len);
void pw_relay_progress_init(pw_conn *c, int pooled, int reused);
ssize_t rp_recv(pw_server *s, pw_conn *c, int fd, char *buf, size_t cap, int *status_out);
int rp_take(pw_server *s, pw_conn *c, const char *buf, size_t n);
int rp_eof(pw_server *s, pw_conn *c, int *keep, int *status_out);
/* ... how far a read of the daemon's response got (rp_eof; relay_async_read): */
enum {
    PW_RA_DONE,   /* the response is relayed whole (maybe not all sent: c->out); *keep:
                        keep the client connection; the daemon fd is pooled or closed */
    PW_RA_AGAIN,  /* nothing more yet: wait for the fd again */
    PW_RA_PAUSE,  /* the client has cfg.out_high pending: stop reading until it takes it */
    PW_RA_RETRY,  /* the pooled connection was dead before the daemon read the request */
    PW_RA_FAILED, /* the relay failed (answered with *status_out if nothing was sent yet);
                        close the client; the daemon fd is closed */
};

/* relay_async.c: the relay the reactor runs itself - what the rest of the core calls.
 *   relay_async_start     queue_push: relay this body-less request (0), or -1: a thread must
 *   relay_async_event     reactor_turn: a daemon connection the reactor follows is readable
 *   relay_async_drop_idle reactor_turn: an event on an idle pooled daemon connection (its
 *                         daemon closed it): dropped and closed (1), or not one of them (0)
 *   relay_adopt           reactor_turn: take over the relays threads handed over (handoff)
 *   relay_async_timeouts  reactor_scan: daemons that did not answer in time
 *   relay_client_took     output.c: a relay's slow client took some of its output
 *   relay_client_failed   output.c: a relay's client failed: the relay ends */
int relay_async_start(pw_server *s, pw_conn *c);
void relay_async_event(pw_server *s, int fd);
int relay_async_drop_idle(int fd);
void relay_adopt(pw_server *s);
void relay_async_timeouts(pw_server *s, double now);
void relay_client_took(pw_server *s, pw_conn *c);
void relay_client_failed(pw_server *s, pw_conn *c);

/* tls.c: a connection's TLS (c->tls; NULL: plain HTTP, and these are plain recv/send) */
enum {
    TLS_HS_AGAIN = 0,
    TLS_HS_DONE = 1,
    TLS_HS_PLAIN = 2,
    TLS_HS_FAILED = -1,
    TLS_HS_CLOSED = -2
};
int tls_conn_start(pw_server *s, pw_conn *c, pw_tls_ctx *ctx);
void tls_conn_free(pw_conn *c, int notify);
int tls_handshake(pw_server *s, pw_conn *c);
int tls_handshaken(const pw_conn *c);
int tls_started(const pw_conn *c);
int tls_proxy_header(pw_server *s, pw_conn *c);
int tls_head_check(pw_server *s, pw_conn *c);
ssize_t tls_send(pw_conn *c, const struct iovec *iov, int iovcnt);
ssize_t tls_sendfile(pw_conn *c, int fd, off_t *off, size_t count);
/* recv() on c (plain or TLS); conn_recv_buf: into c->buf after c->len (not added), with all
 * the TLS record's plaintext; conn_wait_events: what poll() must wait for before the next
 * try (events, unless TLS needs the other one); conn_out_watch: PW_WATCH_OUT, or _IN when
 * TLS needs to read before it can write; conn_shut_write: close_notify, then SHUT_WR */
ssize_t conn_recv(pw_conn *c, void *buf, size_t len);
ssize_t conn_recv_buf(pw_conn *c);
short conn_wait_events(const pw_conn *c, short events);
int conn_out_watch(const pw_conn *c);
void conn_shut_write(pw_conn *c);
/* Reactor, c idle (no request byte, no output pending): free OpenSSL's record buffers; the
 * bytes freed (about), 0 if none. */
size_t tls_shed_memory(pw_conn *c);
/* probes.c: health and readiness (probes.h).  conn_next_probes: c's next request has a
 * complete head - answer it here, and the pipelined ones after it, while they are for a probe
 * URL; 1: a request for a worker is complete in c, 0: c is no longer the caller's. */
int conn_next_probes(pw_server *s, pw_conn *c);
int stop_announced(pw_server *s);

/* errorlog.c */
void log_limited(pw_server *s, pw_log_limit *l, double now, int level, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void log_limited_flush(pw_server *s, pw_log_limit *l, double now);

#pragma GCC visibility pop

#endif
