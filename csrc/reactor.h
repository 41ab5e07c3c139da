/*
 * reactor.h -- the network side of a server process, in plain C (no Python).
 *
 * One reactor thread accepts connections, reads and parses request heads, keeps idle
 * keep-alive connections and enforces the header / keep-alive deadlines.  A connection whose
 * head is complete is handed to a worker through a FIFO queue; from then on the worker owns
 * it (reads the body, writes the response, all blocking with deadlines and - in the Cython
 * caller - without the GIL) until it hands it back with pw_conn_release(), which gives it back
 * to the reactor (registered level-triggered for its life; see conn_arm) or closes it.  So an idle or slow connection costs no
 * thread, and a busy one is touched by exactly one thread at a time.
 */
#ifndef PW_REACTOR_H
#define PW_REACTOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <time.h>
#include "http_parser.h"
#include "accesslog.h"
#include "proxy_trust.h"
#include "probes.h"
#include "response.h"
#include "tls.h"

#define PW_MAX_LISTEN 16

typedef struct pw_server pw_server;
struct pw_conn;

typedef struct {
    int num_listen;
    int listen_fds[PW_MAX_LISTEN];
    double keep_alive_timeout;   /* idle between requests */
    double header_timeout;       /* from accept (or a request's first byte) to its head */
    double header_max_timeout;   /* the header deadline grows with data, up to this */
    double header_min_rate;      /* bytes/s that earn one more second (mod_reqtimeout MinRate) */
    double body_timeout;         /* longest wait for more request-body bytes */
    size_t body_buffer_size;     /* bodies up to this are read whole before a worker is used */
    double socket_timeout;       /* longest wait for the client to take response bytes */
    double send_min_rate;        /* bytes/s a client must take of a response, averaged over
                                    each socket_timeout; 0: only socket_timeout applies */
    size_t out_high;             /* response bytes held per connection for a slow client: a
                                    streamed response is pulled from the app only below it */
    size_t out_low;              /* a suspended response resumes when fewer are left */
    uint64_t limit_request_body; /* 0 = unlimited */
    int max_clients;             /* open connections per process */
    int daemon_role;             /* a daemon process: each connection is one relayed request
                                    that starts with a preamble (relay.h) */
    int accept_busy_limit;       /* >0: stop accepting while this many requests are queued or
                                    being served, so sibling processes take new connections */
    int log_level;               /* PW_LOG_* threshold */
    pw_limits limits;
    /* Inline mode (one worker): when dispatch is set the reactor thread runs each complete
     * request itself through it (the callee ends with pw_conn_release), instead of queueing
     * it for a worker thread - no thread hand-off per request.  thread_start/thread_stop run
     * on the reactor thread around its loop (the Cython side makes its Python thread state
     * there).  turn_done runs after each turn of the reactor, whose dispatches it batches: the
     * Cython side keeps the GIL from the turn's first request to there, not taking it per
     * request.  These are plain function pointers: reactor.c knows nothing of Python. */
    pw_access_log *access_log; /* NULL: no access log */
    void (*dispatch)(struct pw_server *s, struct pw_conn *c);
    void (*thread_start)(void);
    void (*thread_stop)(void);
    void (*turn_done)(void);
    /* Trusted proxies (docs/proxies.md): who may set the client address, and how. */
    pw_trust trust;                /* trust.count == 0 and !unix_peers: the feature is off */
    int proxy_protocol;            /* every connection starts with a PROXY v1/v2 header */
    struct pw_sb_slot *scoreboard; /* NULL: no --server-status; else this process's slot */
    /* Daemon mode with every request for one group: the reactor relays body-less requests
     * itself (relay_async.c); NULL: relay threads do it all. */
    const struct pw_relay_target *relay_async;
    struct pw_sb_group *relay_counters; /* that group's status counters, or NULL */
    const char *status_url; /* --server-status path: the reactor leaves it to a worker */
    size_t status_url_len;
    double lazy_wake;      /* >0: wake a sleeping worker for a queued request only when
                                    no worker is serving, or the queue has not moved for this
                                    long (workers that run Python, which one GIL serialises
                                    anyway); 0: wake one per request (relay threads, which
                                    wait without the GIL) */
    int leader_follower;   /* with lazy_wake: no reactor thread, the workers take turns
                                    running the reactor (leader_pop in reactor.c) */
    int relay_async_limit; /* most relays in flight from the reactor (the group's
                                    threads): more wait in the reactor, so the pooled
                                    connections stay as few as the daemons' threads and spread
                                    over the daemon processes as evenly as their accepts did */
    /* HTTPS (tls.h, docs/tls.md) */
    pw_tls_ctx *tls[PW_MAX_LISTEN];  /* per listening socket: its TLS context; NULL: plain HTTP */
    int https_redirect_port;         /* --https-only: plain HTTP is answered 301 to https on
                                        this port; 0: off */
    const char *https_redirect_host; /* ... to this host when the request names none */
    const char *hsts_line;           /* "Strict-Transport-Security: ...\r\n" on responses to
                                        https requests (--hsts-policy), or NULL */
    int ssl_environ;                 /* --ssl-environ: the relay carries the SSL_* variables */
    pw_probes probes;                /* --health-url, --ready-url (probes.h); zeroed: none */
} pw_config;

