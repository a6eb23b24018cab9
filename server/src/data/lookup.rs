//! Finding the version a read addresses, with a distinct error for each
//! way it can be missing.

use tessera_raft::model::ObjectVersion;

use super::error::MarkerAddressed;
use super::{DataError, DataPlane};

/// An object version as a request names it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VersionRef<'a> {
    /// The bucket.
    pub(crate) bucket: &'a str,
    /// The object key.
    pub(crate) key: &'a str,
    /// The version id; `None` for the latest version.
    pub(crate) version_id: Option<&'a str>,
}

impl DataPlane {
    /// The version `target` names, if it has data: [`DataError::NoSuchBucket`],
    /// [`DataError::NoSuchKey`] or [`DataError::NoSuchVersion`] when it is
    /// missing, [`DataError::DeleteMarker`] when it is a delete marker.
    pub(crate) async fn lookup(&self, target: VersionRef<'_>) -> Result<ObjectVersion, DataError> {
        let (b, k, vid) = (
            target.bucket.to_owned(),
            target.key.to_owned(),
            target.version_id.map(str::to_owned),
        );
        let (exists, found) = self
            .meta
            .read(move |view| {
                let exists = view.bucket(&b)?.is_some();
                let found = if exists {
                    view.object(&b, &k, vid.as_deref())?
                } else {
                    None
                };
                Ok((exists, found))
            })
            .await?;
        if !exists {
            return Err(DataError::NoSuchBucket);
        }
        let addressed = match target.version_id {
            None => MarkerAddressed::AsLatest,
            Some(_) => MarkerAddressed::ByVersionId,
        };
        match (found, addressed) {
            (None, MarkerAddressed::AsLatest) => Err(DataError::NoSuchKey),
            (None, MarkerAddressed::ByVersionId) => Err(DataError::NoSuchVersion),
            (Some(v), addressed) if v.is_delete_marker() => Err(DataError::DeleteMarker {
                version_id: v.version_id,
                addressed,
            }),
            (Some(v), _) => Ok(v),
        }
    }
}
