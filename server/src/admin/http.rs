//! The admin listener's request handler: metrics, health and the admin API.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_raft::command::Command;
use tessera_raft::model::{Grant, NodeState, StorageNode};
use tessera_raft::node::MetaNode;

use super::{
    ApiError, GrantSet, KeyCreate, KeyCreated, KeyInfo, RaftStatus, RepairStatus, Status,
    StoreStatus,
};
use crate::auth::{KeyStore, now_millis};
use crate::datadir::Credentials;
use crate::placement::StoreSet;
use crate::workers::evacuate::Evacuated;
use crate::workers::job::Jobs;

/// Largest admin API request body accepted.
const MAX_BODY: usize = 64 * 1024;

/// Everything the admin handler needs.
pub(crate) struct AdminState {
    /// The metadata member.
    pub meta: MetaNode,
    /// The shard stores (their up/down state is kept by the health worker).
    pub stores: StoreSet,
    /// Access keys.
    pub keys: KeyStore,
    /// The background jobs.
    pub jobs: Jobs,
    /// Which lost and draining stores have every shard queued for repair.
    pub evacuated: Evacuated,
    /// Bearer token of the admin API.
    pub token: String,
    /// Stores that must be up to write a segment (k + m).
    pub write_width: usize,
}

type Answer = Response<Full<Bytes>>;

/// An admin API failure: a status and a message.
struct Failure(StatusCode, String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl AdminState {
    /// Answers one admin-listener request.
    pub(crate) async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Answer, Infallible> {
        let path = req.uri().path().to_owned();
        let answer = match (req.method(), path.as_str()) {
            (&Method::GET, "/metrics") => text(StatusCode::OK, crate::metrics::render()),
            (&Method::GET, "/health/live") => text(StatusCode::OK, "ok\n".to_owned()),
            (&Method::GET, "/health/ready") => self.ready(),
            (_, p) if p.starts_with("/admin/") => match self.admin(req).await {
                Ok(answer) => answer,
                Err(Failure(status, error)) => json(status, &ApiError { error }),
            },
            _ => text(StatusCode::NOT_FOUND, "not found\n".to_owned()),
        };
        Ok(answer)
    }

    fn is_ready(&self) -> (bool, String) {
        let status = self.meta.status();
        let up = self
            .stores
            .all()
            .iter()
            .filter(|s| !self.stores.is_down(s.id()))
            .count();
        let leader = status.leader.is_some();
        let ready = leader && up >= self.write_width;
        let detail = format!(
            "leader: {}\nstores up: {up} of {} (need {})\n",
            status
                .leader
                .map_or_else(|| "none".to_owned(), |l| l.to_string()),
            self.stores.len(),
            self.write_width
        );
        (ready, detail)
    }

    fn ready(&self) -> Answer {
        let (ready, detail) = self.is_ready();
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
            (&Method::GET, "/admin/v1/repair") => {
                let report = self
                    .jobs
                    .reports()
                    .into_iter()
                    .find(|r| r.job == "repair")
                    .ok_or_else(|| Failure(StatusCode::NOT_FOUND, "no repair job".to_owned()))?;
                let status =
                    RepairStatus::read(&self.meta, &self.stores, &self.evacuated, &report).await?;
                Ok(json(StatusCode::OK, &status))
            }
            (&Method::POST, p) if p.starts_with("/admin/v1/jobs/") && p.ends_with("/start") => {
                let name = &p["/admin/v1/jobs/".len()..p.len() - "/start".len()];
                if !self.jobs.start(name) {
                    return Err(Failure(StatusCode::NOT_FOUND, format!("no job {name}")));
                }
                Ok(json(StatusCode::OK, &serde_json::json!({})))
            }
            (&Method::POST, p) if p.starts_with("/admin/v1/nodes/") && p.ends_with("/drain") => {
                let node = &p["/admin/v1/nodes/".len()..p.len() - "/drain".len()];
                let node: u64 = node
                    .parse()
                    .map_err(|_| Failure(StatusCode::BAD_REQUEST, format!("bad node id {node}")))?;
                let drained = self.drain(node).await?;
                Ok(json(StatusCode::OK, &drained))
            }
            (&Method::GET, "/admin/v1/keys") => Ok(json(StatusCode::OK, &self.list_keys().await?)),
            (&Method::POST, "/admin/v1/keys") => {
                let create: KeyCreate = read_json(req).await?;
                Ok(json(StatusCode::OK, &self.create_key(create).await?))
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
        let (ready, _) = self.is_ready();
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

    /// Marks every store of storage node `node` draining in the metadata;
    /// returns their ids.
    async fn drain(&self, node: u64) -> Result<Vec<String>, Failure> {
        let stores: Vec<String> = self
            .stores
            .all()
            .iter()
            .map(|s| s.id().to_owned())
            .filter(|id| node != 0 && self.stores.domain(id).node == node)
            .collect();
        if stores.is_empty() {
            return Err(Failure(
                StatusCode::NOT_FOUND,
                format!("no storage node {node}"),
            ));
        }
        for id in &stores {
            let domain = self.stores.domain(id);
            let record = StorageNode {
                id: id.clone(),
                site: domain.site.unwrap_or_default(),
                zone: domain.zone.unwrap_or_default(),
                address: format!("node {node}"),
                capacity: 0,
                state: NodeState::Draining,
                since: now_millis(),
            };
            self.meta.write(Command::PutNode { node: record }).await?;
        }
        let mut draining = self.stores.draining();
        draining.extend(stores.iter().cloned());
        self.stores.set_draining(draining);
        tracing::info!(node, ?stores, "draining storage node");
        Ok(stores)
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>, Failure> {
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

    async fn create_key(&self, create: KeyCreate) -> Result<KeyCreated, Failure> {
        let creds = Credentials::generate();
        let mut key = self
            .keys
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

    async fn delete_key(&self, id: &str) -> Result<(), Failure> {
        if self.keys.get(id).await?.is_none() {
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

    async fn set_grant(&self, set: GrantSet) -> Result<(), Failure> {
        if self.keys.get(&set.access_key).await?.is_none() {
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

async fn read_json<T: DeserializeOwned>(req: Request<Incoming>) -> Result<T, Failure> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| Failure(StatusCode::BAD_REQUEST, format!("reading body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&body)
        .map_err(|e| Failure(StatusCode::BAD_REQUEST, format!("bad request body: {e}")))
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