enum { PW_LOG_ERROR = 0, PW_LOG_WARNING = 1, PW_LOG_INFO = 2, PW_LOG_DEBUG = 3 };

enum pw_conn_state {
    PW_CONN_FREE = 0,
    PW_CONN_READING,   /* reactor owns: waiting for (the rest of) a head */
    PW_CONN_BUSY,      /* queued or owned by a worker */
    PW_CONN_RELAYING,  /* reactor owns: its request is with a daemon (relay_fd) */
    PW_CONN_LINGERING, /* reactor owns: answered and shut for writing; what the client still
                          sends is read and dropped until it closes (conn_end) */
    PW_CONN_WRITING,   /* reactor owns: sending the response output a slow client has not
                          taken yet (c->out, c->out_file_*); then after_output says what next */
};

/* What the reactor does with a WRITING connection once its output is (nearly) sent. */
enum pw_after_output {
    PW_AFTER_RESUME = 1, /* give it back to a worker: the response is not finished (suspended
                            with pw_conn_suspend); done below out_low */
    PW_AFTER_KEEP,       /* the response is complete: keep the connection (keep-alive) */
    PW_AFTER_CLOSE,      /* the response is complete: close (or linger) */
    PW_AFTER_RELAY,      /* the reactor is relaying a daemon's response to it (relay_fd) */
};

