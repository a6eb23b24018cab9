#!/usr/bin/env bash
# Checks docker/'s configuration files without a Docker engine (run by
# .ci/run always):
#   - compose.yml and compose.two-dc.yml (with its monitoring profile) are
#     valid for docker-compose (`docker-compose config`);
#   - prometheus.two-dc.yml is valid for Prometheus (`promtool check config`,
#     which also loads monitoring/rules.yml through it);
#   - its scrape jobs are monitoring/prometheus.yml's, by name, and their
#     targets are exactly compose.two-dc.yml's gateways and witness on the
#     admin port 9001 and its storage nodes on their metrics port 9101.
# A check whose tool is missing is skipped, saying so.
set -euo pipefail
cd "$(dirname "$0")"

rc=0
if command -v docker-compose >/dev/null; then
    for f in compose.yml compose.two-dc.yml; do
        docker-compose -f "$f" --profile monitoring config -q || { echo "FAIL docker-compose config $f"; rc=1; }
    done
    echo "docker-compose config: compose.yml, compose.two-dc.yml"
    SERVICES=$(docker-compose -f compose.two-dc.yml --profile monitoring config)
else
    echo "skipped docker-compose config: docker-compose is not installed"
    SERVICES=""
fi

if command -v promtool >/dev/null; then
    promtool check config prometheus.two-dc.yml >/dev/null || { promtool check config prometheus.two-dc.yml; rc=1; }
    echo "promtool check config prometheus.two-dc.yml"
else
    echo "skipped promtool check config: promtool is not installed (Debian package prometheus)"
fi

PY=python3
python3 -c 'import yaml' 2>/dev/null || PY="${COMPAT_CACHE_DIR:-$HOME/.cache/tessera-compat}/venv/bin/python"
if [ -z "$SERVICES" ]; then
    echo "skipped the scrape targets' check: no docker-compose to resolve compose.two-dc.yml"
elif ! "$PY" -c 'import yaml' 2>/dev/null; then
    echo "skipped the scrape targets' check: no Python with PyYAML"
else
    "$PY" - "$SERVICES" <<'EOF' || rc=1
import sys
import yaml

compose = yaml.safe_load(sys.argv[1])
ours = yaml.safe_load(open("prometheus.two-dc.yml"))
theirs = yaml.safe_load(open("monitoring/prometheus.yml"))

want = {"tessera-gateway": set(), "tessera-witness": set(), "tessera-node": set()}
for name, svc in compose["services"].items():
    cmd = svc.get("command") or []
    if cmd[:1] == ["node"]:
        want["tessera-node"].add(f"{name}:9101")
    elif cmd[:1] == ["serve"] and "witness" in cmd:
        want["tessera-witness"].add(f"{name}:9001")
    elif cmd[:1] == ["serve"]:
        want["tessera-gateway"].add(f"{name}:9001")
got = {
    job["job_name"]: {t for sc in job["static_configs"] for t in sc["targets"]}
    for job in ours["scrape_configs"]
}
errors = []
if set(got) != {j["job_name"] for j in theirs["scrape_configs"]}:
    errors.append(f"jobs {sorted(got)}, monitoring/prometheus.yml has "
                  f"{sorted(j['job_name'] for j in theirs['scrape_configs'])}")
for job, targets in want.items():
    if got.get(job, set()) != targets:
        errors.append(f"job {job} scrapes {sorted(got.get(job, []))}, the compose services are {sorted(targets)}")
for e in errors:
    print(f"FAIL prometheus.two-dc.yml: {e}")
print(f"scrape targets: {sum(len(t) for t in want.values())} services, {len(errors)} wrong")
sys.exit(1 if errors else 0)
EOF
fi
[ "$rc" = 0 ] && echo "PASS docker/check-config.sh" || echo "FAIL docker/check-config.sh"
exit "$rc"
