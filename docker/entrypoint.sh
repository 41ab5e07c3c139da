#!/bin/sh
# Container defaults for pywsgi, then exec (so pywsgi is PID 1 and receives SIGTERM itself):
#   listen on every interface (a container's 127.0.0.1 is unreachable from outside),
#   port $PYWSGI_PORT (8000), $PYWSGI_PROCESSES processes or one per CPU,
#   error log on stderr (pywsgi's default).
# The caller's arguments come last, so `--port 9000`, `--processes 4`, `--host ::` override these.
set -eu
processes="${PYWSGI_PROCESSES:-}"
if [ -z "$processes" ]; then
    processes="$(nproc 2>/dev/null || echo 1)"
fi
exec pywsgi --host 0.0.0.0 --port "${PYWSGI_PORT:-8000}" --processes "$processes" "$@"
