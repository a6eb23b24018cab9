#!/usr/bin/env bash
# Measures large PUT and GET through storage nodes against the embedded
# default, in the same run: a fresh release server of each kind in turn,
# --runs times, alternating (the embedded default: `tessera serve` on one
# data dir, 6 disks, 4+2; the cluster: `tessera init --nodes N` and one
# gateway, 4+2, every node its own zone, mutual TLS between them). Each run
# is tessera-bench `get` of --objects × 64 MiB objects at concurrency 4:
# the upload of the data set is the PUT figure, then --gets GETs of them.
#
#   nodes.sh [--nodes N] [--runs N] [--objects N] [--gets N]
#            [--tessera PATH] [--bench PATH]
#
# Prints a line per run and then the medians of each kind and the cluster's
# share of the embedded figures: throughput, and the CPU seconds per GiB
# of the gateway alone (what a gateway can serve when its nodes are other
# machines) and of every server process (gateway and nodes: all of it on
# this machine's cores, beside the client). Needs jq and curl.
set -euo pipefail

nodes=6
runs=3
objects=8
gets=32
tessera=
bench=

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --nodes) nodes=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --objects) objects=$2; shift 2 ;;
        --gets) gets=$2; shift 2 ;;
        --tessera) tessera=$2; shift 2 ;;
        --bench) bench=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "nodes.sh: unknown option $1" >&2; usage ;;
    esac
done
script=nodes.sh
# shellcheck source=compat-tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"
export TESSERA_ACCESS_KEY=nodesbench TESSERA_SECRET_KEY=nodesbenchsecret123

# Starts one server of kind $1 (embedded or nodes) in $workdir/$1, waits
# for it and sets `endpoint` and `gateway` (its pid); `stop_all` stops it
# again.
start_kind() {
    local dir=$workdir/$1
    rm -rf "$dir"
    mkdir -p "$dir"
    local base
    if [ "$1" = embedded ]; then
        base=$(free_ports 2)
        "$tessera" serve --data-dir "$dir/data" --listen "127.0.0.1:$base" \
            --admin-listen "127.0.0.1:$((base + 1))" >"$dir/server.log" 2>&1 &
        pids+=($!)
        gateway=$!
    else
        base=$(free_ports $((nodes + 2)))
        "$tessera" init --out "$dir/cluster" --nodes "$nodes" --base-port "$base" >/dev/null
        for n in $(seq 1 "$nodes"); do
            "$tessera" node --config "$dir/cluster/node-$n.toml" >"$dir/node-$n.log" 2>&1 &
            pids+=($!)
        done
        "$tessera" serve --config "$dir/cluster/gateway-1.toml" >"$dir/server.log" 2>&1 &
        pids+=($!)
        gateway=$!
    fi
    endpoint=http://127.0.0.1:$base
    for _ in $(seq 1 300); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((base + 1))/health/ready")" = 200 ] &&
            return
        sleep 0.2
    done
    echo "nodes.sh: the $1 server never got ready" >&2
    cat "$dir/server.log" >&2
    exit 1
}
stop_all() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}

for run in $(seq 1 "$runs"); do
    for kind in embedded nodes; do
        start_kind "$kind"
        cpu_pids=()
        for pid in "${pids[@]}"; do cpu_pids+=(--cpu-pid "$pid"); done
        "$bench" get --endpoint "$endpoint" --objects "$objects" --ops "$gets" --size 64MiB \
            --concurrency 4 "${cpu_pids[@]}" --json >"$workdir/$kind-$run.json"
        stop_all
        # Per phase: MB/s, and CPU seconds per GiB moved, gateway and all.
        jq --arg gw "$gateway" '[.phases[] | (.ops | to_entries[0].value) as $op |
            ($op.mb_per_sec * .elapsed_s / 1073.741824) as $gib |
            { mb: $op.mb_per_sec, gateway: (.server_cpu_s[$gw] / $gib),
              all: (([.server_cpu_s[]] | add) / $gib) }]' \
            "$workdir/$kind-$run.json" >"$workdir/$kind-$run.sum"
        jq -r --arg kind "$kind" --arg run "$run" '"run \($run) \($kind): " + ([
            ("PUT", "GET") as $op | (if $op == "PUT" then .[0] else .[-1] end) |
            "\($op) \(.mb | floor) MB/s, CPU s/GiB gateway \(.gateway * 100 | round / 100) all \(.all * 100 | round / 100)"
            ] | join("; "))' "$workdir/$kind-$run.sum"
    done
done

# The median over the runs of kind $1 of field $3 of phase $2 (0 or -1).
median() {
    for run in $(seq 1 "$runs"); do
        jq -r ".[$2].$3" "$workdir/$1-$run.sum"
    done | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
for op in PUT GET; do
    phase=0
    [ "$op" = GET ] && phase=-1
    awk -v op="$op" -v nodes="$nodes" \
        -v e="$(median embedded "$phase" mb)" -v n="$(median nodes "$phase" mb)" \
        -v eg="$(median embedded "$phase" gateway)" -v ng="$(median nodes "$phase" gateway)" \
        -v na="$(median nodes "$phase" all)" 'BEGIN {
        printf "%s 64 MiB: embedded %.0f MB/s, %d nodes %.0f MB/s: %.0f %%\n", op, e, nodes, n, 100 * n / e
        printf "  CPU s per GiB: embedded %.2f; nodes: gateway %.2f (%.0f %% of the embedded rate per core), gateway and nodes %.2f (%.0f %%)\n",
            eg, ng, 100 * eg / ng, na, 100 * eg / na
    }'
done
