#!/usr/bin/env bash
# Cutting off and losing a datacenter, for real (docker/compose.two-dc.yml
# with the witness):
#
#  1. builds tessera:local, writes a new cluster with `tessera init` (run in
#     the image) into a scratch directory, brings the compose file up under
#     a project name of its own on free loopback ports, waits for every
#     gateway to be healthy;
#  P. partition: writers on both sites, then dc-a is disconnected from the
#     WAN. dc-b goes on taking writes; dc-a-gw-1 refuses every write with a
#     503 within 2 s and says not ready. After the heal both sites list the
#     same objects and serve every write either acknowledged;
#  2. writes continuously through dc-a-gw-1, recording every acknowledged
#     key and MD5 (failover.py writer);
#  3. `docker kill`s every dc-a container at once;
#  4. measures the RTO: seconds from dc-a's death to the first write
#     acknowledged through dc-b-gw-1, and how soon both dc-b gateways answer
#     /health/ready 200 (five times in a row);
#  5. reads every acknowledged object back from dc-b and compares its MD5:
#     the RPO is the number of acknowledged writes lost, and must be 0;
#  6. writes more through dc-b (the outage's writes); dc-b still ready;
#  7. starts dc-a again and checks it catches up: dc-a-gw-1 serves every
#     object, those written during the outage included.
#
# Prints `RTO: N.N s`, `RPO: N writes` and `Ready: N.N s`, then PASS or
# FAIL. Tears down (down -v, scratch removed) on every exit. Every wait is
# bounded.
#
#   docker/test-failover.sh            (TESSERA_BIN=path to skip the cargo build)
#   FAILOVER_KEEP=1 docker/test-failover.sh   keep the scratch dir and logs on failure
#   FAILOVER_INIT_ARGS="--data-shards 2 --parity-shards 4" docker/test-failover.sh
#                                      more `tessera init` flags (the code, …)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"

# Bounds (seconds).
READY_BOUND=${FAILOVER_READY_BOUND:-180}  # the cluster healthy after up
RTO_BOUND=${FAILOVER_RTO_BOUND:-60}       # a write through dc-b after the kill
READY_AFTER_KILL=${FAILOVER_READY_AFTER_KILL:-60}  # dc-b's gateways ready after the kill
CATCHUP_BOUND=${FAILOVER_CATCHUP_BOUND:-120}
WRITE_BEFORE_KILL=${FAILOVER_WRITE_SECS:-8}

IMAGE="${TESSERA_IMAGE:-tessera:local}"
DC_A=(dc-a-gw-1 dc-a-gw-2 dc-a-node-1 dc-a-node-2 dc-a-node-3)
GATEWAYS=(dc-a-gw-1 dc-a-gw-2 dc-b-gw-1 dc-b-gw-2)

docker info >/dev/null 2>&1 || fail "no Docker engine answers (docker info)"
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tessera-docker-failover.XXXXXX")
PROJECT="tessera-failover-$$"
COMPOSE=(docker-compose --project-name "$PROJECT" --file "$HERE/compose.two-dc.yml")
WRITER_PID="" RTO_PID="" PART_A_PID="" PART_B_PID=""

teardown() {
    local rc=$?
    if [ -n "$WRITER_PID" ]; then kill "$WRITER_PID" 2>/dev/null || true; fi
    if [ -n "$RTO_PID" ]; then kill "$RTO_PID" 2>/dev/null || true; fi
    for p in "$PART_A_PID" "$PART_B_PID"; do
        if [ -n "$p" ]; then kill "$p" 2>/dev/null || true; fi
    done
    if [ "$rc" != 0 ]; then
        if [ "${FAILOVER_KEEP:-0}" = 1 ]; then
            timeout 60 "${COMPOSE[@]}" logs --no-color --timestamps > "$SCRATCH/compose.log" 2>&1 || true
            say "every container's log: $SCRATCH/compose.log"
        fi
        say "state of the project and the gateways' last log lines:"
        timeout 30 "${COMPOSE[@]}" ps >&2 2>&1 || true
        for s in "${GATEWAYS[@]}" witness; do
            printf -- '--- %s\n' "$s" >&2
            timeout 30 "${COMPOSE[@]}" logs --no-color --tail 15 "$s" >&2 2>&1 || true
        done
    fi
    compose_down 180
    if [ "$rc" != 0 ] && [ "${FAILOVER_KEEP:-0}" = 1 ]; then
        say "scratch kept in $SCRATCH"
    else
        rm -rf "$SCRATCH"
    fi
    exit "$rc"
}
trap teardown EXIT

