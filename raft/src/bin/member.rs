//! `tessera-raft-member`: one metadata member as a process of its own,
//! driven line by line over stdin and stdout. It exists so that tests can
//! crash a member for real (SIGKILL: no final flush, no leadership
//! transfer, its sockets and tasks simply gone, its files as they are at
//! that instant); it is also a way to poke at a cluster by hand.
//!
//! Arguments (each `--name value`):
//! - `--id N`, `--data-dir DIR`, `--listen ADDR` (raft RPC; `127.0.0.1:0`
//!   picks a port), `--ca FILE`, `--cert FILE`, `--key FILE` (cluster TLS,
//!   PEM) — required;
//! - `--heartbeat-ms`, `--election-min-ms`, `--election-max-ms`,
//!   `--request-timeout-ms`, `--snapshot-every`, `--logs-kept` — optional
//!   [`RaftTiming`] values.
//!
//! Once the member runs it prints `ready <address>` (its advertised RPC
//! address).
//! Then every stdin line `<tag> <request>` is answered, in any order
//! (requests run concurrently), by one stdout line `<tag> ok <result>` or
//! `<tag> err <message>`. Requests:
//! - `status` → `leader=<id or -> role=<role> term=N applied=N log=N`
//! - `bootstrap`, `add-learner <id> <address>`, `promote <id>...`
//! - `write <command as JSON>` (a `tessera_raft::command::Command`)
//! - `versions <bucket> <key>` → the key's version ids, newest first,
//!   space-separated, from a linearizable read (keys without spaces)
//! - `dump <file>` → writes every record of this member's applied state to
//!   `file` as `SnapshotRecord`s
//!
//! When stdin closes the member shuts down gracefully and the process exits.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tessera_raft::command::Command;
use tessera_raft::snapshot_data::export;
use tessera_raft::{ClusterTls, ListVersionsQuery, MetaConfig, MetaError, MetaNode, RaftTiming};

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera-raft-member: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Failure> {
    let node = MetaNode::start(config(std::env::args().skip(1))?).await?;
    say(&format!("ready {}", node.advertise()));
    // Blocking stdin on a thread of its own; requests go to the runtime.
    let (lines, mut requests) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = requests.recv().await {
        let node = node.clone();
        tokio::spawn(async move {
            let (tag, request) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            let answer = match handle(&node, request).await {
                Ok(result) => format!("{tag} ok {result}"),
                Err(e) => format!("{tag} err {}", e.to_string().replace('\n', " ")),
            };
            say(&answer);
        });
    }
    node.shutdown().await?;
    Ok(())
}

/// Prints one whole line and flushes it (the reader waits for it).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // Nobody to tell if the reader is gone: the member runs on regardless.
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

async fn handle(node: &MetaNode, request: &str) -> Result<String, Failure> {
    let (op, rest) = request.split_once(' ').unwrap_or((request, ""));
    match op {
        "status" => {
            let s = node.status();
            let leader = s.leader.map_or_else(|| "-".to_owned(), |l| l.to_string());
            Ok(format!(
                "leader={leader} role={} term={} applied={} log={}",
                s.role, s.term, s.last_applied, s.last_log_index
            ))
        }
        "bootstrap" => Ok(node.bootstrap_single().await.map(|()| String::new())?),
        "add-learner" => {
            let (id, addr) = rest
                .split_once(' ')
                .ok_or("usage: add-learner <id> <address>")?;
            node.add_learner(id.parse()?, addr).await?;
            Ok(String::new())
        }
        "promote" => {
            let ids = rest
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<Vec<u64>, _>>()?;
            node.promote(ids).await?;
            Ok(String::new())
        }
        "write" => {
            let command: Command = serde_json::from_str(rest)?;
            node.write(command).await?;
            Ok(String::new())
        }
        "versions" => {
            let (bucket, key) = rest
                .split_once(' ')
                .ok_or("usage: versions <bucket> <key>")?;
            let query = ListVersionsQuery {
                prefix: key.to_owned(),
                delimiter: None,
                key_marker: None,
                version_id_marker: None,
                max_keys: usize::MAX,
            };
            let page = node.read(|view| view.list_versions(bucket, &query)).await?;
            let ids: Vec<String> = page
                .versions
                .into_iter()
                .filter(|(v, _)| v.key == key)
                .map(|(v, _)| v.version_id)
                .collect();
            Ok(ids.join(" "))
        }
        "dump" => {
            let file = PathBuf::from(rest);
            node.read_local(|view| {
                let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
                for record in export(view.transaction())? {
                    record?.write_to(&mut out)?;
                }
                out.flush()?;
                Ok::<_, MetaError>(())
            })
            .await?;
            Ok(String::new())
        }
        other => Err(format!("unknown request {other:?}").into()),
    }
}

/// The member's config from `--name value` arguments.
fn config(mut args: impl Iterator<Item = String>) -> Result<MetaConfig, Failure> {
    let mut flags = HashMap::new();
    while let Some(flag) = args.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("expected --name, got {flag:?}"))?
            .to_owned();
        let value = args
            .next()
            .ok_or_else(|| format!("--{name} needs a value"))?;
        flags.insert(name, value);
    }
    let mut take = |name: &str| {
        flags
            .remove(name)
            .ok_or_else(|| format!("--{name} is required"))
    };
    let mut cfg = MetaConfig::new(take("id")?.parse()?, take("data-dir")?);
    cfg.rpc_listen = Some(take("listen")?.parse()?);
    cfg.tls = Some(ClusterTls {
        ca_pem: std::fs::read_to_string(take("ca")?)?,
        cert_pem: std::fs::read_to_string(take("cert")?)?,
        key_pem: std::fs::read_to_string(take("key")?)?,
    });
    let mut number = |name: &str| -> Result<Option<u64>, Failure> {
        Ok(flags.remove(name).map(|v| v.parse()).transpose()?)
    };
    let defaults = RaftTiming::default();
    let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
    cfg.timing = RaftTiming {
        heartbeat: ms(number("heartbeat-ms")?, defaults.heartbeat),
        election_timeout_min: ms(number("election-min-ms")?, defaults.election_timeout_min),
        election_timeout_max: ms(number("election-max-ms")?, defaults.election_timeout_max),
        request_timeout: ms(number("request-timeout-ms")?, defaults.request_timeout),
        snapshot_every: number("snapshot-every")?.unwrap_or(defaults.snapshot_every),
        logs_kept_after_snapshot: number("logs-kept")?.unwrap_or(defaults.logs_kept_after_snapshot),
    };
    if let Some(unknown) = flags.keys().next() {
        return Err(format!("unknown argument --{unknown}").into());
    }
    Ok(cfg)
}
