//! The admin listener's request handler: metrics, health and the admin API.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_raft::MetaError;
use tessera_raft::command::Command;
use tessera_raft::model::Grant;
use tessera_raft::node::MetaNode;

use super::console::{self, Console};
use super::summary::Summary;
use super::{
    ApiError, GrantSet, JobReport, KeyCreate, KeyCreated, KeyInfo, RaftStatus, RepairStatus,
    ReplicationStatus, Status, StoreStatus,
};
use crate::auth::{KeyStore, now_millis};
use crate::config::{MemberEntry, NodeEntry};
use crate::data::policy::StoragePolicy;
use crate::datadir::Credentials;
use crate::members::failover::{self, FailoverError, FailoverRequest};
use crate::members::{self, admin::MemberAdd};
use crate::nodes::{NodeAdminError, Nodes};
use crate::placement::StoreSet;
use crate::workers::evacuate::Evacuated;
use crate::workers::job::Jobs;
use crate::workers::lifecycle::{LifecycleControl, RunRequest};

/// Largest admin API request body accepted.
const MAX_BODY: usize = 64 * 1024;

/// Everything the admin handler needs.
pub(crate) struct AdminState {
    /// The metadata member.
    pub meta: MetaNode,
    /// The shard stores (their up/down state is kept by the health worker).
    pub stores: StoreSet,
    /// Access keys (`None` on a witness, which serves no S3).
    pub keys: Option<KeyStore>,
    /// The background jobs.
    pub jobs: Jobs,
    /// Runs of the lifecycle job asked for, and its status.
    pub lifecycle: LifecycleControl,
    /// Which lost and draining stores have every shard queued for repair.
    pub evacuated: Evacuated,
    /// Bearer token of the admin API.
    pub token: String,
    /// What a write of the default storage policy needs up.
    pub write_need: WriteNeed,
    /// The storage nodes, when the gateway uses any.
    pub nodes: Option<Nodes>,
    /// The metadata cluster's founding members (`[[members]]`; empty for
    /// the embedded single member): where each stands, for failover.
    pub founding: Vec<MemberEntry>,
    /// The web console (`None` on a witness, which keeps no access keys).
    pub console: Option<Console>,
}

/// The stores a write of the default storage policy needs up: `quorum`
/// of them; with `site_copies`, that many in each site that is up at all
/// (a site down whole is skipped) and at least one such site.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteNeed {
    /// Shards that must be durable for a write.
    pub quorum: usize,
    /// Sites that each keep a copy; empty: one copy spread over them.
    pub site_copies: Vec<String>,
}

/// Objects lacking on a site that the summary names.
const SUMMARY_NAMES: usize = 10;

/// Most objects `GET /admin/v1/replication?limit=` names per site.
const MAX_NAMES: usize = 1000;

type Answer = Response<Full<Bytes>>;

