#!/usr/bin/env bash
# Validates every manifest in docker/k8s/ with no cluster and no network
# beyond PyPI (to install the validator once):
#   1. kubernetes-validate (pinned, requirements.txt here) in strict mode
#      against the schemas of Kubernetes $K8S_VERSION, which the package
#      carries (offline): unknown fields, wrong types, missing required ones;
#   2. check_manifests.py: what schemas cannot see (dc-b mirrors dc-a,
#      headless Services publish not-ready pods, every member the configs
#      name is reachable, probes, anti-affinity, disruption budgets sized to
#      the erasure code and the raft quorum, …);
#   3. when a tessera binary is at hand (TESSERA_BIN, or the release build in
#      CARGO_TARGET_DIR, default ~/.cache/tessera-target), the manifests
#      against the configs its `tessera init --service-hosts` writes for
#      them: names, ports, paths (skipped, saying so, without one).
#
#   docker/k8s/validate.sh            exit 0 when everything passes
#
# The venv lives in ${XDG_CACHE_HOME:-~/.cache}/tessera-k8s-validate.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=1.33.0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/tessera-k8s-validate"
VENV="$CACHE/venv"
REQ="$HERE/requirements.txt"
start=$(date +%s)

if ! cmp -s "$REQ" "$VENV/.requirements" 2>/dev/null; then
    printf 'installing kubernetes-validate into %s\n' "$VENV" >&2
    mkdir -p "$CACHE"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" ||
        { echo "validate.sh: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 2; }
    timeout 600 "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ" >&2 ||
        { echo "validate.sh: pip install of kubernetes-validate failed" >&2; exit 2; }
    cp "$REQ" "$VENV/.requirements"
fi

mapfile -t FILES < <(find "$HERE" -name '*.yaml' | LC_ALL=C sort)
# A validation that checks nothing must not pass.
[ "${#FILES[@]}" -ge 3 ] || { echo "validate.sh: found only ${#FILES[@]} manifests in $HERE" >&2; exit 1; }

rc=0
printf 'kubernetes-validate --strict against Kubernetes %s: %s files\n' "$K8S_VERSION" "${#FILES[@]}"
"$VENV/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$K8S_VERSION" "${FILES[@]}" || rc=1
BIN="${TESSERA_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/tessera-target}/release/tessera}"
INIT=()
if [ -x "$BIN" ] && "$BIN" init --help 2>/dev/null | grep -q -- '--service-hosts'; then
    INIT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tessera-k8s-init.XXXXXX")
    trap 'rm -rf "$INIT_DIR"' EXIT
    # The layout of the manifests: six nodes and two gateways a site, a witness.
    "$BIN" init --out "$INIT_DIR/cluster" --nodes 12 --gateways 4 --sites dc-a,dc-b --witness \
        --service-hosts > "$INIT_DIR/init.log" 2>&1 ||
        { cat "$INIT_DIR/init.log" >&2; echo "validate.sh: tessera init failed" >&2; exit 1; }
    INIT=(--init-dir "$INIT_DIR/cluster")
    printf 'checking against the configs of %s init\n' "$BIN"
else
    printf 'skipped the check against tessera init'"'"'s configs: no tessera with init --service-hosts at %s (set TESSERA_BIN)\n' "$BIN"
fi
"$VENV/bin/python" "$HERE/check_manifests.py" "$HERE" "${INIT[@]}" || rc=1
if [ "$rc" = 0 ]; then
    printf 'PASS docker/k8s/validate.sh (%s files, %ss)\n' "${#FILES[@]}" "$(($(date +%s) - start))"
else
    printf 'FAIL docker/k8s/validate.sh\n'
fi
exit "$rc"
