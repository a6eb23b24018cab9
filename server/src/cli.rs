//! The `tessera` command line: `serve`, `node`, `init`, `cert …` and `admin …`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};

use crate::admin::client::AdminClient;
use crate::admin::screen::{self, JobProgress};
use crate::admin::{GrantSet, KeyCreate, LifecycleStatus, RunRequest, watch};
use crate::config::{Config, ConfigLayer, DEFAULT_DATA_DIR};
use crate::data::policy::{SiteReplication, StoragePolicy};
use crate::datadir::{ADMIN_TOKEN_FILE, CREDENTIALS_FILE};
use crate::otel::{OtlpSettings, Resource};
use crate::{RunningServer, Server};

/// Tessera: an S3-compatible object store.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the S3 gateway (with no options: the embedded default under ./tessera-data).
    Serve(Box<ServeArgs>),
    /// Run a storage node: serve this machine's disks to the gateways.
    Node(NodeArgs),
    /// Set up a cluster: its CA, certificates, keys and every process's config.
    Init(InitArgs),
    /// Cluster certificates.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Administer a running server through its admin API.
    Admin(AdminArgs),
    /// Exit 0 if URL answers 2xx within two seconds, 1 otherwise (for
    /// container health checks, where there is no shell or curl).
    Healthcheck(HealthcheckArgs),
}

/// `tessera node`.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The node's TOML configuration file (written by `tessera init`)
    #[arg(long, env = "TESSERA_NODE_CONFIG")]
    pub config: PathBuf,
}

/// `tessera init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Directory to write the cluster into (missing or empty)
    #[arg(long)]
    pub out: PathBuf,
    /// The cluster's layout.
    #[command(flatten)]
    pub layout: crate::init::LayoutRequest,
}

/// `tessera cert …`.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Issue a certificate to one more node or gateway (NAME.pem and NAME.key).
    Issue {
        /// Directory of the cluster CA (ca.pem and ca.key)
        #[arg(long)]
        ca_dir: PathBuf,
        /// The member's name: node-<id> for a node, gateway-<n> for a gateway
        #[arg(long)]
        name: String,
        /// Also make it metadata member <id> (a gateway or witness of a
        /// metadata cluster; its config's member_id)
        #[arg(long)]
        member_id: Option<u64>,
        /// Directory to write the certificate and key into [default: the CA directory]
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `tessera serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (flags and TESSERA_* variables override it)
    #[arg(long, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    /// The settings.
    #[command(flatten)]
    pub settings: ConfigLayer,
}

/// `tessera admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// URL of the server's admin listener
    #[arg(
        long,
        env = "TESSERA_ADMIN_URL",
        default_value = "http://127.0.0.1:9001"
    )]
    pub url: String,
    /// Admin token [default: read from <data-dir>/admin.token]
    #[arg(long, env = "TESSERA_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The server's data directory, to read the admin token from
    #[arg(long, env = "TESSERA_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Print JSON instead of text, for scripts (with --watch: one object a line)
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// `tessera admin …` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// The cluster's health on one screen: what is wrong (as the alert
    /// rules judge it), members and leader, nodes with their space,
    /// stores, repair and the other jobs.
    Status {
        /// Redraw it every two seconds until Ctrl-C (a wall screen)
        #[arg(long)]
        watch: bool,
    },
    /// Show background jobs (gc, repair, scrub, sweep, lifecycle, evacuate): queued, done, rate, ETA.
    Jobs,
    /// Start a pass of a background job now.
    #[command(subcommand)]
    Job(JobCommand),
    /// Scrub: verify every stored block's checksum.
    #[command(subcommand)]
    Scrub(ScrubCommand),
    /// Repair: rebuilding missing and corrupt shards.
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Site replication: the copies sites lack of objects kept as a copy per site.
    #[command(subcommand)]
    Replication(ReplicationCommand),
    /// Lifecycle: the buckets' expiration rules, carried out daily.
    #[command(subcommand)]
    Lifecycle(LifecycleCommand),
    /// Storage nodes and their stores.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Members of the metadata cluster (gateways and witnesses).
    #[command(subcommand)]
    Member(MemberCommand),
    /// Make the members of SITE the voters when the voting site is lost for
    /// good (two sites without a witness). Shows what may be lost; acts
    /// only with --yes, after you fenced the lost site (powered off or cut
    /// off for good: if it came back as it was, it could elect its own leader).
    Failover {
        /// The surviving site (ask one of its gateways)
        #[arg(long)]
        to: String,
        /// The lost site is fenced: do it
        #[arg(long)]
        yes: bool,
    },
    /// Manage access keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage per-bucket grants.
    #[command(subcommand)]
    Bucket(BucketCommand),
}