# ------------------------------------------------------------------- setup

say "building the image"
timeout 1800 "$HERE/build-image.sh" --no-cluster
ensure_clients

# A new cluster, written by the image's own binary as the invoking user.
mkdir -p "$SCRATCH/out"
# 3+3 on two disks a node: either site alone reads every segment and takes
# whole new ones (see the README's "Data across sites").
read -ra INIT_ARGS <<<"${FAILOVER_INIT_ARGS:---data-shards 3 --parity-shards 3 --disks 2}"
timeout 120 docker run --rm --user "$(id -u):$(id -g)" -v "$SCRATCH/out:/out" "$IMAGE" \
    init --out /out/cluster --nodes 6 --gateways 4 --sites dc-a,dc-b --witness --service-hosts \
    "${INIT_ARGS[@]}" \
    > "$SCRATCH/init.log" 2>&1 || { cat "$SCRATCH/init.log" >&2; fail "tessera init (in the image) failed"; }
export TESSERA_CLUSTER_DIR="$SCRATCH/out/cluster"
for s in "${GATEWAYS[@]}" dc-a-node-1 dc-b-node-3 witness; do
    [ -f "$TESSERA_CLUSTER_DIR/$s.toml" ] || fail "tessera init wrote no $s.toml (see $SCRATCH/init.log)"
done

ports=$(free_ports 4)
export TESSERA_DC_A_S3_PORT TESSERA_DC_A_ADMIN_PORT TESSERA_DC_B_S3_PORT TESSERA_DC_B_ADMIN_PORT
TESSERA_DC_A_S3_PORT=$(sed -n 1p <<<"$ports") TESSERA_DC_A_ADMIN_PORT=$(sed -n 2p <<<"$ports")
TESSERA_DC_B_S3_PORT=$(sed -n 3p <<<"$ports") TESSERA_DC_B_ADMIN_PORT=$(sed -n 4p <<<"$ports")
A="http://127.0.0.1:$TESSERA_DC_A_S3_PORT"
B="http://127.0.0.1:$TESSERA_DC_B_S3_PORT"
ACCESS_KEY="TF$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)"
SECRET_KEY="$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')"
export TESSERA_ACCESS_KEY=$ACCESS_KEY TESSERA_SECRET_KEY=$SECRET_KEY
# The processes run as the invoking user: everything they write in the
# scratch directory can be removed without root.
TESSERA_USER="$(id -u):$(id -g)"
export TESSERA_USER

say "docker-compose up ($PROJECT: dc-a S3 $A, dc-b S3 $B)"
timeout 300 "${COMPOSE[@]}" up -d > "$SCRATCH/up.log" 2>&1 || { cat "$SCRATCH/up.log" >&2; fail "docker-compose up failed"; }
cid() { "${COMPOSE[@]}" ps -q "$1"; }
for s in "${GATEWAYS[@]}"; do
    wait_healthy "$(cid "$s")" "$READY_BOUND" || fail "$s not healthy within $READY_BOUND s of up"
done
say "every gateway healthy"

BUCKET="failover-$$"
py "$A" "$HERE/failover.py" mkbucket "$A" "$BUCKET" || fail "creating the bucket through dc-a-gw-1 failed"

# ---------------------------------------------------------- partition

# dc-a cut off from the WAN (its LAN still works, its containers run): the
# side without a quorum (two of five voters) must refuse writes within two
# seconds and acknowledge none; dc-b with the witness goes on. After the
# cut heals there is one history: both sides list the same objects and
# serve every write either side acknowledged.
WAN="${PROJECT}_wan"
cut_dc_a() { # disconnect|connect
    local s
    for s in "${DC_A[@]}"; do
        if [ "$1" = connect ]; then
            timeout 60 docker network connect --alias "$s" "$WAN" "$(cid "$s")"
        else
            timeout 60 docker network disconnect "$WAN" "$(cid "$s")"
        fi || fail "docker network $1 $WAN $s failed"
    done
}
: > "$SCRATCH/part-a" ; : > "$SCRATCH/part-b"
py "$A" "$HERE/failover.py" writer "$A" "$BUCKET" "$SCRATCH/part-a" "$SCRATCH/stop-part" pa/ \
    2> "$SCRATCH/part-a.log" &
