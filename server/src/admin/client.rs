//! A client of the admin API, used by `tessera admin …` (and tests).

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use tessera_raft::model::NodeRecord;

use super::summary::Summary;
use super::{
    ApiError, GrantSet, JobReport, KeyCreate, KeyCreated, KeyInfo, LifecycleStatus, RepairStatus,
    ReplicationStatus, RunRequest, Status,
};
use crate::config::NodeEntry;
use crate::data::policy::StoragePolicy;
use crate::members::admin::{MemberAdd, MemberList};
use crate::members::failover::{FailoverPlan, FailoverRequest};

/// Talks JSON to one server's admin listener.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: String,
    token: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl AdminClient {
    /// A client of the admin API at `base` (`http://127.0.0.1:9001`) using `token`.
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> Self {
        AdminClient {
            base: base.into().trim_end_matches('/').to_owned(),
            token: token.into(),
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Server status.
    pub async fn status(&self) -> Result<Status> {
        self.call::<(), _>(Method::GET, "/admin/v1/status", None)
            .await
    }

    /// The cluster's health at a glance.
    pub async fn summary(&self) -> Result<Summary> {
        self.call::<(), _>(Method::GET, "/admin/v1/summary", None)
            .await
    }

    /// Every background job's progress.
    pub async fn jobs(&self) -> Result<Vec<JobReport>> {
        self.call::<(), _>(Method::GET, "/admin/v1/jobs", None)
            .await
    }

    /// How far site replication is, naming up to `limit` objects per site.
    pub async fn replication_status(&self, limit: usize) -> Result<ReplicationStatus> {
        self.call::<(), _>(
            Method::GET,
            &format!("/admin/v1/replication?limit={limit}"),
            None,
        )
        .await
    }

    /// How far repair is.
    pub async fn repair_status(&self) -> Result<RepairStatus> {
        self.call::<(), _>(Method::GET, "/admin/v1/repair", None)
            .await
    }

    /// Starts a pass of the job `name` now (e.g. `scrub`).
    pub async fn start_job(&self, name: &str) -> Result<()> {
        let path = format!("/admin/v1/jobs/{name}/start");
        self.call::<(), serde_json::Value>(Method::POST, &path, None)
            .await
            .map(drop)
    }

    /// Where lifecycle stands.
    pub async fn lifecycle_status(&self) -> Result<LifecycleStatus> {
        self.call::<(), _>(Method::GET, "/admin/v1/lifecycle", None)
            .await
    }

    /// Asks for a lifecycle run now.
    pub async fn run_lifecycle(&self, request: &RunRequest) -> Result<LifecycleStatus> {
        self.call(Method::POST, "/admin/v1/lifecycle/run", Some(request))
            .await
    }

    /// Drains storage node `node`; the answer lists its stores.
    pub async fn drain_node(&self, node: u64) -> Result<Vec<String>> {
        let path = format!("/admin/v1/nodes/{node}/drain");
        self.call::<(), Vec<String>>(Method::POST, &path, None)
            .await
    }

    /// Every storage node's record.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        self.call::<(), _>(Method::GET, "/admin/v1/nodes", None)
            .await
    }

    /// Adds storage node `entry`; the answer lists its stores.
    pub async fn add_node(&self, entry: &NodeEntry) -> Result<Vec<String>> {
        self.call(Method::POST, "/admin/v1/nodes", Some(entry))
            .await
    }

    /// Removes storage node `node` (refused while it holds referenced shards).
    pub async fn remove_node(&self, node: u64) -> Result<()> {
        let path = format!("/admin/v1/nodes/{node}");
        self.call::<(), serde_json::Value>(Method::DELETE, &path, None)
            .await
            .map(drop)
    }

    /// The metadata cluster's members, as the answering gateway sees them.
    pub async fn members(&self) -> Result<MemberList> {
        self.call::<(), _>(Method::GET, "/admin/v1/members", None)
            .await
    }

    /// Adds a metadata member as a learner (returns once it caught up).
    pub async fn add_member(&self, add: &MemberAdd) -> Result<()> {
        self.call::<_, serde_json::Value>(Method::POST, "/admin/v1/members", Some(add))
            .await
            .map(drop)
    }

    /// Turns learner `id` into a voter.
    pub async fn promote_member(&self, id: u64) -> Result<()> {
        let path = format!("/admin/v1/members/{id}/promote");
        self.call::<(), serde_json::Value>(Method::POST, &path, None)
            .await
            .map(drop)
    }

    /// Removes metadata member `id`.
    pub async fn remove_member(&self, id: u64) -> Result<()> {
        let path = format!("/admin/v1/members/{id}");
        self.call::<(), serde_json::Value>(Method::DELETE, &path, None)
            .await
            .map(drop)
    }

    /// What failing over to `site` would do.
    pub async fn failover_plan(&self, site: &str) -> Result<FailoverPlan> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("site", site)
            .finish();
        self.call::<(), _>(Method::GET, &format!("/admin/v1/failover?{query}"), None)
            .await
    }

    /// Fails over to `site` (after the operator confirmed).
    pub async fn failover(&self, site: &str) -> Result<FailoverPlan> {
        let request = FailoverRequest {
            site: site.to_owned(),
        };
        self.call(Method::POST, "/admin/v1/failover", Some(&request))
            .await
    }

    /// Creates an access key; the answer holds its secret.
    pub async fn create_key(&self, create: &KeyCreate) -> Result<KeyCreated> {
        self.call(Method::POST, "/admin/v1/keys", Some(create))
            .await
    }

    /// Lists access keys and their grants.
    pub async fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        self.call::<(), _>(Method::GET, "/admin/v1/keys", None)
            .await
    }

    /// Deletes an access key and its grants.
    pub async fn delete_key(&self, access_key: &str) -> Result<()> {
        let path = format!("/admin/v1/keys/{access_key}");
        self.call::<(), serde_json::Value>(Method::DELETE, &path, None)
            .await
            .map(drop)
    }

    /// Sets a key's permissions on a bucket.
    pub async fn set_grant(&self, grant: &GrantSet) -> Result<()> {
        self.call::<_, serde_json::Value>(Method::PUT, "/admin/v1/grants", Some(grant))
            .await
            .map(drop)
    }

    /// A bucket's storage policy; `None` when it follows the defaults.
    pub async fn storage_policy(&self, bucket: &str) -> Result<Option<StoragePolicy>> {
        let path = format!("/admin/v1/buckets/{bucket}/storage-policy");
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// Sets a bucket's storage policy (`None`: back to the defaults).
    pub async fn set_storage_policy(
        &self,
        bucket: &str,
        policy: Option<&StoragePolicy>,
    ) -> Result<()> {
        let path = format!("/admin/v1/buckets/{bucket}/storage-policy");
        let method = if policy.is_some() {
            Method::PUT
        } else {
            Method::DELETE
        };
        self.call::<_, serde_json::Value>(method, &path, policy)
            .await
            .map(drop)
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let body = match body {
            Some(b) => Bytes::from(serde_json::to_vec(b)?),
            None => Bytes::new(),
        };
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        let resp = self
            .http
            .request(req)
            .await
            .with_context(|| format!("contacting the admin API at {}", self.base))?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            let message = serde_json::from_slice::<ApiError>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(anyhow!("admin API answered {status}: {message}"));
        }
        serde_json::from_slice(&bytes).context("decoding the admin API answer")
    }
}
