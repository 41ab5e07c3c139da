#!/bin/sh
# Container defaults for pywsgi, then exec (so pywsgi is PID 1 and receives SIGTERM itself):
#   listen on every interface (a container's 127.0.0.1 is unreachable from outside),
#   port $PYWSGI_PORT (8000), $PYWSGI_PROCESSES processes or one per CPU,
#   error log on stderr (pywsgi's default);
#   HTTPS on port $PYWSGI_HTTPS_PORT (8443) when a certificate is mounted in $CERT_DIR (/certs):
#   tls.crt + tls.key (a Kubernetes TLS secret), or fullchain.pem + privkey.pem (certbot).
# The caller's arguments come last, so `--port 9000`, `--processes 4`, `--host ::` override these.
set -eu
processes="${PYWSGI_PROCESSES:-}"
if [ -z "$processes" ]; then
    processes="$(nproc 2>/dev/null || echo 1)"
fi
certs="${CERT_DIR:-/certs}"
if [ -f "$certs/tls.crt" ] && [ -f "$certs/tls.key" ]; then
    set -- --https-port "${PYWSGI_HTTPS_PORT:-8443}" --ssl-certificate-file "$certs/tls.crt" \
        --ssl-certificate-key-file "$certs/tls.key" "$@"
elif [ -f "$certs/fullchain.pem" ] && [ -f "$certs/privkey.pem" ]; then
    set -- --https-port "${PYWSGI_HTTPS_PORT:-8443}" --ssl-certificate-file "$certs/fullchain.pem" \
        --ssl-certificate-key-file "$certs/privkey.pem" "$@"
fi
exec pywsgi --host 0.0.0.0 --port "${PYWSGI_PORT:-8000}" --processes "$processes" "$@"
