#!/usr/bin/env bash
# Installs what `python loadtests/table.py` needs besides pywsgi and Locust, on Debian/Ubuntu:
#   apache2-utils (ab: the seed's `ab -n1000 -c100`), wrk (optional), and, unless --tools-only,
#   apache2 + libapache2-mod-wsgi-py3 (+ libapache2-mod-python) for the side-by-side on Apache.
# Apache is NOT started or configured as a system service: Debian's policy-rc.d hook (exit 101)
# stays in place during the install, and table.py starts its own Apache instances on loopback
# ports from configurations it generates (mpm_event, mod_wsgi embedded/daemon, AddHandler via
# .htaccess, mod_cgid), as loadtests/bench.py does. (loadtests/install_peers.sh --with-apache
# installs the same packages plus the other WSGI servers for bench.py.)
#
# Usage: loadtests/install_apache.sh [--tools-only]      (as root, or with sudo)
set -u

PACKAGES="apache2-utils wrk apache2 libapache2-mod-wsgi-py3 libapache2-mod-python"
case "${1:-}" in
    --tools-only) PACKAGES="apache2-utils wrk" ;;
    "") ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
esac

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then SUDO="sudo"; else
        echo "install_apache.sh: needs root or sudo for apt-get" >&2; exit 1; fi
fi

say() { echo ">>> $1"; }
. "$(dirname "${BASH_SOURCE[0]}")/apt_install.sh"
# shellcheck disable=SC2086  # one word per package
apt_install_each say $PACKAGES

echo ">>> ab: $(command -v ab || echo missing)   wrk: $(command -v wrk || echo missing)"
if [ -x /usr/sbin/apache2 ]; then
    echo ">>> apache2: $(/usr/sbin/apache2 -v | head -n 1)"
    for module in mod_wsgi mod_cgid mod_python; do
        if [ -e "/usr/lib/apache2/modules/$module.so" ]; then echo ">>> $module: present";
        else echo ">>> $module: missing"; fi
    done
fi
# ab is the one table.py cannot do without (besides Locust); wrk and Apache are optional.
command -v ab >/dev/null