typedef struct pw_conn {
    int fd;
    int state; /* enum pw_conn_state; atomically accessed */
    int listen_index;
    char *buf; /* request bytes: the head at [0, head_len), body after */
    size_t cap, len;
    pw_request req;
    pw_header *headers;
    double deadline;   /* for READING */
    double head_start; /* when the header deadline started */
    double accepted_at;
    int pending;             /* accepted, first request not dispatched yet (accept balance) */
    int need_preamble;       /* daemon role: the relay preamble is not read yet */
    int one_shot;            /* daemon role: close after one request */
    int expect_handled;      /* the server process answers Expect: 100-continue */
    int client_closes;       /* daemon role: the server process is stopping and closes the
                                    client's connection after this request: the head says so */
    int kept_while_stopping; /* kept once while the server stops (conn_release) */
    double enqueued_at;      /* daemon role: when the server process sent the request */
    /* the access log's view of the current request */
    int resp_status;      /* set by whoever answered: Cython, static.c, relay.c, C errors */
    long long resp_bytes; /* response body bytes sent */
    int status_page;      /* the --server-status URL: left out of the scoreboard's counts */
    double req_start;     /* monotonic, when the head was complete */
    time_t req_time;
    char *log_capture; /* request line + logged headers (PW_LOG_CAPTURE bytes) */
    uint16_t log_rl_len;
    uint16_t log_hdr_off[PW_LOG_MAX_HEADERS], log_hdr_len[PW_LOG_MAX_HEADERS];
    int idle;            /* READING with no byte of the next request yet */
    double linger_until; /* LINGERING: the latest close, whatever the client sends */
    int prebuffering;    /* READING: head done, reading a small body before dispatch */
    size_t scan_pos;     /* prebuffering a chunked body: bytes of buf checked so far */
    uint64_t scan_total; /* ... and its data bytes so far (against limit_request_body) */
    pw_chunked scan;
    /* body reading (worker) */
    size_t body_pos;             /* next unread byte in buf */
    uint64_t body_left;          /* PW_BODY_LENGTH: bytes still to come */
    uint64_t body_total;         /* body bytes handed out so far */
    size_t chunk_off, chunk_len; /* PW_BODY_CHUNKED: decoded run ready at buf+chunk_off */
    pw_chunked chunked;
    int body_done;
    int body_error; /* HTTP status for a body error (400/408/413), 0 if none */
    int sent_continue;
    int broken; /* I/O failed: must close */
    int watch;  /* what the poller watches for it: 0 nothing (taken out
                                    while a worker or the relay has it), PW_WATCH_IN, _OUT
                                    (conn_watch in reactor.c); under the server's lock */
    /* Response output the client has not taken yet: bytes out[out_off, out_len), then the file
     * range out_file_* (a dup of the sender's descriptor).  Written by the owner: a worker
     * (pw_conn_send, pw_conn_sendfile) or the reactor (state WRITING). */
    char *out;
    size_t out_off, out_len, out_cap;
    int out_file_fd; /* -1: none */
    off_t out_file_off;
    size_t out_file_left;
    int after_output; /* WRITING: enum pw_after_output */
    int resuming;     /* queued to continue a suspended response */
    /* Inline mode: the complete response waits in out for the end of the reactor's turn
     * (out_hold); held_released: its request was released meanwhile (after_output says how
     * to go on once it is sent). */
    int held, held_released;
    struct pw_conn *held_next;
    unsigned turn;    /* leader mode: the reactor turn that queued its request (output.c) */
    double served_at; /* leader mode: when a worker began serving its request (output.c) */
    /* The client's pace while output waits for it (out_too_slow): what it has taken is what
     * we handed the kernel minus what the kernel still holds unsent (SIOCOUTQ). */
    uint64_t out_sent;       /* handed to the kernel since the slow episode began */
    uint64_t out_taken;      /* taken by the client, as last measured */
    int out_base;            /* the kernel's queue when the episode began */
    double out_window_start; /* send_min_rate: the current window, and bytes taken in it */
    uint64_t out_window_bytes;
    double out_progress_at; /* when the client was last seen taking bytes */
    char peer_host[64];     /* the client: the connection's peer, or what a trusted proxy
                                    said (X-Forwarded-For, Forwarded), for the current request */
    int peer_port;          /* 0 when a proxy gave no port */
    /* trusted proxies (docs/proxies.md) */
    char conn_host[64]; /* the connection's peer (after a PROXY header): %{c}a */
    int conn_port;
    int proxy_trusted;     /* conn_host is a trusted proxy: its forwarding headers count */
    int need_proxy_header; /* --proxy-protocol: the PROXY header is not read yet */
    int proxy_https;       /* from the PROXY v2 SSL TLV: 1 https, else -1 */
    int fwd_https;         /* current request: -1 nothing said, 0 http, 1 https */
    uint32_t fwd_host_off, fwd_host_len; /* current request: forwarded Host in buf (len 0: none) */
    int fwd_server_port;                 /* current request: X-Forwarded-Port, or 0 */
    /* daemon mode (relay.c): the daemon connection whose response is relayed to this client,
     * and how far that response has come (shared by a relay thread's loop and the reactor's,
     * so the reactor carries on when the client is too slow for a thread to wait for it) */
    int relay_fd;         /* -1: none */
    double relay_since;   /* when relay_fd was opened (PW_RELAY_POOL_RENEW, relay.h) */
    int relay_counted;    /* counted in the group's status counters by the reactor */
    int relay_paused;     /* the client is behind: relay_fd is out of the poller */
    int relay_slot_freed; /* not (or no longer) counted in the reactor's in-flight relays */
    double relay_timeout; /* longest wait for the daemon's next byte */
    struct pw_relay_progress {
        int pooled; /* relay_fd goes back to the pool when the response is whole */
        int reused; /* it came from the pool: a reset before any byte = unread */
        int head_done, body, complete, close_after, is_head;
        long long left;    /* body bytes still to come (Content-Length) */
        long long relayed; /* bytes read from the daemon, head included */
        pw_chunked chunks;
        char *head; /* the head as it arrives, until complete (malloc'ed) */
        size_t head_len;
        int file_fd; /* a file passed by the daemon, or -1 */
        long long file_off, file_count;
    } rp;
    unsigned long requests; /* served on this connection */
    struct pw_conn *next;   /* queue link */
    /* HTTPS (tls.c): the TLS session of a connection to an HTTPS port, NULL for plain HTTP;
     * a plain HTTP request that came to the HTTPS port (answered 400); in a daemon, the
     * --ssl-environ variables the relay preamble carried (malloc'ed, "NAME\0VALUE\0...") */
    struct pw_tls_conn *tls;
    int plain_on_tls;
    char *ssl_vars;
    size_t ssl_vars_len;
} pw_conn;

pw_server *pw_server_new(const pw_config *cfg, char *err, size_t errlen);
int pw_server_start(pw_server *s); /* starts the reactor thread; 0 ok */
/* Graceful: stop accepting - first accepting every connection already queued in the listen
 * backlog, then giving up this process's hold on the listening sockets (so the last process
 * to let go of a socket leaves nothing queued in it to be reset) - and close idle connections
 * (the keep-alive timeout at most). */