PART_A_PID=$!
py "$B" "$HERE/failover.py" writer "$B" "$BUCKET" "$SCRATCH/part-b" "$SCRATCH/stop-part" pb/ \
    2> "$SCRATCH/part-b.log" &
PART_B_PID=$!
sleep 4
say "cutting dc-a off the WAN ($(wc -l < "$SCRATCH/part-a") + $(wc -l < "$SCRATCH/part-b") writes acknowledged so far)"
T_CUT=$EPOCHREALTIME
cut_dc_a disconnect
say "dc-a cut off ($(since "$T_CUT") s to disconnect its five containers)"
# dc-b goes on: the outage's writes through dc-b-gw-1 (an election first
# when the leader was in dc-a).
: > "$SCRATCH/part-b-cut"
py "$B" "$HERE/failover.py" write-some "$B" "$BUCKET" "pb-cut/" 20 "$SCRATCH/part-b-cut" ||
    fail "dc-b (with the witness: a quorum) took no writes while dc-a was cut off"
say "dc-b took 20 writes while dc-a is cut off, $(since "$T_CUT") s after the cut"
# dc-a refuses: every write a 503 within two seconds, none acknowledged.
py "$A" "$HERE/failover.py" refused "$A" "$BUCKET" 10 2.0 > "$SCRATCH/refused" ||
    fail "dc-a-gw-1, cut off from the quorum, did not refuse writes within 2 s"
say "dc-a-gw-1 without a quorum: $(cat "$SCRATCH/refused")"
timeout 10 docker exec "$(cid dc-a-gw-1)" tessera healthcheck >/dev/null 2>&1 &&
    fail "dc-a-gw-1 says ready while cut off from the quorum"
say "dc-a-gw-1 says not ready"
touch "$SCRATCH/stop-part"
for p in "$PART_A_PID" "$PART_B_PID"; do
    timeout 30 tail --pid="$p" -f /dev/null || fail "a partition writer did not stop"
    wait "$p" || true
done
PART_A_PID="" PART_B_PID=""
say "partition writers: dc-a $(cat "$SCRATCH/part-a.log"); dc-b $(cat "$SCRATCH/part-b.log")"
T_HEAL=$EPOCHREALTIME
cut_dc_a connect
for s in dc-a-gw-1 dc-a-gw-2; do
    wait_healthy "$(cid "$s")" "$CATCHUP_BOUND" || fail "$s not healthy within $CATCHUP_BOUND s of the heal"
done
say "dc-a's gateways healthy again $(since "$T_HEAL") s after the heal"
cat "$SCRATCH/part-a" "$SCRATCH/part-b" "$SCRATCH/part-b-cut" > "$SCRATCH/part-all"
for side in "$A" "$B"; do
    py "$side" "$HERE/failover.py" verify "$side" "$BUCKET" "$SCRATCH/part-all" "$CATCHUP_BOUND" \
        > "$SCRATCH/verify-part" || { cat "$SCRATCH/verify-part" >&2; fail "after the heal $side lost acknowledged writes"; }
done
py "$A" "$HERE/failover.py" listing "$A" "$BUCKET" "$SCRATCH/list-a" || fail "listing through dc-a failed"
py "$B" "$HERE/failover.py" listing "$B" "$BUCKET" "$SCRATCH/list-b" || fail "listing through dc-b failed"
cmp -s "$SCRATCH/list-a" "$SCRATCH/list-b" ||
    { diff "$SCRATCH/list-a" "$SCRATCH/list-b" | head >&2; fail "after the heal dc-a and dc-b list different objects"; }
say "healed: one history ($(wc -l < "$SCRATCH/list-a") objects listed alike by both sites), all $(wc -l < "$SCRATCH/part-all") acknowledged writes served by both"

# --------------------------------------------------------- write, then kill

