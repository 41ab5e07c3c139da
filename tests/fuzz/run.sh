#!/usr/bin/env bash
# Bounded fuzz run of the C parsers: tests/fuzz/run.sh [SECONDS]   (default 120, in total)
#
# 1. libFuzzer + AddressSanitizer + UndefinedBehaviorSanitizer on csrc/http_parser.c
#    (tests/fuzz/fuzz_http_parser.c), half of the time;
# 1b. the same on the proxy parsers, csrc/proxy_protocol.c + csrc/proxy_trust.c
#    (tests/fuzz/fuzz_proxy.c, seeds in tests/fuzz/corpus-proxy), a sixth;
# 2. atheris on pywsgi._parser (tests/fuzz/fuzz_parser.py), the rest.
# Both start from tests/fuzz/corpus (replayed first: a known crash input fails at once) and grow a
# scratch copy under build/fuzz/. Missing tools are installed when possible (clang with apt-get
# when root, atheris with pip); a harness whose tools cannot be had is skipped with a message.
# Exit status: non-zero if a harness crashed or broke an invariant (the input is kept in
# build/fuzz/artifacts/ and printed); 0 otherwise.
#
# Environment: PYTHON (default: ./.venv/bin/python if present, else python3) must be able to
# import pywsgi._parser; CC_FUZZ (default clang); PW_FUZZ_CFLAGS extra flags for the C build;
# PW_FUZZ_LENIENT_STATUS=1: both harnesses accept two different error statuses for the same
# bytes read in one go and in pieces (to look past a known mismatch for other bugs).
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
FUZZ_DIR="$ROOT/tests/fuzz"
SEEDS="$FUZZ_DIR/corpus"
WORK="$ROOT/build/fuzz"
ARTIFACTS="$WORK/artifacts"
TOTAL="${1:-120}"
CC_FUZZ="${CC_FUZZ:-clang}"

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
elif [[ "$PYTHON" == */* && "$PYTHON" != /* ]]; then
    PYTHON="$PWD/$PYTHON"  # the Python harness runs from a scratch directory
fi

if ! [[ "$TOTAL" =~ ^[0-9]+$ ]] || (( TOTAL < 2 )); then
    echo "usage: $0 [SECONDS>=2]" >&2
    exit 2
fi
C_SECONDS=$(( TOTAL * 2 / 3 ))
PROXY_SECONDS=$(( TOTAL / 6 ))
(( PROXY_SECONDS < 1 )) && PROXY_SECONDS=1
PY_SECONDS=$(( TOTAL - C_SECONDS ))
C_SECONDS=$(( C_SECONDS - PROXY_SECONDS ))  # the C budget is shared: the total does not grow

if [[ -n "${PW_FUZZ_LENIENT_STATUS:-}" ]]; then
    export PW_FUZZ_LENIENT_STATUS
    PW_FUZZ_CFLAGS="${PW_FUZZ_CFLAGS:-} -DPW_FUZZ_LENIENT_STATUS"
fi

mkdir -p "$WORK" "$ARTIFACTS"
status=0
ran=0

say() { echo "fuzz: $*"; }

# ---- the C harness (libFuzzer, ASan, UBSan) ----------------------------------------------------

have_libfuzzer() {
    command -v "$CC_FUZZ" >/dev/null 2>&1 || return 1
    # clang without its runtime libraries cannot link -fsanitize=fuzzer
    echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' > "$WORK/probe.c"
    "$CC_FUZZ" -fsanitize=fuzzer,address,undefined "$WORK/probe.c" -o "$WORK/probe" >/dev/null 2>&1
}

if ! have_libfuzzer; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing clang with apt-get"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang) \
            >"$WORK/apt.log" 2>&1 || say "apt-get failed (see $WORK/apt.log)"
    fi
fi

# run_libfuzzer TAG SECONDS MAX_LEN SEED_DIR HARNESS.c CSRC_FILE... : build one harness with the
# sanitizers, run it from its scratch corpus (build/fuzz/corpus-TAG) plus the seeds.
run_libfuzzer() {
    local tag=$1 seconds=$2 max_len=$3 seeds=$4 harness=$5
    shift 5
    local sources=() file
    for file in "$@"; do sources+=("$ROOT/csrc/$file"); done
    local exe="$WORK/$(basename "$harness" .c)" log="$WORK/libfuzzer-$tag.log"
    say "building the sanitized $tag harness with $CC_FUZZ"
    # shellcheck disable=SC2086
    if ! "$CC_FUZZ" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
            -fno-omit-frame-pointer -Wall -Wextra ${PW_FUZZ_CFLAGS:-} -I"$ROOT/csrc" \
            "$FUZZ_DIR/$harness" "${sources[@]}" -o "$exe"; then
        say "FAILED: the $tag harness does not build"
        return 1
    fi
    mkdir -p "$WORK/corpus-$tag"
    say "libFuzzer ($tag) for ${seconds}s"
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
        timeout -k 10 $(( seconds + 60 )) "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$ARTIFACTS/$tag-" \
        "$WORK/corpus-$tag" "$seeds" >"$log" 2>&1
    local rc=$?
    tail -n 12 "$log"
    if (( rc != 0 )); then
        say "FAILED: libFuzzer ($tag) exited $rc (log: $log)"
        grep -E 'invariant failed|ERROR: |runtime error|Test unit written' "$log" | head -n 5
        return 1
    fi
    return 0
}

if have_libfuzzer; then
    ran=1
    run_libfuzzer parser "$C_SECONDS" 4096 "$SEEDS" fuzz_http_parser.c http_parser.c || status=1
    run_libfuzzer proxy "$PROXY_SECONDS" 4400 "$FUZZ_DIR/corpus-proxy" fuzz_proxy.c \
        proxy_protocol.c proxy_trust.c || status=1
else
    say "SKIPPED the libFuzzer harness: no $CC_FUZZ with the libFuzzer runtime (install clang)"
    PY_SECONDS=$TOTAL
fi

# ---- the Python harness (atheris) ------------------------------------------------------------

# From a scratch directory, so `import pywsgi` finds the installed package, not the source tree.
py_ok() { (cd "$WORK" && "$PYTHON" -c 'import atheris, pywsgi._parser' >/dev/null 2>&1); }

py_ready=0
if py_ok; then
    py_ready=1
elif (cd "$WORK" && "$PYTHON" -c 'import atheris' >/dev/null 2>&1); then
    say "$PYTHON has atheris but cannot import pywsgi._parser (install the package)"
else
    say "installing atheris with pip"
    if "$PYTHON" -m pip install -q atheris >"$WORK/pip.log" 2>&1; then
        py_ok && py_ready=1
    else
        say "pip install atheris failed (no wheel for this Python?): see $WORK/pip.log"
    fi
fi

if (( py_ready )); then
    ran=1
    mkdir -p "$WORK/corpus-py"
    say "atheris for ${PY_SECONDS}s"
    (cd "$WORK" && timeout -k 10 $(( PY_SECONDS + 60 )) "$PYTHON" "$FUZZ_DIR/fuzz_parser.py" -max_total_time="$PY_SECONDS" -timeout=10 \
        -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 -artifact_prefix="$ARTIFACTS/py-" \
        "$WORK/corpus-py" "$SEEDS") >"$WORK/atheris.log" 2>&1
    rc=$?
    tail -n 12 "$WORK/atheris.log"
    if (( rc != 0 )); then
        say "FAILED: atheris exited $rc (log: $WORK/atheris.log)"
        grep -E 'Error|ERROR: |Test unit written' "$WORK/atheris.log" | head -n 5
        status=1
    fi
else
    say "SKIPPED the atheris harness: $PYTHON cannot import atheris and pywsgi._parser"
fi

if (( ran == 0 )); then
    say "no harness could run"
fi
if (( status != 0 )); then
    say "crash inputs: $(ls "$ARTIFACTS" 2>/dev/null | tr '\n' ' ')"
fi
exit $status