/// `tessera admin node …`.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Every storage node (address, zone, state, last heartbeat, space),
    /// then every store by node: up, down, lost (down past the repair
    /// grace, its shards being rebuilt elsewhere) or draining.
    List,
    /// Add a storage node: the gateway checks that it answers as
    /// `node-<id>` and records it in the metadata, so every gateway uses it.
    Add {
        /// The node's id (its certificate is issued to `node-<id>`)
        id: u64,
        /// `host:port` of its node listener
        addr: String,
        /// The site (datacenter) it stands in
        #[arg(long)]
        site: Option<String>,
        /// The failure zone (rack, room, house) inside the site
        #[arg(long)]
        zone: Option<String>,
    },
    /// Forget a storage node, once it holds nothing referenced (drain it
    /// first). Remove it from the gateways' `[[nodes]]` too, or they
    /// register it again at their next start.
    Remove {
        /// The node's id
        node: u64,
    },
    /// Move every shard off a storage node (it keeps serving reads until
    /// then); when `tessera admin jobs` shows evacuate and repair idle, the
    /// node holds nothing referenced and can be stopped and removed.
    Drain {
        /// The node's id
        node: u64,
        /// Then follow the moving of its shards with a progress bar until done
        #[arg(long)]
        watch: bool,
    },
}

/// `tessera admin member …`.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Every member: voter or learner, its address, the leader, and (asked
    /// of the leader) how many log entries each is behind.
    List,
    /// Add a member as a learner (it receives the log but does not vote);
    /// returns once it has caught up. Start it first, with a certificate
    /// issued to `member-<id>`.
    Add {
        /// The member's id, never used before in this cluster
        id: u64,
        /// `host:port` of its cluster (raft) listener
        addr: String,
    },
    /// Make a learner a voter.
    Promote {
        /// The member's id
        id: u64,
    },
    /// Remove a member (voter or learner) from the cluster. Stop it
    /// afterwards; its id is not to be used again.
    Remove {
        /// The member's id
        id: u64,
    },
}

/// `tessera admin job …`.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Run a pass of the job now instead of at its next turn.
    Start {
        /// The job: gc, repair, scrub, sweep, lifecycle or evacuate
        name: String,
    },
}

/// `tessera admin scrub …`.
#[derive(Debug, Subcommand)]
pub enum ScrubCommand {
    /// Start a full scrub pass now.
    Start,
    /// How far the scrub pass is: segments verified and left, rate, ETA.
    Status {
        /// Redraw a progress bar every second until the pass is done
        #[arg(long)]
        watch: bool,
    },
}

/// `tessera admin lifecycle …`.
#[derive(Debug, Subcommand)]
pub enum LifecycleCommand {
    /// Carry out the buckets' lifecycle rules now (on the metadata leader's
    /// admin API).
    Run {
        /// Judge the rules as if this many more days had passed, to try
        /// them out (object locks are still judged at the real time)
        #[arg(long, default_value_t = 0)]
        days_ahead: u32,
        /// Wait until the run is finished and show what it did
        #[arg(long)]
        wait: bool,
    },
    /// What the run under way, or the last one, did.
    Status,
}

/// `tessera admin repair …`.
#[derive(Debug, Subcommand)]
pub enum RepairCommand {
    /// How far repair is: shards pending and done, bytes rebuilt, rate,
    /// ETA, segments at risk, and whether it is done.
    Status {
        /// Redraw a progress bar every second until repair is done
        #[arg(long)]
        watch: bool,
    },
}

