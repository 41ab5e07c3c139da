/*
 * tls_openssl.h -- the few parts of OpenSSL's ABI that csrc/tls.c uses, declared by hand.
 *
 * pywsgi never includes OpenSSL's headers: the core loads the system's libssl at run time
 * (dlopen, tls.c), the one Python's own ssl module uses.  So `pip install .` builds on a machine
 * with only Python and a C compiler, a built wheel runs where libssl.so.3 (or .1.1) is, and where
 * it is not, plain HTTP works and --https-port says how to get TLS.  The price is this header:
 * every constant below is OpenSSL's published ABI (the same in 1.1.1 and 3.x unless noted) and
 * tests/test_tls_abi.py compares each with the real headers wherever they are installed.
 */
#ifndef PW_TLS_OPENSSL_H
#define PW_TLS_OPENSSL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Opaque types: only pointers to them cross the ABI. */
typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_method_st SSL_METHOD;
typedef struct ssl_cipher_st SSL_CIPHER;
typedef struct ssl_session_st SSL_SESSION;
typedef struct x509_st X509;
typedef struct X509_name_st X509_NAME;
typedef struct x509_store_st X509_STORE;
typedef struct x509_store_ctx_st X509_STORE_CTX;
typedef struct evp_pkey_st EVP_PKEY;
typedef struct bio_st BIO;
typedef struct bio_method_st BIO_METHOD;
typedef struct asn1_string_st ASN1_TIME;
typedef struct asn1_string_st ASN1_INTEGER;
typedef struct bignum_st BIGNUM;
typedef struct stack_st OPENSSL_STACK;

typedef int (*pw_pem_password_cb)(char *buf, int size, int rwflag, void *userdata);

/* ssl.h */
#define PW_SSL_ERROR_NONE 0
#define PW_SSL_ERROR_SSL 1
#define PW_SSL_ERROR_WANT_READ 2
#define PW_SSL_ERROR_WANT_WRITE 3
#define PW_SSL_ERROR_SYSCALL 5
#define PW_SSL_ERROR_ZERO_RETURN 6
#define PW_SSL_VERIFY_NONE 0
#define PW_SSL_VERIFY_PEER 1
#define PW_SSL_VERIFY_FAIL_IF_NO_PEER_CERT 2
#define PW_SSL_CTRL_MODE 33
#define PW_SSL_CTRL_SET_READ_AHEAD 41
#define PW_SSL_CTRL_SET_SESS_CACHE_SIZE 42
#define PW_SSL_CTRL_SET_SESS_CACHE_MODE 44
#define PW_SSL_CTRL_SET_TLSEXT_SERVERNAME_CB 53
#define PW_SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG 54
#define PW_SSL_CTRL_SET_TLSEXT_TICKET_KEYS 59
#define PW_SSL_CTRL_CHAIN_CERT 89
#define PW_SSL_CTRL_SET_GROUPS_LIST 92
#define PW_SSL_CTRL_SET_DH_AUTO 118
#define PW_SSL_CTRL_SET_MIN_PROTO_VERSION 123
#define PW_SSL_CTRL_SET_MAX_PROTO_VERSION 124
#define PW_SSL_MODE_ENABLE_PARTIAL_WRITE 0x1
#define PW_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER 0x2
#define PW_SSL_MODE_RELEASE_BUFFERS 0x10
#define PW_SSL_OP_ENABLE_KTLS 0x8 /* 3.0 and later only (another option's bit in 1.1.1) */
#define PW_SSL_OP_IGNORE_UNEXPECTED_EOF 0x80 /* 3.0 and later only */
#define PW_SSL_OP_NO_COMPRESSION 0x20000
#define PW_SSL_OP_NO_RENEGOTIATION 0x40000000
#define PW_SSL_SESS_CACHE_SERVER 0x2
#define PW_SSL_TLSEXT_ERR_OK 0
#define PW_SSL_TLSEXT_ERR_ALERT_FATAL 2
#define PW_SSL_TLSEXT_ERR_NOACK 3
#define PW_TLSEXT_NAMETYPE_host_name 0
#define PW_TLS1_2_VERSION 0x0303
#define PW_TLS1_3_VERSION 0x0304
#define PW_SSL3_RT_MAX_PLAIN_LENGTH 16384
#define PW_OPENSSL_INIT_LOAD_SSL_STRINGS 0x00200000
#define PW_OPENSSL_INIT_LOAD_CRYPTO_STRINGS 0x00000002
/* bio.h */
#define PW_BIO_CTRL_INFO 3
#define PW_BIO_CTRL_GET_KTLS_SEND 73
/* x509.h */
#define PW_X509_V_OK 0
#define PW_XN_FLAG_RFC2253 0x1110317UL
#define PW_ASN1_STRFLGS_ESC_MSB 0x4UL
#define PW_NID_commonName 13

