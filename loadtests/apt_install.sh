# Sourced by loadtests/install_peers.sh and loadtests/install_apache.sh (Debian/Ubuntu).
#
# apt_install_each REPORT PACKAGE...: apt-get update, then each package on its own, so that one
# missing package (wrk on some releases) does not take the others with it. Debian's
# policy-rc.d hook (exit 101) is in place meanwhile (created for the install when it is not
# there), so nothing installed (nginx, apache2) starts as a system service on port 80.
# REPORT is a command called with one line per outcome; $SUDO is "sudo" or empty (root).
apt_install_each() {
    local report=$1 log="/tmp/pywsgi-apt-$$.log" created_policy=0 package
    shift
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    $SUDO apt-get update -q || "$report" "apt-get update failed (continuing with the old package lists)"
    for package in "$@"; do
        if DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
                "$package" >"$log" 2>&1; then
            "$report" "$package installed"
        else
            "$report" "$package FAILED: $(tail -n 1 "$log")"
        fi
    done
    rm -f "$log"
    if [ "$created_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
}