/// `tessera admin replication …`.
#[derive(Debug, Subcommand)]
pub enum ReplicationCommand {
    /// What each site lacks (copies, bytes, lag), the objects with only one
    /// site's copy, the replicator's rate and ETA, and whether it is done.
    Status {
        /// Redraw a progress bar every second until replication is done
        #[arg(long)]
        watch: bool,
        /// Objects to name per site
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

/// `tessera admin key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an access key and print its secret (shown only once).
    Create {
        /// A name to recognise the key by
        #[arg(long, default_value = "")]
        name: String,
        /// Do not let the key create buckets
        #[arg(long)]
        no_create_bucket: bool,
        /// Make it an administrator key (every bucket, every operation)
        #[arg(long)]
        admin: bool,
    },
    /// List access keys and their grants.
    List,
    /// Delete an access key and its grants.
    Delete {
        /// Access key id
        key: String,
    },
}

/// `tessera admin bucket …`.
#[derive(Debug, Subcommand)]
pub enum BucketCommand {
    /// Grant a key access to a bucket.
    Allow {
        /// Access key id
        key: String,
        /// Bucket name
        bucket: String,
        /// Allow reading and listing
        #[arg(long)]
        read: bool,
        /// Allow writing and deleting objects
        #[arg(long)]
        write: bool,
        /// Make the key an owner (bucket settings, delete bucket)
        #[arg(long)]
        owner: bool,
    },
    /// Remove a key's access to a bucket.
    Deny {
        /// Access key id
        key: String,
        /// Bucket name
        bucket: String,
    },
    /// Show or set the erasure code and site copies of a bucket's new
    /// objects (its storage policy; without one the gateway's defaults).
    Policy {
        /// Bucket name
        bucket: String,
        /// Data shards (k) of new segments; with --parity-shards, sets the policy
        #[arg(long, requires = "parity_shards")]
        data_shards: Option<u16>,
        /// Parity shards (m) of new segments
        #[arg(long, requires = "data_shards")]
        parity_shards: Option<u16>,
        /// Sites that each keep a whole copy, comma-separated (none: one copy spread over the sites)
        #[arg(long, value_delimiter = ',', requires = "data_shards")]
        site_copies: Vec<String>,
        /// How the site copies are written: sync (the PUT waits for every site) or async (the site replicator copies them) [default: the gateway's]
        #[arg(long, value_enum, requires = "site_copies")]
        replication: Option<SiteReplication>,
        /// Drop the policy: new objects follow the gateway's defaults again
        #[arg(long, conflicts_with = "data_shards")]
        clear: bool,
    },
}

/// `tessera admin member …`.
async fn member(client: &AdminClient, command: MemberCommand, json: bool) -> Result<()> {
    match command {
        MemberCommand::List => show(json, &client.members().await?, members_table),
        MemberCommand::Add { id, addr } => {
            client
                .add_member(&crate::members::admin::MemberAdd { id, addr })
                .await?;
            done(
                json,
                serde_json::json!({"member": id, "added": true}),
                || format!("member {id}: added as a learner, caught up\n"),
            )
        }
        MemberCommand::Promote { id } => {
            client.promote_member(id).await?;
            done(
                json,
                serde_json::json!({"member": id, "voter": true}),
                || format!("member {id}: votes\n"),
            )
        }
        MemberCommand::Remove { id } => {
            client.remove_member(id).await?;
            done(
                json,
                serde_json::json!({"member": id, "removed": true}),
                || format!("member {id}: removed\n"),
            )
        }
    }
}

/// `tessera admin failover --to SITE [--yes]`.
async fn failover(client: &AdminClient, site: &str, yes: bool, json: bool) -> Result<()> {
    let plan = client.failover_plan(site).await?;
    show(json, &plan, failover_text)?;
    if plan.has_quorum {
        anyhow::bail!("the cluster has a quorum: nothing to fail over");
    }
    if !yes {
        anyhow::bail!("nothing done: fence the lost site, then run this again with --yes");
    }
    let done_plan = client.failover(site).await?;
    done(json, &done_plan, || {
        format!("failed over: members {:?} now vote\n", plan.survivors)
    })
}

/// Prints `value` as JSON with `--json`, else as `text` renders it.
fn show<T: Serialize>(json: bool, value: &T, text: impl FnOnce(&T) -> String) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", text(value));
    }
    Ok(())
}

