#!/usr/bin/env bash
# Checks docker/monitoring: the alert rules (`promtool check rules`) and
# their unit tests (`promtool test rules tests/*.yml`), prometheus.yml
# (`promtool check config`), alertmanager.yml (`amtool check-config`, when
# amtool is installed: Debian's prometheus-alertmanager), and the
# dashboards: valid JSON, every query valid PromQL. Also that every alert
# has a firing and a quiet test case and a runbook section in
# docs/operations.md. That the rules and dashboards use only metrics Tessera
# exports is server/tests/monitoring_metrics.rs, against a live server.
#
# Installs promtool (Debian package prometheus) and jq when missing.
set -euo pipefail
cd "$(dirname "$0")"

fail() {
    echo "check.sh: $*" >&2
    exit 1
}

# apt-get install, as root or through sudo, updating the package lists
# first only when the install cannot find the package.
install_packages() {
    local as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get install -y --no-install-recommends "$@" ||
        { "${as_root[@]}" apt-get update && "${as_root[@]}" apt-get install -y --no-install-recommends "$@"; }
}

command -v promtool >/dev/null || install_packages prometheus
command -v jq >/dev/null || install_packages jq

echo "--- promtool check rules"
promtool check rules rules.yml

echo "--- promtool test rules"
promtool test rules tests/*.yml

echo "--- promtool check config"
promtool check config prometheus.yml

if command -v amtool >/dev/null; then
    echo "--- amtool check-config"
    amtool check-config alertmanager.yml
else
    echo "--- amtool not installed: alertmanager.yml not checked"
fi

echo "--- every alert: a firing and a quiet test case, a runbook section"
alerts=$(sed -n 's/^ *- alert: *//p' rules.yml | sort -u)
[ -n "$alerts" ] || fail "no alerts found in rules.yml"
for alert in $alerts; do
    cases=$(grep -h -A1 "alertname: $alert\$" tests/*.yml || true)
    grep -q 'exp_alerts: \[\]' <<<"$cases" || fail "$alert has no test case where it stays quiet"
    grep -q 'exp_alerts: *$' <<<"$cases" || fail "$alert has no test case where it fires"
done
for anchor in $(sed -n 's/^ *runbook_url: *docs\/operations\.md#//p' rules.yml | sort -u); do
    grep -qix "#\{2,4\} $anchor" ../../docs/operations.md ||
        fail "docs/operations.md has no section for runbook anchor #$anchor"
done
[ "$(grep -c '^ *runbook_url: *docs/operations\.md#' rules.yml)" -eq "$(grep -c '^ *- alert:' rules.yml)" ] ||
    fail "an alert in rules.yml has no runbook_url"

echo "--- dashboards: JSON, PromQL"
queries=$(mktemp)
trap 'rm -f "$queries"' EXIT
shopt -s nullglob
dashboards=(dashboards/*.json)
[ "${#dashboards[@]}" -gt 0 ] || fail "no dashboards"
# Every panel query as a recording rule, Grafana's variables replaced by
# values Prometheus takes, for promtool to parse.
jq -s '{groups: [{name: "dashboards", rules: [
        .[] | [.. | objects | .expr? | strings] | .[]
        | gsub("\\$__(rate_interval|interval|range)"; "5m")
        | gsub("\\$\\{?[A-Za-z0-9_]+(:[a-z]+)?\\}?"; ".*")
    ] | to_entries | map({record: "dashboard_query_\(.key)", expr: .value})}]}' \
    "${dashboards[@]}" >"$queries" || fail "a dashboard is not valid JSON"
for dashboard in "${dashboards[@]}"; do
    jq -e '.uid and .title and (.panels | length > 0)
        and ([.templating.list[] | select(.type == "datasource" and .query == "prometheus")] | length == 1)' \
        "$dashboard" >/dev/null || fail "$dashboard: no uid, title, panels or Prometheus data source variable"
done
promtool check rules "$queries" >/dev/null || {
    promtool check rules "$queries"
    fail "a dashboard query is not valid PromQL"
}
echo "$(jq '.groups[0].rules | length' "$queries") dashboard queries parse"
echo "monitoring: all checks passed"
