//! The alert rules and Grafana dashboards of `docker/monitoring` use only
//! metrics Tessera exports. A storage node and a gateway using it (S3 over
//! TLS, 2+1) run as real processes; an object is written and read back;
//! then every metric name in `rules.yml` and in each dashboard's PromQL must
//! be a series of the gateway's or the node's `/metrics`. Names listed in
//! `pending-metrics.txt` (metrics of work not merged yet) are left out, and
//! so are `up` and `ALERTS`, which Prometheus makes itself.
//!
//! The names are read from the expressions as PromQL has them: label
//! matchers, ranges, strings, grouping labels, functions, keywords, numbers
//! and Grafana variables are not metric names; `_bucket`, `_sum` and
//! `_count` only count on a histogram (or summary) the server exports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::process::{Process, spawn};
use tessera_net::{ClusterCa, ClusterTls};

/// Series Prometheus makes itself, no exporter sends: `up` for every
/// scraped target, `ALERTS` for every alert pending or firing.
const PROMETHEUS_OWN: &[&str] = &["up", "ALERTS"];

/// PromQL words that are neither functions nor metric names (besides
/// [`LABEL_LISTS`]).
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "offset", "bool", "inf", "nan", "atan2",
];

/// Keywords followed by a list of label names in parentheses (or, for
/// `group_left` and `group_right`, by nothing).
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn monitoring_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/monitoring")
}

/// The metric names a PromQL expression selects.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = strip_enclosed(expr).chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() || c == '.' {
            // A number or a duration (1e3, 0.99, 5m, 1h30m).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        if c == '$' {
            // A Grafana variable: $name, ${name} or ${name:format}.
            i += 1;
            if chars.get(i) == Some(&'{') {
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
            } else {
                while i < chars.len() && is_name_char(chars[i]) {
                    i += 1;
                }
            }
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == '_' || c == ':') {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_name_char(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let mut next = i;
        while next < chars.len() && chars[next].is_whitespace() {
            next += 1;
        }
        // A function call, or an aggregation with its grouping first:
        // `sum by (op) (…)`.
        let rest: String = chars[next..].iter().take(8).collect();
        let grouped = ["by", "without"].iter().any(|g| {
            rest.strip_prefix(g)
                .is_some_and(|after| after.starts_with(|c: char| !is_name_char(c)))
        });
        let called = chars.get(next) == Some(&'(') || grouped;
        if LABEL_LISTS.contains(&word.as_str()) {
            if called {
                // Skip the label list: `by (instance, job)`.
                i = next;
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
            }
            continue;
        }
        if called || KEYWORDS.contains(&word.as_str()) {
            continue;
        }
        names.insert(word);
    }
    names
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// `expr` without its string literals, label matchers (`{…}`) and ranges
/// (`[…]`), none of which names a metric.
fn strip_enclosed(expr: &str) -> String {
    let mut out = String::new();
    let mut chars = expr.chars();
    let mut depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                // A string: up to its closing quote (backslash escapes).
                while let Some(s) = chars.next() {
                    if s == '\\' && c != '`' {
                        chars.next();
                    } else if s == c {
                        break;
                    }
                }
            }
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Every `expr:` of a Prometheus rules file (one-line or a `|` block).
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut exprs = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let Some(value) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if value.starts_with('|') || value.starts_with('>') {
            let indent = line.len() - line.trim_start().len();
            let block: Vec<&str> = lines[n + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .copied()
                .collect();
            exprs.push(block.join("\n").trim().to_owned());
        } else {
            exprs.push(value.trim_matches(|c| c == '\'' || c == '"').to_owned());
        }
    }
    exprs
}

/// Every PromQL expression of a Grafana dashboard: the panels' targets
/// (`expr`) and the query variables (`label_values(EXPR, label)` and
/// plain queries).
fn dashboard_exprs(dashboard: &serde_json::Value) -> Vec<String> {
    let mut exprs = Vec::new();
    collect_exprs(dashboard, &mut exprs);
    let variables = dashboard["templating"]["list"].as_array().cloned();
    for variable in variables.unwrap_or_default() {
        if variable["type"] != "query" {
            continue;
        }
        let query = match &variable["query"] {
            serde_json::Value::String(q) => q.clone(),
            other => other["query"].as_str().unwrap_or_default().to_owned(),
        };
        exprs.push(match query.strip_prefix("label_values(") {
            Some(args) => args.rsplit_once(',').map_or(args, |(e, _)| e).to_owned(),
            None => query,
        });
    }
    exprs
}

fn collect_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// What a `/metrics` text exports: the name of every series, and the
/// type each `# TYPE` line gives.
#[derive(Default)]
struct Exported {
    series: BTreeSet<String>,
    types: BTreeMap<String, String>,
}