/* The functions, as pointers filled by dlsym (tls.c).  `optional` ones may be NULL: older
 * libraries lack them, and tls.c does without. */
#define PW_OSSL_FUNCTIONS(REQUIRED, OPTIONAL)                                                      \
    /* libcrypto */                                                                                \
    REQUIRED(unsigned long, OpenSSL_version_num, (void))                                           \
    REQUIRED(const char *, OpenSSL_version, (int type))                                            \
    REQUIRED(unsigned long, ERR_get_error, (void))                                                 \
    REQUIRED(unsigned long, ERR_peek_error, (void))                                                \
    REQUIRED(void, ERR_clear_error, (void))                                                        \
    REQUIRED(const char *, ERR_reason_error_string, (unsigned long e))                             \
    REQUIRED(void, ERR_error_string_n, (unsigned long e, char *buf, size_t len))                   \
    REQUIRED(BIO *, BIO_new_mem_buf, (const void *buf, int len))                                   \
    REQUIRED(BIO *, BIO_new, (const BIO_METHOD *type))                                             \
    REQUIRED(const BIO_METHOD *, BIO_s_mem, (void))                                                \
    REQUIRED(long, BIO_ctrl, (BIO * b, int cmd, long larg, void *parg))                            \
    REQUIRED(int, BIO_free, (BIO * b))                                                             \
    REQUIRED(X509 *, PEM_read_bio_X509, (BIO * b, X509 * *x, pw_pem_password_cb cb, void *u))      \
    REQUIRED(EVP_PKEY *, PEM_read_bio_PrivateKey,                                                  \
             (BIO * b, EVP_PKEY * *x, pw_pem_password_cb cb, void *u))                             \
    REQUIRED(void, X509_free, (X509 * x))                                                          \
    REQUIRED(void, EVP_PKEY_free, (EVP_PKEY * k))                                                  \
    REQUIRED(const ASN1_TIME *, X509_get0_notAfter, (const X509 *x))                               \
    REQUIRED(const ASN1_TIME *, X509_get0_notBefore, (const X509 *x))                              \
    REQUIRED(int, X509_cmp_current_time, (const ASN1_TIME *t))                                     \
    REQUIRED(int, ASN1_TIME_print, (BIO * b, const ASN1_TIME *t))                                  \
    REQUIRED(X509_NAME *, X509_get_subject_name, (const X509 *x))                                  \
    REQUIRED(X509_NAME *, X509_get_issuer_name, (const X509 *x))                                   \
    REQUIRED(int, X509_NAME_print_ex,                                                              \
             (BIO * b, const X509_NAME *n, int indent, unsigned long flags))                       \
    REQUIRED(int, X509_NAME_get_text_by_NID, (X509_NAME * n, int nid, char *buf, int len))         \
    REQUIRED(X509_NAME *, X509_NAME_dup, (const X509_NAME *n))                                     \
    REQUIRED(void, X509_NAME_free, (X509_NAME * n))                                                \
    REQUIRED(ASN1_INTEGER *, X509_get_serialNumber, (X509 * x))                                    \
    REQUIRED(BIGNUM *, ASN1_INTEGER_to_BN, (const ASN1_INTEGER *a, BIGNUM *bn))                    \
    REQUIRED(char *, BN_bn2hex, (const BIGNUM *a))                                                 \
    REQUIRED(void, BN_free, (BIGNUM * a))                                                          \
    REQUIRED(void, CRYPTO_free, (void *p, const char *file, int line))                             \
    REQUIRED(int, X509_STORE_add_cert, (X509_STORE * s, X509 * x))                                 \
    REQUIRED(const char *, X509_verify_cert_error_string, (long n))                                \
    REQUIRED(OPENSSL_STACK *, OPENSSL_sk_new_null, (void))                                         \
    REQUIRED(int, OPENSSL_sk_push, (OPENSSL_STACK * st, const void *data))                         \
    REQUIRED(void, OPENSSL_sk_pop_free, (OPENSSL_STACK * st, void (*f)(void *)))                   \
    /* libssl */                                                                                   \
    REQUIRED(int, OPENSSL_init_ssl, (uint64_t opts, const void *settings))                         \
    REQUIRED(const SSL_METHOD *, TLS_server_method, (void))                                        \
    REQUIRED(SSL_CTX *, SSL_CTX_new, (const SSL_METHOD *m))                                        \
    REQUIRED(void, SSL_CTX_free, (SSL_CTX * ctx))                                                  \
    REQUIRED(long, SSL_CTX_ctrl, (SSL_CTX * ctx, int cmd, long larg, void *parg))                  \
    REQUIRED(long, SSL_CTX_callback_ctrl, (SSL_CTX * ctx, int cmd, void (*fp)(void)))              \
    REQUIRED(uint64_t, SSL_CTX_set_options, (SSL_CTX * ctx, uint64_t op))                          \
    REQUIRED(int, SSL_CTX_set_cipher_list, (SSL_CTX * ctx, const char *s))                         \
    REQUIRED(int, SSL_CTX_set_ciphersuites, (SSL_CTX * ctx, const char *s))                        \
    REQUIRED(int, SSL_CTX_use_certificate, (SSL_CTX * ctx, X509 * x))                              \
    REQUIRED(int, SSL_CTX_use_PrivateKey, (SSL_CTX * ctx, EVP_PKEY * k))                           \
    REQUIRED(int, SSL_CTX_check_private_key, (const SSL_CTX *ctx))                                 \
    REQUIRED(void, SSL_CTX_set_verify,                                                             \
             (SSL_CTX * ctx, int mode, int (*cb)(int ok, X509_STORE_CTX *store)))                  \
    REQUIRED(void, SSL_CTX_set_verify_depth, (SSL_CTX * ctx, int depth))                           \
    REQUIRED(void, SSL_CTX_set_client_CA_list, (SSL_CTX * ctx, OPENSSL_STACK * names))             \
    REQUIRED(X509_STORE *, SSL_CTX_get_cert_store, (const SSL_CTX *ctx))                           \
    REQUIRED(int, SSL_CTX_set_session_id_context,                                                  \
             (SSL_CTX * ctx, const unsigned char *id, unsigned int len))                           \
    REQUIRED(void, SSL_CTX_set_alpn_select_cb,                                                     \
             (SSL_CTX * ctx,                                                                       \
              int (*cb)(SSL * ssl, const unsigned char **out, unsigned char *outlen,               \
                        const unsigned char *in, unsigned int inlen, void *arg),                   \
              void *arg))                                                                          \
    REQUIRED(SSL *, SSL_new, (SSL_CTX * ctx))                                                      \
    REQUIRED(void, SSL_free, (SSL * s))                                                            \
    REQUIRED(int, SSL_set_fd, (SSL * s, int fd))                                                   \
    REQUIRED(void, SSL_set_accept_state, (SSL * s))                                                \
    REQUIRED(int, SSL_do_handshake, (SSL * s))                                                     \
    REQUIRED(int, SSL_read, (SSL * s, void *buf, int num))                                         \
    REQUIRED(int, SSL_write, (SSL * s, const void *buf, int num))                                  \
    REQUIRED(int, SSL_get_error, (const SSL *s, int ret))                                          \
    REQUIRED(int, SSL_shutdown, (SSL * s))                                                         \
    REQUIRED(int, SSL_pending, (const SSL *s))                                                     \
    REQUIRED(int, SSL_has_pending, (const SSL *s))                                                 \
    REQUIRED(const char *, SSL_get_servername, (const SSL *s, int type))                           \
    REQUIRED(SSL_CTX *, SSL_set_SSL_CTX, (SSL * s, SSL_CTX * ctx))                                 \
    REQUIRED(const char *, SSL_get_version, (const SSL *s))                                        \
    REQUIRED(const SSL_CIPHER *, SSL_get_current_cipher, (const SSL *s))                           \
    REQUIRED(const char *, SSL_CIPHER_get_name, (const SSL_CIPHER *c))                             \
    REQUIRED(int, SSL_CIPHER_get_bits, (const SSL_CIPHER *c, int *alg_bits))                       \
    REQUIRED(long, SSL_get_verify_result, (const SSL *s))                                          \
    REQUIRED(int, SSL_session_reused, (const SSL *s))                                              \
    REQUIRED(void, SSL_get0_alpn_selected,                                                         \
             (const SSL *s, const unsigned char **data, unsigned int *len))                        \
    REQUIRED(BIO *, SSL_get_wbio, (const SSL *s))                                                  \
    REQUIRED(X509 *, SSL_get_certificate, (const SSL *s))                                          \
    REQUIRED(SSL_SESSION *, SSL_get_session, (const SSL *s))                                       \
    REQUIRED(const unsigned char *, SSL_SESSION_get_id, (const SSL_SESSION *s, unsigned int *len)) \
    /* 3.0: SSL_get1_peer_certificate; 1.1.1 calls it SSL_get_peer_certificate */                  \
    OPTIONAL(X509 *, SSL_get1_peer_certificate, (const SSL *s))                                    \
    OPTIONAL(X509 *, SSL_get_peer_certificate, (const SSL *s))                                     \
    OPTIONAL(int, SSL_CTX_set_num_tickets, (SSL_CTX * ctx, size_t n))                              \
    OPTIONAL(int, SSL_free_buffers, (SSL * s))                                                     \
    OPTIONAL(ssize_t, SSL_sendfile, (SSL * s, int fd, off_t offset, size_t size, int flags))

#endif