: > "$SCRATCH/acked"
py "$A" "$HERE/failover.py" writer "$A" "$BUCKET" "$SCRATCH/acked" "$SCRATCH/stop-writer" \
    2> "$SCRATCH/writer.log" &
WRITER_PID=$!
sleep "$WRITE_BEFORE_KILL"
[ "$(wc -l < "$SCRATCH/acked")" -gt 0 ] || { cat "$SCRATCH/writer.log" >&2; fail "no write through dc-a-gw-1 was acknowledged in $WRITE_BEFORE_KILL s"; }

# The RTO probe, started (and connected to dc-b-gw-1) before the kill.
py "$B" "$HERE/failover.py" rto "$B" "$BUCKET" "$SCRATCH/killed" "$RTO_BOUND" \
    > "$SCRATCH/rto" 2> "$SCRATCH/rto.log" &
RTO_PID=$!
sleep 2
kill -0 "$RTO_PID" 2>/dev/null || { cat "$SCRATCH/rto.log" >&2; fail "the RTO probe could not write through dc-b-gw-1 before the kill"; }

ids=()
for s in "${DC_A[@]}"; do ids+=("$(cid "$s")"); done
# Who leads the metadata at the kill: a dc-a leader means an election
# inside the RTO, the witness or a dc-b leader none.
LEADER=$(timeout 10 docker exec "$(cid dc-b-gw-1)" tessera admin member list 2>/dev/null |
    awk '$2 == "leader" { print "member " $1 " (" $3 ")" }' || true)
say "metadata leader before the kill: ${LEADER:-unknown}"
say "$(wc -l < "$SCRATCH/acked") writes acknowledged so far; docker kill of every dc-a container"
# All five at once (one docker kill each, in parallel); the clock starts
# when every one is dead, so that no write dc-a could still have served
# counts for the RTO.
T_KILLING=$EPOCHREALTIME
kills=()
for id in "${ids[@]}"; do
    timeout 60 docker kill "$id" >/dev/null &
    kills+=($!)
done
for k in "${kills[@]}"; do wait "$k" || fail "docker kill failed"; done
for id in "${ids[@]}"; do
    [ "$(docker inspect --format '{{.State.Running}}' "$id")" = false ] || fail "container $id still runs after docker kill"
done
T_KILL=$EPOCHREALTIME
printf '%s\n' "${T_KILL/,/.}" > "$SCRATCH/killed.tmp" && mv "$SCRATCH/killed.tmp" "$SCRATCH/killed"
say "dc-a dead ($(since "$T_KILLING") s to kill its five containers)"
# The writer goes on until dc-a is surely gone: what it got acknowledged
# until then counts too.
sleep 1
touch "$SCRATCH/stop-writer"
timeout 30 tail --pid="$WRITER_PID" -f /dev/null || fail "the writer did not stop"
wait "$WRITER_PID" || true
WRITER_PID=""
acked=$(wc -l < "$SCRATCH/acked")
say "writer: $(cat "$SCRATCH/writer.log")"

# ---------------------------------------------------------------- failover

# RTO: from the kill to the first write acknowledged through dc-b-gw-1.
rc=0
timeout $((RTO_BOUND + 30)) tail --pid="$RTO_PID" -f /dev/null || rc=$?
wait "$RTO_PID" || rc=$?
RTO_PID=""
RTO=$(sed -n 's/^rto //p' "$SCRATCH/rto")
if [ "$rc" = 0 ] && [ -n "$RTO" ]; then
    say "first write through dc-b-gw-1 acknowledged ${RTO} s after the kill"
else
    RTO="" NO_RTO=$(tail -n 1 "$SCRATCH/rto.log")
    say "no write through dc-b-gw-1 within $RTO_BOUND s of the kill: $NO_RTO"
fi