void pw_server_stop_accepting(pw_server *s);
void pw_server_shutdown(pw_server *s); /* stop reactor, wake workers; join reactor */
void pw_server_free(pw_server *s);
int pw_server_open_conns(pw_server *s);
/* Whether responses close their connection now: this process stops, or the master began a
 * graceful stop of the whole server (probes.h: the server still accepts meanwhile). */
int pw_server_stopping(pw_server *s);
/* Whether the listening sockets are still this process's (stop_accepting: until the backlog
 * is drained). */
int pw_server_accepting(pw_server *s);
const pw_config *pw_server_config(pw_server *s);

/* Workers: block until a connection with a complete head is ready; NULL on shutdown. */
pw_conn *pw_queue_pop(pw_server *s);
/* A connection already queued (a reactor turn reads several), without waiting: NULL when there
 * is none.  A worker back from a request tries it before pw_queue_pop, keeping the GIL, so it
 * serves the rest of a batch with no GIL hand-over per request. */
pw_conn *pw_queue_try_pop(pw_server *s);
/* The worker that pw_queue_pop gave c has the GIL again and starts serving it now (what it
 * waited for the GIL does not count as the request's time: in leader mode output.c holds the
 * responses of requests that take PW_HOLD_MIN or more; pw_queue_try_pop sets it itself). */
void pw_queue_serving(pw_conn *c);

/*
 * After a response: keep_alive != 0 drains what is left of the body (within limits), keeps the
 * pipelined bytes and - if they already hold a complete head - returns 1: the caller serves that
 * request next on the same connection (in order).  Otherwise returns 0 and the connection is
 * back with the reactor (or closed); the caller must not touch it again.
 */
int pw_conn_release(pw_server *s, pw_conn *c, int keep_alive);
/* Whether pw_conn_release may wait for the client: only to drain a request body whose rest is
 * not received yet.  Otherwise it makes no blocking call, and the Cython caller keeps the GIL
 * over it (a GIL hand-over costs more than the release). */
int pw_conn_release_may_wait(const pw_conn *c);

/* Request body.  peek: >0 contiguous body bytes at *ptr, 0 end of body, -1 error (c->body_error
 * set: 400 malformed chunked, 408 timeout, 413 too large, 499 client went away). */
ssize_t pw_body_peek(pw_server *s, pw_conn *c, const char **ptr);
void pw_body_consume(pw_conn *c, size_t n);

/*
 * Response output.  A slow client holds no thread: pw_conn_send and pw_conn_sendfile never
 * wait - what the socket does not take at once is kept on the connection (bytes copied, a file
 * range as a dup of the descriptor) and sent by whoever owns it next, in order.  The caller
 * bounds what it hands over with pw_conn_out_pending (cfg.out_high).  0 ok, -1 the client is
 * gone (c->broken set).
 */
int pw_conn_send(pw_server *s, pw_conn *c, struct iovec *iov, int iovcnt);
/* The same, for the write that completes a response: in inline mode it may be held until the
 * reactor's turn ends, so the turn's responses reach their clients together (out_hold). */
int pw_conn_send_last(pw_server *s, pw_conn *c, struct iovec *iov, int iovcnt);
int pw_conn_sendfile(pw_server *s, pw_conn *c, int fd, off_t offset, size_t count);
size_t pw_conn_out_pending(const pw_conn *c);
/* Wait (blocking, with socket_timeout and send_min_rate) until fewer than `below` bytes are
 * pending; for callers that cannot suspend (the write() callable).  0 ok, -1 gone. */
int pw_conn_out_wait(pw_server *s, pw_conn *c, size_t below);
/* Blocking write of everything pending and then iov (error answers, 100 Continue, the relay
 * threads); 0 ok, -1 on failure (c->broken set). */
int pw_conn_writev(pw_server *s, pw_conn *c, struct iovec *iov, int iovcnt);
/* A worker stops serving a response that is not finished because its output is over
 * cfg.out_high: the reactor sends it, and below cfg.out_low queues c again with c->resuming
 * set (or at once with c->broken set if the client fails).  The caller keeps the response's
 * state and must not touch c until it is handed back. */
void pw_conn_suspend(pw_server *s, pw_conn *c);
/* Daemon mode: a relay thread leaves the rest of c's response (c->relay_fd, c->rp) to the
 * reactor because the client does not keep up; c is not the caller's any more. */
void pw_relay_handoff(pw_server *s, pw_conn *c);

/* Simple complete error response with Connection: close (used for parse errors and limits). */
void pw_send_error(pw_server *s, pw_conn *c, int status);

void pw_log(pw_server *s, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Where pw_log writes (default 2, stderr): the error log's descriptor. */
void pw_log_set_fd(int fd);

#endif