impl Exported {
    fn add(&mut self, text: &str) {
        for line in text.lines() {
            if let Some(typed) = line.strip_prefix("# TYPE ") {
                let mut words = typed.split_whitespace();
                if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                    self.types.insert(name.to_owned(), kind.to_owned());
                }
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                self.series.insert(name.to_owned());
            }
        }
    }

    /// Whether PromQL naming `name` selects something exported: a series
    /// of that name, not a histogram's bare name; `_bucket`, `_sum` and
    /// `_count` only of a histogram or summary.
    fn has(&self, name: &str) -> bool {
        let kind = |n: &str| self.types.get(n).map(String::as_str);
        let of_distribution = ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|base| matches!(kind(base), Some("histogram" | "summary")))
        });
        self.series.contains(name)
            && (of_distribution || !matches!(kind(name), Some("histogram" | "summary")))
    }
}

/// The names `pending-metrics.txt` lists (one a line, `#` comments).
fn pending() -> BTreeSet<String> {
    std::fs::read_to_string(monitoring_dir().join("pending-metrics.txt"))
        .unwrap()
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every expression of the rules and dashboards: (where, expression).
fn monitoring_exprs() -> Vec<(String, String)> {
    let dir = monitoring_dir();
    let rules = std::fs::read_to_string(dir.join("rules.yml")).unwrap();
    let mut all: Vec<(String, String)> = rule_exprs(&rules)
        .into_iter()
        .map(|e| ("rules.yml".to_owned(), e))
        .collect();
    let mut dashboards: Vec<PathBuf> = std::fs::read_dir(dir.join("dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    dashboards.sort();
    assert!(dashboards.len() >= 4, "{dashboards:?}");
    for path in dashboards {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let exprs = dashboard_exprs(&json);
        assert!(exprs.len() >= 5, "{name} has {} queries", exprs.len());
        all.extend(exprs.into_iter().map(|e| (name.clone(), e)));
    }
    all
}

#[test]
fn metric_names_are_read_from_promql_as_prometheus_would() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (op, le) (rate(tessera_s3_request_duration_seconds_bucket{op!~"Put.*", instance=~"$instance"}[$__rate_interval])))"#
        ),
        ["tessera_s3_request_duration_seconds_bucket"]
    );
    assert_eq!(
        names(
            "max(a_total and on(instance) b == 1) > 0 unless sum without (job) (increase(c[15m] offset 1h)) > 1e3"
        ),
        ["a_total", "b", "c"]
    );
    assert_eq!(
        names(r#"label_replace(x, "dst", "$1 {y}", "src", "(.*)") * on (i) group_left (k) z"#),
        ["x", "z"]
    );
    assert_eq!(
        names("min by (store) (f / g) - time() < 21 * 86400"),
        ["f", "g"]
    );
    let exprs = rule_exprs(
        "- alert: A\n  expr: a > 1\n- alert: B\n  expr: |\n    b\n      > 2\n  for: 1m\n",
    );
    assert_eq!(exprs, ["a > 1", "b\n      > 2"]);

    let mut exported = Exported::default();
    exported.add(
        "# TYPE h histogram\nh_bucket{le=\"1\"} 0\nh_sum 0\nh_count 0\n# TYPE c_count counter\nc_count 1\n",
    );
    assert!(exported.has("h_bucket") && exported.has("h_count") && exported.has("c_count"));
    assert!(!exported.has("h") && !exported.has("c") && !exported.has("h_total"));
}

