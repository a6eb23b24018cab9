#!/usr/bin/env bash
# The web console in a real browser: starts a throwaway `tessera serve`,
# then Debian's chromium, headless, driven by chromium-driver and selenium,
# logs in, creates a bucket, uploads a file, sees it listed, downloads it
# (bytes equal) and writes screenshots (walkthrough.py).
#
#   console-tests/run.sh               build tessera (release) and run
#   TESSERA_BIN=path console-tests/run.sh   use that binary instead of building
#
# Installs chromium and chromium-driver with apt-get and selenium into a
# venv (~/.cache/tessera-console) when missing. Screenshots and logs go to
# $CONSOLE_OUT (default ~/.cache/tessera-console/out, kept).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE="${CONSOLE_CACHE_DIR:-$HOME/.cache/tessera-console}"
VENV="$CACHE/venv"

note() { printf '%s\n' "$*" >&2; }
die() { note "console-tests: $*"; exit 2; }

# apt-get install, as root or through sudo, updating the package lists
# first only when the install cannot find the package.
install_packages() {
    local as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends "$@" >&2 ||
        { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" apt-get install -y -qq --no-install-recommends "$@" >&2; }
}

command -v chromium >/dev/null || install_packages chromium
command -v chromedriver >/dev/null || install_packages chromium-driver
command -v curl >/dev/null || install_packages curl
if ! cmp -s "$HERE/requirements.txt" "$VENV/.console-requirements" 2>/dev/null; then
    note "installing selenium into $VENV"
    mkdir -p "$CACHE"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt" >&2 ||
        die "pip install selenium failed"
    cp "$HERE/requirements.txt" "$VENV/.console-requirements"
fi

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tessera-console.XXXXXX")
OUT="${CONSOLE_OUT:-$CACHE/out}"
mkdir -p "$OUT"
# shellcheck source=SCRIPTDIR/../compat-tests/lib/tessera.sh
. "$REPO/compat-tests/lib/tessera.sh"
STATUS=1
finish() {
    stop_server
    if [ "$STATUS" = 0 ]; then
        rm -rf "$RUN_DIR"
    else
        note "console-tests: failed; server log kept in $RUN_DIR, screenshots in $OUT"
    fi
}
trap finish EXIT

if [ -z "${TESSERA_BIN:-}" ]; then
    build_tessera "$RUN_DIR/build.log" || die "build failed"
fi
ACCESS_KEY="CONSOLE$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)"
SECRET_KEY="$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')"
start_tessera "$ACCESS_KEY" "$SECRET_KEY"
wait_until_ready || { tail -n 30 "$RUN_DIR/server.log" >&2; exit 1; }

"$VENV/bin/python" "$HERE/walkthrough.py" --console "$ADMIN_ENDPOINT/console/" \
    --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" --out "$OUT" \
    --chromium "$(command -v chromium)" --driver "$(command -v chromedriver)"
STATUS=0
note "console-tests: passed (screenshots in $OUT)"
