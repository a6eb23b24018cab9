//! The IAM action each S3 operation needs, and the kind of resource it
//! acts on: the one table policies are evaluated and validated against.

/// What an action acts on, which decides the ARN it is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// No bucket (`ListAllMyBuckets`): resource `*`.
    Service,
    /// A bucket: `arn:aws:s3:::bucket`.
    Bucket,
    /// An object: `arn:aws:s3:::bucket/key`.
    Object,
}

use Scope::{Bucket, Object, Service};

/// `(operation, action, action when a versionId is given, scope)`.
const OPERATIONS: &[(&str, &str, Option<&str>, Scope)] = &[
    (
        "AbortMultipartUpload",
        "s3:AbortMultipartUpload",
        None,
        Object,
    ),
    ("CompleteMultipartUpload", "s3:PutObject", None, Object),
    ("CopyObject", "s3:PutObject", None, Object),
    ("CreateBucket", "s3:CreateBucket", None, Bucket),
    (
        "CreateBucketMetadataTableConfiguration",
        "s3:CreateBucketMetadataTableConfiguration",
        None,
        Bucket,
    ),
    ("CreateMultipartUpload", "s3:PutObject", None, Object),
    ("DeleteBucket", "s3:DeleteBucket", None, Bucket),
    (
        "DeleteBucketAnalyticsConfiguration",
        "s3:PutAnalyticsConfiguration",
        None,
        Bucket,
    ),
    ("DeleteBucketCors", "s3:PutBucketCORS", None, Bucket),
    (
        "DeleteBucketEncryption",
        "s3:PutEncryptionConfiguration",
        None,
        Bucket,
    ),
    (
        "DeleteBucketIntelligentTieringConfiguration",
        "s3:PutIntelligentTieringConfiguration",
        None,
        Bucket,
    ),
    (
        "DeleteBucketInventoryConfiguration",
        "s3:PutInventoryConfiguration",
        None,
        Bucket,
    ),
    (
        "DeleteBucketLifecycle",
        "s3:PutLifecycleConfiguration",
        None,
        Bucket,
    ),
    (
        "DeleteBucketMetadataTableConfiguration",
        "s3:DeleteBucketMetadataTableConfiguration",
        None,
        Bucket,
    ),
    (
        "DeleteBucketMetricsConfiguration",
        "s3:PutMetricsConfiguration",
        None,
        Bucket,
    ),
    (
        "DeleteBucketOwnershipControls",
        "s3:PutBucketOwnershipControls",
        None,
        Bucket,
    ),
    ("DeleteBucketPolicy", "s3:DeleteBucketPolicy", None, Bucket),
    (
        "DeleteBucketReplication",
        "s3:PutReplicationConfiguration",
        None,
        Bucket,
    ),
    ("DeleteBucketTagging", "s3:PutBucketTagging", None, Bucket),
    (
        "DeleteBucketWebsite",
        "s3:DeleteBucketWebsite",
        None,
        Bucket,
    ),
    (
        "DeleteObject",
        "s3:DeleteObject",
        Some("s3:DeleteObjectVersion"),
        Object,
    ),
    (
        "DeleteObjectTagging",
        "s3:DeleteObjectTagging",
        Some("s3:DeleteObjectVersionTagging"),
        Object,
    ),
    // Checked per key, on the keys of the request body.
    (
        "DeleteObjects",
        "s3:DeleteObject",
        Some("s3:DeleteObjectVersion"),
        Object,
    ),
    (
        "DeletePublicAccessBlock",
        "s3:PutBucketPublicAccessBlock",
        None,
        Bucket,
    ),
    (
        "GetBucketAccelerateConfiguration",
        "s3:GetAccelerateConfiguration",
        None,
        Bucket,
    ),
    ("GetBucketAcl", "s3:GetBucketAcl", None, Bucket),
    (
        "GetBucketAnalyticsConfiguration",
        "s3:GetAnalyticsConfiguration",
        None,
        Bucket,
    ),
    ("GetBucketCors", "s3:GetBucketCORS", None, Bucket),
    (
        "GetBucketEncryption",
        "s3:GetEncryptionConfiguration",
        None,
        Bucket,
    ),
    (
        "GetBucketIntelligentTieringConfiguration",
        "s3:GetIntelligentTieringConfiguration",
        None,
        Bucket,
    ),
    (
        "GetBucketInventoryConfiguration",
        "s3:GetInventoryConfiguration",
        None,
        Bucket,
    ),
    (
        "GetBucketLifecycleConfiguration",
        "s3:GetLifecycleConfiguration",
        None,
        Bucket,
    ),
    ("GetBucketLocation", "s3:GetBucketLocation", None, Bucket),
    ("GetBucketLogging", "s3:GetBucketLogging", None, Bucket),
    (
        "GetBucketMetadataTableConfiguration",
        "s3:GetBucketMetadataTableConfiguration",
        None,
        Bucket,
    ),
    (
        "GetBucketMetricsConfiguration",
        "s3:GetMetricsConfiguration",
        None,
        Bucket,
    ),
    (
        "GetBucketNotificationConfiguration",
        "s3:GetBucketNotification",
        None,
        Bucket,
    ),
    (
        "GetBucketOwnershipControls",
        "s3:GetBucketOwnershipControls",
        None,
        Bucket,
    ),
    ("GetBucketPolicy", "s3:GetBucketPolicy", None, Bucket),
    (
        "GetBucketPolicyStatus",
        "s3:GetBucketPolicyStatus",
        None,
        Bucket,
    ),
    (
        "GetBucketReplication",
        "s3:GetReplicationConfiguration",
        None,
        Bucket,
    ),
    (
        "GetBucketRequestPayment",
        "s3:GetBucketRequestPayment",
        None,
        Bucket,
    ),
    ("GetBucketTagging", "s3:GetBucketTagging", None, Bucket),
    (
        "GetBucketVersioning",
        "s3:GetBucketVersioning",
        None,
        Bucket,
    ),
    ("GetBucketWebsite", "s3:GetBucketWebsite", None, Bucket),
    (
        "GetObject",
        "s3:GetObject",
        Some("s3:GetObjectVersion"),
        Object,
    ),
    (
        "GetObjectAcl",
        "s3:GetObjectAcl",
        Some("s3:GetObjectVersionAcl"),
        Object,
    ),
    (
        "GetObjectAttributes",
        "s3:GetObjectAttributes",
        Some("s3:GetObjectVersionAttributes"),
        Object,
    ),
    ("GetObjectLegalHold", "s3:GetObjectLegalHold", None, Object),
    (
        "GetObjectLockConfiguration",
        "s3:GetBucketObjectLockConfiguration",
        None,
        Bucket,
    ),
    ("GetObjectRetention", "s3:GetObjectRetention", None, Object),
    (
        "GetObjectTagging",
        "s3:GetObjectTagging",
        Some("s3:GetObjectVersionTagging"),
        Object,
    ),
    (
        "GetObjectTorrent",
        "s3:GetObjectTorrent",
        Some("s3:GetObjectVersionTorrent"),
        Object,
    ),
    (
        "GetPublicAccessBlock",
        "s3:GetBucketPublicAccessBlock",
        None,
        Bucket,
    ),
    ("HeadBucket", "s3:ListBucket", None, Bucket),
    (
        "HeadObject",
        "s3:GetObject",
        Some("s3:GetObjectVersion"),
        Object,
    ),
    (
        "ListBucketAnalyticsConfigurations",
        "s3:GetAnalyticsConfiguration",
        None,
        Bucket,
    ),
    (
        "ListBucketIntelligentTieringConfigurations",
        "s3:GetIntelligentTieringConfiguration",
        None,
        Bucket,
    ),
    (
        "ListBucketInventoryConfigurations",
        "s3:GetInventoryConfiguration",
        None,
        Bucket,
    ),
    (
        "ListBucketMetricsConfigurations",
        "s3:GetMetricsConfiguration",
        None,
        Bucket,
    ),
    ("ListBuckets", "s3:ListAllMyBuckets", None, Service),
    (
        "ListMultipartUploads",
        "s3:ListBucketMultipartUploads",
        None,
        Bucket,
    ),
    ("ListObjectVersions", "s3:ListBucketVersions", None, Bucket),
    ("ListObjects", "s3:ListBucket", None, Bucket),
    ("ListObjectsV2", "s3:ListBucket", None, Bucket),
    ("ListParts", "s3:ListMultipartUploadParts", None, Object),
    ("PostObject", "s3:PutObject", None, Object),
    (
        "PutBucketAccelerateConfiguration",
        "s3:PutAccelerateConfiguration",
        None,
        Bucket,
    ),
    ("PutBucketAcl", "s3:PutBucketAcl", None, Bucket),
    (
        "PutBucketAnalyticsConfiguration",
        "s3:PutAnalyticsConfiguration",
        None,
        Bucket,
    ),
    ("PutBucketCors", "s3:PutBucketCORS", None, Bucket),
    (
        "PutBucketEncryption",
        "s3:PutEncryptionConfiguration",
        None,
        Bucket,
    ),
    (
        "PutBucketIntelligentTieringConfiguration",
        "s3:PutIntelligentTieringConfiguration",
        None,
        Bucket,
    ),
    (
        "PutBucketInventoryConfiguration",
        "s3:PutInventoryConfiguration",
        None,
        Bucket,
    ),
    (
        "PutBucketLifecycleConfiguration",
        "s3:PutLifecycleConfiguration",
        None,
        Bucket,
    ),
    ("PutBucketLogging", "s3:PutBucketLogging", None, Bucket),
    (
        "PutBucketMetricsConfiguration",
        "s3:PutMetricsConfiguration",
        None,
        Bucket,
    ),
    (
        "PutBucketNotificationConfiguration",
        "s3:PutBucketNotification",
        None,
        Bucket,
    ),
    (
        "PutBucketOwnershipControls",
        "s3:PutBucketOwnershipControls",
        None,
        Bucket,
    ),
    ("PutBucketPolicy", "s3:PutBucketPolicy", None, Bucket),
    (
        "PutBucketReplication",
        "s3:PutReplicationConfiguration",
        None,
        Bucket,
    ),
    (
        "PutBucketRequestPayment",
        "s3:PutBucketRequestPayment",
        None,
        Bucket,
    ),
    ("PutBucketTagging", "s3:PutBucketTagging", None, Bucket),
    (
        "PutBucketVersioning",
        "s3:PutBucketVersioning",
        None,
        Bucket,
    ),
    ("PutBucketWebsite", "s3:PutBucketWebsite", None, Bucket),
    ("PutObject", "s3:PutObject", None, Object),
    (
        "PutObjectAcl",
        "s3:PutObjectAcl",
        Some("s3:PutObjectVersionAcl"),
        Object,
    ),
    ("PutObjectLegalHold", "s3:PutObjectLegalHold", None, Object),
    (
        "PutObjectLockConfiguration",
        "s3:PutBucketObjectLockConfiguration",
        None,
        Bucket,
    ),
    ("PutObjectRetention", "s3:PutObjectRetention", None, Object),
    (
        "PutObjectTagging",
        "s3:PutObjectTagging",
        Some("s3:PutObjectVersionTagging"),
        Object,
    ),
    (
        "PutPublicAccessBlock",
        "s3:PutBucketPublicAccessBlock",
        None,
        Bucket,
    ),
    ("RestoreObject", "s3:RestoreObject", None, Object),
    ("SelectObjectContent", "s3:GetObject", None, Object),
    ("UploadPart", "s3:PutObject", None, Object),
    ("UploadPartCopy", "s3:PutObject", None, Object),
];