/// Writes an identity's PEM files under `dir` as `name.{pem,key}` and the
/// CA as `ca.pem`; returns the config lines naming them.
fn write_identity(dir: &Path, name: &str, tls: &ClusterTls) -> String {
    let file = |suffix: &str, text: &str| {
        let path = dir.join(format!("{name}{suffix}"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &tls.ca_pem).unwrap();
    let (cert, key) = (file(".pem", &tls.cert_pem), file(".key", &tls.key_pem));
    format!("cluster_ca = {ca:?}\ncluster_cert = {cert:?}\ncluster_key = {key:?}\n")
}

/// Writes `config` to `<dir>/<name>.toml` and starts `tessera COMMAND
/// --config` on it, until it announces itself with a line starting with
/// `announce`.
async fn start(
    dir: &Path,
    name: &str,
    config: String,
    command: &[&str],
    announce: &str,
) -> Process {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    let mut args = command.to_vec();
    args.extend(["--config", path.to_str().unwrap()]);
    spawn(&args, announce).await
}

/// The URL a process announced after `marker` (up to a comma).
fn announced_url(process: &Process, marker: &str) -> String {
    let rest = process.announced.split(marker).nth(1).unwrap();
    rest.split(',').next().unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_rules_and_dashboards_use_is_exported() {
    let used = monitoring_exprs();
    let pending = pending();
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate("monitoring test CA").unwrap();

    // A storage node of three disks, serving its own /metrics.
    let node_tls = write_identity(dir.path(), "node-1", &ca.issue("node-1", &[]).unwrap());
    let node = start(
        dir.path(),
        "node-1",
        format!(
            "id = 1\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\ndisks = 3\n{node_tls}",
            dir.path().join("node-1")
        ),
        &["node"],
        "Tessera storage node",
    )
    .await;
    let node_addr = announced_url(&node, " on ");
    let node_metrics = announced_url(&node, ", metrics on ");

    // A gateway storing 2+1 on it, S3 over TLS.
    let (s3_cert, s3_tls) = common::self_signed_tls(dir.path());
    let gateway_tls = write_identity(
        dir.path(),
        "gateway-1",
        &ca.issue("gateway-1", &[]).unwrap(),
    );
    let gateway = start(
        dir.path(),
        "gateway-1",
        format!(
            "data_dir = {:?}\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\ntls_cert = {:?}\ntls_key = {:?}\ndata_shards = 2\nparity_shards = 1\n{gateway_tls}[[nodes]]\nid = 1\naddr = \"{node_addr}\"\nsite = \"dc-a\"\n",
            dir.path().join("gateway-1"),
            common::TEST_ACCESS_KEY,
            common::TEST_SECRET_KEY,
            s3_tls.cert,
            s3_tls.key,
        ),
        &["serve"],
        "Tessera S3 API on ",
    )
    .await;
    let s3_url = announced_url(&gateway, "Tessera S3 API on ");
    let admin_url = announced_url(&gateway, ", admin on ");
    let s3 = aws_sdk_s3::Client::from_conf(
        common::config_builder(&s3_url, common::TEST_ACCESS_KEY, common::TEST_SECRET_KEY)
            .http_client(common::https_client_trusting(&s3_cert))
            .build(),
    );

    // Requests, so the request metrics have series.
    s3.create_bucket().bucket("watched").send().await.unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    common::put_bytes(&s3, "watched", "object", body.clone()).await;
    assert_eq!(common::get_bytes(&s3, "watched", "object").await, body);

    // Background jobs and probes publish as they run: wait for them.
    let wanted: BTreeSet<String> = used
        .iter()
        .flat_map(|(_, e)| metric_names(e))
        .filter(|n| !pending.contains(n) && !PROMETHEUS_OWN.contains(&n.as_str()))
        .collect();
    let mut exported = Exported::default();
    for _ in 0..60 {
        exported = Exported::default();
        exported.add(&common::http_get(&format!("{admin_url}/metrics")).await.1);
        exported.add(&common::http_get(&format!("{node_metrics}/metrics")).await.1);
        if wanted.iter().all(|n| exported.has(n)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let missing: BTreeSet<String> = used
        .iter()
        .flat_map(|(file, e)| {
            metric_names(e)
                .into_iter()
                .filter(|n| wanted.contains(n) && !exported.has(n))
                .map(move |n| format!("{n} (in {file})"))
        })
        .collect();
    assert!(missing.is_empty(), "used but not exported: {missing:#?}");
    // Some values, not only names: the certificates' expiry as their files
    // say (rcgen's self-signed one for S3 expires 4096-01-01), the erasure
    // code, the single raft member leading with its quorum and no lag.
    let gateway_text = common::http_get(&format!("{admin_url}/metrics")).await.1;
    let node_text = common::http_get(&format!("{node_metrics}/metrics")).await.1;
    let value = |text: &str, series: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {series} in {text}"))
    };
    let expiry = |certificate: &str| {
        format!("tessera_certificate_expiry_timestamp_seconds{{certificate=\"{certificate}\"}}")
    };
    assert_eq!(value(&gateway_text, &expiry("s3")), 67_090_118_400.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for certificate in ["cluster", "cluster-ca"] {
        let at = value(&gateway_text, &expiry(certificate));
        assert!(at > now, "{certificate} expires at {at}");
        assert_eq!(value(&node_text, &expiry(certificate)), at, "{certificate}");
    }
    for (series, expected) in [
        ("tessera_erasure_data_shards", 2.0),
        ("tessera_erasure_parity_shards", 1.0),
        ("tessera_raft_has_quorum", 1.0),
        ("tessera_raft_voters", 1.0),
        ("tessera_raft_member_lag_entries{member=\"1\"}", 0.0),
        ("tessera_connection_limit{listener=\"s3\"}", 1024.0),
        ("tessera_node_state{node=\"1\",state=\"up\"}", 1.0),
    ] {
        assert_eq!(value(&gateway_text, series), expected, "{series}");
    }
    let capacities: Vec<f64> = gateway_text
        .lines()
        .filter_map(|l| l.strip_prefix("tessera_store_capacity_bytes{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(
        capacities.len() == 3 && capacities.iter().all(|c| *c > 0.0),
        "{capacities:?}"
    );

    // Enough names were read for the check to mean something, and every
    // pending name is still one the rules or dashboards use.
    assert!(wanted.len() >= 40, "{wanted:?}");
    let all_used: BTreeSet<String> = used.iter().flat_map(|(_, e)| metric_names(e)).collect();
    for name in &pending {
        assert!(all_used.contains(name), "{name} is pending but unused");
    }
}
