#!/usr/bin/env bash
# Serves the example site for loadtests/locustfile.py: every row of the seed's table at once.
#   :PORT     (default 8000) static files, WSGIScriptAlias /myapp, handler scripts under /handlers,
#             CGI (/cgi-myapp: myapp.wsgi as CGI; /cgi-bin/: a ScriptAlias directory), a mod_python
#             handler at /mpapp, /mix (upload and slow endpoints for the realistic scenarios) --
#             all embedded mode;
#   :PORT+1   daemon mode (the seed's WSGIDaemonProcess processes=2 threads=15) at /myapp: a daemon
#             process group runs every application of its server, so it is a server of its own.
# Ctrl-C (or SIGTERM) stops both. Usage: loadtests/site/serve.sh [PORT]   (PYWSGI=path/to/pywsgi)
set -eu
SITE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="${1:-8000}"
PYWSGI="${PYWSGI:-pywsgi}"

"$PYWSGI" --port "$PORT" \
    --document-root "$SITE/htdocs" \
    --script-alias "/myapp=$SITE/myapp.wsgi" \
    --script-alias "/mix=$SITE/mix.wsgi" \
    --url-alias /handlers "$SITE/handlers" --handler-scripts \
    --cgi-alias /cgi-bin "$SITE/cgi-bin" \
    --cgi-script "/cgi-myapp=$SITE/myapp.wsgi" \
    --python-path "$SITE/modpython" --mod-python-shim --python-handler /mpapp=_hello &
EMBEDDED=$!
"$PYWSGI" --port "$((PORT + 1))" "$SITE/myapp.wsgi" --mount-point /myapp \
    --daemon --processes 2 --threads 15 &
DAEMON=$!

stop_both() { kill -TERM "$EMBEDDED" "$DAEMON" 2>/dev/null || true; }
trap stop_both INT TERM
# When either server exits (a port in use, a signal), stop the other one too.
wait -n "$EMBEDDED" "$DAEMON" || true
stop_both
wait "$EMBEDDED" "$DAEMON" 2>/dev/null || true
