# The C side of the core, declared once: csrc/http_parser.h (via _http_parser.pxd), reactor.h, relay.h, static.h, accesslog.h, probes.h, tls.h.
from libc.stdint cimport uint32_t, uint64_t
from posix.types cimport off_t


cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void *iov_base
        size_t iov_len


from pywsgi._http_parser cimport *


cdef extern from "accesslog.h" nogil:
    ctypedef struct pw_access_log:
        pass
    const char *PW_LOG_COMBINED
    pw_access_log *pw_access_log_new(int fd, const char *format, char *err, size_t errlen)
    void pw_access_log_free(pw_access_log *l)
    void pw_access_log_flush(pw_access_log *l)
    void pw_access_log_set_fd(pw_access_log *l, int fd)


cdef extern from "proxy_trust.h" nogil:
    enum:
        PW_FWD_XFF
        PW_FWD_PROTO
        PW_FWD_HOST
        PW_FWD_PORT
        PW_FWD_FORWARDED
    ctypedef struct pw_trust:
        int count
        int unix_peers
        unsigned headers
    int pw_trust_add(pw_trust *t, const char *text)
from libc.stdint cimport int32_t, int64_t

cdef extern from "scoreboard.h" nogil:
    enum:
        PW_SB_BUCKETS
        PW_SB_GROUP_NAME
        PW_SB_EMPTY
        PW_SB_STARTING
        PW_SB_READY
        PW_SB_STOPPING
        PW_SB_DEAD
        PW_SB_SERVER
        PW_SB_DAEMON

    const double pw_sb_bounds[]

    ctypedef struct pw_sb_slot:
        int32_t pid
        int32_t kind
        int32_t group
        int32_t process_index
        int32_t state
        int32_t threads
        int64_t started_us
        uint64_t restarts
        uint64_t requests
        uint64_t bytes_out
        int64_t busy
        int64_t connections
        uint64_t status[6]
        uint64_t latency_us_sum
        uint64_t latency[20]
        uint64_t access_log_dropped

    ctypedef struct pw_sb_group:
        char name[64]
        uint64_t restarts
        uint64_t relayed
        int64_t in_flight
        uint64_t errors[3]
        int32_t live

    ctypedef struct pw_scoreboard:
        int32_t nslots
        int32_t ngroups
        int32_t master_pid
        int64_t created_us
        int32_t stopping

    pw_scoreboard *pw_sb_create(int nslots, int ngroups)
    void pw_sb_destroy(pw_scoreboard *sb)
    pw_sb_slot *pw_sb_slot_at(pw_scoreboard *sb, int index)
    pw_sb_group *pw_sb_group_at(pw_scoreboard *sb, int index)
    int64_t pw_sb_wall_us()
    void pw_sb_relay_start(pw_sb_group *g)
    void pw_sb_relay_done(pw_sb_group *g, int status_out)
    void pw_sb_announce_stop(pw_scoreboard *sb)
    void pw_sb_set_live(pw_sb_group *g, int live)


cdef extern from "probes.h" nogil:
    enum: PW_PROBE_GROUPS
    ctypedef struct pw_probes:
        const char *health_url
        size_t health_url_len
        const char *ready_url
        size_t ready_url_len
        pw_trust allow
        const int32_t *stopping
        int ngroups
        pw_sb_group *groups[64]


cdef extern from "process.h" nogil:
    int pw_set_parent_death_signal(int sig)
    int pw_set_process_title(const char *title)


cdef extern from "tls.h" nogil:
    ctypedef struct pw_tls_ctx:
        pass
    enum:
        PW_TLS_VERIFY_NONE
        PW_TLS_VERIFY_OPTIONAL
        PW_TLS_VERIFY_REQUIRE
    ctypedef struct pw_tls_options:
        const char *label
        const char *cert_pem
        size_t cert_len
        const char *chain_pem
        size_t chain_len
        const char *key_pem
        size_t key_len
        const char *key_password
        const char *ca_pem
        size_t ca_len
        int verify_client
        int min_version
        int max_version
        const char *ciphers
        const char *ciphersuites
        const unsigned char *ticket_keys
        int ktls
    int pw_tls_load(const char *path, int only_path, char *err, size_t errlen)
    const char *pw_tls_library()
    pw_tls_ctx *pw_tls_ctx_new(const pw_tls_options *o, char *err, size_t errlen)
    int pw_tls_ctx_add_host(pw_tls_ctx *default_ctx, const char *host, pw_tls_ctx *vhost)
    void pw_tls_ctx_describe(const pw_tls_ctx *t, char *out, size_t len)
    void pw_tls_ctx_free(pw_tls_ctx *t)


cdef extern from "response.h" nogil:
    const char *pw_status_reason(int status)
    void pw_http_date(char *out)
    ctypedef struct pw_head:
        int status
        int http10
        int no_body
        long long content_length
        int keep_alive
        int announce_close
        int has_date
        const char *server_line
        int chunked
        const char *extra_lines
    int pw_head_finish(pw_head *h, char *out, int room)
    int pw_error_page(int status, const char *message, char *out, int room)


