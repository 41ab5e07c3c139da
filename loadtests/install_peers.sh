#!/usr/bin/env bash
# Installs what loadtests/bench.py compares pywsgi with:
#   - Debian's load generators and static server: wrk, apache2-utils (ab), nginx (+ libev-dev for bjoern);
#   - with --with-apache: apache2 + libapache2-mod-wsgi-py3 (Apache + mod_wsgi, the seed's setup);
#   - the Python peers, in a SEPARATE venv (default <repo>/.bench-venv, never the project's):
#     gunicorn, waitress, bjoern, fastwsgi, granian, uwsgi, meinheld, and Flask (the Flask row's app);
#   - pywsgi itself (pip install <repo>, a release build) into that venv, so every Python server runs
#     under the same interpreter.
# Every peer is optional: a peer that fails to install is reported and skipped; the script itself
# fails only if the venv cannot be created. It ends with a summary of what is available.
#
# Usage: loadtests/install_peers.sh [--venv DIR] [--python PYTHON] [--with-apache] [--no-apt]
#                                   [--pywsgi-only] [--tools-only]
#   --pywsgi-only   only (re)install pywsgi into the venv: run it after changing the core, since the
#                   bench venv holds a built copy, not an editable one.
#   --tools-only    only Debian's wrk and ab (what CI's `bench.py --smoke` needs), chromium with
#                   a font (tests/test_server_status.py screenshots the status page), curl and
#                   openssl (tests/test_tls.py's real TLS clients) and haproxy
#                   (tests/test_scale_out.py balances three instances with it); no venv.
set -u

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BENCH_VENV:-$REPO_ROOT/.bench-venv}"
PYTHON="${PYTHON:-python3}"
WITH_APACHE=0
USE_APT=1
PYWSGI_ONLY=0
TOOLS_ONLY=0

while [ $# -gt 0 ]; do
    case "$1" in
        --venv) VENV="$2"; shift 2 ;;
        --python) PYTHON="$2"; shift 2 ;;
        --with-apache) WITH_APACHE=1; shift ;;
        --no-apt) USE_APT=0; shift ;;
        --pywsgi-only) PYWSGI_ONLY=1; USE_APT=0; shift ;;
        --tools-only) TOOLS_ONLY=1; shift ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

declare -a SUMMARY=()
note() { SUMMARY+=("$1"); echo ">>> $1"; }

# ---------------------------------------------------------------- Debian packages
if [ "$USE_APT" = 1 ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null; then SUDO="sudo"; else
            note "apt: not root and no sudo; skipping Debian packages"; USE_APT=0; fi
    fi
fi
if [ "$USE_APT" = 1 ]; then
    APT_PACKAGES="wrk apache2-utils nginx libev-dev"
    if [ "$TOOLS_ONLY" = 1 ]; then APT_PACKAGES="wrk apache2-utils chromium fonts-dejavu-core curl openssl haproxy";
    elif [ "$WITH_APACHE" = 1 ]; then APT_PACKAGES="$APT_PACKAGES apache2 libapache2-mod-wsgi-py3"; fi
    apt_note() { note "apt: $1"; }
    . "$REPO_ROOT/loadtests/apt_install.sh"
    # shellcheck disable=SC2086  # one word per package
    apt_install_each apt_note $APT_PACKAGES
fi

if [ "$TOOLS_ONLY" = 1 ]; then
    for line in "${SUMMARY[@]}"; do echo "  $line"; done
    command -v wrk >/dev/null && command -v ab >/dev/null
    exit $?
fi

# ---------------------------------------------------------------- the bench venv
if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -m venv "$VENV"; then
        echo "cannot create the venv $VENV with $PYTHON" >&2
        exit 1
    fi
fi
# Keep the venv (and anything in it) out of git without touching the project's .gitignore.
echo '*' > "$VENV/.gitignore"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip >/dev/null 2>&1 || true

pip_peer() {  # name, pip requirement, explanation printed if it fails
    local name="$1" requirement="$2" why="$3" log
    log="$(mktemp)"
    # $requirement is deliberately unquoted: it may carry pip options ("meinheld --no-deps").
    if $PIP install $requirement >"$log" 2>&1; then
        note "pip: $name installed ($($VENV/bin/python -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p'))"
    else
        note "pip: $name SKIPPED ($why): $(grep -m1 -E '^ +[^ ]+\.[ch]:[0-9]+:[0-9]+: error|^ERROR' "$log" | sed 's/^ *//' | cut -c1-200)"
    fi
    rm -f "$log"
}

if [ "$PYWSGI_ONLY" = 0 ]; then
    pip_peer matplotlib matplotlib "only for the PNG chart"
    pip_peer gunicorn gunicorn "pure Python, should not fail"
    pip_peer waitress waitress "pure Python, should not fail"
    # the application of the Flask row (loadtests/apps/flask_app.py), not a server
    pip_peer flask "flask>=3,<4" "pure Python, should not fail"
    pip_peer fastwsgi fastwsgi "C extension built against libuv"
    pip_peer granian granian "Rust binary wheel"
    pip_peer bjoern bjoern "C extension; needs Debian's libev-dev and a C compiler"
    pip_peer uwsgi uwsgi "compiled from source; needs a C compiler and the Python headers"
    # meinheld 1.0.2 (2020) pins greenlet<0.5, which does not compile on Python >= 3.10; its own C
    # code still builds against a current greenlet, so install that first and meinheld without
    # its pin. Meinheld then runs under gunicorn (-k meinheld.gmeinheld.MeinheldWorker).
    if $PIP install greenlet >/dev/null 2>&1; then
        pip_peer meinheld "meinheld --no-deps" "unmaintained C extension (last release 2020)"
    else
        note "pip: meinheld SKIPPED (greenlet did not install)"
    fi
fi

# pywsgi itself, a normal (release) build of the working tree.
log="$(mktemp)"
if $PIP install --force-reinstall --no-deps "$REPO_ROOT" >"$log" 2>&1; then
    note "pip: pywsgi installed from $REPO_ROOT"
else
    note "pip: pywsgi FAILED: $(grep -m1 -iE 'error' "$log" | cut -c1-160) (full log: $log)"
    log=""
fi
[ -n "$log" ] && rm -f "$log"

# ---------------------------------------------------------------- summary
echo
echo "== Summary =="
for line in "${SUMMARY[@]}"; do echo "  $line"; done
echo
echo "== Available to loadtests/bench.py (venv: $VENV) =="
for tool in wrk ab nginx apache2; do
    path="$(command -v "$tool" 2>/dev/null || true)"
    if [ -z "$path" ] && [ -x "/usr/sbin/$tool" ]; then path="/usr/sbin/$tool"; fi
    printf '  %-10s %s\n' "$tool" "${path:-missing}"
done
if [ -e /usr/lib/apache2/modules/mod_wsgi.so ]; then mod_wsgi="present"; else mod_wsgi="missing"; fi
printf '  %-10s %s\n' "mod_wsgi" "$mod_wsgi"
for module in pywsgi gunicorn waitress fastwsgi granian bjoern uwsgi meinheld; do
    if [ "$module" = uwsgi ]; then
        if [ -x "$VENV/bin/uwsgi" ]; then status="available"; else status="missing"; fi
    elif (cd / && "$VENV/bin/python" -c "import $module" >/dev/null 2>&1); then
        status="available"
    else
        status="missing"
    fi
    printf '  %-10s %s\n' "$module" "$status"
done
exit 0
