//! openraft's storage conformance suite on the redb log store and state machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use tessera_raft::log_store::LogStore;
use tessera_raft::state_machine::StateMachineStore;
use tessera_raft::types::TypeConfig;

struct RedbStores;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for RedbStores {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError<u64>> {
        let dir = tempfile::tempdir().unwrap();
        let log = LogStore::open(&dir.path().join("log.redb")).unwrap();
        let sm = StateMachineStore::open(
            &dir.path().join("state.redb"),
            &dir.path().join("snapshots"),
            tessera_raft::node::DEFAULT_STATE_CACHE_BYTES,
        )
        .unwrap();
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(RedbStores).unwrap();
}
