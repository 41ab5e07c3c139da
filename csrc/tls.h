/*
 * tls.h -- HTTPS in the core (docs/tls.md): OpenSSL loaded at run time, a TLS context per
 * listening socket (with a context per virtual host chosen by SNI), and the connection side the
 * reactor, body reading and output call instead of recv/send when a connection is TLS.  Plain C,
 * no Python, no GIL; nothing here ever waits: a handshake, a read or a write that cannot go on
 * says what it wants (the socket readable or writable) and the caller's event loop or poll()
 * waits for that.
 */
#ifndef PW_TLS_H
#define PW_TLS_H

#include <stddef.h>
#include <sys/types.h>

typedef struct pw_tls_ctx pw_tls_ctx;

/* Load libssl/libcrypto (once per process).  path: a libssl to try first (the one Python's
 * ssl module has loaded), or NULL; only_path: that one or none (PYWSGI_LIBSSL).  0 ok; -1 with
 * why in err. */
int pw_tls_load(const char *path, int only_path, char *err, size_t errlen);
/* "OpenSSL 3.0.19 ..." of the loaded library ("" before pw_tls_load succeeded). */
const char *pw_tls_library(void);

enum { PW_TLS_VERIFY_NONE = 0, PW_TLS_VERIFY_OPTIONAL = 1, PW_TLS_VERIFY_REQUIRE = 2 };

/* What a TLS context is made of.  The PEM texts are in memory: the master reads the files (as
 * root, before any --user takes effect) and every process builds its contexts from them. */
typedef struct pw_tls_options {
    const char *label;    /* how messages name the certificate (its file name) */
    const char *cert_pem; /* the certificate, maybe followed by its chain */
    size_t cert_len;
    const char *chain_pem; /* more chain certificates (SSLCertificateChainFile), or NULL */
    size_t chain_len;
    const char *key_pem; /* the private key */
    size_t key_len;
    const char *key_password; /* for an encrypted key, or NULL */
    const char *ca_pem;       /* CAs that client certificates must chain to, or NULL */
    size_t ca_len;
    int verify_client;                /* PW_TLS_VERIFY_* */
    int min_version, max_version;     /* 0x0303 (TLS 1.2), 0x0304 (TLS 1.3) */
    const char *ciphers;              /* TLS 1.2 cipher list (OpenSSL syntax) */
    const char *ciphersuites;         /* TLS 1.3 suites, or NULL: OpenSSL's */
    const unsigned char *ticket_keys; /* 80 bytes shared by every process, or NULL */
    int ktls;                         /* try kernel TLS (sendfile of static files) */
} pw_tls_options;

/* A context from options; NULL with a one-line reason in err (missing key, key that does not
 * match, expired certificate, wrong password, bad cipher list ...). */
pw_tls_ctx *pw_tls_ctx_new(const pw_tls_options *o, char *err, size_t errlen);
/* SNI: a client that names `host` (a name, or "*.example.com") gets `vhost`'s certificate
 * instead of def's.  def keeps a reference; free def first, then its hosts.  0 ok, -1 no memory. */
int pw_tls_ctx_add_host(pw_tls_ctx *def, const char *host, pw_tls_ctx *vhost);
/* "CN=example.com, expires Jan  1 00:00:00 2030 GMT" for the log. */
void pw_tls_ctx_describe(const pw_tls_ctx *t, char *out, size_t len);
void pw_tls_ctx_free(pw_tls_ctx *t);

struct pw_conn;
struct pw_server;
/* --ssl-environ: the connection's SSL_* variables as "NAME\0VALUE\0..." (made once per
 * connection, after the handshake; in a daemon, what the relay preamble carried); NULL and
 * *len 0 when there are none (plain HTTP). */
const char *pw_conn_ssl_vars(struct pw_conn *c, size_t *len);
/* The Strict-Transport-Security line for a response on c (--hsts-policy, https requests only),
 * or NULL. */
const char *pw_conn_hsts(struct pw_server *s, struct pw_conn *c);

#endif
