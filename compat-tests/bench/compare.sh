#!/usr/bin/env bash
# Runs the standard benchmark set against one S3 server and prints a table row:
#   8 × 64 MiB PUT then GET, concurrency 4 (multipart above 50 MiB, 5 parts at
#   once: what s5cmd does by default);
#   2,000 × 4 KiB PUT then GET, concurrency 32;
#   LIST of 2,000 keys, 100 times, concurrency 8.
# Figures are medians over --runs runs; peak RSS is the highest VmRSS of the
# server process over all of them (needs --pid, or --server which knows it).
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

if [ -z "$bench" ]; then
    repo=$(cd "$(dirname "$0")/../.." && pwd)
    target=${CARGO_TARGET_DIR:-$repo/target}
    bench=$target/release/tessera-bench
    (cd "$repo" && cargo build --release --quiet -p compat-tests --bin tessera-bench) >&2
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

for run in $(seq 1 "$runs"); do
    bench_run "large-$run" get --objects 8 --size 64MiB --concurrency 4 \
        --multipart-size 50MiB --part-concurrency 5
    bench_run "small-$run" get --objects 2000 --size 4KiB --concurrency 32
    bench_run "list-$run" list --objects 2000 --size 4KiB --concurrency 8 --ops 100
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

metric() { awk -v m="$1" '$1 == m && $2 != "" { print $2 }' "$workdir/figures"; }
fmt() { awk '{ printf "%\047.0f", $1 }'; }

rss=$(metric rss | sort -g | tail -1)
rss=${rss:+$(awk -v b="$rss" 'BEGIN { printf "%.0f MB", b / 1e6 }')}
if $header; then
    echo "| server | PUT MB/s | GET MB/s | small PUT ops/s | small GET ops/s | LIST ops/s (2,000 keys) | peak RSS |"
    echo "|---|---|---|---|---|---|---|"
fi
printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" \
    "$(metric put_mbs | median | fmt)" "$(metric get_mbs | median | fmt)" \
    "$(metric small_put | median | fmt)" "$(metric small_get | median | fmt)" \
    "$(metric list | median | fmt)" "${rss:-n/a}"