/// An admin API failure: a status and a message.
pub(super) struct Failure(pub(super) StatusCode, pub(super) String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

/// How a refused node operation answers.
fn node_failure(e: NodeAdminError) -> Failure {
    let status = match &e {
        NodeAdminError::IdInUse { .. } | NodeAdminError::StillHoldsData { .. } => {
            StatusCode::CONFLICT
        }
        NodeAdminError::Unreachable { .. } => StatusCode::BAD_GATEWAY,
        NodeAdminError::NoSuchNode(_) => StatusCode::NOT_FOUND,
        NodeAdminError::Meta(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Failure(status, e.to_string())
}

/// How a refused membership change answers.
fn member_failure(e: MetaError) -> Failure {
    let status = match &e {
        MetaError::Invalid(_) => StatusCode::CONFLICT,
        MetaError::NoQuorum | MetaError::NotLeader { .. } | MetaError::Shutdown => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Failure(status, e.to_string())
}

/// How a refused failover answers.
fn failover_failure(e: FailoverError) -> Failure {
    match e {
        FailoverError::Meta(e) => member_failure(e),
        FailoverError::NoSuchSite(_) => Failure(StatusCode::NOT_FOUND, e.to_string()),
        FailoverError::NotASurvivor { .. } | FailoverError::HasQuorum(_) => {
            Failure(StatusCode::CONFLICT, e.to_string())
        }
    }
}

/// The value of `name` in the request's query string.
fn query_value(req: &Request<Incoming>, name: &str) -> Option<String> {
    form_urlencoded::parse(req.uri().query()?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// What `path` holds between `prefix` and `suffix` (`None` unless it
/// starts and ends with them, apart).
fn between<'p>(path: &'p str, prefix: &str, suffix: &str) -> Option<&'p str> {
    path.strip_prefix(prefix)?.strip_suffix(suffix)
}

/// A node or member id from a request path.
fn node_id(text: &str) -> Result<u64, Failure> {
    text.parse()
        .map_err(|_| Failure(StatusCode::BAD_REQUEST, format!("bad id {text}")))
}

impl AdminState {
    /// Answers one admin-listener request.
    pub(crate) async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<s3s::Body>, Infallible> {
        let path = req.uri().path().to_owned();
        if (path == "/console" || path.starts_with("/console/"))
            && let Some(c) = &self.console
        {
            return Ok(console::handle(&self, c, req).await);
        }
        let answer = match (req.method(), path.as_str()) {
            (&Method::GET, "/metrics") => {
                // Raft as of this scrape (a witness has no health worker).
                crate::metrics::set_raft(&self.meta.status());
                text(StatusCode::OK, crate::metrics::render())
            }
            (&Method::GET, "/health/live") => text(StatusCode::OK, "ok\n".to_owned()),
            (&Method::GET, "/health/ready") => self.ready().await,
            (_, p) if p.starts_with("/admin/") => match self.admin(req).await {
                Ok(answer) => answer,
                Err(Failure(status, error)) => json(status, &ApiError { error }),
            },
            _ => text(StatusCode::NOT_FOUND, "not found\n".to_owned()),
        };
        Ok(answer.map(s3s::Body::http_body))
    }

    /// Ready: a leader with a quorum, confirmed now (a linearizable read:
    /// a member that still hears a leader cut off from the quorum, on its
    /// side of a partition, is not ready), and stores enough for a write
    /// ([`WriteNeed`]: a dead disk of six under 4 + 2 leaves the gateway
    /// ready, as its writes go on).
    async fn is_ready(&self) -> (bool, String) {
        let status = self.meta.status();
        let quorum = status.has_quorum && self.meta.read(|_| Ok(())).await.is_ok();
        let all = self.stores.all();
        let up_in = |site: Option<&str>| {
            all.iter()
                .filter(|s| !self.stores.is_down(s.id()))
                .filter(|s| {
                    site.is_none_or(|site| self.stores.domain(s.id()).site.as_deref() == Some(site))
                })
                .count()
        };
        let up = up_in(None);
        let need = &self.write_need;
        // With a copy per site a write skips a site that is down whole,
        // and fails on one that is up with too few stores for its copy.
        let writable = if need.site_copies.is_empty() {
            up >= need.quorum
        } else {
            let sites: Vec<usize> = need.site_copies.iter().map(|s| up_in(Some(s))).collect();
            sites.iter().any(|&n| n >= need.quorum)
                && sites.iter().all(|&n| n == 0 || n >= need.quorum)
        };
        let leader = status.leader.is_some();
        let ready = leader && quorum && writable;
        let detail = format!(
            "leader: {}\nquorum: {}\nstores up: {up} of {} (need {}{})\n",
            status
                .leader
                .map_or_else(|| "none".to_owned(), |l| l.to_string()),
            if quorum { "yes" } else { "no" },
            all.len(),
            need.quorum,
            if need.site_copies.is_empty() {
                ""
            } else {
                " in each site up"
            },
        );
        (ready, detail)
    }

    async fn ready(&self) -> Answer {
        let (ready, detail) = self.is_ready().await;
        if ready {
            text(StatusCode::OK, format!("ready\n{detail}"))
        } else {
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready\n{detail}"),
            )
        }
    }

    async fn admin(&self, req: Request<Incoming>) -> Result<Answer, Failure> {
        self.check_token(&req)?;
        let method = req.method().clone();
        let path = req.uri().path().trim_end_matches('/').to_owned();
        match (&method, path.as_str()) {
            (&Method::GET, "/admin/v1/status") => Ok(json(StatusCode::OK, &self.status().await?)),
            (&Method::GET, "/admin/v1/jobs") => Ok(json(StatusCode::OK, &self.jobs.reports())),
            (&Method::GET, "/admin/v1/replication") => {
                let limit = query_value(&req, "limit")
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(100)
                    .min(MAX_NAMES);
                Ok(json(StatusCode::OK, &self.replication_status(limit).await?))
            }
            (&Method::GET, "/admin/v1/repair") => {
                Ok(json(StatusCode::OK, &self.repair_status().await?))
            }
            (&Method::GET, "/admin/v1/summary") => Ok(json(StatusCode::OK, &self.summary().await?)),
            (&Method::POST, p) if let Some(name) = between(p, "/admin/v1/jobs/", "/start") => {
                if !self.jobs.start(name) {
                    return Err(Failure(StatusCode::NOT_FOUND, format!("no job {name}")));
                }
                Ok(json(StatusCode::OK, &serde_json::json!({})))
            }
            (&Method::GET, "/admin/v1/lifecycle") => {
                Ok(json(StatusCode::OK, &self.lifecycle.status()))
            }
            (&Method::POST, "/admin/v1/lifecycle/run") => {
                let request: RunRequest = read_optional_json(req).await?;
                // Only the leader's job runs: a request elsewhere would wait for good.
                let meta = self.meta.status();
                if meta.leader != Some(meta.id) {
                    let leader = meta.leader.map_or("none yet".to_owned(), |l| l.to_string());
                    return Err(Failure(
                        StatusCode::CONFLICT,
                        format!(
                            "lifecycle runs on the metadata leader (member {leader}): ask its admin API"
                        ),
                    ));
                }
                self.lifecycle.request(request);
                if !self.jobs.start("lifecycle") {
                    return Err(Failure(
                        StatusCode::NOT_FOUND,
                        "this server runs no lifecycle job".to_owned(),
                    ));
                }
                Ok(json(StatusCode::ACCEPTED, &self.lifecycle.status()))
            }
            (&Method::GET, "/admin/v1/nodes") => {
                Ok(json(StatusCode::OK, &self.nodes()?.records().await?))
            }
            (&Method::POST, "/admin/v1/nodes") => {
                let entry: NodeEntry = read_json(req).await?;
                Ok(json(
                    StatusCode::OK,
                    &self.nodes()?.add(&entry).await.map_err(node_failure)?,
                ))
            }
            (&Method::POST, p) if let Some(node) = between(p, "/admin/v1/nodes/", "/drain") => {
                let node = node_id(node)?;
                let drained = crate::nodes::drain(&self.meta, &self.stores, node)
                    .await
                    .map_err(node_failure)?;
                tracing::info!(node, stores = ?drained, "draining storage node");
                Ok(json(StatusCode::OK, &drained))
            }
            (&Method::DELETE, p) if p.starts_with("/admin/v1/nodes/") => {
                let node = node_id(&p["/admin/v1/nodes/".len()..])?;
                self.nodes()?.remove(node).await.map_err(node_failure)?;
                tracing::info!(node, "storage node removed");
                Ok(json(StatusCode::OK, &serde_json::json!({})))
            }
            (&Method::GET, "/admin/v1/members") => {
                Ok(json(StatusCode::OK, &members::admin::list(&self.meta)))
            }
            (&Method::POST, "/admin/v1/members") => {
                let add: MemberAdd = read_json(req).await?;
                members::admin::add(&self.meta, &add)
                    .await
                    .map_err(member_failure)?;
                tracing::info!(member = add.id, addr = %add.addr, "metadata member added as a learner");
                Ok(json(StatusCode::OK, &serde_json::json!({})))
            }
            (&Method::POST, p) if let Some(id) = between(p, "/admin/v1/members/", "/promote") => {
                let id = node_id(id)?;
                members::admin::promote(&self.meta, id)
                    .await
                    .map_err(member_failure)?;
                tracing::info!(member = id, "metadata member promoted to voter");
                Ok(json(StatusCode::OK, &serde_json::json!({})))
            }
            (&Method::DELETE, p) if p.starts_with("/admin/v1/members/") => {
                let id = node_id(&p["/admin/v1/members/".len()..])?;
                members::admin::remove(&self.meta, id)
                    .await
                    .map_err(member_failure)?;
                tracing::info!(member = id, "metadata member removed");
                Ok(json(StatusCode::OK, &serde_json::json!({})))
            }
            (&Method::GET, "/admin/v1/failover") => {
                let site = query_value(&req, "site").unwrap_or_default();
                let plan = failover::plan(&self.meta, &self.founding, &site)
                    .await
                    .map_err(failover_failure)?;
                Ok(json(StatusCode::OK, &plan))
            }
            (&Method::POST, "/admin/v1/failover") => {
                let request: FailoverRequest = read_json(req).await?;
                let plan = failover::run(&self.meta, &self.founding, &request.site)
                    .await
                    .map_err(failover_failure)?;
                Ok(json(StatusCode::OK, &plan))
            }
            (&Method::GET, "/admin/v1/keys") => Ok(json(StatusCode::OK, &self.list_keys().await?)),
            (&Method::POST, "/admin/v1/keys") => {
                let create: KeyCreate = read_json(req).await?;
                Ok(json(StatusCode::OK, &self.create_key(create).await?))
            }
            (method, p)
                if let Some(bucket) = between(p, "/admin/v1/buckets/", "/storage-policy") =>
            {
                match *method {
                    Method::GET => Ok(json(StatusCode::OK, &self.storage_policy(bucket).await?)),
                    Method::PUT => {
                        let chosen: StoragePolicy = read_json(req).await?;
                        self.set_storage_policy(bucket, Some(chosen)).await?;
                        Ok(json(StatusCode::OK, &serde_json::json!({})))
                    }
                    Method::DELETE => {
                        self.set_storage_policy(bucket, None).await?;
                        Ok(json(StatusCode::OK, &serde_json::json!({})))
                    }
                    _ => Err(Failure(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "GET, PUT or DELETE".into(),
                    )),
                }
            }
            (&Method::PUT, "/admin/v1/grants") => {
                let grant: GrantSet = read_json(req).await?;
                self.set_grant(grant).await?;
                Ok(json(StatusCode::OK, &serde_json::json!({})))
            }
            (&Method::DELETE, p) if p.starts_with("/admin/v1/keys/") => {
                let id = &p["/admin/v1/keys/".len()..];
                self.delete_key(id).await?;
                Ok(json(StatusCode::OK, &serde_json::json!({})))
            }
            _ => Err(Failure(
                StatusCode::NOT_FOUND,
                format!("no admin endpoint {method} {path}"),
            )),
        }
    }

    fn check_token(&self, req: &Request<Incoming>) -> Result<(), Failure> {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(token) if constant_time_eq(token.as_bytes(), self.token.as_bytes()) => Ok(()),
            _ => Err(Failure(
                StatusCode::UNAUTHORIZED,
                "missing or wrong admin token".to_owned(),
            )),
        }
    }

    async fn status(&self) -> Result<Status, Failure> {
        let (ready, _) = self.is_ready().await;
        let meta = self.meta.status();
        let (buckets, keys) = self
            .meta
            .read_local(|view| Ok((view.buckets()?.len(), view.access_keys()?.len())))
            .await?;
        let stores = self
            .stores
            .all()
            .iter()
            .map(|s| {
                let domain = self.stores.domain(s.id());
                StoreStatus {
                    id: s.id().to_owned(),
                    up: !self.stores.is_down(s.id()),
                    lost: self.stores.is_lost(s.id()),
                    draining: self.stores.is_draining(s.id()),
                    node: domain.node,
                    site: domain.site,
                    zone: domain.zone,
                }
            })
            .collect();
        Ok(Status {
            ready,
            raft: RaftStatus {
                id: meta.id,
                leader: meta.leader,
                term: meta.term,
                last_applied: meta.last_applied,
                last_log_index: meta.last_log_index,
            },
            stores,
            buckets,
            keys,
            jobs: self.jobs.reports(),
        })
    }

    /// The progress report of job `name` (404 where it does not run).
    fn job_report(&self, name: &str) -> Result<JobReport, Failure> {
        self.jobs
            .reports()
            .into_iter()
            .find(|r| r.job == name)
            .ok_or_else(|| Failure(StatusCode::NOT_FOUND, format!("no {name} job")))
    }

    async fn repair_status(&self) -> Result<RepairStatus, Failure> {
        let report = self.job_report("repair")?;
        Ok(RepairStatus::read(&self.meta, &self.stores, &self.evacuated, &report).await?)
    }

    async fn replication_status(&self, limit: usize) -> Result<ReplicationStatus, Failure> {
        let report = self.job_report("replicate")?;
        Ok(ReplicationStatus::read(&self.meta, &report, limit).await?)
    }

    pub(super) async fn summary(&self) -> Result<Summary, Failure> {
        let status = self.status().await?;
        let has_repair = status.jobs.iter().any(|j| j.job == "repair");
        let repair = if has_repair {
            Some(self.repair_status().await?)
        } else {
            None
        };
        let nodes = match &self.nodes {
            Some(nodes) => nodes.records().await?,
            None => Vec::new(),
        };
        let members = members::admin::list(&self.meta);
        let has_replication = status.jobs.iter().any(|j| j.job == "replicate");
        let summary = Summary::new(status, members, nodes, repair, now_millis());
        Ok(if has_replication {
            summary.with_replication(self.replication_status(SUMMARY_NAMES).await?)
        } else {
            summary
        })
    }

    pub(super) fn keys(&self) -> Result<&KeyStore, Failure> {
        self.keys.as_ref().ok_or_else(|| {
            Failure(
                StatusCode::NOT_FOUND,
                "a witness serves no S3 and keeps no access keys: ask a gateway".to_owned(),
            )
        })
    }

    fn nodes(&self) -> Result<&Nodes, Failure> {
        self.nodes.as_ref().ok_or_else(|| {
            Failure(
                StatusCode::NOT_FOUND,
                "this gateway uses no storage nodes".to_owned(),
            )
        })
    }

    pub(super) async fn list_keys(&self) -> Result<Vec<KeyInfo>, Failure> {
        let keys = self
            .meta
            .read(|view| {
                let mut out = Vec::new();
                for key in view.access_keys()? {
                    let grants = view
                        .grants_of(&key.id)?
                        .into_iter()
                        .map(|(bucket, g)| GrantSet {
                            access_key: key.id.clone(),
                            bucket,
                            read: g.read,
                            write: g.write,
                            owner: g.owner,
                        })
                        .collect();
                    out.push(KeyInfo {
                        access_key: key.id,
                        name: key.name,
                        created: key.created,
                        allow_create_bucket: key.allow_create_bucket,
                        admin: key.admin,
                        grants,
                    });
                }
                Ok(out)
            })
            .await?;
        Ok(keys)
    }

    pub(super) async fn create_key(&self, create: KeyCreate) -> Result<KeyCreated, Failure> {
        let creds = Credentials::generate();
        let mut key = self
            .keys()?
            .seal(&creds, &create.name, create.admin, now_millis());
        key.allow_create_bucket = create.allow_create_bucket;
        self.meta.write(Command::PutAccessKey { key }).await?;
        tracing::info!(key = %creds.access_key, name = %create.name, "access key created");
        Ok(KeyCreated {
            access_key: creds.access_key,
            secret_key: creds.secret_key,
            name: create.name,
        })
    }

    pub(super) async fn delete_key(&self, id: &str) -> Result<(), Failure> {
        if self.keys()?.get(id).await?.is_none() {
            return Err(Failure(
                StatusCode::NOT_FOUND,
                format!("no access key {id}"),
            ));
        }
        self.meta
            .write(Command::DeleteAccessKey { id: id.to_owned() })
            .await?;
        tracing::info!(key = %id, "access key deleted");
        Ok(())
    }

    pub(super) async fn set_grant(&self, set: GrantSet) -> Result<(), Failure> {
        if self.keys()?.get(&set.access_key).await?.is_none() {
            return Err(Failure(
                StatusCode::NOT_FOUND,
                format!("no access key {}", set.access_key),
            ));
        }
        let bucket = set.bucket.clone();
        if self
            .meta
            .read(move |view| view.bucket(&bucket))
            .await?
            .is_none()
        {
            return Err(Failure(
                StatusCode::NOT_FOUND,
                format!("no bucket {}", set.bucket),
            ));
        }
        let grant = Grant {
            read: set.read,
            write: set.write,
            owner: set.owner,
        };
        self.meta
            .write(Command::SetGrant {
                key_id: set.access_key.clone(),
                bucket: set.bucket.clone(),
                grant,
            })
            .await?;
        tracing::info!(key = %set.access_key, bucket = %set.bucket, ?grant, "grant set");
        Ok(())
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, Failure> {
    Ok(Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| Failure(StatusCode::BAD_REQUEST, format!("reading body: {e}")))?
        .to_bytes())
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(body)
        .map_err(|e| Failure(StatusCode::BAD_REQUEST, format!("bad request body: {e}")))
}

async fn read_json<T: DeserializeOwned>(req: Request<Incoming>) -> Result<T, Failure> {
    parse_json(&read_body(req).await?)
}

/// A JSON body, or the default when the request has none.
async fn read_optional_json<T: DeserializeOwned + Default>(
    req: Request<Incoming>,
) -> Result<T, Failure> {
    let body = read_body(req).await?;
    if body.is_empty() {
        return Ok(T::default());
    }
    parse_json(&body)
}

fn text(status: StatusCode, body: String) -> Answer {
    respond(
        status,
        "text/plain; version=0.0.4; charset=utf-8",
        Bytes::from(body),
    )
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Answer {
    match serde_json::to_vec(value) {
        Ok(body) => respond(status, "application/json", Bytes::from(body)),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Answer {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    resp
}

/// Compares two byte strings in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