/// Actions no operation maps to that policies may still name.
const OTHER_ACTIONS: &[(&str, Scope)] = &[
    ("s3:BypassGovernanceRetention", Object),
    ("s3:ListBucketByTags", Bucket),
    ("s3:ObjectOwnerOverrideToBucketOwner", Object),
    ("s3:ReplicateDelete", Object),
    ("s3:ReplicateObject", Object),
    ("s3:ReplicateTags", Object),
    ("s3:GetObjectVersionForReplication", Object),
];

/// The action operation `op` needs (`versioned`: the request names a
/// version id) and its scope; `None` for operations no policy can allow.
pub(crate) fn of(op: &str, versioned: bool) -> Option<(&'static str, Scope)> {
    OPERATIONS
        .iter()
        .find(|(name, ..)| *name == op)
        .map(|(_, action, version_action, scope)| {
            let action: &'static str = match version_action {
                Some(v) if versioned => v,
                _ => action,
            };
            (action, *scope)
        })
}

/// Every action a policy may name, with its scope (repeats included).
pub(crate) fn all() -> impl Iterator<Item = (&'static str, Scope)> {
    OPERATIONS
        .iter()
        .flat_map(|(_, action, version_action, scope)| {
            [Some((*action, *scope)), version_action.map(|v| (v, *scope))]
        })
        .flatten()
        .chain(OTHER_ACTIONS.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_their_actions() {
        assert_eq!(of("GetObject", false), Some(("s3:GetObject", Object)));
        assert_eq!(of("GetObject", true), Some(("s3:GetObjectVersion", Object)));
        assert_eq!(of("HeadObject", false), Some(("s3:GetObject", Object)));
        assert_eq!(of("ListObjectsV2", true), Some(("s3:ListBucket", Bucket)));
        assert_eq!(of("UploadPart", false), Some(("s3:PutObject", Object)));
        assert_eq!(
            of("DeleteBucketCors", false),
            Some(("s3:PutBucketCORS", Bucket))
        );
        assert_eq!(
            of("ListBuckets", false),
            Some(("s3:ListAllMyBuckets", Service))
        );
        assert_eq!(of("WriteGetObjectResponse", false), None);
        assert!(all().any(|(a, _)| a == "s3:BypassGovernanceRetention"));
    }
}
