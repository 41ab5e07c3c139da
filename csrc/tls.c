/*
 * tls.c -- HTTPS in the core (tls.h, docs/tls.md).  Plain C, no Python; see server.h.
 *
 * OpenSSL is loaded at run time (dlopen) from the system's libssl - the library Python's own
 * ssl module links - with the few functions and constants pywsgi uses declared in
 * tls_openssl.h.  Why not link it at build time: `pip install .` must build on a machine with
 * only Python and gcc (no OpenSSL headers), and one built package must work wherever the
 * system has a libssl; where none can be loaded, plain HTTP still works and --https-port is a
 * one-line error saying how to get TLS.
 *
 * A TLS connection is driven by whoever owns it, never waiting: the reactor runs the handshake
 * (SSL_do_handshake on a non-blocking socket: "wants read" or "wants write" becomes what the
 * poller watches), reads heads and small bodies; a worker reads the rest of a body and writes
 * the response.  Every read or write that cannot go on says which readiness it needs
 * (conn_wait_events); output that the socket does not take stays on the connection exactly as
 * for plain HTTP, and since OpenSSL requires a write it refused to be retried with the same
 * bytes, output.c's rule "pending output goes first" is what keeps that promise.
 */
#include "server.h"
#include "tls.h"
#include "tls_openssl.h"

#include <ctype.h>
#include <dlfcn.h>
#include <limits.h>

/* ---------------------------------------------------------------- the library */

#define PW_DECLARE(ret, name, args) ret(*name) args;
static struct {
    PW_OSSL_FUNCTIONS(PW_DECLARE, PW_DECLARE)
} O;
static int loaded;
static char library[128];
static unsigned long version_num;
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

/* OpenSSL's record buffers (about 17 KiB to read, as much to write) stay with a busy connection
 * from one request to the next and are freed once it is idle (tls_shed_memory), instead of
 * after every record (SSL_MODE_RELEASE_BUFFERS: a malloc and a free of each per request, ~1,400
 * instructions).  Only where SSL_free_buffers refuses buffers still in use (CVE-2024-4741, fixed
 * in 3.0.14, 3.1.6, 3.2.2, 3.3.1); older libraries keep SSL_MODE_RELEASE_BUFFERS. */
static int shed_when_idle;
#define PW_TLS_BUFFERS (2 * 17 * 1024)

static int free_buffers_is_safe(unsigned long v)
{
    static const unsigned char fixed[] = {14, 6, 2, 1}; /* 3.0.14, 3.1.6, 3.2.2, 3.3.1 */
    unsigned long major = v >> 28, minor = (v >> 20) & 0xff, patch = (v >> 4) & 0xff;
    if (major != 3)
        return major > 3;
    return minor >= sizeof fixed || patch >= fixed[minor];
}

const char *pw_tls_library(void)
{
    return library;
}

/* libcrypto's name beside a libssl path: .../libssl.so.3 -> .../libcrypto.so.3 */
static void crypto_path(const char *ssl, char *out, size_t len)
{
    const char *base = strrchr(ssl, '/');
    base = base ? base + 1 : ssl;
    const char *rest = strncmp(base, "libssl", 6) == 0 ? base + 6 : NULL;
    if (!rest) {
        snprintf(out, len, "%s", ssl);
        return;
    }
    snprintf(out, len, "%.*slibcrypto%s", (int)(base - ssl), ssl, rest);
}