# dc-b's gateways ready: /health/ready asked in each container now (Docker's
# health status lags by its interval and retries), 200 from both five
# times in a row, a second apart.
dc_b_ready() { # sets out to the last answer
    out=$(timeout 10 docker exec "$(cid dc-b-gw-1)" tessera healthcheck 2>&1) &&
        out=$(timeout 10 docker exec "$(cid dc-b-gw-2)" tessera healthcheck 2>&1)
}
streak=0 first=""
while :; do
    if dc_b_ready; then
        [ "$streak" -gt 0 ] || first=$EPOCHREALTIME
        streak=$((streak + 1))
        [ "$streak" -lt 5 ] || break
    else
        streak=0
    fi
    if awk -v a="$T_KILL" -v b="$EPOCHREALTIME" -v max="$READY_AFTER_KILL" 'BEGIN { exit !(b - a > max) }'; then
        first="" NOT_READY=$(tr '\n' ' ' <<<"$out")
        break
    fi
    sleep 1
done
if [ -n "$first" ]; then
    READY=$(awk -v a="$T_KILL" -v b="$first" 'BEGIN { printf "%.1f", (b > a ? b - a : 0) }')
    say "dc-b's gateways ready ${READY} s after the kill (and 5 s since)"
else
    READY="not within $READY_AFTER_KILL"
    say "dc-b's gateways not ready within $READY_AFTER_KILL s of the kill; the last answer: $NOT_READY"
fi

# RPO: acknowledged writes dc-b cannot give back.
say "reading the $acked acknowledged objects back from dc-b"
py "$B" "$HERE/failover.py" verify "$B" "$BUCKET" "$SCRATCH/acked" > "$SCRATCH/verify-b" || true
cat "$SCRATCH/verify-b" >&2
LOST=$(sed -n 's/^checked [0-9]*, lost \([0-9]*\)$/\1/p' "$SCRATCH/verify-b")
[ -n "$LOST" ] || fail "verify printed no count"
# The measurements, then the verdicts.
printf 'RTO: %s s (leader at the kill: %s)\n' "${RTO:-more than $RTO_BOUND}" "${LEADER:-unknown}"
printf 'RPO: %s writes\n' "$LOST"
printf 'Ready: %s s (both dc-b gateways, from the kill)\n' "$READY"
[ -n "$RTO" ] || fail "no write through dc-b-gw-1 within $RTO_BOUND s of the kill: $NO_RTO"
[ "$LOST" = 0 ] || fail "$LOST of $acked acknowledged writes are lost after the failover"
[ -n "$first" ] || fail "dc-b's gateways not ready within $READY_AFTER_KILL s of the kill: $NOT_READY"

# Writes during the outage.
: > "$SCRATCH/outage"
py "$B" "$HERE/failover.py" write-some "$B" "$BUCKET" "outage/" 40 "$SCRATCH/outage" ||
    fail "writes through dc-b-gw-1 during the outage failed"
say "40 more writes through dc-b-gw-1 during the outage"

# Still ready, long after their probes have seen dc-a's nodes gone.
dc_b_ready || fail "dc-b's gateways are not ready any more, $(since "$T_KILL") s into the outage: $(tr '\n' ' ' <<<"$out")"
say "dc-b's gateways still ready $(since "$T_KILL") s after the kill"

# ----------------------------------------------------------- dc-a is back

say "starting dc-a again"
T_BACK=$EPOCHREALTIME
timeout 120 "${COMPOSE[@]}" start "${DC_A[@]}" > "$SCRATCH/start.log" 2>&1 ||
    { cat "$SCRATCH/start.log" >&2; fail "docker-compose start of dc-a failed"; }
for s in dc-a-gw-1 dc-a-gw-2; do
    wait_healthy "$(cid "$s")" "$CATCHUP_BOUND" || fail "$s not healthy within $CATCHUP_BOUND s of its start"
done
say "dc-a's gateways healthy $(since "$T_BACK") s after the start"
cat "$SCRATCH/acked" "$SCRATCH/outage" > "$SCRATCH/all"
py "$A" "$HERE/failover.py" verify "$A" "$BUCKET" "$SCRATCH/all" "$CATCHUP_BOUND" > "$SCRATCH/verify-a" ||
    { cat "$SCRATCH/verify-a" >&2; fail "dc-a-gw-1 does not serve every object within $CATCHUP_BOUND s of dc-a's return"; }
say "dc-a caught up: dc-a-gw-1 serves all $(wc -l < "$SCRATCH/all") objects, $(since "$T_BACK") s after the start"

say "PASS docker/test-failover.sh (RTO ${RTO} s, RPO ${LOST} writes, $(since "$T0") s)"
