# What the cluster benchmarks (repair.sh, sites.sh) share; sourced, not run.
# Before sourcing, set `script` (its name, for messages), and `tessera` and
# `bench` (empty: build them). Afterwards: `tessera`, `bench`, `workdir`
# (removed at exit), `pids` (processes stopped at exit) and `free_ports`.

for tool in jq curl; do
    command -v "$tool" >/dev/null || { echo "$script: needs $tool" >&2; exit 2; }
done
repo_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo_dir/target}
if [ -z "$tessera" ] || [ -z "$bench" ]; then
    (cd "$repo_dir" && cargo build --release --quiet -p tessera-server -p compat-tests) >&2
    tessera=${tessera:-$target/release/tessera}
    bench=${bench:-$target/release/tessera-bench}
fi

workdir=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$workdir"
}
trap cleanup EXIT

# The first of N consecutive free ports.
free_ports() {
    python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(200):
    base = random.randrange(20000, 60000 - n)
    held = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            held.append(s)
        print(base)
        break
    except OSError:
        pass
    finally:
        for s in held:
            s.close()
PY
}
