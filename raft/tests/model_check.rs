//! Model check: random sequences of puts, deletes, versioning changes,
//! conditional writes and multipart operations, applied both to the redb
//! state machine and to a simple in-memory reference of S3's semantics.
//! After every step every listing (paged with random page sizes) and every
//! get must agree, and so must the queue of data to delete.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model_support;

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use model_support::*;
use proptest::prelude::*;
use tessera_raft::command::{ApplyError, BucketUpdate, Command, CommandResponse, Precondition};
use tessera_raft::model::{
    ListedObject, MultipartUpload, NULL_VERSION_ID, ObjectData, ObjectVersion, PartData,
    SystemMetadata, Versioning,
};
use tessera_raft::{ListObjectsQuery, ListUploadsQuery, ListVersionsQuery};

const BUCKET: &str = "bk";
const KEYS: [&str; 11] = [
    "a", "a/b", "a/c", "a/b/c", "ab", "b", "b/", "b/a", "a\0", "a\0/x", "c",
];
const PREFIXES: [&str; 7] = ["", "a", "a/", "b", "a\0", "c", "z"];
const DELIMITERS: [&str; 4] = ["/", "\0", "/b", "a"];

#[derive(Debug, Clone)]
enum Cond {
    NoneMatch,
    MatchCurrent,
    MatchOther,
    MatchAny,
}

#[derive(Debug, Clone)]
enum Op {
    Put {
        key: usize,
        cond: Option<Cond>,
    },
    Delete {
        key: usize,
    },
    DeleteVersion {
        key: usize,
        pick: usize,
    },
    Versioning {
        enabled: bool,
    },
    CreateUpload {
        key: usize,
    },
    PutPart {
        upload: usize,
        number: u32,
        size: u64,
    },
    Complete {
        upload: usize,
        mask: u8,
        min_size: u64,
    },
    Abort {
        upload: usize,
    },
    List {
        prefix: usize,
        delimiter: Option<usize>,
        max: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    let cond = prop_oneof![
        3 => Just(None),
        1 => Just(Some(Cond::NoneMatch)),
        1 => Just(Some(Cond::MatchCurrent)),
        1 => Just(Some(Cond::MatchOther)),
        1 => Just(Some(Cond::MatchAny)),
    ];
    prop_oneof![
        6 => (key.clone(), cond).prop_map(|(key, cond)| Op::Put { key, cond }),
        2 => key.clone().prop_map(|key| Op::Delete { key }),
        2 => (key.clone(), 0..4usize).prop_map(|(key, pick)| Op::DeleteVersion { key, pick }),
        1 => any::<bool>().prop_map(|enabled| Op::Versioning { enabled }),
        1 => key.prop_map(|key| Op::CreateUpload { key }),
        3 => (0..3usize, 1..5u32, 1..4u64)
            .prop_map(|(upload, number, size)| Op::PutPart { upload, number, size }),
        1 => (0..3usize, 0..16u8, 1..4u64)
            .prop_map(|(upload, mask, min_size)| Op::Complete { upload, mask, min_size }),
        1 => (0..3usize).prop_map(|upload| Op::Abort { upload }),
        2 => (0..PREFIXES.len(), prop::option::of(0..DELIMITERS.len()), 1..4usize)
            .prop_map(|(prefix, delimiter, max)| Op::List { prefix, delimiter, max }),
    ]
}

/// S3 as a few maps.
struct Reference {
    versioning: Versioning,
    /// Versions of each key, newest first.
    objects: BTreeMap<String, Vec<ObjectVersion>>,
    /// Uploads by (key, upload id), with their parts by number.
    uploads: BTreeMap<(String, String), (MultipartUpload, BTreeMap<u32, PartData>)>,
    /// Seeds of segments queued for deletion, in order.
    queued: Vec<u64>,
}

fn seeds(segments: impl IntoIterator<Item = tessera_raft::model::Segment>) -> Vec<u64> {
    segments
        .into_iter()
        .map(|s| u64::from_be_bytes(s.object_id[..8].try_into().unwrap()))
        .collect()
}

fn marker(key: &str, version_id: &str) -> ObjectVersion {
    ObjectVersion {
        bucket: BUCKET.into(),
        key: key.into(),
        version_id: version_id.into(),
        last_modified: 9,
        size: 0,
        etag: String::new(),
        checksums: Vec::new(),
        system: SystemMetadata::default(),
        user: BTreeMap::new(),
        tags: Vec::new(),
        owner: "TKowner".into(),
        wrapped_key: Vec::new(),
        data: ObjectData::DeleteMarker,
    }
}

impl Reference {
    /// The `n`th upload in progress, or one that does not exist.
    fn upload_id(&self, n: usize) -> (String, String) {
        self.uploads
            .keys()
            .nth(n)
            .cloned()
            .unwrap_or_else(|| ("a".into(), "nope".into()))
    }

