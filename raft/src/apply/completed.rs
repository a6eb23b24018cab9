//! Completed multipart uploads, remembered so that a repeated
//! `CompleteMultipartUpload` (an SDK retrying after a lost response)
//! answers with the version the first one stored, as S3 does.
//!
//! The `completed_uploads` table maps an upload to the id of the version
//! its completion stored. A repeat is answered when that version still
//! exists and its ETag is the one the repeat's part list makes (the same
//! parts, so the same bytes); otherwise it is `NoSuchUpload`. Entries go
//! with their version.

use md5::{Digest, Md5};
use redb::ReadableTable;

use super::{Applier, Completion, Step};
use crate::command::{ApplyError, CommandResponse};
use crate::tables;

/// The ETag S3 gives a multipart object of parts with these ETags (hex
/// MD5s, quotes allowed): the MD5 of their digests, `-N`. `None` when one
/// is not a hex digest.
pub(super) fn multipart_etag<'a>(etags: impl ExactSizeIterator<Item = &'a str>) -> Option<String> {
    let count = etags.len();
    let mut md5 = Md5::new();
    for etag in etags {
        md5.update(hex::decode(etag.trim_matches('"')).ok()?);
    }
    Some(format!("{}-{count}", hex::encode(md5.finalize())))
}

impl Applier<'_> {
    /// Remembers that an upload's completion stored `version_id`.
    pub(super) fn remember_completion(&mut self, c: &Completion<'_>, version_id: &str) -> Step<()> {
        let k = tables::upload_key(c.bucket, c.key, c.upload_id);
        self.completed_uploads
            .insert(k.as_slice(), version_id.as_bytes())?;
        Ok(())
    }

    /// The answer to a completion of an upload that no longer exists: the
    /// version its earlier completion of the same parts stored, or
    /// `NoSuchUpload`.
    pub(super) fn completed_again(&self, c: &Completion<'_>) -> Step<CommandResponse> {
        let k = tables::upload_key(c.bucket, c.key, c.upload_id);
        let version_id = match self.completed_uploads.get(k.as_slice())? {
            Some(v) => String::from_utf8_lossy(v.value()).into_owned(),
            None => return Err(ApplyError::NoSuchUpload.into()),
        };
        let etag = multipart_etag(c.parts.iter().map(|(_, e)| e.as_str()));
        match self.find(c.bucket, c.key, &version_id)? {
            Some((_, version)) if Some(&version.etag) == etag.as_ref() => {
                Ok(CommandResponse::ObjectStored { version })
            }
            _ => Err(ApplyError::NoSuchUpload.into()),
        }
    }

    /// Forgets the completions that stored `version_id` of `bucket/key`.
    pub(super) fn forget_completions(
        &mut self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Step<()> {
        let start = tables::object_key(bucket, key);
        let end = tables::after_component(start.clone());
        self.completed_uploads
            .retain_in(start.as_slice()..end.as_slice(), |_, v| {
                v != version_id.as_bytes()
            })?;
        Ok(())
    }
}
