//! Fuzzes the shard file parser: header, blocks, trailer.
//!
//! The first input byte picks a mode: raw bytes, or bytes whose header and
//! trailer checksums are fixed up so the fuzzer reaches the block walk.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_storage::format::{
    HEADER_LEN, ShardHeader, ShardTrailer, TRAILER_LEN, check_block, header_checksum,
    verify_shard_file,
};

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else {
        return;
    };
    let mut file = data.to_vec();
    if mode & 1 == 1 && file.len() >= HEADER_LEN + TRAILER_LEN {
        let sum = header_checksum(&file[..56]);
        file[56..64].copy_from_slice(&sum);
        if let Ok(header) = ShardHeader::decode(&file) {
            let at = file.len() - TRAILER_LEN;
            let blocks = u64::from_le_bytes(file[at + 8..at + 16].try_into().unwrap_or_default());
            let size = u64::from_le_bytes(file[at + 16..at + 24].try_into().unwrap_or_default());
            let trailer = ShardTrailer { blocks, size }.encode(header.shard);
            file[at..].copy_from_slice(&trailer);
        }
    }
    if let Ok(summary) = verify_shard_file(&file) {
        // Whatever verifies must describe the file exactly.
        let g = summary.header.geometry;
        let len = g.shard_file_len(
            summary.trailer.size,
            usize::from(summary.header.shard.index),
        );
        assert_eq!(len, file.len() as u64);
    }
    if let Ok(header) = ShardHeader::decode(&file) {
        let _ = check_block(header.shard, 0, &file[HEADER_LEN..]);
    }
});
