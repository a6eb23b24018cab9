//! A bucket's storage policy: the erasure code of its new segments, the
//! sites that each keep a whole copy of them and how those copies are
//! written, overriding the gateway's defaults (`data_shards`,
//! `parity_shards`, `site_copies`, `site_replication`) for that bucket.
//!
//! Kept in the bucket's settings under [`SETTING`] as JSON, set by the
//! admin API; segments record their own code and placement, so changing a
//! policy changes where and how new writes go, never how existing objects
//! read.

use serde::{Deserialize, Serialize};
use tessera_storage::Geometry;

use crate::placement::StoreSet;

/// The bucket setting a policy is kept under.
pub const SETTING: &str = "storage-policy";

/// Most shards one segment may have (k + m), per copy.
const MAX_WIDTH: u16 = 32;

/// A bucket's storage policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoragePolicy {
    /// k: data shards of each new segment.
    pub data_shards: u16,
    /// m: parity shards of each new segment.
    pub parity_shards: u16,
    /// Sites that each keep a whole k + m copy; empty: one copy spread
    /// over every site.
    #[serde(default)]
    pub site_copies: Vec<String>,
    /// How the copies are written; `None`: the gateway's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<SiteReplication>,
}

/// How the copies of a segment kept as a copy per site are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SiteReplication {
    /// Every copy before the PUT is answered: a site lost the next moment
    /// loses nothing (every site that is up takes its copy).
    #[default]
    Sync,
    /// The writing gateway's own site's copy before the PUT is answered,
    /// the others by the site replicator from a queue in the metadata:
    /// faster writes across a slow link, at the risk of what the queue
    /// holds when the writing site is lost.
    Async,
}

impl std::fmt::Display for SiteReplication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SiteReplication::Sync => "sync",
            SiteReplication::Async => "async",
        })
    }
}

/// Why a storage policy cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    /// The setting does not parse.
    #[error("the storage policy does not parse: {0}")]
    Malformed(String),
    /// k or m is 0, or k + m is too large.
    #[error(
        "data_shards and parity_shards must be at least 1 and data_shards + parity_shards at most {MAX_WIDTH}"
    )]
    BadCode,
    /// A site named twice, or a single site named.
    #[error("site_copies must name two or more different sites")]
    BadSites,
    /// Too few stores for one copy.
    #[error("{place} has {stores} stores, fewer than the {width} shards of a segment")]
    TooFewStores {
        /// The site, or "the cluster".
        place: String,
        /// Its stores.
        stores: usize,
        /// k + m.
        width: usize,
    },
}

impl StoragePolicy {
    /// The policy kept in a bucket's setting.
    pub fn decode(bytes: &[u8]) -> Result<StoragePolicy, PolicyError> {
        serde_json::from_slice(bytes).map_err(|e| PolicyError::Malformed(e.to_string()))
    }

    /// The setting's bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The code of new segments, with `defaults`' block size.
    pub fn geometry(&self, defaults: Geometry) -> Geometry {
        Geometry {
            data_shards: self.data_shards,
            parity_shards: self.parity_shards,
            ..defaults
        }
    }

    /// Checks that the cluster's stores (`stores`) can hold segments of
    /// this policy.
    pub fn check(&self, stores: &StoreSet) -> Result<(), PolicyError> {
        let width = self.data_shards.saturating_add(self.parity_shards);
        if self.data_shards == 0 || self.parity_shards == 0 || width > MAX_WIDTH {
            return Err(PolicyError::BadCode);
        }
        let width = usize::from(width);
        let mut sites = self.site_copies.clone();
        sites.sort();
        sites.dedup();
        if sites.len() != self.site_copies.len() || sites.len() == 1 {
            return Err(PolicyError::BadSites);
        }
        let too_few = |place: String, stores: usize| {
            (stores < width).then_some(PolicyError::TooFewStores {
                place,
                stores,
                width,
            })
        };
        if sites.is_empty() {
            return too_few("the cluster".into(), stores.len()).map_or(Ok(()), Err);
        }
        let all = stores.all();
        for site in &sites {
            let count = all
                .iter()
                .filter(|s| stores.domain(s.id()).site.as_deref() == Some(site.as_str()))
                .count();
            if let Some(e) = too_few(format!("site {site}"), count) {
                return Err(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_and_bad_ones_are_named() {
        let p = StoragePolicy {
            data_shards: 2,
            parity_shards: 1,
            site_copies: vec!["dc-a".into(), "dc-b".into()],
            replication: Some(SiteReplication::Async),
        };
        assert_eq!(StoragePolicy::decode(&p.encode()), Ok(p));
        let spread: StoragePolicy =
            StoragePolicy::decode(br#"{"data_shards":4,"parity_shards":2}"#).unwrap();
        assert!(spread.site_copies.is_empty());
        assert_eq!(spread.replication, None);
        assert!(matches!(
            StoragePolicy::decode(b"{"),
            Err(PolicyError::Malformed(_))
        ));
        let stores = StoreSet::new(Vec::new());
        let bad = |k, m, sites: &[&str]| {
            StoragePolicy {
                data_shards: k,
                parity_shards: m,
                site_copies: sites.iter().map(|s| s.to_string()).collect(),
                replication: None,
            }
            .check(&stores)
        };
        assert_eq!(bad(0, 2, &[]), Err(PolicyError::BadCode));
        assert_eq!(bad(2, 0, &[]), Err(PolicyError::BadCode));
        assert_eq!(bad(30, 3, &[]), Err(PolicyError::BadCode));
        assert_eq!(bad(2, 1, &["dc-a"]), Err(PolicyError::BadSites));
        assert_eq!(bad(2, 1, &["dc-a", "dc-a"]), Err(PolicyError::BadSites));
        assert!(matches!(
            bad(2, 1, &[]),
            Err(PolicyError::TooFewStores {
                stores: 0,
                width: 3,
                ..
            })
        ));
    }
}
