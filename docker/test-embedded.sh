#!/usr/bin/env bash
# The embedded default in a container (docker/compose.yml), for real: builds
# tessera:local, brings the compose file up under a project name of its own
# on free loopback ports, waits for Docker's health check, writes objects
# with the aws cli and reads them back byte for byte, then again after a
# restart of the container and after the container is recreated on the same
# volume. Always tears down (down -v) on the way out.
#
#   docker/test-embedded.sh        (TESSERA_BIN=path to skip the cargo build)
#
# Prints PASS with the time taken, or FAIL and what went wrong; exit 0 or 1.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"

docker info >/dev/null 2>&1 || fail "no Docker engine answers (docker info)"
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tessera-docker-embedded.XXXXXX")
PROJECT="tessera-embedded-$$"
COMPOSE=(docker-compose --project-name "$PROJECT" --file "$HERE/compose.yml")

teardown() {
    local rc=$?
    if [ "$rc" != 0 ]; then
        say "logs of the container:"
        timeout 30 "${COMPOSE[@]}" logs --no-color --tail 40 >&2 2>&1 || true
    fi
    compose_down 120
    rm -rf "$SCRATCH"
    exit "$rc"
}
trap teardown EXIT

say "building the image"
timeout 1800 "$HERE/build-image.sh" --no-cluster
ensure_clients

ports=$(free_ports 2)
export TESSERA_S3_PORT TESSERA_ADMIN_PORT
TESSERA_S3_PORT=$(sed -n 1p <<<"$ports") TESSERA_ADMIN_PORT=$(sed -n 2p <<<"$ports")
ENDPOINT="http://127.0.0.1:$TESSERA_S3_PORT"
ACCESS_KEY="TD$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)"
SECRET_KEY="$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')"
export TESSERA_ACCESS_KEY=$ACCESS_KEY TESSERA_SECRET_KEY=$SECRET_KEY

up() {
    timeout 120 "${COMPOSE[@]}" up -d > "$SCRATCH/up.log" 2>&1 || { cat "$SCRATCH/up.log" >&2; fail "docker-compose up failed"; }
    CID=$("${COMPOSE[@]}" ps -q tessera)
    [ -n "$CID" ] || fail "no container for the service tessera"
    wait_healthy "$CID" 90 || fail "the container did not become healthy within 90 s"
}

say "docker-compose up ($PROJECT, S3 on $ENDPOINT)"
up
# Published on the host's loopback only.
for port in 9000 9001; do
    published=$(docker port "$CID" "$port/tcp")
    case "$published" in
    127.0.0.1:*) ;;
    *) fail "container port $port is published on '$published', not only on 127.0.0.1" ;;
    esac
done
say "healthy; ports $(docker port "$CID" | tr '\n' ' ')"

# Objects: empty, small text, 1 MiB and 24 MiB random (the aws cli sends
# the last as a multipart upload), and a key with a slash and a space.
mkdir -p "$SCRATCH/put" "$SCRATCH/get"
: > "$SCRATCH/put/empty"
printf 'hello from a container\n' > "$SCRATCH/put/hello.txt"
head -c $((1 << 20)) /dev/urandom > "$SCRATCH/put/one-mib"
head -c $((24 << 20)) /dev/urandom > "$SCRATCH/put/big"
cp "$SCRATCH/put/hello.txt" "$SCRATCH/put/spaced"
KEYS=(empty hello.txt one-mib big "dir/with space")
file_of() { case "$1" in "dir/with space") echo spaced ;; *) echo "$1" ;; esac; }

BUCKET="embedded-$$"
aws_at "$ENDPOINT" s3 mb "s3://$BUCKET" >/dev/null || fail "aws s3 mb failed"
for key in "${KEYS[@]}"; do
    aws_at "$ENDPOINT" s3 cp --only-show-errors "$SCRATCH/put/$(file_of "$key")" "s3://$BUCKET/$key" ||
        fail "aws s3 cp of $key failed"
done
say "put ${#KEYS[@]} objects"

read_back() { # WHEN
    local key listed want
    rm -rf "$SCRATCH/get" && mkdir -p "$SCRATCH/get"
    for key in "${KEYS[@]}"; do
        aws_at "$ENDPOINT" s3 cp --only-show-errors "s3://$BUCKET/$key" "$SCRATCH/get/$(file_of "$key")" ||
            fail "$1: aws s3 cp of s3://$BUCKET/$key to a file failed"
        cmp -s "$SCRATCH/put/$(file_of "$key")" "$SCRATCH/get/$(file_of "$key")" ||
            fail "$1: $key read back different bytes"
    done
    listed=$(aws_at "$ENDPOINT" s3api list-objects-v2 --bucket "$BUCKET" --query 'Contents[].[Key,Size]' --output text) ||
        fail "$1: list-objects-v2 failed"
    want=$(for key in "${KEYS[@]}"; do printf '%s\t%s\n' "$key" "$(stat -c %s "$SCRATCH/put/$(file_of "$key")")"; done | LC_ALL=C sort)
    [ "$listed" = "$want" ] || fail "$1: the listing is
$listed
and should be
$want"
    say "$1: ${#KEYS[@]} objects read back identical, listing right"
}
read_back "after put"

# The admin CLI inside the container finds the token in the volume.
timeout 30 "${COMPOSE[@]}" exec -T tessera tessera admin status --json > "$SCRATCH/status.json" ||
    fail "tessera admin status in the container failed"
grep -q '"' "$SCRATCH/status.json" || fail "tessera admin status printed nothing"

say "docker-compose restart"
timeout 120 "${COMPOSE[@]}" restart >/dev/null 2>&1 || fail "docker-compose restart failed"
wait_healthy "$CID" 90 || fail "not healthy again within 90 s of the restart"
read_back "after restart"

say "docker-compose down (volume kept) and up: a new container on the same volume"
timeout 120 "${COMPOSE[@]}" down >/dev/null 2>&1 || fail "docker-compose down failed"
old=$CID
up
[ "$CID" != "$old" ] || fail "docker-compose up reused the old container"
read_back "in a new container"

say "PASS docker/test-embedded.sh ($(since "$T0") s)"
