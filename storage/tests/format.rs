//! The shard file parser against arbitrary and mutated input (the fuzz
//! target's property, run on every `cargo test`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use proptest::prelude::*;
use tessera_storage::format::{
    HEADER_LEN, ShardHeader, ShardTrailer, TRAILER_LEN, header_checksum, verify_shard_file,
};
use tessera_storage::{DataKey, Geometry, ObjectId, ShardId, StripeEncoder};

/// A valid shard file built from the encoder's own output.
fn shard_file(g: Geometry, size: usize, index: usize) -> Vec<u8> {
    let object = ObjectId([4; 16]);
    let enc = StripeEncoder::new(&DataKey::generate(), g, object, 2).unwrap();
    let shard = ShardId {
        object,
        part: 2,
        index: index as u16,
    };
    let plain = common::data(size, 1);
    let mut file = ShardHeader { shard, geometry: g }.encode().to_vec();
    let stripe = g.stripe_size() as usize;
    for (s, chunk) in plain.chunks(stripe).enumerate() {
        file.extend_from_slice(&enc.encode(s as u64, chunk).unwrap()[index]);
    }
    let blocks = g.stripe_count(size as u64);
    file.extend_from_slice(
        &ShardTrailer {
            blocks,
            size: size as u64,
        }
        .encode(shard),
    );
    file
}

/// Re-seals header and trailer checksums so mutations reach the block walk.
fn fix_checksums(file: &mut [u8]) {
    if file.len() < HEADER_LEN + TRAILER_LEN {
        return;
    }
    let sum = header_checksum(&file[..56]);
    file[56..64].copy_from_slice(&sum);
    if let Ok(h) = ShardHeader::decode(file) {
        let at = file.len() - TRAILER_LEN;
        let blocks = u64::from_le_bytes(file[at + 8..at + 16].try_into().unwrap());
        let size = u64::from_le_bytes(file[at + 16..at + 24].try_into().unwrap());
        file[at..].copy_from_slice(&ShardTrailer { blocks, size }.encode(h.shard));
    }
}

proptest! {
    #![proptest_config(common::proptest_config(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400), fix in any::<bool>()) {
        let mut bytes = bytes;
        if fix {
            fix_checksums(&mut bytes);
        }
        let _ = verify_shard_file(&bytes);
    }
}

proptest! {
    #![proptest_config(common::proptest_config(500))]

    /// Valid files verify; any mutation is rejected; with header and trailer
    /// checksums re-sealed, block bytes still cannot change. Never a panic.
    #[test]
    fn mutated_valid_files_are_rejected(
        k in 1u16..6, m in 1u16..4, half in 1u32..40, size in 0usize..2000, index in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
        fix in any::<bool>(),
    ) {
        let g = Geometry::new(k, m, half * 2).unwrap();
        let i = index.index(g.total_shards());
        let good = shard_file(g, size, i);
        let summary = verify_shard_file(&good).unwrap();
        prop_assert_eq!(summary.trailer.size, size as u64);
        prop_assert_eq!(good.len() as u64, g.shard_file_len(size as u64, i));

        let mut bad = good.clone();
        for (at, x) in edits {
            let at = at.index(bad.len());
            bad[at] ^= x;
        }
        if let Some(cut) = cut {
            bad.truncate(cut.index(bad.len()));
        }
        if bad == good {
            return Ok(());
        }
        if !fix {
            prop_assert!(verify_shard_file(&bad).is_err());
            return Ok(());
        }
        // An adversary re-sealing the unkeyed checksums can alter header
        // fields the blocks do not depend on (the reader checks those against
        // metadata and the AEAD), but never the block bytes.
        fix_checksums(&mut bad);
        if verify_shard_file(&bad).is_ok() {
            let body = good.len() - TRAILER_LEN;
            prop_assert_eq!(bad.len(), good.len());
            prop_assert_eq!(&bad[HEADER_LEN..body], &good[HEADER_LEN..body]);
        }
    }
}