static int load_from(const char *ssl_name, char *err, size_t errlen)
{
    char crypto_name[512];
    crypto_path(ssl_name, crypto_name, sizeof crypto_name);
    void *crypto = dlopen(crypto_name, RTLD_NOW | RTLD_LOCAL);
    void *ssl = crypto ? dlopen(ssl_name, RTLD_NOW | RTLD_LOCAL) : NULL;
    if (!ssl) {
        snprintf(err, errlen, "%s", dlerror());
        if (crypto)
            dlclose(crypto);
        return -1;
    }
#define PW_FIND(ret, name, args)           \
    *(void **)&O.name = dlsym(ssl, #name); \
    if (!O.name)                           \
        *(void **)&O.name = dlsym(crypto, #name);
#define PW_REQUIRE(ret, name, args)                            \
    PW_FIND(ret, name, args)                                   \
    if (!O.name) {                                             \
        snprintf(err, errlen, "%s lacks %s", ssl_name, #name); \
        goto missing;                                          \
    }
    PW_OSSL_FUNCTIONS(PW_REQUIRE, PW_FIND)
    if (!O.SSL_get1_peer_certificate && !O.SSL_get_peer_certificate) {
        snprintf(err, errlen, "%s lacks SSL_get1_peer_certificate", ssl_name);
        goto missing;
    }
    version_num = O.OpenSSL_version_num();
    if (version_num < 0x10101000UL) {
        snprintf(err, errlen, "%s is OpenSSL %lx: 1.1.1 or later is needed", ssl_name, version_num);
        goto missing;
    }
    if (!O.SSL_get1_peer_certificate)
        O.SSL_get1_peer_certificate = O.SSL_get_peer_certificate;
    shed_when_idle = O.SSL_free_buffers && free_buffers_is_safe(version_num);
    O.OPENSSL_init_ssl(PW_OPENSSL_INIT_LOAD_SSL_STRINGS | PW_OPENSSL_INIT_LOAD_CRYPTO_STRINGS,
                       NULL);
    /* "OpenSSL 3.0.19 27 Jan 2026": the name and version, without the date */
    const char *text = O.OpenSSL_version(0 /* OPENSSL_VERSION */);
    const char *space = text ? strchr(text, ' ') : NULL;
    space = space ? strchr(space + 1, ' ') : NULL;
    snprintf(library, sizeof library, "%.*s", space ? (int)(space - text) : 100,
             text ? text : "OpenSSL");
    return 0;
missing:
    memset(&O, 0, sizeof O);
    dlclose(ssl);
    dlclose(crypto);
    return -1;
#undef PW_FIND
#undef PW_REQUIRE
}

int pw_tls_load(const char *hint, int only_hint, char *err, size_t errlen)
{
    static const char *names[] = {"libssl.so.3",      "libssl.so.1.1", "libssl.3.dylib",
                                  "libssl.1.1.dylib", "libssl.so",     NULL};
    pthread_mutex_lock(&load_lock);
    int rc = 0;
    if (!loaded) {
        char first[256] = "";
        rc = -1;
        if (hint && *hint)
            rc = load_from(hint, first, sizeof first);
        for (int i = 0; rc != 0 && !only_hint && names[i]; i++) {
            char why[256];
            rc = load_from(names[i], why, sizeof why);
            if (rc != 0 && !first[0])
                snprintf(first, sizeof first, "%s", why);
        }
        if (rc == 0)
            loaded = 1;
        else
            snprintf(err, errlen, "%s", first);
    }
    pthread_mutex_unlock(&load_lock);
    return rc;
}

/* The reason of OpenSSL's oldest queued error (the root cause), or `otherwise`; the queue is
 * emptied. */
static const char *ossl_reason(char *buf, size_t len, const char *otherwise)
{
    unsigned long e = O.ERR_get_error();
    if (!e) {
        snprintf(buf, len, "%s", otherwise);
    } else {
        const char *r = O.ERR_reason_error_string(e);
        if (r)
            snprintf(buf, len, "%s", r);
        else
            O.ERR_error_string_n(e, buf, len);
    }
    O.ERR_clear_error();
    return buf;
}

/* Empty this thread's error queue before an SSL call, so that SSL_get_error() afterwards sees
 * that call's errors only (OpenSSL requires it).  ERR_clear_error() costs ~800 instructions in
 * OpenSSL 3 even on an empty queue (it resets all 16 slots, freeing each one's strings), and an
 * HTTPS request makes two SSL calls; ERR_peek_error() is what SSL_get_error() looks at, so a
 * queue it finds empty is empty enough - and it usually is (failures are cleared after). */
static void err_queue_empty(void)
{
    if (O.ERR_peek_error())
        O.ERR_clear_error();
}

/* ---------------------------------------------------------------- contexts */

typedef struct {
    char *name; /* lower case; "*.example.com" matches one label in front */
    pw_tls_ctx *ctx;
} sni_host;

struct pw_tls_ctx {
    SSL_CTX *ctx;
    char describe[300];
    sni_host *hosts;
    int nhosts;
};

static int name_matches(const char *pattern, const char *name)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = strchr(name, '.');
        return dot && dot != name && strcasecmp(dot, pattern + 1) == 0;
    }
    return strcasecmp(pattern, name) == 0;
}

/* SNI (RFC 6066 section 3): the certificate of the virtual host the client names; an unknown
 * name (or none) gets the default certificate, as Apache and nginx do. */
static int sni_select(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    pw_tls_ctx *t = arg;
    const char *name = O.SSL_get_servername(ssl, PW_TLSEXT_NAMETYPE_host_name);
    if (!name)
        return PW_SSL_TLSEXT_ERR_NOACK;
    for (int i = 0; i < t->nhosts; i++)
        if (name_matches(t->hosts[i].name, name)) {
            O.SSL_set_SSL_CTX(ssl, t->hosts[i].ctx->ctx);
            break;
        }
    return PW_SSL_TLSEXT_ERR_OK;
}

/* ALPN (RFC 7301): pywsgi speaks HTTP/1.1 (and 1.0).  A client that offers only other
 * protocols (h2 alone) gets the no_application_protocol alert, as section 3.2 says. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned i = 0; i < inlen;) {
        unsigned len = in[i];
        if (i + 1 + len > inlen)
            break;
        if (len == 8 &&
            (memcmp(in + i + 1, "http/1.1", 8) == 0 || memcmp(in + i + 1, "http/1.0", 8) == 0)) {
            *out = in + i + 1;
            *outlen = (unsigned char)len;
            return PW_SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return PW_SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* An encrypted key's passphrase: the one given, or none (never a prompt on a terminal). */
static int key_password(char *buf, int size, int rwflag, void *userdata)
{
    (void)rwflag;
    const char *password = userdata;
    if (!password)
        return -1;
    int n = (int)strlen(password);
    if (n > size)
        n = size;
    memcpy(buf, password, (size_t)n);
    return n;
}

static void asn1_time_text(const ASN1_TIME *t, char *out, size_t len)
{
    out[0] = 0;
    BIO *b = O.BIO_new(O.BIO_s_mem());
    if (!b)
        return;
    if (O.ASN1_TIME_print(b, t) > 0) {
        char *p = NULL;
        long n = O.BIO_ctrl(b, PW_BIO_CTRL_INFO, 0, &p);
        snprintf(out, len, "%.*s", (int)(n > 0 ? n : 0), p ? p : "");
    }
    O.BIO_free(b);
}

static void name_text(const X509_NAME *name, char *out, size_t len)
{
    out[0] = 0;
    BIO *b = O.BIO_new(O.BIO_s_mem());
    if (!b)
        return;
    /* RFC 2253 with UTF-8 left as it is: mod_ssl's format for SSL_*_DN */
    if (O.X509_NAME_print_ex(b, name, 0, PW_XN_FLAG_RFC2253 & ~PW_ASN1_STRFLGS_ESC_MSB) >= 0) {
        char *p = NULL;
        long n = O.BIO_ctrl(b, PW_BIO_CTRL_INFO, 0, &p);
        snprintf(out, len, "%.*s", (int)(n > 0 ? n : 0), p ? p : "");
    }
    O.BIO_free(b);
}

/* Every certificate of a PEM text, in order: 0 ok (*n of them; the caller frees), -1 none. */
static int read_certs(const char *pem, size_t len, X509 **out, int cap, int *n)
{
    *n = 0;
    BIO *b = O.BIO_new_mem_buf(pem, (int)len);
    if (!b)
        return -1;
    while (*n < cap) {
        X509 *x = O.PEM_read_bio_X509(b, NULL, key_password, NULL);
        if (!x)
            break;
        out[(*n)++] = x;
    }
    O.ERR_clear_error(); /* the end of the text reads as "no start line" */
    O.BIO_free(b);
    return *n > 0 ? 0 : -1;
}

#define PW_MAX_CHAIN 16

static int ctx_certificate(pw_tls_ctx *t, const pw_tls_options *o, char *err, size_t errlen)
{
    X509 *certs[PW_MAX_CHAIN];
    int n = 0, rc = -1;
    char why[200];
    if (read_certs(o->cert_pem, o->cert_len, certs, PW_MAX_CHAIN, &n) != 0) {
        snprintf(err, errlen, "%s: no certificate in it (a PEM 'BEGIN CERTIFICATE' block)",
                 o->label);
        return -1;
    }
    X509 *leaf = certs[0];
    char until[64];
    asn1_time_text(O.X509_get0_notAfter(leaf), until, sizeof until);
    if (O.X509_cmp_current_time(O.X509_get0_notAfter(leaf)) < 0) {
        snprintf(err, errlen, "%s: the certificate expired on %s", o->label, until);
        goto done;
    }
    if (O.SSL_CTX_use_certificate(t->ctx, leaf) != 1) {
        snprintf(err, errlen, "%s: certificate refused: %s", o->label,
                 ossl_reason(why, sizeof why, "unknown reason"));
        goto done;
    }
    for (int i = 1; i < n; i++)
        if (O.SSL_CTX_ctrl(t->ctx, PW_SSL_CTRL_CHAIN_CERT, 1, certs[i]) != 1) {
            snprintf(err, errlen, "%s: chain certificate %d refused: %s", o->label, i,
                     ossl_reason(why, sizeof why, "unknown reason"));
            goto done;
        }
    if (o->chain_pem && o->chain_len) {
        X509 *chain[PW_MAX_CHAIN];
        int m = 0;
        if (read_certs(o->chain_pem, o->chain_len, chain, PW_MAX_CHAIN, &m) != 0) {
            snprintf(err, errlen, "%s: the chain file has no certificate", o->label);
            goto done;
        }
        int bad = 0;
        for (int i = 0; i < m; i++) {
            if (!bad && O.SSL_CTX_ctrl(t->ctx, PW_SSL_CTRL_CHAIN_CERT, 1, chain[i]) != 1)
                bad = i + 1;
            O.X509_free(chain[i]);
        }
        if (bad) {
            snprintf(err, errlen, "%s: chain certificate %d refused: %s", o->label, bad,
                     ossl_reason(why, sizeof why, "unknown reason"));
            goto done;
        }
    }
    char subject[200];
    name_text(O.X509_get_subject_name(leaf), subject, sizeof subject);
    snprintf(t->describe, sizeof t->describe, "%s, valid until %s", subject, until);
    rc = 0;
done:
    for (int i = 0; i < n; i++)
        O.X509_free(certs[i]);
    return rc;
}

static int ctx_key(pw_tls_ctx *t, const pw_tls_options *o, char *err, size_t errlen)
{
    char why[200];
    BIO *b = O.BIO_new_mem_buf(o->key_pem, (int)o->key_len);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    EVP_PKEY *key = O.PEM_read_bio_PrivateKey(b, NULL, key_password, (void *)o->key_password);
    O.BIO_free(b);
    if (!key) {
        int encrypted = memmem(o->key_pem, o->key_len, "ENCRYPTED", 9) != NULL;
        ossl_reason(why, sizeof why, "no private key in it (a PEM 'BEGIN PRIVATE KEY' block)");
        if (encrypted && !o->key_password)
            snprintf(err, errlen,
                     "%s: the private key is encrypted: give its passphrase with "
                     "--ssl-certificate-key-password-file, or decrypt it (openssl pkey -in KEY "
                     "-out PLAIN.pem)",
                     o->label);
        else if (encrypted)
            snprintf(err, errlen, "%s: cannot decrypt the private key (wrong passphrase?): %s",
                     o->label, why);
        else
            snprintf(err, errlen, "%s: cannot read the private key: %s", o->label, why);
        return -1;
    }
    int ok = O.SSL_CTX_use_PrivateKey(t->ctx, key) == 1;
    O.EVP_PKEY_free(key);
    if (!ok || O.SSL_CTX_check_private_key(t->ctx) != 1) {
        O.ERR_clear_error();
        snprintf(err, errlen,
                 "%s: the private key does not match the certificate (check "
                 "--ssl-certificate-key-file)",
                 o->label);
        return -1;
    }
    return 0;
}

/* Client certificates: the CAs they must chain to (also the names sent in the request for
 * one), and whether one is asked for or required. */
static int ctx_client_ca(pw_tls_ctx *t, const pw_tls_options *o, char *err, size_t errlen)
{
    if (o->verify_client == PW_TLS_VERIFY_NONE)
        return 0;
    X509 *cas[64];
    int n = 0;
    if (!o->ca_pem || read_certs(o->ca_pem, o->ca_len, cas, 64, &n) != 0) {
        snprintf(err, errlen, "--ssl-ca-certificate-file: no CA certificate in it");
        return -1;
    }
    X509_STORE *store = O.SSL_CTX_get_cert_store(t->ctx);
    OPENSSL_STACK *names = O.OPENSSL_sk_new_null();
    for (int i = 0; i < n; i++) {
        O.X509_STORE_add_cert(store, cas[i]);
        X509_NAME *name = names ? O.X509_NAME_dup(O.X509_get_subject_name(cas[i])) : NULL;
        if (name && O.OPENSSL_sk_push(names, name) <= 0)
            O.X509_NAME_free(name);
        O.X509_free(cas[i]);
    }
    O.ERR_clear_error(); /* a CA given twice */
    if (names)
        O.SSL_CTX_set_client_CA_list(t->ctx, names); /* takes the stack */
    O.SSL_CTX_set_verify(
        t->ctx,
        PW_SSL_VERIFY_PEER |
            (o->verify_client == PW_TLS_VERIFY_REQUIRE ? PW_SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
        NULL);
    return 0;
}

pw_tls_ctx *pw_tls_ctx_new(const pw_tls_options *o, char *err, size_t errlen)
{
    char why[200];
    if (!loaded) {
        snprintf(err, errlen, "TLS is not available (OpenSSL not loaded)");
        return NULL;
    }
    pw_tls_ctx *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    O.ERR_clear_error();
    t->ctx = O.SSL_CTX_new(O.TLS_server_method());
    if (!t->ctx) {
        snprintf(err, errlen, "SSL_CTX_new: %s", ossl_reason(why, sizeof why, "failed"));
        free(t);
        return NULL;
    }
    uint64_t options = PW_SSL_OP_NO_COMPRESSION | PW_SSL_OP_NO_RENEGOTIATION;
    if (version_num >= 0x30000000UL) {
        /* a client that closes without close_notify ends its input like any other close */
        options |= PW_SSL_OP_IGNORE_UNEXPECTED_EOF;
        if (o->ktls)
            options |= PW_SSL_OP_ENABLE_KTLS;
    }
    O.SSL_CTX_set_options(t->ctx, options);
    /* Read ahead: one recv() takes a whole record (and what follows), not its header and then
     * its body; conn_recv_buf takes what OpenSSL holds (SSL_has_pending). */
    O.SSL_CTX_ctrl(t->ctx, PW_SSL_CTRL_SET_READ_AHEAD, 1, NULL);
    O.SSL_CTX_ctrl(t->ctx, PW_SSL_CTRL_MODE,
                   PW_SSL_MODE_ENABLE_PARTIAL_WRITE | PW_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                       (shed_when_idle ? 0 : PW_SSL_MODE_RELEASE_BUFFERS),
                   NULL);
    if (O.SSL_CTX_ctrl(t->ctx, PW_SSL_CTRL_SET_MIN_PROTO_VERSION, o->min_version, NULL) != 1 ||
        O.SSL_CTX_ctrl(t->ctx, PW_SSL_CTRL_SET_MAX_PROTO_VERSION, o->max_version, NULL) != 1) {
        snprintf(err, errlen, "--ssl-protocols: %s",
                 ossl_reason(why, sizeof why, "not supported by this OpenSSL"));
        goto failed;
    }
    if (o->ciphers && O.SSL_CTX_set_cipher_list(t->ctx, o->ciphers) != 1) {
        snprintf(err, errlen, "--ssl-ciphers %s: %s", o->ciphers,
                 ossl_reason(why, sizeof why, "no usable cipher"));
        goto failed;
    }
    if (o->ciphersuites && O.SSL_CTX_set_ciphersuites(t->ctx, o->ciphersuites) != 1) {
        snprintf(err, errlen, "TLS 1.3 cipher suites %s: %s", o->ciphersuites,
                 ossl_reason(why, sizeof why, "no usable suite"));
        goto failed;
    }
    /* Mozilla "intermediate": X25519, P-256, P-384; FFDHE sized to the key for DHE */
    O.SSL_CTX_ctrl(t->ctx, PW_SSL_CTRL_SET_GROUPS_LIST, 0, "X25519:P-256:P-384");
    O.SSL_CTX_ctrl(t->ctx, PW_SSL_CTRL_SET_DH_AUTO, 1, NULL);
    O.ERR_clear_error();
    if (ctx_certificate(t, o, err, errlen) != 0 || ctx_key(t, o, err, errlen) != 0 ||
        ctx_client_ca(t, o, err, errlen) != 0)
        goto failed;
    /* Session resumption: the session cache of this process (TLS 1.2 session IDs) and
     * tickets, whose keys every process of the server shares (made by the master), so a
     * client resumes whichever process accepts it. */
    static const unsigned char sid_ctx[] = "pywsgi";
    O.SSL_CTX_set_session_id_context(t->ctx, sid_ctx, sizeof sid_ctx - 1);
    O.SSL_CTX_ctrl(t->ctx, PW_SSL_CTRL_SET_SESS_CACHE_MODE, PW_SSL_SESS_CACHE_SERVER, NULL);
    O.SSL_CTX_ctrl(t->ctx, PW_SSL_CTRL_SET_SESS_CACHE_SIZE, 20000, NULL);
    if (o->ticket_keys)
        O.SSL_CTX_ctrl(t->ctx, PW_SSL_CTRL_SET_TLSEXT_TICKET_KEYS, 80, (void *)o->ticket_keys);
    O.SSL_CTX_set_alpn_select_cb(t->ctx, alpn_select, NULL);
    O.SSL_CTX_callback_ctrl(t->ctx, PW_SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                            (void (*)(void))sni_select);
    O.SSL_CTX_ctrl(t->ctx, PW_SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG, 0, t);
    O.ERR_clear_error();
    return t;
failed:
    O.SSL_CTX_free(t->ctx);
    free(t);
    return NULL;
}

int pw_tls_ctx_add_host(pw_tls_ctx *def, const char *host, pw_tls_ctx *vhost)
{
    sni_host *h = realloc(def->hosts, (def->nhosts + 1) * sizeof *h);
    if (!h)
        return -1;
    def->hosts = h;
    char *name = strdup(host);
    if (!name)
        return -1;
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    h[def->nhosts].name = name;
    h[def->nhosts].ctx = vhost;
    def->nhosts++;
    return 0;
}

void pw_tls_ctx_describe(const pw_tls_ctx *t, char *out, size_t len)
{
    snprintf(out, len, "%s", t->describe);
}

void pw_tls_ctx_free(pw_tls_ctx *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->nhosts; i++)
        free(t->hosts[i].name);
    free(t->hosts);
    O.SSL_CTX_free(t->ctx); /* (reference counted: connections still using it keep it) */
    free(t);
}

/* ---------------------------------------------------------------- connections */

struct pw_tls_conn {
    SSL *ssl;
    short want; /* POLLIN / POLLOUT: what the last operation that could not go on
                           needs; 0 after one that went on */
    unsigned handshaken : 1;
    unsigned checked : 1; /* the first byte was seen: a TLS handshake, not plain HTTP */
    unsigned ktls : 1;    /* the kernel encrypts what we send: sendfile works */
    unsigned buffers : 1; /* OpenSSL may hold record buffers (shed_when_idle) */
    char *vars;           /* --ssl-environ, made once */
    size_t vars_len;
};

int tls_conn_start(pw_server *s, pw_conn *c, pw_tls_ctx *ctx)
{
    struct pw_tls_conn *t = calloc(1, sizeof *t);
    if (t) {
        O.ERR_clear_error();
        t->ssl = O.SSL_new(ctx->ctx);
    }
    if (!t || !t->ssl || O.SSL_set_fd(t->ssl, c->fd) != 1) {
        char why[200];
        pw_log(s, PW_LOG_ERROR, "%s:%d: cannot start TLS: %s", c->peer_host, c->peer_port,
               t ? ossl_reason(why, sizeof why, "out of memory") : "out of memory");
        if (t && t->ssl)
            O.SSL_free(t->ssl);
        free(t);
        return -1;
    }
    O.SSL_set_accept_state(t->ssl);
    c->tls = t;
    return 0;
}

void tls_conn_free(pw_conn *c, int notify)
{
    struct pw_tls_conn *t = c->tls;
    if (!t)
        return;
    if (notify && t->handshaken && !c->broken) {
        /* close_notify (RFC 8446 6.1), without waiting for the client's: best effort on a
         * non-blocking socket */
        err_queue_empty();
        O.SSL_shutdown(t->ssl);
        err_queue_empty();
    }
    O.SSL_free(t->ssl);
    free(t->vars);
    free(t);
    c->tls = NULL;
}

size_t tls_shed_memory(pw_conn *c)
{
    struct pw_tls_conn *t = c->tls;
    /* (SSL_has_pending: not a byte of a record the client has begun, nor a decrypted one) */
    if (!t || !t->buffers || !t->handshaken || O.SSL_has_pending(t->ssl) ||
        O.SSL_free_buffers(t->ssl) != 1)
        return 0;
    t->buffers = 0;
    return PW_TLS_BUFFERS;
}

int tls_handshaken(const pw_conn *c)
{
    return !c->tls || c->tls->handshaken;
}

int tls_started(const pw_conn *c)
{
    return c->tls && c->tls->checked;
}

short conn_wait_events(const pw_conn *c, short events)
{
    return c->tls && c->tls->want ? c->tls->want : events;
}

int conn_out_watch(const pw_conn *c)
{
    return c->tls && c->tls->want == POLLIN ? PW_WATCH_IN : PW_WATCH_OUT;
}

/* What an SSL call that returned ret <= 0 means: 0 "try again" (t->want says when), -1 failed
 * (errno set), and for reads 1: the end of the input. */
static int ssl_outcome(struct pw_tls_conn *t, int ret)
{
    int saved = errno;
    switch (O.SSL_get_error(t->ssl, ret)) {
    case PW_SSL_ERROR_WANT_READ: t->want = POLLIN; return 0;
    case PW_SSL_ERROR_WANT_WRITE: t->want = POLLOUT; return 0;
    case PW_SSL_ERROR_ZERO_RETURN: return 1;
    case PW_SSL_ERROR_SYSCALL:
        O.ERR_clear_error();
        if (saved == 0)
            return 1; /* the client closed the connection */
        errno = saved;
        return -1;
    default:
        O.ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
}

int tls_handshake(pw_server *s, pw_conn *c)
{
    struct pw_tls_conn *t = c->tls;
    if (!t->checked) {
        unsigned char first;
        ssize_t n = recv(c->fd, &first, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            t->want = POLLIN;
            return TLS_HS_AGAIN;
        }
        if (n <= 0)
            return TLS_HS_CLOSED; /* closed (or reset) before saying anything */
        t->checked = 1;
        c->idle = 0;         /* a handshake under way: not a silent connection to evict */
        if (first != 0x16) { /* a TLS record of type handshake (RFC 8446 5.1) */
            if (first >= 'A' && first <= 'Z')
                return TLS_HS_PLAIN; /* an HTTP method: plain HTTP sent to the HTTPS port */
            pw_log(s, PW_LOG_INFO,
                   "%s:%d: not a TLS handshake (first byte 0x%02x): connection closed",
                   c->peer_host, c->peer_port, first);
            return TLS_HS_FAILED;
        }
    }
    err_queue_empty();
    errno = 0;
    t->buffers = shed_when_idle;
    int rc = O.SSL_do_handshake(t->ssl);
    if (rc == 1) {
        t->handshaken = 1;
        t->want = 0;
        t->ktls = O.SSL_sendfile &&
            O.BIO_ctrl(O.SSL_get_wbio(t->ssl), PW_BIO_CTRL_GET_KTLS_SEND, 0, NULL) > 0;
        /* no request byte yet: idle until one comes (the header deadline, from accept, goes
         * on: a handshake counts as part of the first request's head) */
        c->idle = 1;
        return TLS_HS_DONE;
    }
    int saved = errno;
    switch (O.SSL_get_error(t->ssl, rc)) {
    case PW_SSL_ERROR_WANT_READ: t->want = POLLIN; return TLS_HS_AGAIN;
    case PW_SSL_ERROR_WANT_WRITE: t->want = POLLOUT; return TLS_HS_AGAIN;
    case PW_SSL_ERROR_SSL: {
        char why[200];
        pw_log(s, PW_LOG_INFO, "%s:%d: TLS handshake failed: %s", c->peer_host, c->peer_port,
               ossl_reason(why, sizeof why, "protocol error"));
        return TLS_HS_FAILED;
    }
    default:
        O.ERR_clear_error();
        pw_log(s, PW_LOG_INFO, "%s:%d: client closed the connection during the TLS handshake%s%s",
               c->peer_host, c->peer_port, saved ? ": " : "", saved ? strerror(saved) : "");
        return TLS_HS_FAILED;
    }
}

ssize_t conn_recv(pw_conn *c, void *buf, size_t len)
{
    struct pw_tls_conn *t = c->tls;
    if (!t)
        return recv(c->fd, buf, len, 0);
    err_queue_empty();
    errno = 0;
    t->buffers = shed_when_idle;
    int n = O.SSL_read(t->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (n > 0) {
        t->want = 0;
        return n;
    }
    switch (ssl_outcome(t, n)) {
    case 0: errno = EAGAIN; return -1;
    case 1: return 0;
    default: return -1;
    }
}

ssize_t conn_recv_buf(pw_conn *c)
{
    ssize_t n = conn_recv(c, c->buf + c->len, c->cap - c->len);
    if (n <= 0 || !c->tls)
        return n;
    /* A record holds up to 16 KiB, and OpenSSL reads ahead: what did not fit stays inside
     * OpenSSL (decrypted, or whole records not yet decrypted), where the poller cannot see it.
     * Take it all now, so "readable" always means the socket.  (A partial record left there
     * means more bytes are on their way: the socket will say so.) */
    size_t total = (size_t)n;
    while (O.SSL_has_pending(c->tls->ssl)) {
        int more = O.SSL_pending(c->tls->ssl);
        size_t want = more > 4096 ? (size_t)more : 4096;
        if (conn_grow(c, total + want) != 0)
            break;
        ssize_t m = conn_recv(c, c->buf + c->len + total, c->cap - c->len - total);
        if (m <= 0)
            break;
        total += (size_t)m;
    }
    return (ssize_t)total;
}

/* A record's worth of a response gathered for one SSL_write (per thread: workers and the
 * reactor write at once). */
static __thread char gather[PW_SSL3_RT_MAX_PLAIN_LENGTH];

static ssize_t ssl_write(struct pw_tls_conn *t, const void *p, size_t n)
{
    err_queue_empty();
    errno = 0;
    t->buffers = shed_when_idle;
    int w = O.SSL_write(t->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
    if (w > 0) {
        t->want = 0;
        return w;
    }
    int out = ssl_outcome(t, w);
    if (out == 0)
        return 0;
    if (out == 1)
        errno = EPIPE;
    return -1;
}

ssize_t tls_send(pw_conn *c, const struct iovec *iov, int iovcnt)
{
    while (iovcnt > 0 && iov->iov_len == 0) {
        iov++;
        iovcnt--;
    }
    if (iovcnt == 0)
        return 0;
    if (iovcnt == 1 || iov[0].iov_len >= sizeof gather)
        return ssl_write(c->tls, iov[0].iov_base, iov[0].iov_len);
    /* Several small pieces (a head and its body): one record, not one per piece.  Should the
     * write be refused, the caller keeps exactly these bytes pending and offers them again in
     * the same order (OpenSSL needs that). */
    size_t n = 0;
    for (int i = 0; i < iovcnt && n < sizeof gather; i++) {
        size_t take = iov[i].iov_len < sizeof gather - n ? iov[i].iov_len : sizeof gather - n;
        memcpy(gather + n, iov[i].iov_base, take);
        n += take;
    }
    return ssl_write(c->tls, gather, n);
}

ssize_t tls_sendfile(pw_conn *c, int fd, off_t *off, size_t count)
{
    struct pw_tls_conn *t = c->tls;
    if (t->ktls) { /* kernel TLS: the file goes from the page cache, encrypted by the kernel */
        err_queue_empty();
        errno = 0;
        t->buffers = shed_when_idle;
        ssize_t n = O.SSL_sendfile(t->ssl, fd, *off, count > (1u << 30) ? (1u << 30) : count, 0);
        if (n > 0) {
            t->want = 0;
            *off += n;
            return n;
        }
        return ssl_outcome(t, (int)n) == 0 ? 0 : -1;
    }
    /* Otherwise a record at a time through a buffer; a refused write is offered again with
     * the same bytes (same offset and length) by the next call. */
    size_t want = count < sizeof gather ? count : sizeof gather;
    ssize_t r;
    do
        r = pread(fd, gather, want, *off);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return -1; /* the file shrank under us */
    ssize_t w = ssl_write(t, gather, (size_t)r);
    if (w > 0)
        *off += w;
    return w;
}

void conn_shut_write(pw_conn *c)
{
    if (c->tls && c->tls->handshaken) {
        err_queue_empty();
        O.SSL_shutdown(c->tls->ssl); /* close_notify before the FIN */
        err_queue_empty();
    }
    shutdown(c->fd, SHUT_WR);
}

/* --proxy-protocol on the HTTPS port: haproxy and load balancers send the PROXY header in
 * plain text before the TLS handshake.  Read exactly its bytes (peeked, then consumed), so
 * what follows stays in the socket for OpenSSL.  1 done, 0 more to come, -1 failed (closed). */
int tls_proxy_header(pw_server *s, pw_conn *c)
{
    char head[PW_PROXY_V2_MAX + 16];
    ssize_t n = recv(c->fd, head, sizeof head, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (n <= 0)
        return -1;
    pw_proxy_info info;
    const char *why;
    int plen = pw_proxy_parse(head, (size_t)n, &info, &why);
    if (plen < 0 || (plen == 0 && (size_t)n == sizeof head)) {
        pw_log(s, PW_LOG_WARNING, "%s:%d: %s (--proxy-protocol): connection closed", c->conn_host,
               c->conn_port, plen < 0 ? why : "header too long");
        return -1;
    }
    if (plen == 0)
        return 0;
    if (recv(c->fd, head, (size_t)plen, MSG_DONTWAIT) != plen)
        return -1;
    conn_proxy_apply(s, c, &info);
    return 1;
}

/* ---------------------------------------------------------------- the request's side */

int tls_head_check(pw_server *s, pw_conn *c)
{
    if (c->plain_on_tls) {
        /* nginx's answer, word for word: the client should use https:// */
        pw_log(s, PW_LOG_INFO, "%s:%d: plain HTTP request sent to the HTTPS port: 400",
               c->peer_host, c->peer_port);
        send_answer(s, c, 400, "The plain HTTP request was sent to HTTPS port", NULL);
        log_reactor_answer(s, c, 1);
        return -1;
    }
    if (!s->cfg.https_redirect_port || c->tls || c->fwd_https == 1 || s->cfg.daemon_role)
        return 0;
    /* --https-only: the same URL on the https port (RFC 9110 15.4.2 301). */
    pw_request *r = &c->req;
    const char *host = c->buf + (r->authority.len ? r->authority.off : r->host.off);
    size_t hlen = r->authority.len ? r->authority.len : r->host.len;
    if (hlen == 0 || hlen > 255) {
        host = s->cfg.https_redirect_host ? s->cfg.https_redirect_host : "localhost";
        hlen = strlen(host);
    }
    /* the host without its port: [v6]:port, name:port */
    const char *end = host + hlen;
    const char *colon = NULL;
    for (const char *p = host; p < host + hlen; p++)
        if (*p == ':')
            colon = p;
        else if (*p == ']')
            colon = NULL; /* the colons so far were an IPv6 address's */
    if (colon)
        end = colon;
    for (const char *p = host; p < end; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-[]:_", *p)) {
            host = s->cfg.https_redirect_host ? s->cfg.https_redirect_host : "localhost";
            end = host + strlen(host);
            break;
        }
    const char *path = c->buf + (r->authority.len ? r->path.off : r->target.off);
    size_t plen = r->authority.len ? r->path.len : r->target.len;
    if (r->authority.len && r->has_query)
        plen = (size_t)(c->buf + r->query.off + r->query.len - path);
    char port[16] = "";
    if (s->cfg.https_redirect_port != 443)
        snprintf(port, sizeof port, ":%d", s->cfg.https_redirect_port);
    size_t room = 32 + (size_t)(end - host) + plen + sizeof port;
    char *location = malloc(room);
    if (!location) {
        send_answer(s, c, 503, NULL, NULL);
    } else {
        snprintf(location, room, "Location: https://%.*s%s%.*s%s\r\n", (int)(end - host), host,
                 port, (int)plen, path, plen ? "" : "/");
        send_answer(s, c, 301, NULL, location);
        free(location);
    }
    log_reactor_answer(s, c, 1);
    return -1;
}

const char *pw_conn_hsts(pw_server *s, pw_conn *c)
{
    return s->cfg.hsts_line && (c->tls || c->fwd_https == 1) ? s->cfg.hsts_line : NULL;
}

/* --ssl-environ: mod_ssl's SSLOptions +StdEnvVars names and formats. */
typedef struct {
    char *p;
    size_t len, cap;
} varbuf;

static void var(varbuf *b, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    if (b->len + nl + vl + 2 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + nl + vl + 2)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, name, nl + 1);
    b->len += nl + 1;
    memcpy(b->p + b->len, value, vl + 1);
    b->len += vl + 1;
}

static void cert_vars(varbuf *b, const char *prefix, X509 *x)
{
    char name[64], text[512];
    snprintf(name, sizeof name, "%s_S_DN", prefix);
    name_text(O.X509_get_subject_name(x), text, sizeof text);
    var(b, name, text);
    snprintf(name, sizeof name, "%s_I_DN", prefix);
    name_text(O.X509_get_issuer_name(x), text, sizeof text);
    var(b, name, text);
    if (O.X509_NAME_get_text_by_NID(O.X509_get_subject_name(x), PW_NID_commonName, text,
                                    sizeof text) > 0) {
        snprintf(name, sizeof name, "%s_S_DN_CN", prefix);
        var(b, name, text);
    }
    BIGNUM *bn = O.ASN1_INTEGER_to_BN(O.X509_get_serialNumber(x), NULL);
    char *hex = bn ? O.BN_bn2hex(bn) : NULL;
    if (hex) {
        snprintf(name, sizeof name, "%s_M_SERIAL", prefix);
        var(b, name, hex);
        O.CRYPTO_free(hex, "tls.c", __LINE__);
    }
    if (bn)
        O.BN_free(bn);
    snprintf(name, sizeof name, "%s_V_START", prefix);
    asn1_time_text(O.X509_get0_notBefore(x), text, sizeof text);
    var(b, name, text);
    snprintf(name, sizeof name, "%s_V_END", prefix);
    asn1_time_text(O.X509_get0_notAfter(x), text, sizeof text);
    var(b, name, text);
    O.ERR_clear_error();
}

static void make_vars(struct pw_tls_conn *t)
{
    varbuf b = {0};
    char text[256];
    SSL *ssl = t->ssl;
    var(&b, "HTTPS", "on");
    var(&b, "SSL_PROTOCOL", O.SSL_get_version(ssl));
    const SSL_CIPHER *cipher = O.SSL_get_current_cipher(ssl);
    if (cipher) {
        int alg = 0, use = O.SSL_CIPHER_get_bits(cipher, &alg);
        var(&b, "SSL_CIPHER", O.SSL_CIPHER_get_name(cipher));
        snprintf(text, sizeof text, "%d", use);
        var(&b, "SSL_CIPHER_USEKEYSIZE", text);
        snprintf(text, sizeof text, "%d", alg);
        var(&b, "SSL_CIPHER_ALGKEYSIZE", text);
    }
    var(&b, "SSL_SESSION_RESUMED", O.SSL_session_reused(ssl) ? "Resumed" : "Initial");
    SSL_SESSION *session = O.SSL_get_session(ssl);
    unsigned idlen = 0;
    const unsigned char *id = session ? O.SSL_SESSION_get_id(session, &idlen) : NULL;
    if (id && idlen) {
        for (unsigned i = 0; i < idlen && i * 2 + 2 < sizeof text; i++)
            snprintf(text + i * 2, 3, "%02X", id[i]);
        var(&b, "SSL_SESSION_ID", text);
    }
    const char *sni = O.SSL_get_servername(ssl, PW_TLSEXT_NAMETYPE_host_name);
    if (sni)
        var(&b, "SSL_TLS_SNI", sni);
    var(&b, "SSL_VERSION_LIBRARY", library);
    X509 *own = O.SSL_get_certificate(ssl);
    if (own)
        cert_vars(&b, "SSL_SERVER", own);
    X509 *peer = O.SSL_get1_peer_certificate(ssl);
    if (!peer) {
        var(&b, "SSL_CLIENT_VERIFY", "NONE");
    } else {
        long verdict = O.SSL_get_verify_result(ssl);
        if (verdict == PW_X509_V_OK) {
            var(&b, "SSL_CLIENT_VERIFY", "SUCCESS");
        } else {
            snprintf(text, sizeof text, "FAILED:%s", O.X509_verify_cert_error_string(verdict));
            var(&b, "SSL_CLIENT_VERIFY", text);
        }
        cert_vars(&b, "SSL_CLIENT", peer);
        O.X509_free(peer);
    }
    O.ERR_clear_error();
    t->vars = b.p;
    t->vars_len = b.p ? b.len : 0;
}

const char *pw_conn_ssl_vars(pw_conn *c, size_t *len)
{
    if (c->ssl_vars) { /* a daemon: what the relay preamble carried */
        *len = c->ssl_vars_len;
        return c->ssl_vars;
    }
    struct pw_tls_conn *t = c->tls;
    if (!t || !t->handshaken) {
        *len = 0;
        return NULL;
    }
    if (!t->vars)
        make_vars(t);
    *len = t->vars_len;
    return t->vars;
}
