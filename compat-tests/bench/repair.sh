#!/usr/bin/env bash
# Measures repair after a lost disk on the embedded default (6 disks, 4+2),
# or, with --nodes N, after a lost storage node of a cluster made by
# `tessera init --nodes N` (every node its own zone, 4+2, one disk each):
# fills a fresh release server with --gib GiB of 64 MiB objects, then
# either empties one disk and starts a scrub (which finds every lost shard;
# reads find them too), or kills node 1 with SIGKILL (the gateway's repair
# grace is --grace-secs, 5 by default, so its shards are rebuilt on the
# other nodes), and times repair until it reports full redundancy.
# Meanwhile a light client load (64 KiB GETs, 2 at once, in 5 s runs) goes
# on; its p50 and worst p99 are printed beside the same load on the idle
# server.
#
#   repair.sh [--gib N] [--nodes N] [--grace-secs N] [--tessera PATH]
#             [--bench PATH] [--repair-rate-mib N]
#
# Prints: the time from the loss to full redundancy, the bytes rebuilt and
# MB/s (10^6 bytes of rebuilt shards per second) over the time repair ran and
# from the loss, and the light load's p50/p99 idle and during repair. Needs
# jq and curl.
set -euo pipefail

gib=2
nodes=0
grace=5
tessera=
bench=
rate_flag=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --gib) gib=$2; shift 2 ;;
        --nodes) nodes=$2; shift 2 ;;
        --grace-secs) grace=$2; shift 2 ;;
        --tessera) tessera=$2; shift 2 ;;
        --bench) bench=$2; shift 2 ;;
        --repair-rate-mib) rate_flag=(--repair-rate-mib "$2"); shift 2 ;;
        -h|--help) usage ;;
        *) echo "repair.sh: unknown option $1" >&2; usage ;;
    esac
done
script=repair.sh
# shellcheck source=compat-tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"
export TESSERA_ACCESS_KEY=repairbench TESSERA_SECRET_KEY=repairbenchsecret123
if [ "$nodes" -gt 0 ]; then
    base=$(free_ports $((nodes + 2)))
    "$tessera" init --out "$workdir/cluster" --nodes "$nodes" --base-port "$base" >/dev/null
    for n in $(seq 1 "$nodes"); do
        "$tessera" node --config "$workdir/cluster/node-$n.toml" >"$workdir/node-$n.log" 2>&1 &
        pids+=($!)
        node_pid[$n]=$!
    done
    data=$workdir/cluster/data/gateway-1
    endpoint=http://127.0.0.1:$base
    admin=http://127.0.0.1:$((base + 1))
    TESSERA_REPAIR_GRACE_SECS=$grace "$tessera" serve --config "$workdir/cluster/gateway-1.toml" \
        "${rate_flag[@]}" >"$workdir/server.log" 2>&1 &
    pids+=($!)
else
    s3_port=$(free_ports 2)
    admin_port=$((s3_port + 1))
    endpoint=http://127.0.0.1:$s3_port
    admin=http://127.0.0.1:$admin_port
    data=$workdir/data
    "$tessera" serve --data-dir "$data" --listen "127.0.0.1:$s3_port" \
        --admin-listen "127.0.0.1:$admin_port" --scrub-rate-mib 0 "${rate_flag[@]}" \
        >"$workdir/server.log" 2>&1 &
    pids+=($!)
fi
for _ in $(seq 1 300); do
    curl -s -o /dev/null "$endpoint" && break
    sleep 0.2
done
curl -s -o /dev/null "$endpoint" || { echo "repair.sh: server never answered" >&2; cat "$workdir/server.log" >&2; exit 1; }

b() { "$bench" "$@" --endpoint "$endpoint" --json; }
jobs() { "$tessera" admin --url "$admin" --data-dir "$data" jobs --json; }
repair() { "$tessera" admin --url "$admin" --data-dir "$data" repair status --json; }

echo "repair.sh: filling $gib GiB" >&2
b put --bucket fill --objects $((gib * 16)) --size 64MiB --concurrency 4 \
    --multipart-size 50MiB --keep >"$workdir/fill.json"
