# HTTPS (csrc/tls.c, docs/tls.md): the Cython glue, included into _core.pyx.  The master checks
# the certificates (tls_load, TLSContext) and hands their PEM texts to the server children
# (process/tls.py TLSMaterial, the core config's `tls`), which build their contexts from them in
# serve() (_configure_tls); the environ gets the SSL_* variables (--ssl-environ) from
# _add_ssl_environ.

_TLS_VERSIONS = {'TLSv1.2': 0x0303, 'TLSv1.3': 0x0304}
_TLS_VERIFY = {'none': PW_TLS_VERIFY_NONE, 'optional': PW_TLS_VERIFY_OPTIONAL,
               'require': PW_TLS_VERIFY_REQUIRE}
cdef object _tls_library = None


def _libssl_hint():
    """The libssl Python's ssl module loaded (its path from /proc/self/maps), or None."""
    try:
        import _ssl  # noqa: F401  (loads libssl into this process)
        with open('/proc/self/maps') as maps:
            for line in maps:
                path = line.rstrip('\n').partition('/')[2]
                if path and '/libssl' in '/' + path:
                    return '/' + path
    except (ImportError, OSError):
        pass
    return None


def tls_load(library=None):
    """Load OpenSSL (once per process): the libssl at path `library` (--ssl-library) and no
    other, or else the one Python's ssl module uses, or else libssl.so.3 / .1.1 by name.
    Returns "OpenSSL X.Y.Z", or raises RuntimeError with the reason it cannot be had."""
    global _tls_library
    cdef char err[512]
    if _tls_library is not None:
        return _tls_library
    import os
    chosen = library
    hint = chosen or _libssl_hint()
    hint_b = os.fsencode(hint) if hint else None
    if pw_tls_load(<const char *>hint_b if hint_b else NULL, 1 if chosen else 0,
                   err, sizeof(err)) != 0:
        raise RuntimeError(err.decode('utf-8', 'replace'))
    _tls_library = pw_tls_library().decode()
    return _tls_library


cdef class TLSContext:
    """A TLS context (csrc/tls.c) made from a certificate's PEM texts and the server's TLS
    settings; a default one holds its virtual hosts' contexts (SNI) alive."""
    cdef pw_tls_ctx *ctx
    cdef list hosts
    cdef readonly str description

    def __init__(self, cert, common):
        """cert: a TLSCertificate (label, cert, chain, key, password); common: the TLSOptions
        (ca, verify_client, protocols, ciphers, ticket_keys, ktls); process/tls.py makes both."""
        cdef pw_tls_options o
        cdef char err[512]
        cdef char text[320]
        memset(&o, 0, sizeof(o))
        label = str(cert.label).encode('utf-8', 'replace')
        pem = cert.cert
        chain = cert.chain
        key = cert.key
        password = cert.password
        password_b = password.encode('utf-8') if password is not None else None
        ca = common.ca
        versions = [_TLS_VERSIONS[name] for name in common.protocols]
        ciphers = common.ciphers.encode('ascii')
        tickets = common.ticket_keys
        o.label = label
        o.cert_pem = pem
        o.cert_len = len(pem)
        if chain:
            o.chain_pem = chain
            o.chain_len = len(chain)
        o.key_pem = key
        o.key_len = len(key)
        o.key_password = <const char *>password_b if password_b is not None else NULL
        if ca:
            o.ca_pem = ca
            o.ca_len = len(ca)
        o.verify_client = _TLS_VERIFY[common.verify_client]
        o.min_version = min(versions)
        o.max_version = max(versions)
        o.ciphers = ciphers
        o.ticket_keys = <const unsigned char *>tickets if tickets else NULL
        o.ktls = 1 if common.ktls else 0
        self.hosts = []
        self.ctx = pw_tls_ctx_new(&o, err, sizeof(err))
        if self.ctx == NULL:
            raise ValueError(err.decode('utf-8', 'replace'))
        pw_tls_ctx_describe(self.ctx, text, sizeof(text))
        self.description = text.decode('utf-8', 'replace')

    def add_host(self, str name, TLSContext host):
        """SNI: a client naming `name` ("*.example.com" for one label) gets host's certificate."""
        encoded = name.encode('ascii') if name.isascii() else name.encode('idna')
        if pw_tls_ctx_add_host(self.ctx, encoded, host.ctx) != 0:
            raise MemoryError()
        self.hosts.append(host)

    def __dealloc__(self):
        if self.ctx != NULL:
            pw_tls_ctx_free(self.ctx)
            self.ctx = NULL


def tls_site(material):
    """The default TLSContext of a server's TLS material (process/tls.py TLSMaterial), with a
    context per virtual host that has a certificate of its own; ValueError names the one that
    is bad."""
    common = material.common
    site = TLSContext(material.default, common)
    for names, cert in material.hosts:
        host = TLSContext(cert, common)
        for name in names:
            site.add_host(name, host)
    return site


cdef object _tls_site = None           # this process's TLSContext (kept alive while serving)
cdef bytes _hsts_line = None
cdef bytes _redirect_host = None
cdef bint _ssl_environ = False


cdef _configure_tls(pw_config *cfg, listen_fds, config):
    """HTTPS into the reactor's config: a TLS context for each HTTPS listening socket, the
    --https-only redirect, the HSTS header, --ssl-environ (config: the CoreConfig)."""
    global _tls_site, _hsts_line, _redirect_host, _ssl_environ
    _tls_site = None
    https_fds = set(config.https_listen_fds)
    material = config.tls
    if material is not None and https_fds & set(listen_fds):
        import signal
        # OpenSSL writes to the socket with write(): a client gone mid-write must be EPIPE, not
        # a signal (python ignores SIGPIPE; a program embedding pywsgi might not)
        if signal.getsignal(signal.SIGPIPE) != signal.SIG_IGN:
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        tls_load(config.ssl_library)
        _tls_site = tls_site(material)
        for i, fd in enumerate(listen_fds):
            if fd in https_fds:
                cfg.tls[i] = (<TLSContext>_tls_site).ctx
    _ssl_environ = config.ssl_environ
    cfg.ssl_environ = _ssl_environ
    policy = config.hsts_policy
    _hsts_line = ('Strict-Transport-Security: %s\r\n' % policy).encode('latin-1') if policy else None
    cfg.hsts_line = NULL
    if _hsts_line is not None:
        cfg.hsts_line = _hsts_line
    if config.https_redirect_port:
        cfg.https_redirect_port = config.https_redirect_port
        _redirect_host = config.https_redirect_host.encode('idna')
        cfg.https_redirect_host = _redirect_host


cdef _add_ssl_environ(pw_conn *c, dict env):
    """--ssl-environ: mod_ssl's SSL_* variables of an https request (SSLOptions +StdEnvVars)."""
    cdef size_t n = 0
    cdef const char *block = pw_conn_ssl_vars(c, &n)
    if block == NULL or n == 0:
        return
    items = PyBytes_FromStringAndSize(block, n).decode('utf-8', 'replace').split('\0')
    for i in range(0, len(items) - 1, 2):
        env[items[i]] = items[i + 1]
