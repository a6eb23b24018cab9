//! `/admin/v1/buckets/{bucket}/storage-policy`: a bucket's storage policy
//! (see [`crate::data::policy`]), read, set after checking the stores can
//! hold it, or cleared back to the gateway's defaults.

use http::StatusCode;
use tessera_raft::command::{BucketUpdate, Command};
use tessera_raft::model::Bucket;

use super::http::{AdminState, Failure};
use crate::data::policy::{self, StoragePolicy};

impl AdminState {
    /// The bucket named `name`, or 404.
    async fn existing_bucket(&self, name: &str) -> Result<Bucket, Failure> {
        let wanted = name.to_owned();
        self.meta
            .read(move |view| view.bucket(&wanted))
            .await?
            .ok_or_else(|| Failure(StatusCode::NOT_FOUND, format!("no bucket {name}")))
    }

    /// The bucket's policy; `None` when it follows the gateway's defaults.
    pub(super) async fn storage_policy(
        &self,
        bucket: &str,
    ) -> Result<Option<StoragePolicy>, Failure> {
        let found = self.existing_bucket(bucket).await?;
        found
            .settings
            .get(policy::SETTING)
            .map(|bytes| StoragePolicy::decode(bytes))
            .transpose()
            .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }

    /// Sets the bucket's policy (`None`: back to the defaults) once the
    /// stores known here can hold it.
    pub(super) async fn set_storage_policy(
        &self,
        bucket: &str,
        chosen: Option<StoragePolicy>,
    ) -> Result<(), Failure> {
        self.existing_bucket(bucket).await?;
        if let Some(p) = &chosen {
            p.check(&self.stores)
                .map_err(|e| Failure(StatusCode::BAD_REQUEST, e.to_string()))?;
        }
        self.meta
            .write(Command::UpdateBucket {
                name: bucket.to_owned(),
                update: BucketUpdate::Setting(
                    policy::SETTING.to_owned(),
                    chosen.map(|p| p.encode()),
                ),
            })
            .await?;
        Ok(())
    }
}
