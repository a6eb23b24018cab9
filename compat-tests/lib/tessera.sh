# shellcheck shell=bash
# A throwaway `tessera serve` for the suites (run.sh, s3s-e2e.sh). Source it;
# the caller sets REPO (repository root) and RUN_DIR (scratch directory).
#
#   build_tessera LOG            release build; sets TESSERA_BIN
#   start_tessera ACCESS SECRET  serves $RUN_DIR/data on free loopback ports
#                                (log $RUN_DIR/server.log); sets SERVER_PID,
#                                ENDPOINT (S3) and ADMIN_ENDPOINT
#   wait_for_endpoint            up to 60 s for any answer from ENDPOINT
#   wait_until_ready             up to 60 s for 200 from ADMIN_ENDPOINT/health/ready
#   stop_server                  SIGTERM, SIGKILL after 20 s (no-op when none runs)
#   free_ports N                 N distinct free loopback ports, one per line

SERVER_PID="${SERVER_PID:-}"

free_ports() { # N
    python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in socks))
EOF
}

build_tessera() { # LOG
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tessera-target}"
    printf 'building tessera (cargo build --release --locked -p tessera-server, target %s)\n' "$CARGO_TARGET_DIR" >&2
    (cd "$REPO" && cargo build --release --locked -p tessera-server) > "$1" 2>&1 ||
        { tail -n 30 "$1" >&2; return 1; }
    TESSERA_BIN="$CARGO_TARGET_DIR/release/tessera"
}

start_tessera() { # ACCESS SECRET
    local ports s3_port admin_port
    ports=$(free_ports 2)
    s3_port=$(sed -n 1p <<<"$ports") admin_port=$(sed -n 2p <<<"$ports")
    ENDPOINT="http://127.0.0.1:$s3_port"
    ADMIN_ENDPOINT="http://127.0.0.1:$admin_port"
    mkdir -p "$RUN_DIR/server-home"
    env -i PATH=/usr/bin:/bin HOME="$RUN_DIR/server-home" RUST_LOG="${RUST_LOG:-info}" \
        TESSERA_ACCESS_KEY="$1" TESSERA_SECRET_KEY="$2" \
        "$TESSERA_BIN" serve --data-dir "$RUN_DIR/data" --listen "127.0.0.1:$s3_port" \
        --admin-listen "127.0.0.1:$admin_port" > "$RUN_DIR/server.log" 2>&1 &
    SERVER_PID=$!
    printf 'started tessera (pid %s) on %s, log %s\n' "$SERVER_PID" "$ENDPOINT" "$RUN_DIR/server.log" >&2
}

# Polls URL until curl gets an answer (any status, or only WANT when given).
_wait_for() { # URL WHAT [WANT]
    local code
    for _ in $(seq 300); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true)
        if [ "$code" != 000 ] && { [ -z "${3:-}" ] || [ "$code" = "$3" ]; }; then return 0; fi
        if [ -n "$SERVER_PID" ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
            printf 'tessera exited before %s\n' "$2" >&2
            return 1
        fi
        sleep 0.2
    done
    printf 'tessera not %s within 60 s (%s)\n' "$2" "$1" >&2
    return 1
}

wait_for_endpoint() {
    _wait_for "$ENDPOINT/" answering
}

wait_until_ready() {
    _wait_for "$ADMIN_ENDPOINT/health/ready" ready 200
}

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        printf 'tessera did not stop within 20 s of SIGTERM; killing it\n' >&2
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