    fn current(&self, key: &str) -> Option<&ObjectVersion> {
        self.objects
            .get(key)
            .and_then(|v| v.first())
            .filter(|v| !v.is_delete_marker())
    }

    fn check(&self, key: &str, cond: Option<&Precondition>) -> Result<(), ApplyError> {
        match (cond, self.current(key)) {
            (None, _) | (Some(Precondition::IfNoneMatchAny), None) => Ok(()),
            (Some(Precondition::IfNoneMatchAny), Some(_)) => Err(ApplyError::PreconditionFailed),
            (Some(Precondition::IfMatch(_)), None) => Err(ApplyError::NoSuchKey),
            (Some(Precondition::IfMatch(e)), Some(v)) => {
                if e == "*" || *e == v.etag {
                    Ok(())
                } else {
                    Err(ApplyError::PreconditionFailed)
                }
            }
        }
    }

    /// Store a new newest version (the null version outside Enabled).
    fn store(&mut self, mut v: ObjectVersion) -> ObjectVersion {
        if self.versioning != Versioning::Enabled {
            v.version_id = NULL_VERSION_ID.into();
        }
        let list = self.objects.entry(v.key.clone()).or_default();
        if let Some(at) = list.iter().position(|o| o.version_id == v.version_id) {
            let old = list.remove(at);
            self.queued.extend(seeds(old.segments()));
        }
        list.insert(0, v.clone());
        v
    }

    fn remove(&mut self, key: &str, version_id: &str) -> Option<ObjectVersion> {
        let list = self.objects.get_mut(key)?;
        let at = list.iter().position(|o| o.version_id == version_id)?;
        let old = list.remove(at);
        if list.is_empty() {
            self.objects.remove(key);
        }
        self.queued.extend(seeds(old.segments()));
        Some(old)
    }

    fn delete(&mut self, key: &str, marker_id: &str) -> CommandResponse {
        match self.versioning {
            Versioning::Unversioned => {
                self.remove(key, NULL_VERSION_ID);
                CommandResponse::ObjectDeleted {
                    version_id: None,
                    delete_marker: false,
                }
            }
            _ => {
                let m = self.store(marker(key, marker_id));
                CommandResponse::ObjectDeleted {
                    version_id: Some(m.version_id),
                    delete_marker: true,
                }
            }
        }
    }

