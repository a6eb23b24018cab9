#!/usr/bin/env bash
# Measures two sites on one machine: a cluster from `tessera init --nodes 6
# --disks 2 --gateways 2 --sites dc-a,dc-b --witness --site-copies` (4+2,
# a whole copy on each site), every process on loopback. Three figures:
#
# 1. PUT latency (1 MiB objects, 4 at once, --objects of them) into a
#    bucket whose copies are written synchronously (the PUT waits for both
#    sites) and into one written asynchronously (the PUT waits for its
#    gateway's site; the site replicator writes the other).
# 2. The asynchronous copies' lag under a steady write load (--rate-mb
#    MB/s, 50 by default, of 4 MiB objects, for --seconds): the
#    `tessera_site_replication_lag_seconds` of the site furthest behind,
#    sampled every half second, with the write rate reached, and the time
#    from the end of the load until every copy is written.
# 3. Gateway throughput: 1 MiB PUTs (4 at once, --seconds) through one
#    gateway, then through both at once (one client each), summed.
#
#   sites.sh [--objects N] [--seconds N] [--rate-mb N] [--tessera PATH]
#            [--bench PATH]
#
# Needs jq and curl. Everything shares the machine's cores, so the figures
# say how the modes compare, not what separate machines would do.
set -euo pipefail

objects=200
seconds=20
rate_mb=50
tessera=
bench=

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --objects) objects=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --rate-mb) rate_mb=$2; shift 2 ;;
        --tessera) tessera=$2; shift 2 ;;
        --bench) bench=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "sites.sh: unknown option $1" >&2; usage ;;
    esac
done
script=sites.sh
# shellcheck source=compat-tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

export TESSERA_ACCESS_KEY=sitesbench TESSERA_SECRET_KEY=sitesbenchsecret123
cluster=$workdir/cluster
"$tessera" init --out "$cluster" --nodes 6 --disks 2 --gateways 2 --sites dc-a,dc-b \
    --witness --site-copies --base-port "$(free_ports 16)" >/dev/null
# `key = "host:port"` of a process's config.
addr_of() { sed -n "s/^$2 = \"\(.*\)\"/\1/p" "$cluster/$1.toml"; }
start() { # NAME ARGS...
    local name=$1
    shift
    "$tessera" "$@" >"$workdir/$name.log" 2>&1 &
    pids+=($!)
}
for n in 1 2 3 4 5 6; do start "node-$n" node --config "$cluster/node-$n.toml"; done
start witness serve --config "$cluster/witness.toml"
for g in 1 2; do start "gateway-$g" serve --config "$cluster/gateway-$g.toml"; done
s3_1=http://$(addr_of gateway-1 listen)
s3_2=http://$(addr_of gateway-2 listen)
admin_1=http://$(addr_of gateway-1 admin_listen)
for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$admin_1/health/ready")" = 200 ] && break
    sleep 0.2
done
admin() { "$tessera" admin --url "$admin_1" --data-dir "$cluster/data/gateway-1" "$@"; }
b() { "$bench" "$@" --json; }
for mode in sync async; do
    b put --endpoint "$s3_1" --bucket "$mode" --objects 1 --size 4KiB --keep >/dev/null
    admin bucket policy "$mode" --data-shards 4 --parity-shards 2 \
        --site-copies dc-a,dc-b --replication "$mode" >/dev/null
done
# The lag of the site furthest behind.
lag() {
    curl -s "$admin_1/metrics" |
        sed -n 's/^tessera_site_replication_lag_seconds{site="[^"]*"} //p' | sort -g | tail -1
}
op() { jq -r ".phases[-1].ops.PUT.$2" "$1"; }

echo "sites.sh: PUT latency, sync and async copies" >&2
for mode in sync async; do
    b put --endpoint "$s3_1" --bucket "$mode" --objects "$objects" --size 1MiB \
        --concurrency 4 >"$workdir/latency-$mode.json"
done
until admin replication status --json | jq -e .done >/dev/null; do sleep 0.5; done
for mode in sync async; do
    printf 'PUT 1 MiB, %s copies: p50 %s ms, p99 %s ms, %s MB/s\n' "$mode" \
        "$(op "$workdir/latency-$mode.json" p50_ms)" "$(op "$workdir/latency-$mode.json" p99_ms)" \
        "$(op "$workdir/latency-$mode.json" mb_per_sec)"
done

echo "sites.sh: async lag under a steady ${rate_mb} MB/s (${seconds} s)" >&2
( while [ ! -e "$workdir/stop" ]; do echo "$(lag)"; sleep 0.5; done >"$workdir/lag.txt" ) &
sampler=$!
b put --endpoint "$s3_1" --bucket async --duration "${seconds}s" --size 4MiB \
    --concurrency 4 --rate "$(awk -v r="$rate_mb" 'BEGIN { print r * 1e6 / 4194304 }')" \
    --keep >"$workdir/load.json"
loaded=$(date +%s.%N)
until admin replication status --json | jq -e .done >/dev/null; do sleep 0.2; done
drained=$(date +%s.%N)
touch "$workdir/stop"
wait "$sampler" || true
sort -g "$workdir/lag.txt" | awk -v rate="$(op "$workdir/load.json" mb_per_sec)" \
    -v drain="$(awk -v a="$loaded" -v b="$drained" 'BEGIN { print b - a }')" '
    /^[0-9.]+$/ { v[++n] = $1 }
    END {
        printf "async lag at %.0f MB/s of writes: p50 %.1f s, max %.1f s (%d samples); every copy written %.1f s after the load ended\n",
            rate, v[int((n + 1) / 2)], v[n], n, drain
    }'

echo "sites.sh: one gateway, then two" >&2
b put --endpoint "$s3_1" --bucket sync --duration "${seconds}s" --size 1MiB \
    --concurrency 4 >"$workdir/one.json"
b put --endpoint "$s3_1" --bucket sync --duration "${seconds}s" --size 1MiB \
    --concurrency 4 >"$workdir/two-1.json" &
second=$!
b put --endpoint "$s3_2" --bucket sync --duration "${seconds}s" --size 1MiB \
    --concurrency 4 >"$workdir/two-2.json"
wait "$second"
printf 'PUT 1 MiB (sync copies): one gateway %s MB/s; two gateways %s + %s MB/s\n' \
    "$(op "$workdir/one.json" mb_per_sec)" "$(op "$workdir/two-1.json" mb_per_sec)" \
    "$(op "$workdir/two-2.json" mb_per_sec)"
