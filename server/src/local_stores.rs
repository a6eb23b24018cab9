//! The data directory's local shard stores, `disks/disk-1` … `disks/disk-N`,
//! and the one-time migration of stores written before store ids.
//!
//! The directory names are only paths: a store is known (in placements,
//! metrics, the admin status) by the id minted into its root when it first
//! opened (see [`StoreIdentity`]), which is unique across the cluster and
//! travels with the directory.
//!
//! A release before store ids named each store `disk-N` by position, and
//! its metadata places shards on those names. Such a store (shards, no
//! identity file) is given an id with `disk-N` recorded as its legacy id;
//! then [`rename_legacy_ids`] commits one [`Command::RenameStores`] that
//! renames them all in the metadata, and only after it committed marks the
//! stores renamed. A crash in between is safe at every point:
//!
//! - before the identity files are written: nothing changed; the next start
//!   does the same.
//! - after, before the command commits: the next start reads the same ids
//!   (never minted again) and proposes the rename again.
//! - after the commit, before the stores are marked: the rename is proposed
//!   again and changes nothing, as no record names a legacy id any more.
//!
//! The server serves nothing before the rename has committed.

use anyhow::{Context, Result, bail};
use tessera_raft::MetaNode;
use tessera_raft::command::Command;
use tessera_storage::store::StoreIdentity;
use tessera_storage::{LocalDir, ShardStore};

use crate::datadir::DataDir;

/// Opens the stores `disks/disk-1` … `disks/disk-N` of `dir`, minting the
/// ids of new ones. Two stores with the same id (a store directory copied
/// over another) are refused: their shards would be confused.
pub fn open(dir: &DataDir, disks: usize) -> Result<Vec<LocalDir>> {
    let mut stores: Vec<LocalDir> = Vec::with_capacity(disks);
    for n in 1..=disks {
        let path = dir.disk_dir(n);
        let store = LocalDir::open_migrating(&path, &DataDir::legacy_disk_id(n))
            .with_context(|| format!("opening disk {}", path.display()))?;
        if let Some(twin) = stores.iter().find(|s| s.id() == store.id()) {
            bail!(
                "{} and {} have the same store id {} ({}): one is a copy of the other",
                twin.root().display(),
                path.display(),
                store.id(),
                StoreIdentity::path(&path).display(),
            );
        }
        stores.push(store);
    }
    Ok(stores)
}

/// Renames, in the metadata, the stores that still have an unrenamed
/// legacy id (one command for all of them), then marks them renamed.
pub async fn rename_legacy_ids(meta: &MetaNode, stores: &[LocalDir]) -> Result<()> {
    let pending: Vec<(&LocalDir, String)> = stores
        .iter()
        .filter_map(|s| {
            let identity = s.identity();
            identity
                .unrenamed_legacy_id()
                .map(|old| (s, old.to_owned()))
        })
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let renames: Vec<(String, String)> = pending
        .iter()
        .map(|(store, old)| (old.clone(), store.id().to_owned()))
        .collect();
    tracing::info!(
        ?renames,
        "renaming stores written before store ids in the metadata"
    );
    meta.write(Command::RenameStores { renames })
        .await
        .context("renaming the stores in the metadata")?;
    for (store, old) in pending {
        store.mark_legacy_renamed().with_context(|| {
            format!(
                "marking {} renamed",
                StoreIdentity::path(store.root()).display()
            )
        })?;
        tracing::info!(store = store.id(), legacy = old, root = %store.root().display(), "store renamed");
    }
    Ok(())
}
