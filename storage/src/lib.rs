//! Tessera storage: erasure-coded, encrypted, checksummed shards.