/// `tessera admin lifecycle …`.
async fn lifecycle(client: &AdminClient, command: LifecycleCommand, json: bool) -> Result<()> {
    let status = match command {
        LifecycleCommand::Status => client.lifecycle_status().await?,
        LifecycleCommand::Run { days_ahead, wait } => {
            let before = client.lifecycle_status().await?.runs;
            let started = client.run_lifecycle(&RunRequest { days_ahead }).await?;
            if !wait {
                return done(json, started, || {
                    "lifecycle: run started; see `tessera admin lifecycle status`\n".to_owned()
                });
            }
            loop {
                let status = client.lifecycle_status().await?;
                if status.runs > before && !status.running && !status.pending {
                    break status;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    };
    show(json, &status, lifecycle_report)
}

fn lifecycle_report(s: &LifecycleStatus) -> String {
    let state = if s.running { "running" } else { "idle" };
    let as_of = s
        .as_of
        .and_then(|ms| time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".to_owned());
    let c = &s.counts;
    format!(
        "lifecycle: {state}, {} runs finished, rules judged as of {as_of}\n\
         expired {}, noncurrent versions removed {}, delete markers removed {}, \
         uploads aborted {}, kept by object lock {}, changed meanwhile {}\n",
        s.runs,
        c.objects_expired,
        c.versions_removed,
        c.markers_removed,
        c.uploads_aborted,
        c.skipped_locked,
        c.skipped_changed
    )
}

/// Prints what an action did: `value` as JSON with `--json`, else `text`.
fn done<T: Serialize>(json: bool, value: T, text: impl FnOnce() -> String) -> Result<()> {
    show(json, &value, |_| text())
}

/// What a failover would do, in words.
pub fn failover_text(plan: &crate::members::failover::FailoverPlan) -> String {
    let heard = plan.leader_heard_ms_ago.map_or_else(
        || "not since this member started".to_owned(),
        |ms| format!("{:.1} s ago", ms as f64 / 1000.0),
    );
    let mut out = format!(
        "failover to {site}: members {survivors:?} become the voters\n\
         quorum now: {quorum}\n\
         asked member {asked}: last log index {last}\n\
         the lost leader last heard {heard}, its commit index then {commit}\n\
         surely lost: {lost} committed entries, plus whatever it committed after it was last heard\n",
        site = plan.site,
        survivors = plan.survivors,
        quorum = if plan.has_quorum { "yes" } else { "no" },
        asked = plan.asked,
        last = plan.last_log_index,
        commit = plan.leader_commit_seen,
        lost = plan.surely_lost_entries,
    );
    match &plan.site_lacks {
        None => out.push_str(&format!(
            "object data: {} holds a copy of every object kept as a copy per site\n",
            plan.site
        )),
        Some(lacks) => {
            out.push_str(&format!(
                "object data lost with the other site: {} segments ({} bytes) not copied to {} yet, \
                 the oldest written {:.1} s ago\n",
                lacks.segments, lacks.bytes, plan.site, lacks.lag_secs
            ));
            for o in &plan.lacking_objects {
                out.push_str(&format!(
                    "  {}/{} ({}, {} bytes)\n",
                    o.bucket, o.key, o.version, o.bytes
                ));
            }
            let named = plan.lacking_objects.len() as u64;
            if lacks.segments > named {
                out.push_str(&format!(
                    "  … and {} more segments\n",
                    lacks.segments - named
                ));
            }
        }
    }
    out
}

/// The members as a table, with the answering member's view above it.
pub fn members_table(list: &crate::members::admin::MemberList) -> String {
    let leader = list
        .leader
        .map_or_else(|| "none".to_owned(), |l| l.to_string());
    let quorum = if list.has_quorum { "yes" } else { "NO" };
    let mut out = format!(
        "asked member {}: leader {leader}, term {}, quorum {quorum}, last log index {}\n",
        list.this, list.term, list.last_log_index
    );
    out.push_str(&format!(
        "{:<6} {:<8} {:<28} {}\n",
        "ID", "ROLE", "ADDRESS", "LAG"
    ));
    for m in &list.members {
        let role = screen::member_role(list, m);
        let lag = m.lag.map_or_else(|| "-".to_owned(), |l| l.to_string());
        out.push_str(&format!("{:<6} {role:<8} {:<28} {lag}\n", m.id, m.addr));
    }
    out
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Node(args) => node(args).await,
        Command::Init(args) => init(&args),
        Command::Cert(CertCommand::Issue {
            ca_dir,
            name,
            member_id,
            out,
        }) => {
            let also: Vec<String> = member_id
                .map(tessera_raft::node::member_name)
                .into_iter()
                .collect();
            issue_cert(&ca_dir, &name, &also, out.as_deref())
        }
        Command::Admin(args) => admin(args).await,
        Command::Healthcheck(args) => Ok(healthcheck(&args.url).await?),
    }
}

async fn node(args: NodeArgs) -> Result<()> {
    let mut config = crate::storage_node::NodeConfig::from_file(&args.config)?;
    if let Ok(endpoint) = std::env::var("TESSERA_OTLP_ENDPOINT") {
        config.otlp_endpoint = Some(endpoint);
    }
    let otlp = OtlpSettings::resolve(config.otlp_endpoint.clone(), config.otlp_queue_spans)?;
    let resource = Resource {
        service: "tessera-node",
        instance: crate::storage_node::member_name(config.id),
    };
    let tracing = crate::otel::init(otlp.as_ref(), resource)?;
    let node = crate::storage_node::RunningNode::start(&config).await?;
    let metrics = node
        .metrics_addr
        .map(|at| format!(", metrics on http://{at}"))
        .unwrap_or_default();
    println!(
        "Tessera storage node {} on {}, stores {}{metrics}",
        config.id,
        node.addr,
        node.stores.join(", ")
    );
    println!("Ready; stop with Ctrl-C or SIGTERM.");
    wait_for_signal().await?;
    tracing::info!("shutting down");
    node.shutdown().await;
    if let Some(tracing) = tracing {
        tracing.shutdown().await;
    }
    Ok(())
}

fn init(args: &InitArgs) -> Result<()> {
    let cluster = crate::init::run(&args.out, &args.layout)?;
    print!("{}", cluster.instructions(&invoked_as()));
    Ok(())
}

fn issue_cert(ca_dir: &Path, name: &str, also: &[String], out: Option<&Path>) -> Result<()> {
    let ca = crate::cluster_ca::load(ca_dir)?;
    let out = out.unwrap_or(ca_dir);
    tessera_storage::store::create_private_dir(out)
        .with_context(|| format!("creating {}", out.display()))?;
    let files = crate::cluster_ca::issue(&ca, name, also, name, out)?;
    println!(
        "Wrote {} and {} (the key owner-only). Point cluster_cert and cluster_key of {name}'s \
         config at them; a node's config needs the id of its name.",
        files.cert.display(),
        files.key.display()
    );
    Ok(())
}

/// How the operator called this binary, to print commands they can paste.
fn invoked_as() -> String {
    std::env::args_os().next().map_or_else(
        || "tessera".to_owned(),
        |arg| arg.to_string_lossy().into_owned(),
    )
}

async fn serve(args: ServeArgs) -> Result<()> {
    let config = Config::load(&args.settings, args.config.as_deref())?;
    let resource = Resource {
        service: "tessera-gateway",
        instance: config.metadata.as_ref().map_or_else(
            || config.listen.to_string(),
            |m| tessera_raft::node::member_name(m.member_id),
        ),
    };
    let tracing = crate::otel::init(config.otlp.as_ref(), resource)?;
    let data_dir = config.data_dir.clone();
    let stopped = if config.role == crate::config::Role::Witness {
        let witness = crate::witness::RunningWitness::start(config).await?;
        println!(
            "Tessera witness (metadata member {}), admin on http://{}",
            witness.meta().id(),
            witness.admin_addr
        );
        println!("Ready; stop with Ctrl-C or SIGTERM.");
        wait_for_signal().await?;
        tracing::info!("shutting down");
        witness.shutdown().await
    } else {
        let server = Server::start(config).await?;
        announce(&server, &data_dir);
        wait_for_signal().await?;
        tracing::info!("shutting down");
        server.shutdown().await
    };
    if let Some(tracing) = tracing {
        tracing.shutdown().await;
    }
    stopped
}

/// Prints where the server listens and, at first start, the generated key.
fn announce(server: &RunningServer, data_dir: &std::path::Path) {
    println!(
        "Tessera S3 API on {}, admin on {}",
        server.s3_url(),
        server.admin_url()
    );
    println!("Access key: {}", server.credentials.access_key);
    if server.credentials_generated {
        println!("Secret key: {}", server.credentials.secret_key);
        println!(
            "(generated at first start; saved in {})",
            data_dir.join(CREDENTIALS_FILE).display()
        );
    }
    println!("Ready; stop with Ctrl-C or SIGTERM.");
}

async fn wait_for_signal() -> Result<()> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

async fn admin(args: AdminArgs) -> Result<()> {
    let token = match args.token {
        Some(token) => token,
        None => {
            let path = args.data_dir.join(ADMIN_TOKEN_FILE);
            std::fs::read_to_string(&path)
                .with_context(|| {
                    format!(
                        "reading the admin token from {} (or pass --token)",
                        path.display()
                    )
                })?
                .trim()
                .to_owned()
        }
    };
    let client = AdminClient::new(args.url, token);
    let json = args.json;
    let out = watch::Output::new(json);
    match args.command {
        AdminCommand::Status { watch: false } => {
            let summary = client.summary().await?;
            show(json, &summary, |s| screen::status_screen(s, out.terminal))
        }
        AdminCommand::Status { watch: true } => {
            watch::screen(out, || async {
                let summary = client.summary().await?;
                let text = screen::status_screen(&summary, out.terminal);
                Ok((summary, text))
            })
            .await
        }
        AdminCommand::Node(NodeCommand::Drain { node, watch }) => {
            let stores = client.drain_node(node).await?;
            if !watch {
                return done(
                    json,
                    serde_json::json!({"node": node, "draining": stores}),
                    || format!("node {node}: draining {}\n", stores.join(", ")),
                );
            }
            if !json {
                println!("node {node}: draining {}", stores.join(", "));
            }
            let label = format!("drain of node {node}");
            watch::progress(out, || async {
                let status = client.repair_status().await?;
                let progress = JobProgress::repair(label.clone(), &status);
                Ok((status, progress))
            })
            .await
        }
        AdminCommand::Node(NodeCommand::List) => {
            let nodes = client.nodes().await?;
            let status = client.status().await?;
            let listing = serde_json::json!({"nodes": nodes, "stores": status.stores});
            show(json, &listing, |_| {
                let mut text = String::new();
                if !nodes.is_empty() {
                    text = format!("{}\n", nodes_table(&nodes, crate::auth::now_millis()));
                }
                text + &stores_table(&status.stores)
            })
        }
        AdminCommand::Node(NodeCommand::Add {
            id,
            addr,
            site,
            zone,
        }) => {
            let entry = crate::config::NodeEntry {
                id,
                addr,
                site,
                zone,
            };
            let stores = client.add_node(&entry).await?;
            done(
                json,
                serde_json::json!({"node": id, "stores": stores}),
                || format!("node {id}: added with stores {}\n", stores.join(", ")),
            )
        }
        AdminCommand::Node(NodeCommand::Remove { node }) => {
            client.remove_node(node).await?;
            done(
                json,
                serde_json::json!({"node": node, "removed": true}),
                || format!("node {node}: removed\n"),
            )
        }
        AdminCommand::Member(command) => member(&client, command, json).await,
        AdminCommand::Failover { to, yes } => failover(&client, &to, yes, json).await,
        AdminCommand::Jobs => show(json, &client.jobs().await?, |jobs| jobs_table(jobs)),
        AdminCommand::Job(JobCommand::Start { name }) => {
            client.start_job(&name).await?;
            done(
                json,
                serde_json::json!({"job": name, "started": true}),
                || format!("{name}: pass started\n"),
            )
        }
        AdminCommand::Repair(RepairCommand::Status { watch: false }) => {
            show(json, &client.repair_status().await?, repair_report)
        }
        AdminCommand::Repair(RepairCommand::Status { watch: true }) => {
            watch::progress(out, || async {
                let status = client.repair_status().await?;
                let progress = JobProgress::repair("repair", &status);
                Ok((status, progress))
            })
            .await
        }
        AdminCommand::Replication(ReplicationCommand::Status {
            watch: false,
            limit,
        }) => show(
            json,
            &client.replication_status(limit).await?,
            replication_report,
        ),
        AdminCommand::Replication(ReplicationCommand::Status { watch: true, limit }) => {
            watch::progress(out, || async {
                let status = client.replication_status(limit).await?;
                let progress = JobProgress::replication(&status);
                Ok((status, progress))
            })
            .await
        }
        AdminCommand::Lifecycle(command) => lifecycle(&client, command, json).await,
        AdminCommand::Scrub(ScrubCommand::Start) => {
            client.start_job("scrub").await?;
            done(
                json,
                serde_json::json!({"job": "scrub", "started": true}),
                || {
                    "scrub: pass started; follow it with `tessera admin scrub status --watch`\n"
                        .to_owned()
                },
            )
        }
        AdminCommand::Scrub(ScrubCommand::Status { watch }) => {
            let ask = || async {
                let report = client
                    .jobs()
                    .await?
                    .into_iter()
                    .find(|j| j.job == "scrub")
                    .context("the server runs no scrub job")?;
                let progress = JobProgress::job(&report, "segments");
                Ok((report, progress))
            };
            if watch {
                return watch::progress(out, ask).await;
            }
            let (report, progress) = ask().await?;
            show(json, &report, |_| format!("{}\n", progress.line(0)))
        }
        AdminCommand::Key(KeyCommand::Create {
            name,
            no_create_bucket,
            admin,
        }) => {
            let created = client
                .create_key(&KeyCreate {
                    name,
                    allow_create_bucket: !no_create_bucket,
                    admin,
                })
                .await?;
            show(json, &created, |c| {
                format!(
                    "Access key: {}\nSecret key: {}\n",
                    c.access_key, c.secret_key
                )
            })
        }
        AdminCommand::Key(KeyCommand::List) => {
            show(json, &client.list_keys().await?, |keys| keys_text(keys))
        }
        AdminCommand::Key(KeyCommand::Delete { key }) => {
            client.delete_key(&key).await?;
            done(json, serde_json::json!({"deleted": key}), || {
                format!("Deleted {key}\n")
            })
        }
        AdminCommand::Bucket(BucketCommand::Allow {
            key,
            bucket,
            read,
            write,
            owner,
        }) => {
            if !(read || write || owner) {
                bail!("give at least one of --read, --write, --owner");
            }
            grant(
                &client,
                json,
                GrantSet {
                    access_key: key,
                    bucket,
                    read,
                    write,
                    owner,
                },
            )
            .await
        }
        AdminCommand::Bucket(BucketCommand::Policy {
            bucket,
            data_shards,
            parity_shards,
            site_copies,
            replication,
            clear,
        }) => {
            if clear {
                client.set_storage_policy(&bucket, None).await?;
            } else if let (Some(data_shards), Some(parity_shards)) = (data_shards, parity_shards) {
                let chosen = StoragePolicy {
                    data_shards,
                    parity_shards,
                    site_copies,
                    replication,
                };
                client.set_storage_policy(&bucket, Some(&chosen)).await?;
            }
            let now = client.storage_policy(&bucket).await?;
            show(json, &now, |p| match p {
                None => format!("{bucket}: the gateway's defaults\n"),
                Some(p) if p.site_copies.is_empty() => format!(
                    "{bucket}: {}+{}, one copy spread over the sites\n",
                    p.data_shards, p.parity_shards
                ),
                Some(p) => format!(
                    "{bucket}: {}+{}, a copy on each of {}{}\n",
                    p.data_shards,
                    p.parity_shards,
                    p.site_copies.join(", "),
                    p.replication
                        .map(|r| format!(", written {r}"))
                        .unwrap_or_default()
                ),
            })
        }
        AdminCommand::Bucket(BucketCommand::Deny { key, bucket }) => {
            grant(
                &client,
                json,
                GrantSet {
                    access_key: key,
                    bucket,
                    read: false,
                    write: false,
                    owner: false,
                },
            )
            .await
        }
    }
}

/// Sets a grant and says what the key may now do on the bucket.
async fn grant(client: &AdminClient, json: bool, grant: GrantSet) -> Result<()> {
    client.set_grant(&grant).await?;
    show(json, &grant, |g| {
        format!("{} on {}: {}\n", g.access_key, g.bucket, grant_text(g))
    })
}

/// A grant's permissions, comma-separated (`none` for none).
fn grant_text(g: &GrantSet) -> String {
    let perms: Vec<&str> = [(g.read, "read"), (g.write, "write"), (g.owner, "owner")]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
    if perms.is_empty() {
        "none".to_owned()
    } else {
        perms.join(",")
    }
}

/// The access keys, tab-separated: one line each, then a line per grant.
fn keys_text(keys: &[crate::admin::KeyInfo]) -> String {
    let mut out = String::new();
    for key in keys {
        let mut flags = Vec::new();
        if key.admin {
            flags.push("admin");
        }
        if key.allow_create_bucket {
            flags.push("create-bucket");
        }
        out.push_str(&format!(
            "{}\t{}\t{}\n",
            key.access_key,
            key.name,
            flags.join(",")
        ));
        for g in &key.grants {
            out.push_str(&format!("\t{}\t{}\n", g.bucket, grant_text(g)));
        }
    }
    out
}

/// The storage nodes as a table: one line each.
fn nodes_table(nodes: &[tessera_raft::model::NodeRecord], now: i64) -> String {
    let mut out = format!(
        "{:<6} {:<22} {:<10} {:<10} {:<9} {:>9} {:>7} {:>12} {:>12}\n",
        "NODE", "ADDRESS", "SITE", "ZONE", "STATE", "HEARD", "STORES", "CAPACITY", "USED"
    );
    for n in nodes {
        let heard = if n.heartbeat == 0 {
            "never".to_owned()
        } else {
            format!("{}s ago", (now - n.heartbeat).max(0) / 1000)
        };
        out.push_str(&format!(
            "{:<6} {:<22} {:<10} {:<10} {:<9} {:>9} {:>7} {:>12} {:>12}\n",
            n.id,
            n.address,
            n.site.as_deref().unwrap_or("-"),
            n.zone.as_deref().unwrap_or("-"),
            crate::nodes::state_name(n.state),
            heard,
            n.stores.len(),
            n.capacity,
            n.used
        ));
    }
    out
}

/// An ETA in whole seconds, `-` when unknown.
fn eta_text(secs: Option<f64>) -> String {
    secs.map_or_else(|| "-".to_owned(), |s| format!("{}s", s.ceil()))
}

/// Repair's status for a human.
fn repair_report(status: &crate::admin::RepairStatus) -> String {
    let state = if status.done {
        "done: nothing queued, every rebuilt shard verified"
    } else {
        "in progress"
    };
    let eta = eta_text(status.eta_secs);
    let mut out = format!(
        "repair:          {state}\n\
         pending shards:  {}\n\
         done shards:     {} (since the server started; {} failed attempts)\n\
         bytes rebuilt:   {}\n\
         rate:            {:.0} bytes/s, {:.1} shards/s\n\
         ETA:             {eta}\n",
        status.pending_shards,
        status.done_shards,
        status.failed_attempts,
        status.bytes_rebuilt,
        status.bytes_per_sec,
        status.shards_per_sec,
    );
    for risk in &status.at_risk {
        out.push_str(&format!(
            "at risk:         {} segments can lose {} more shards\n",
            risk.segments, risk.redundancy_left
        ));
    }
    if !status.outstanding_stores.is_empty() {
        out.push_str(&format!(
            "to evacuate:     {} (lost or draining, shards not all queued yet)\n",
            status.outstanding_stores.join(", ")
        ));
    }
    if !status.waiting_stores.is_empty() {
        out.push_str(&format!(
            "down:            {} (within the repair grace: not rebuilt yet)\n",
            status.waiting_stores.join(", ")
        ));
    }
    out
}

/// Site replication's status for a human.
fn replication_report(status: &crate::admin::ReplicationStatus) -> String {
    let state = if status.done {
        "done: every site holds its copy of every object, each verified"
    } else {
        "in progress"
    };
    let eta = eta_text(status.eta_secs);
    let mut out = format!(
        "replication:     {state}\n\
         done shards:     {} (since the server started; {} bytes)\n\
         rate:            {:.0} bytes/s\n\
         ETA:             {eta}\n",
        status.done_shards, status.bytes_copied, status.bytes_per_sec,
    );
    for site in &status.sites {
        out.push_str(&format!(
            "{:<16} lacks {} segments ({} bytes), the oldest {:.1} s behind\n",
            format!("{}:", site.site),
            site.segments,
            site.bytes,
            site.lag_secs
        ));
    }
    for o in &status.one_copy {
        out.push_str(&format!(
            "only elsewhere:  {}/{} ({}, {} bytes) not on {} yet\n",
            o.bucket, o.key, o.version, o.bytes, o.site
        ));
    }
    out
}

/// The stores as a table: one line each, by node.
fn stores_table(stores: &[crate::admin::StoreStatus]) -> String {
    let mut rows: Vec<&crate::admin::StoreStatus> = stores.iter().collect();
    rows.sort_by(|a, b| (a.node, &a.id).cmp(&(b.node, &b.id)));
    let mut out = format!(
        "{:<6} {:<10} {:<10} {:<20} {:<8}\n",
        "NODE", "SITE", "ZONE", "STORE", "STATE"
    );
    for s in rows {
        let node = if s.node == 0 {
            "local".to_owned()
        } else {
            s.node.to_string()
        };
        let state = match (s.up, s.lost, s.draining) {
            (_, _, true) => "draining",
            (true, _, _) => "up",
            (false, false, _) => "down",
            (false, true, _) => "lost",
        };
        out.push_str(&format!(
            "{:<6} {:<10} {:<10} {:<20} {:<8}\n",
            node,
            s.site.as_deref().unwrap_or("-"),
            s.zone.as_deref().unwrap_or("-"),
            s.id,
            state
        ));
    }
    out
}

fn jobs_table(jobs: &[crate::admin::JobReport]) -> String {
    let mut out = format!(
        "{:<8} {:>10} {:>10} {:>8} {:>12} {:>12} {:>10}\n",
        "JOB", "QUEUED", "DONE", "FAILED", "BYTES", "RATE/s", "ETA"
    );
    for j in jobs {
        let eta = j
            .eta_secs
            .map_or_else(|| "-".to_owned(), |s| format!("{}s", s.ceil()));
        out.push_str(&format!(
            "{:<8} {:>10} {:>10} {:>8} {:>12} {:>12} {:>10}\n",
            j.job,
            j.queued,
            j.done,
            j.failed,
            j.bytes,
            format!("{:.0}", j.bytes_per_sec),
            eta
        ));
    }
    out
}

/// Default URL of `tessera healthcheck`: the admin listener's readiness.
pub const DEFAULT_HEALTHCHECK_URL: &str = "http://127.0.0.1:9001/health/ready";

/// How long `tessera healthcheck` waits for the whole answer.
pub const HEALTHCHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `tessera healthcheck`.
#[derive(Debug, clap::Args)]
pub struct HealthcheckArgs {
    /// The http:// URL to ask
    #[arg(default_value = DEFAULT_HEALTHCHECK_URL)]
    pub url: String,
}

/// Why `tessera healthcheck` found a server unhealthy.
#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    /// The URL cannot be asked (not `http://host[:port]/…`).
    #[error("{url}: not an http:// URL ({why})")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// Nothing answered, or the connection failed.
    #[error("{url}: no answer")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// The client's error.
        source: hyper_util::client::legacy::Error,
    },
    /// No whole answer within [`HEALTHCHECK_TIMEOUT`].
    #[error("{url}: no answer within {}s", HEALTHCHECK_TIMEOUT.as_secs())]
    Timeout {
        /// The URL asked.
        url: String,
    },
    /// An answer other than 2xx.
    #[error("{url}: {status} {body}")]
    Unhealthy {
        /// The URL asked.
        url: String,
        /// Its status.
        status: http::StatusCode,
        /// The start of its body (what the server says is wrong).
        body: String,
    },
}

/// Asks `url` with a GET: `Ok` on a 2xx answer within [`HEALTHCHECK_TIMEOUT`].
pub async fn healthcheck(url: &str) -> Result<(), HealthcheckError> {
    use http_body_util::BodyExt;
    let bad = |why: &str| HealthcheckError::BadUrl {
        url: url.to_owned(),
        why: why.to_owned(),
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(bad("give http://host[:port]/path"));
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let ask = async {
        let answer = client
            .get(uri)
            .await
            .map_err(|source| HealthcheckError::Unreachable {
                url: url.to_owned(),
                source,
            })?;
        let status = answer.status();
        // The body says why a server is not ready; a broken body is no reason
        // to call a 2xx unhealthy.
        let body = answer
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_owned())
            .unwrap_or_default();
        Ok((status, body))
    };
    let (status, body) = tokio::time::timeout(HEALTHCHECK_TIMEOUT, ask)
        .await
        .map_err(|_| HealthcheckError::Timeout {
            url: url.to_owned(),
        })??;
    if status.is_success() {
        return Ok(());
    }
    Err(HealthcheckError::Unhealthy {
        url: url.to_owned(),
        status,
        body: body.chars().take(200).collect(),
    })
}

#[cfg(test)]
mod healthcheck_tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::{HealthcheckError, healthcheck};

    /// Answers every connection on a loopback port with `reply` (or with
    /// nothing at all when `None`); returns the URL to ask.
    async fn serve(reply: Option<&'static str>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = conn.read(&mut buf).await;
                    match reply {
                        Some(reply) => conn.write_all(reply.as_bytes()).await.unwrap(),
                        None => tokio::time::sleep(std::time::Duration::from_secs(30)).await,
                    }
                });
            }
        });
        format!("http://{addr}/health/ready")
    }

    #[tokio::test]
    async fn a_2xx_is_healthy() {
        let url = serve(Some("HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nready\n")).await;
        healthcheck(&url).await.unwrap();
    }

    #[tokio::test]
    async fn a_503_is_unhealthy_and_says_why() {
        let url = serve(Some(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 10\r\n\r\nno quorum\n",
        ))
        .await;
        match healthcheck(&url).await {
            Err(HealthcheckError::Unhealthy { status, body, .. }) => {
                assert_eq!(status, 503);
                assert_eq!(body, "no quorum");
            }
            other => panic!("expected Unhealthy, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn silence_times_out_in_two_seconds() {
        let url = serve(None).await;
        let start = std::time::Instant::now();
        let got = healthcheck(&url).await;
        assert!(
            matches!(got, Err(HealthcheckError::Timeout { .. })),
            "{got:?}"
        );
        let took = start.elapsed();
        assert!(took >= std::time::Duration::from_millis(1900), "{took:?}");
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let got = healthcheck(&format!("http://{addr}/")).await;
        assert!(
            matches!(got, Err(HealthcheckError::Unreachable { .. })),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn only_http_urls() {
        for url in [
            "https://127.0.0.1:9001/health/ready",
            "not a url",
            "/health/ready",
        ] {
            let got = healthcheck(url).await;
            assert!(
                matches!(got, Err(HealthcheckError::BadUrl { .. })),
                "{url}: {got:?}"
            );
        }
    }
}
