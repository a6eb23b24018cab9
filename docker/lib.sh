# shellcheck shell=bash
# Shared by docker/test-*.sh. Source it after setting HERE (docker/) and
# REPO (the repository root).
#
#   say MSG…                     a line on stderr, with the seconds since start
#   fail MSG…                    say FAIL and exit 1
#   free_ports N                 N free loopback ports, one a line
#   ensure_clients               the compat suite's pinned venv (aws cli, boto3)
#   aws_at ENDPOINT ARGS…        the aws cli of that venv, isolated from ~/.aws
#   py ENDPOINT ARGS…            its python, with the same S3 environment
#   wait_healthy CONTAINER SECS  until Docker's health check says healthy
#   compose_down SECS            down -v the project (COMPOSE, PROJECT); what
#                                it leaves is force-removed by its label

# shellcheck source=SCRIPTDIR/../compat-tests/lib/tessera.sh
. "$REPO/compat-tests/lib/tessera.sh"

T0=$EPOCHREALTIME
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '[%6ss] %s\n' "$(since "$T0")" "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

CLIENT_CACHE="${COMPAT_CACHE_DIR:-$HOME/.cache/tessera-compat}"
VENV="$CLIENT_CACHE/venv"

# The same venv, pins and marker as compat-tests/run.sh (install_clients):
# whichever runs first installs it for both.
ensure_clients() {
    local req="$REPO/compat-tests/lib/requirements.txt"
    if ! cmp -s "$req" "$VENV/.compat-requirements" 2>/dev/null; then
        say "installing the compat clients into $VENV"
        mkdir -p "$CLIENT_CACHE"
        [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || fail "python3 -m venv failed (apt-get install python3-venv)"
        timeout 900 "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2 ||
            fail "pip install of the clients failed"
        cp "$req" "$VENV/.compat-requirements"
    fi
    [ -x "$VENV/bin/aws" ] || fail "no aws cli in $VENV"
}

# The environment every client call gets: the root key, us-east-1, no
# config or CA bundle inherited from the caller.
_client_env() { # ENDPOINT
    printf '%s\0' "PATH=$VENV/bin:/usr/bin:/bin" "HOME=$SCRATCH/home" "LANG=C.UTF-8" \
        "AWS_ACCESS_KEY_ID=$ACCESS_KEY" "AWS_SECRET_ACCESS_KEY=$SECRET_KEY" \
        "AWS_DEFAULT_REGION=us-east-1" "AWS_CONFIG_FILE=/dev/null" \
        "AWS_SHARED_CREDENTIALS_FILE=/dev/null" "AWS_MAX_ATTEMPTS=1" \
        "S3_ENDPOINT=$1" "PYTHONDONTWRITEBYTECODE=1" "PYTHONUNBUFFERED=1"
}

aws_at() { # ENDPOINT ARGS…
    local endpoint=$1 envv
    shift
    mkdir -p "$SCRATCH/home"
    mapfile -d '' envv < <(_client_env "$endpoint")
    env -i "${envv[@]}" timeout 120 "$VENV/bin/aws" --endpoint-url "$endpoint" \
        --cli-connect-timeout 5 --cli-read-timeout 30 "$@"
}

py() { # ENDPOINT ARGS…
    local endpoint=$1 envv
    shift
    mkdir -p "$SCRATCH/home"
    mapfile -d '' envv < <(_client_env "$endpoint")
    env -i "${envv[@]}" "$VENV/bin/python" "$@"
}

wait_healthy() { # CONTAINER SECS
    local deadline=$(($(date +%s) + $2)) state
    while :; do
        state=$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$1" 2>/dev/null || echo gone)
        [ "$state" = healthy ] && return 0
        if [ "$(date +%s)" -ge "$deadline" ]; then
            say "$1 is $state after $2 s; its last health check and log:"
            docker inspect --format '{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}' "$1" 2>/dev/null | tail -n 3 >&2 || true
            docker logs --tail 30 "$1" >&2 2>&1 || true
            return 1
        fi
        sleep 1
    done
}

compose_down() { # SECS
    timeout "$1" "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 && return 0
    say "docker-compose down failed or took over $1 s: removing the project's containers, networks and volumes by force"
    local label="label=com.docker.compose.project=$PROJECT" kind
    docker ps -aq --filter "$label" | xargs -r timeout 120 docker rm -f -v >/dev/null 2>&1 || true
    for kind in network volume; do
        docker "$kind" ls -q --filter "$label" | xargs -r timeout 60 docker "$kind" rm >/dev/null 2>&1 || true
    done
    [ -z "$(docker ps -aq --filter "$label")" ] || say "containers of $PROJECT are left: docker ps -a --filter $label"
}