cdef extern from "reactor.h" nogil:
    enum:
        PW_MAX_LISTEN
        PW_LOG_ERROR
        PW_LOG_WARNING
        PW_LOG_INFO
        PW_LOG_DEBUG

    ctypedef struct pw_server:
        pass

    ctypedef struct pw_conn

    ctypedef struct pw_config:
        int num_listen
        int listen_fds[16]
        double keep_alive_timeout
        double header_timeout
        double header_max_timeout
        double header_min_rate
        double body_timeout
        size_t body_buffer_size
        double socket_timeout
        double send_min_rate
        size_t out_high
        size_t out_low
        uint64_t limit_request_body
        int max_clients
        int daemon_role
        int accept_busy_limit
        int log_level
        pw_limits limits
        pw_access_log *access_log
        void (*dispatch)(pw_server *s, pw_conn *c) noexcept nogil
        void (*thread_start)() noexcept nogil
        void (*thread_stop)() noexcept nogil
        void (*turn_done)() noexcept nogil
        pw_trust trust
        int proxy_protocol
        pw_sb_slot *scoreboard
        const void *relay_async
        pw_sb_group *relay_counters
        const char *status_url
        size_t status_url_len
        double lazy_wake
        int leader_follower
        int relay_async_limit
        pw_tls_ctx *tls[16]
        int https_redirect_port
        const char *https_redirect_host
        const char *hsts_line
        int ssl_environ
        pw_probes probes

    ctypedef struct pw_conn:
        int fd
        int listen_index
        char *buf
        size_t len
        pw_request req
        int body_error
        int broken
        int sent_continue
        char peer_host[64]
        int peer_port
        char conn_host[64]
        int conn_port
        int proxy_trusted
        int fwd_https
        uint32_t fwd_host_off
        uint32_t fwd_host_len
        int fwd_server_port
        unsigned long requests
        double enqueued_at
        int one_shot
        int resp_status
        long long resp_bytes
        int status_page
        int resuming

    pw_server *pw_server_new(const pw_config *cfg, char *err, size_t errlen)
    int pw_server_start(pw_server *s)
    void pw_server_stop_accepting(pw_server *s)
    void pw_server_shutdown(pw_server *s)
    void pw_server_free(pw_server *s)
    int pw_server_open_conns(pw_server *s)
    int pw_server_stopping(pw_server *s)
    int pw_server_accepting(pw_server *s)
    pw_conn *pw_queue_pop(pw_server *s)
    pw_conn *pw_queue_try_pop(pw_server *s)
    void pw_queue_serving(pw_conn *c)
    int pw_conn_release(pw_server *s, pw_conn *c, int keep_alive)
    int pw_conn_release_may_wait(const pw_conn *c)
    ssize_t pw_body_peek(pw_server *s, pw_conn *c, const char **ptr)
    void pw_body_consume(pw_conn *c, size_t n)
    int pw_conn_send(pw_server *s, pw_conn *c, iovec *iov, int iovcnt)
    int pw_conn_send_last(pw_server *s, pw_conn *c, iovec *iov, int iovcnt)
    size_t pw_conn_out_pending(const pw_conn *c)
    int pw_conn_out_wait(pw_server *s, pw_conn *c, size_t below)
    void pw_conn_suspend(pw_server *s, pw_conn *c)
    int pw_conn_writev(pw_server *s, pw_conn *c, iovec *iov, int iovcnt)
    int pw_conn_sendfile(pw_server *s, pw_conn *c, int fd, off_t offset, size_t count)
    void pw_send_error(pw_server *s, pw_conn *c, int status)
    void pw_log_set_fd(int fd)
    const char *pw_conn_ssl_vars(pw_conn *c, size_t *len)
    const char *pw_conn_hsts(pw_server *s, pw_conn *c)


cdef extern from "relay.h" nogil:
    enum: PW_RELAY_POOL_SLOTS
    ctypedef struct pw_relay_target:
        const char *socket_path
        double queue_timeout
        double response_timeout
        int pool_slot
        int processes

    int pw_relay(pw_server *s, pw_conn *c, const pw_relay_target *t, int *status_out)
    enum: PW_RELAY_HANDED
    int pw_daemon_send_file(pw_server *s, pw_conn *c, int fd, long long offset, long long count)


cdef extern from "static.h" nogil:
    ctypedef struct pw_static_root:
        pass

    ctypedef struct pw_static_options:
        const char *root
        int is_file
        const char *index
        int follow_symlinks
        int precompressed
        const char *cache_control
        const char *types
        const char *default_type
        const char *server

    pw_static_root *pw_static_root_new(const pw_static_options *o, char *err, size_t errlen)
    void pw_static_root_free(pw_static_root *r)
    int pw_static_serve(pw_server *s, pw_conn *c, pw_static_root *r, const char *rel, size_t rel_len)