    fn complete(
        &mut self,
        id: &(String, String),
        listed: &[(u32, String)],
        min_size: u64,
        version_id: &str,
    ) -> Result<CommandResponse, ApplyError> {
        let Some((upload, parts)) = self.uploads.get(id) else {
            return Err(ApplyError::NoSuchUpload);
        };
        if listed.is_empty() {
            return Err(ApplyError::InvalidRequest("no parts listed".into()));
        }
        let mut chosen = Vec::new();
        for (i, (n, etag)) in listed.iter().enumerate() {
            let part = parts
                .get(n)
                .filter(|p| p.etag == *etag)
                .ok_or(ApplyError::InvalidPart(*n))?;
            if i + 1 < listed.len() && part.size < min_size {
                return Err(ApplyError::EntityTooSmall(*n));
            }
            chosen.push(part.clone());
        }
        let mut md5 = Md5::new();
        for p in &chosen {
            md5.update(hex::decode(&p.etag).unwrap());
        }
        let mut v = upload.template.clone();
        v.version_id = version_id.into();
        v.last_modified = 11;
        v.size = chosen.iter().map(|p| p.size).sum();
        v.etag = format!("{}-{}", hex::encode(md5.finalize()), chosen.len());
        v.data = ObjectData::Parts(chosen);
        let (_, parts) = self.uploads.remove(id).unwrap();
        self.queued.extend(seeds(
            parts
                .into_values()
                .filter(|p| listed.iter().all(|(n, _)| *n != p.number))
                .map(|p| p.segment),
        ));
        Ok(CommandResponse::ObjectStored {
            version: self.store(v),
        })
    }
}

/// Roll `entries` (sorted by key) up by prefix and delimiter, as S3 lists them.
fn roll_up<T: Clone>(
    entries: &[(String, T)],
    prefix: &str,
    delimiter: Option<&str>,
) -> (Vec<T>, Vec<String>) {
    let mut items = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    for (key, item) in entries {
        let Some(rest) = key.strip_prefix(prefix) else {
            continue;
        };
        match delimiter.and_then(|d| rest.find(d).map(|at| at + d.len())) {
            Some(end) => {
                let cp = format!("{prefix}{}", &rest[..end]);
                if prefixes.last() != Some(&cp) {
                    prefixes.push(cp);
                }
            }
            None => items.push(item.clone()),
        }
    }
    (items, prefixes)
}

/// Page through a listing until it is not truncated; returns everything concatenated.
fn page_all<T>(
    max: usize,
    mut page: impl FnMut(
        Option<(String, Option<String>)>,
    ) -> (Vec<T>, Vec<String>, Option<(String, Option<String>)>),
) -> (Vec<T>, Vec<String>) {
    let mut items = Vec::new();
    let mut prefixes = Vec::new();
    let mut marker = None;
    for _ in 0..1000 {
        let (i, p, next) = page(marker.clone());
        assert!(i.len() + p.len() <= max, "page larger than max");
        items.extend(i);
        prefixes.extend(p);
        match next {
            None => return (items, prefixes),
            Some(next) => {
                assert_ne!(Some(&next), marker.as_ref(), "paging made no progress");
                marker = Some(next);
            }
        }
    }
    panic!("listing never ended");
}

fn compare_listings(meta: &Meta, r: &Reference, prefix: &str, delimiter: Option<&str>, max: usize) {
    let view = meta.view();
    let delim = delimiter.map(str::to_owned);

    let live: Vec<(String, ListedObject)> = r
        .objects
        .keys()
        .filter_map(|k| r.current(k).map(|v| (k.clone(), ListedObject::from(v))))
        .collect();
    let got = page_all(max, |marker| {
        let p = view
            .list_objects(
                BUCKET,
                &ListObjectsQuery {
                    prefix: prefix.into(),
                    delimiter: delim.clone(),
                    start_after: marker.map(|m| m.0),
                    max_keys: max,
                },
            )
            .unwrap();
        assert_eq!(p.is_truncated, p.next_marker.is_some());
        (
            p.objects,
            p.common_prefixes,
            p.next_marker.map(|m| (m, None)),
        )
    });
    assert_eq!(
        got,
        roll_up(&live, prefix, delimiter),
        "objects {prefix:?} {delimiter:?} {max}"
    );

    let all: Vec<(String, (ObjectVersion, bool))> = r
        .objects
        .iter()
        .flat_map(|(k, vs)| {
            vs.iter()
                .enumerate()
                .map(|(i, v)| (k.clone(), (v.clone(), i == 0)))
        })
        .collect();
    let got = page_all(max, |marker| {
        let (key_marker, version_id_marker) = marker.unzip();
        let p = view
            .list_versions(
                BUCKET,
                &ListVersionsQuery {
                    prefix: prefix.into(),
                    delimiter: delim.clone(),
                    key_marker,
                    version_id_marker: version_id_marker.flatten(),
                    max_keys: max,
                },
            )
            .unwrap();
        assert_eq!(p.is_truncated, p.next_key_marker.is_some());
        let next = p.next_key_marker.map(|k| (k, p.next_version_id_marker));
        (p.versions, p.common_prefixes, next)
    });
    assert_eq!(
        got,
        roll_up(&all, prefix, delimiter),
        "versions {prefix:?} {delimiter:?} {max}"
    );

    let uploads: Vec<(String, MultipartUpload)> = r
        .uploads
        .iter()
        .map(|((k, _), (u, _))| (k.clone(), u.clone()))
        .collect();
    let got = page_all(max, |marker| {
        let (key_marker, upload_id_marker) = marker.unzip();
        let p = view
            .list_uploads(
                BUCKET,
                &ListUploadsQuery {
                    prefix: prefix.into(),
                    delimiter: delim.clone(),
                    key_marker,
                    upload_id_marker: upload_id_marker.flatten(),
                    max_uploads: max,
                },
            )
            .unwrap();
        let next = p.next_key_marker.map(|k| (k, p.next_upload_id_marker));
        (p.uploads, p.common_prefixes, next)
    });
    assert_eq!(
        got,
        roll_up(&uploads, prefix, delimiter),
        "uploads {prefix:?} {delimiter:?} {max}"
    );
}

fn compare_state(meta: &Meta, r: &Reference) {
    let view = meta.view();
    for key in KEYS {
        let versions = r.objects.get(key).cloned().unwrap_or_default();
        assert_eq!(
            view.object(BUCKET, key, None).unwrap(),
            versions.first().cloned()
        );
        for v in &versions {
            assert_eq!(
                view.object(BUCKET, key, Some(&v.version_id))
                    .unwrap()
                    .as_ref(),
                Some(v)
            );
        }
    }
    for ((key, id), (upload, parts)) in &r.uploads {
        assert_eq!(view.upload(BUCKET, key, id).unwrap().as_ref(), Some(upload));
        let listed = view.list_parts(BUCKET, key, id, 0, 100).unwrap();
        assert_eq!(listed.parts, parts.values().cloned().collect::<Vec<_>>());
    }
    let queued: Vec<u64> = view
        .deletions(usize::MAX)
        .unwrap()
        .into_iter()
        .flat_map(|(_, segments)| seeds(segments))
        .collect();
    assert_eq!(queued, r.queued, "queued deletions");
    compare_listings(meta, r, "", None, 1000);
    compare_listings(meta, r, "", Some("/"), 1000);
}

fn run(ops: Vec<Op>) {
    let mut meta = Meta::new();
    meta.ok(Command::CreateBucket {
        bucket: bucket(BUCKET, Versioning::Unversioned),
    });
    let mut r = Reference {
        versioning: Versioning::Unversioned,
        objects: BTreeMap::new(),
        uploads: BTreeMap::new(),
        queued: Vec::new(),
    };
    for (step, op) in ops.into_iter().enumerate() {
        let seed = step as u64 + 1000;
        let (cmd, expected) = match op {
            Op::Put { key, cond } => {
                let key = KEYS[key];
                let cond = cond.map(|c| match c {
                    Cond::NoneMatch => Precondition::IfNoneMatchAny,
                    Cond::MatchCurrent => Precondition::IfMatch(
                        r.current(key)
                            .map_or_else(|| etag_of(1), |v| v.etag.clone()),
                    ),
                    Cond::MatchOther => Precondition::IfMatch(etag_of(2)),
                    Cond::MatchAny => Precondition::IfMatch("*".into()),
                });
                let vid = format!("v{step}");
                let expected =
                    r.check(key, cond.as_ref())
                        .map(|()| CommandResponse::ObjectStored {
                            version: r.store(version(BUCKET, key, &vid, seed)),
                        });
                let cmd = Command::PutObject {
                    version: version(BUCKET, key, &vid, seed),
                    precondition: cond,
                };
                (cmd, expected)
            }
            Op::Delete { key } => {
                let mid = format!("m{step}");
                let expected = Ok(r.delete(KEYS[key], &mid));
                (delete(BUCKET, KEYS[key], None, &mid), expected)
            }
            Op::DeleteVersion { key, pick } => {
                let key = KEYS[key];
                let vid = r
                    .objects
                    .get(key)
                    .and_then(|vs| vs.get(pick))
                    .map_or_else(|| "absent".to_string(), |v| v.version_id.clone());
                let removed = r.remove(key, &vid);
                let expected = Ok(CommandResponse::ObjectDeleted {
                    version_id: Some(vid.clone()),
                    delete_marker: removed.is_some_and(|v| v.is_delete_marker()),
                });
                (delete(BUCKET, key, Some(&vid), "unused"), expected)
            }
            Op::Versioning { enabled } => {
                let state = if enabled {
                    Versioning::Enabled
                } else {
                    Versioning::Suspended
                };
                r.versioning = state;
                let cmd = Command::UpdateBucket {
                    name: BUCKET.into(),
                    update: BucketUpdate::Versioning(state),
                };
                (cmd, Ok(CommandResponse::Done))
            }
            Op::CreateUpload { key } => {
                let cmd = create_upload(BUCKET, KEYS[key], &format!("u{step}"));
                let Command::CreateMultipartUpload { upload } = &cmd else {
                    unreachable!()
                };
                r.uploads.insert(
                    (upload.key.clone(), upload.upload_id.clone()),
                    (upload.clone(), BTreeMap::new()),
                );
                (cmd, Ok(CommandResponse::Done))
            }
            Op::PutPart {
                upload,
                number,
                size,
            } => {
                let id = r.upload_id(upload);
                let p = part(number, size, seed);
                let expected = match r.uploads.get_mut(&id) {
                    None => Err(ApplyError::NoSuchUpload),
                    Some((_, parts)) => {
                        if let Some(old) = parts.insert(number, p.clone()) {
                            r.queued.extend(seeds([old.segment]));
                        }
                        Ok(CommandResponse::Done)
                    }
                };
                (put_part(BUCKET, &id.0, &id.1, p), expected)
            }
            Op::Complete {
                upload,
                mask,
                min_size,
            } => {
                let id = r.upload_id(upload);
                let stored = r
                    .uploads
                    .get(&id)
                    .map(|(_, p)| p.clone())
                    .unwrap_or_default();
                let listed: Vec<(u32, String)> = (1..=4u32)
                    .filter(|n| mask & (1 << (n - 1)) != 0)
                    .map(|n| {
                        (
                            n,
                            stored
                                .get(&n)
                                .map_or_else(|| etag_of(3), |p| p.etag.clone()),
                        )
                    })
                    .collect();
                let vid = format!("v{step}");
                let expected = r.complete(&id, &listed, min_size, &vid);
                (
                    complete(BUCKET, &id.0, &id.1, listed, &vid, min_size),
                    expected,
                )
            }
            Op::Abort { upload } => {
                let id = r.upload_id(upload);
                let expected = match r.uploads.remove(&id) {
                    None => Err(ApplyError::NoSuchUpload),
                    Some((_, parts)) => {
                        r.queued
                            .extend(seeds(parts.into_values().map(|p| p.segment)));
                        Ok(CommandResponse::Done)
                    }
                };
                let cmd = Command::AbortMultipartUpload {
                    bucket: BUCKET.into(),
                    key: id.0,
                    upload_id: id.1,
                };
                (cmd, expected)
            }
            Op::List {
                prefix,
                delimiter,
                max,
            } => {
                let delimiter = delimiter.map(|d| DELIMITERS[d]);
                compare_listings(&meta, &r, PREFIXES[prefix], delimiter, max);
                continue;
            }
        };
        let before = meta.dump();
        let got = meta.apply(cmd.clone());
        assert_eq!(got, expected, "step {step}: {cmd:?}");
        if got.is_err() {
            assert_eq!(meta.dump(), before, "a refused command changed state");
        }
        compare_state(&meta, &r);
    }
}

/// The failure proptest once saved for this test (its seed, recorded under
/// an older strategy in which `List` took `delimiter: true` for "/", no
/// longer generates it): suspended versioning, a null version of "a/b", a
/// null delete marker on "ab", then listings by "/" in pages of one.
#[test]
fn saved_failure_suspended_marker_and_delimited_pages_of_one() {
    run(vec![
        Op::Versioning { enabled: false },
        Op::Put { key: 1, cond: None },
        Op::Delete { key: 4 },
        Op::List {
            prefix: 0,
            delimiter: Some(0),
            max: 1,
        },
    ]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn state_machine_matches_the_reference(ops in prop::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