# The light load's objects, kept between its runs.
b put --bucket light --objects 200 --size 64KiB --concurrency 8 --keep >/dev/null

light() { b get --bucket light --objects 200 --size 64KiB --concurrency 2 --duration "$1" >"$workdir/$2.json"; }
stat_of() { jq -r ".phases[-1].ops.GET.$2" "$workdir/$1.json"; }

echo "repair.sh: light load on the idle server" >&2
light 10s idle

before=$(jobs | jq '.[] | select(.job == "repair") | .bytes')
if [ "$nodes" -gt 0 ]; then
    lost=$(find "$workdir/cluster/data/node-1" -path '*/shards/*' -type f | wc -l)
    kill -KILL "${node_pid[1]}"
    echo "repair.sh: node 1 killed ($lost shard files); repair grace ${grace} s" >&2
    start=$(date +%s.%N)
else
    lost=$(find "$data/disks/disk-2/shards" -type f | wc -l)
    rm -rf "$data/disks/disk-2/shards"/*
    echo "repair.sh: disk 2 emptied ($lost shard files); scrub started" >&2
    scrubbed=$(jobs | jq '.[] | select(.job == "scrub") | .done')
    start=$(date +%s.%N)
    "$tessera" admin --url "$admin" --data-dir "$data" scrub start >/dev/null
fi
( n=0; while [ ! -e "$workdir/stop" ]; do n=$((n + 1)); light 5s "busy-$n"; done ) &
light_pid=$!
# Embedded: done when every lost shard file is back and repair's queue is
# empty (after scrub has got going: before, both queues read empty).
# Nodes: done when repair says so, with the lost node's stores evacuated.
first=
while :; do
    sleep 0.2
    report=$(jobs)
    if [ -z "$first" ] && [ "$(jq '.[] | select(.job == "repair") | .bytes' <<<"$report")" -gt "$before" ]; then
        first=$(date +%s.%N)
    fi
    if [ "$nodes" -gt 0 ]; then
        status=$(repair)
        if [ -n "$first" ] && jq -e '.done and .pending_shards == 0 and (.waiting_stores | length) == 0 and (.outstanding_stores | length) == 0' <<<"$status" >/dev/null; then
            break
        fi
        continue
    fi
    scrub_done=$(jq '.[] | select(.job == "scrub") | .done' <<<"$report")
    repair_left=$(jq '.[] | select(.job == "repair") | .queued' <<<"$report")
    files=$(find "$data/disks/disk-2/shards" -type f | wc -l)
    if [ "$scrub_done" -gt "$scrubbed" ] && [ "$repair_left" = 0 ] && [ "$files" -ge "$lost" ]; then
        break
    fi
done
end=$(date +%s.%N)
touch "$workdir/stop"
wait "$light_pid" || true
after=$(jobs | jq '.[] | select(.job == "repair") | .bytes')
rebuilt=$((after - before))
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')
busy=$(awk -v a="${first:-$start}" -v b="$end" 'BEGIN { print b - a }')
printf 'full redundancy %.1f s after the loss; rebuilt %d bytes of %d lost shard files: %.0f MB/s over the %.1f s repair ran (%.0f MB/s from the loss)\n' \
    "$secs" "$rebuilt" "$lost" "$(awk -v n="$rebuilt" -v s="$busy" 'BEGIN { print n / s / 1e6 }')" "$busy" \
    "$(awk -v n="$rebuilt" -v s="$secs" 'BEGIN { print n / s / 1e6 }')"
busy_p50=$(for f in "$workdir"/busy-*.json; do jq -r '.phases[-1].ops.GET.p50_ms' "$f"; done | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
busy_p99=$(for f in "$workdir"/busy-*.json; do jq -r '.phases[-1].ops.GET.p99_ms' "$f"; done | sort -g | tail -1)
printf 'light load p50/p99 ms: idle %s / %s, during repair %s / %s (median p50, worst p99 of %d runs)\n' \
    "$(stat_of idle p50_ms)" "$(stat_of idle p99_ms)" "$busy_p50" "$busy_p99" "$(ls "$workdir"/busy-*.json | wc -l)"
