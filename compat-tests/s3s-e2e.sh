#!/usr/bin/env bash
# s3s's own end-to-end suite, s3s-e2e 0.14.1, against a fresh `tessera serve`
# on the embedded default (six disks, 4+2):
#
#   compat-tests/s3s-e2e.sh
#
# Installs s3s-e2e into ~/.cache/tessera-tools when missing (cargo install
# --locked; TESSERA_TOOLS_DIR moves it), builds the release tessera
# (CARGO_TARGET_DIR), starts it on a temporary data dir and free ports, waits
# for /health/ready, runs the suite under `env -i` with only the endpoint and
# keys, prints its report and `N passed, N failed` (an ignored case counts
# as failed); exits non-zero unless every test passed. The server is always
# stopped.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
E2E_VERSION=0.14.1
TOOLS="${TESSERA_TOOLS_DIR:-$HOME/.cache/tessera-tools}"
E2E="$TOOLS/bin/s3s-e2e"

# shellcheck source=SCRIPTDIR/lib/tessera.sh
. "$HERE/lib/tessera.sh"
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tessera-s3s-e2e.XXXXXX")
OK=0
finish() {
    stop_server
    if [ "$OK" = 1 ]; then rm -rf "$RUN_DIR"; else printf 'logs kept in %s\n' "$RUN_DIR" >&2; fi
}
trap finish EXIT

# cargo install records what it installed in the root's .crates.toml.
if ! [ -x "$E2E" ] || ! grep -q "^\"s3s-e2e $E2E_VERSION " "$TOOLS/.crates.toml" 2>/dev/null; then
    printf 'installing s3s-e2e %s into %s (cargo install --locked)\n' "$E2E_VERSION" "$TOOLS" >&2
    cargo install "s3s-e2e@$E2E_VERSION" --locked --root "$TOOLS" > "$RUN_DIR/install.log" 2>&1 ||
        { tail -n 30 "$RUN_DIR/install.log" >&2; exit 1; }
fi

build_tessera "$RUN_DIR/build.log"
ACCESS_KEY="TE$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)"
SECRET_KEY="$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')"
start_tessera "$ACCESS_KEY" "$SECRET_KEY"
wait_until_ready || { tail -n 30 "$RUN_DIR/server.log" >&2; exit 1; }

# The suite reads `.env` from its working directory and the AWS_* variables:
# a fresh directory and nothing but what it needs.
mkdir -p "$RUN_DIR/e2e-home"
rc=0
(cd "$RUN_DIR/e2e-home" && env -i PATH=/usr/bin:/bin HOME="$RUN_DIR/e2e-home" NO_COLOR=1 \
    AWS_ACCESS_KEY_ID="$ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$SECRET_KEY" \
    AWS_REGION=us-east-1 AWS_ENDPOINT_URL="$ENDPOINT" \
    timeout -k 10 600 "$E2E") > "$RUN_DIR/e2e.log" 2>&1 || rc=$?

# The report: `PASSED 12.345ms [Suite/Fixture/case]` per case (a failure's
# reason on the next line), then per fixture, suite and run.
grep -E '^(PASSED|FAILED|IGNORED) |^  (ERROR|PANICKED)' "$RUN_DIR/e2e.log" || true
passed=$(grep -cE '^PASSED .*\[[^]/]+/[^]/]+/[^]/]+\]$' "$RUN_DIR/e2e.log" || true)
failed=$(grep -cE '^FAILED .*\[[^]/]+/[^]/]+/[^]/]+\]$' "$RUN_DIR/e2e.log" || true)
# An ignored case (or fixture, or suite) proves nothing: every case must
# really pass.
ignored=$(grep -cE '^IGNORED ' "$RUN_DIR/e2e.log" || true)
if [ "$ignored" != 0 ]; then
    printf 's3s-e2e ignored %s tests; they count as failed\n' "$ignored" >&2
    failed=$((failed + ignored))
fi
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
    printf 's3s-e2e exited %s without a failed case:\n' "$rc" >&2
    tail -n 30 "$RUN_DIR/e2e.log" >&2
    failed=1
fi
if [ "$passed" = 0 ]; then
    printf 's3s-e2e ran no test\n' >&2
    failed=$((failed + 1))
fi
printf 's3s-e2e: %s passed, %s failed\n' "$passed" "$failed"
[ "$failed" = 0 ] && OK=1
[ "$OK" = 1 ]
