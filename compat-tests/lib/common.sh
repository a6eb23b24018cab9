# shellcheck shell=bash
# Helpers for the shell scenarios. Source it first thing:
#     . "$COMPAT_LIB/common.sh"
# The environment comes from run.sh (see compat.py for the COMPAT_* names);
# each client's own settings are made here, from nothing, by its *_env function.

set -Eeuo pipefail

# shellcheck disable=SC2034 # BUCKET and WORK are for the scenarios
BUCKET="$COMPAT_BUCKET"
WORK="$COMPAT_WORK"
ENDPOINT="$COMPAT_ENDPOINT"
HOSTPORT="${ENDPOINT#*://}"
cd "$WORK"

# Notes the current step; failures and timeouts name it.
step() {
    CURRENT_STEP="$*"
    printf -- '--- %s\n' "$*"
    printf '%s' "$*" > "$COMPAT_STEP"
}
CURRENT_STEP=start

# Fails the scenario with a one-line reason.
fail() {
    local reason="[$CURRENT_STEP] $*"
    printf '%s' "$reason" | tr '\n' ' ' > "$COMPAT_REASON"
    printf 'FAIL: %s\n' "$reason" >&2
    exit 1
}

# A command that failed unexpectedly: name it and the last line it printed.
on_err() {
    local rc=$? cmd=$1
    [ -s "$COMPAT_REASON" ] && exit "$rc"
    local last
    last=$(grep -v '^\s*$' "$COMPAT_LOG" | tail -n 1 | cut -c1-300) || true
    fail "\`$cmd\` exited $rc: $last"
}
trap 'on_err "$BASH_COMMAND"' ERR

check_eq() { # GOT WANT WHAT
    [ "$1" = "$2" ] || fail "$3: got '$(printf '%s' "$1" | head -c 200)', want '$(printf '%s' "$2" | head -c 200)'"
}

# Runs CMD and compares what it printed with WANT. A command that fails
# fails the check: `check_eq "$(cmd)" ""` would pass on a failed `cmd`.
check_output() { # WANT WHAT CMD [ARG...]
    local want=$1 what=$2 got rc=0
    shift 2
    got=$("$@") || rc=$?
    [ "$rc" = 0 ] || fail "$what: \`$*\` exited $rc"
    check_eq "$got" "$want" "$what"
}

check_files_eq() { # GOT_FILE WANT_FILE WHAT
    cmp -s "$1" "$2" || fail "$3: $(diff "$1" "$2" | head -n 6 | tr '\n' ' ')"
}

check_trees_eq() { # GOT_DIR WANT_DIR
    local d
    d=$(diff -r "$1" "$2" 2>&1 | head -n 5 | tr '\n' ' ') || true
    [ -z "$d" ] || fail "trees differ: $d"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# Files of random bytes: rand_file PATH SIZE (SIZE as head -c takes it, e.g. 150M).
rand_file() { head -c "$2" /dev/urandom > "$1"; }

# rand_tree DIR DIRS FILES_PER_DIR: small files (0..4 KiB) in nested directories.
rand_tree() {
    local dir=$1 i j
    for ((i = 0; i < $2; i++)); do
        mkdir -p "$dir/d$i/sub"
        for ((j = 0; j < $3; j++)); do
            head -c $(((i * 131 + j * 977) % 4096)) /dev/urandom > "$dir/d$i/$([ $((j % 3)) = 0 ] && echo sub/)f$j.bin"
        done
    done
}

# Keys that a local tree becomes under PREFIX, sorted as S3 lists them.
tree_keys() { # DIR [PREFIX]
    (cd "$1" && find . -type f | sed "s|^\./|${2:-}|" | LC_ALL=C sort)
}

# Independent view of the server through boto3 (see lib/s3check.py).
s3check() { python "$COMPAT_LIB/s3check.py" "$@"; }
jget() { python "$COMPAT_LIB/jget.py" "$@"; }

# aws cli v1 and other clients that read the AWS_* variables.
aws_env() {
    mkdir -p "$HOME/.aws"
    cat > "$HOME/.aws/config" <<EOF
[default]
region = us-east-1
s3 =
    addressing_style = path
EOF
    export AWS_CONFIG_FILE="$HOME/.aws/config"
    export AWS_SHARED_CREDENTIALS_FILE="$HOME/.aws/credentials"
    export AWS_ACCESS_KEY_ID="$COMPAT_ACCESS_KEY"
    export AWS_SECRET_ACCESS_KEY="$COMPAT_SECRET_KEY"
    export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
    export AWS_ENDPOINT_URL="$ENDPOINT"
    export AWS_EC2_METADATA_DISABLED=true
    export AWS_PAGER=""
}

# Runs the aws cli from run.sh's venv against the server.
awsc() { aws --endpoint-url "$ENDPOINT" "$@"; }

# rclone: a remote named `t` in a config file of its own (provider Other, path-style).
rclone_env() {
    RCLONE_CONF="$HOME/rclone.conf"
    cat > "$RCLONE_CONF" <<EOF
[t]
type = s3
provider = Other
access_key_id = $COMPAT_ACCESS_KEY
secret_access_key = $COMPAT_SECRET_KEY
endpoint = $ENDPOINT
region = us-east-1
force_path_style = true
EOF
}
rcl() { rclone --config "$RCLONE_CONF" --retries 1 --low-level-retries 2 "$@"; }

# s3cmd: a config file of its own (path-style, SigV4, us-east-1, plain HTTP).
s3cmd_env() {
    S3CMD_CONF="$HOME/.s3cfg"
    cat > "$S3CMD_CONF" <<EOF
[default]
access_key = $COMPAT_ACCESS_KEY
secret_key = $COMPAT_SECRET_KEY
host_base = $HOSTPORT
host_bucket = $HOSTPORT
bucket_location = us-east-1
use_https = False
signature_v2 = False
multipart_chunk_size_mb = 15
EOF
}
s3c() { s3cmd -c "$S3CMD_CONF" --no-progress "$@"; }
