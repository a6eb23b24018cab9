//! Geometry and the on-disk shard file format (see the crate docs for the layout).
//!
//! Everything here is pure: layout arithmetic, header/trailer encoding and a
//! parser that checks a whole shard file without the key (scrub, fuzzing).

use xxhash_rust::xxh3::{Xxh3, xxh3_64, xxh3_64_with_seed};

use crate::crypto::TAG_LEN;
use crate::error::StorageError;
use crate::store::{ObjectId, ShardId};

/// Length of the shard file header.
pub const HEADER_LEN: usize = 64;
/// Length of the shard file trailer.
pub const TRAILER_LEN: usize = 32;
/// Length of each block's xxh3-64 checksum.
pub const HASH_LEN: usize = 8;
/// Bytes a block adds to its payload: AEAD tag and checksum.
pub const BLOCK_OVERHEAD: usize = TAG_LEN + HASH_LEN;
/// Alignment of direct I/O (a multiple of every disk's logical block size).
/// The writer lays each framed block in memory at an address congruent to
/// its file offset modulo this, so a local store can hand the block's whole
/// pages to the disk without copying them first.
pub const IO_ALIGN: usize = 4096;
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u16 = 1;

const HEADER_MAGIC: &[u8; 8] = b"TESSHARD";
const TRAILER_MAGIC: &[u8; 8] = b"TESSEND\0";
/// Codec id 1: Reed-Solomon over GF(2^16) (Leopard layout, `reed-solomon-simd`).
const CODEC_RS16: u8 = 1;
/// Cipher id 1: AES-256-GCM-SIV over data blocks, parity over the sealed bytes.
const CIPHER_GCM_SIV: u8 = 1;
/// Largest block size accepted.
pub const MAX_BLOCK_SIZE: u32 = 64 << 20;
/// Largest k + m accepted.
pub const MAX_SHARDS: u16 = 256;

/// Erasure-code shape of an object: k data shards, m parity shards, block size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    /// k: data shards (any k of the k + m rebuild the object).
    pub data_shards: u16,
    /// m: parity shards (how many shards may be lost).
    pub parity_shards: u16,
    /// Plain-text bytes per shard block; a stripe holds k blocks.
    pub block_size: u32,
}

impl Default for Geometry {
    /// 4 + 2 with 1 MiB blocks.
    fn default() -> Self {
        Geometry {
            data_shards: 4,
            parity_shards: 2,
            block_size: 1 << 20,
        }
    }
}

impl Geometry {
    /// A validated geometry: k ≥ 1, m ≥ 1, k + m ≤ 256, block size even and
    /// in `2..=64 MiB`.
    pub fn new(
        data_shards: u16,
        parity_shards: u16,
        block_size: u32,
    ) -> Result<Self, StorageError> {
        let g = Geometry {
            data_shards,
            parity_shards,
            block_size,
        };
        g.validate()?;
        Ok(g)
    }

    /// Checks the invariants of [`Geometry::new`] (fields are public).
    pub fn validate(&self) -> Result<(), StorageError> {
        let bad = |why: String| Err(StorageError::InvalidGeometry(why));
        if self.data_shards == 0 || self.parity_shards == 0 {
            return bad(format!(
                "{}+{}: k and m must be at least 1",
                self.data_shards, self.parity_shards
            ));
        }
        if u32::from(self.data_shards) + u32::from(self.parity_shards) > u32::from(MAX_SHARDS) {
            return bad(format!("k+m must be at most {MAX_SHARDS}"));
        }
        if self.block_size < 2
            || self.block_size > MAX_BLOCK_SIZE
            || !self.block_size.is_multiple_of(2)
        {
            return bad(format!(
                "block size {} must be even and in 2..={MAX_BLOCK_SIZE}",
                self.block_size
            ));
        }
        Ok(())
    }

    /// k + m.
    pub fn total_shards(&self) -> usize {
        usize::from(self.data_shards) + usize::from(self.parity_shards)
    }

    /// k as usize.
    pub fn k(&self) -> usize {
        usize::from(self.data_shards)
    }

    /// Object bytes per stripe: k × block size.
    pub fn stripe_size(&self) -> u64 {
        u64::from(self.data_shards) * u64::from(self.block_size)
    }

    /// Number of stripes (= blocks per shard) of an object of `size` bytes.
    pub fn stripe_count(&self, size: u64) -> u64 {
        size.div_ceil(self.stripe_size())
    }

    /// Plain-text bytes in data block `j` of `stripe`.
    pub fn plain_len(&self, size: u64, stripe: u64, j: usize) -> usize {
        let start = (stripe * u64::from(self.data_shards) + j as u64) * u64::from(self.block_size);
        size.saturating_sub(start).min(u64::from(self.block_size)) as usize
    }

    /// Sealed length of the block of shard `index` in `stripe`: data blocks are
    /// plain text + tag; parity blocks are the largest data block rounded up to even.
    pub fn sealed_len(&self, size: u64, stripe: u64, index: usize) -> usize {
        if index < self.k() {
            self.plain_len(size, stripe, index) + TAG_LEN
        } else {
            parity_len(self.plain_len(size, stripe, 0) + TAG_LEN)
        }
    }

    /// Byte offset of block `block` in a shard file.
    pub fn block_offset(&self, block: u64) -> u64 {
        HEADER_LEN as u64 + block * (u64::from(self.block_size) + BLOCK_OVERHEAD as u64)
    }

    /// Total length of the shard file for shard `index` of an object of `size` bytes.
    pub fn shard_file_len(&self, size: u64, index: usize) -> u64 {
        let blocks = self.stripe_count(size);
        let body = match blocks.checked_sub(1) {
            None => HEADER_LEN as u64,
            Some(last) => {
                self.block_offset(last) + (self.sealed_len(size, last, index) + HASH_LEN) as u64
            }
        };
        body + TRAILER_LEN as u64
    }
}

/// Length the codec works on for a stripe whose largest sealed data block is `sealed`.
pub(crate) fn parity_len(sealed: usize) -> usize {
    sealed + sealed % 2
}

/// Seed of the xxh3 checksum of one block, derived from its position, so a
/// block copied to another position or shard fails the check without the key.
pub fn block_seed(shard: ShardId, block: u64) -> u64 {
    let mut id = [0u8; 22];
    id[..16].copy_from_slice(&shard.object.0);
    id[16..20].copy_from_slice(&shard.part.to_le_bytes());
    id[20..22].copy_from_slice(&shard.index.to_le_bytes());
    xxh3_64(&id) ^ (block.wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The checksum stored after a block's sealed bytes.
pub fn block_hash(shard: ShardId, block: u64, sealed: &[u8]) -> [u8; HASH_LEN] {
    xxh3_64_with_seed(sealed, block_seed(shard, block)).to_le_bytes()
}

/// [`block_hash`] of a block fed a piece at a time, so each piece can be
/// hashed while it is still in cache.
pub(crate) struct BlockHasher(Xxh3);

impl BlockHasher {
    /// The checksum of block number `block` of `shard`, fed nothing yet.
    pub(crate) fn new(shard: ShardId, block: u64) -> Self {
        BlockHasher(Xxh3::with_seed(block_seed(shard, block)))
    }

    /// Feeds the next piece of the sealed bytes.
    pub(crate) fn update(&mut self, piece: &[u8]) {
        self.0.update(piece);
    }

    /// The checksum of everything fed.
    pub(crate) fn finish(&self) -> [u8; HASH_LEN] {
        self.0.digest().to_le_bytes()
    }
}

/// The checksum stored in header bytes 56..64, over header bytes 0..56.
pub fn header_checksum(first_56: &[u8]) -> [u8; 8] {
    xxh3_64(first_56).to_le_bytes()
}

/// The fixed-size header at the start of every shard file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardHeader {
    /// Which shard this file holds.
    pub shard: ShardId,
    /// The object's geometry.
    pub geometry: Geometry,
}

impl ShardHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(HEADER_MAGIC);
        h[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[10] = CODEC_RS16;
        h[11] = CIPHER_GCM_SIV;
        h[12..14].copy_from_slice(&self.geometry.data_shards.to_le_bytes());
        h[14..16].copy_from_slice(&self.geometry.parity_shards.to_le_bytes());
        h[16..20].copy_from_slice(&self.geometry.block_size.to_le_bytes());
        h[20..24].copy_from_slice(&self.shard.part.to_le_bytes());
        h[24..26].copy_from_slice(&self.shard.index.to_le_bytes());
        h[28..44].copy_from_slice(&self.shard.object.0);
        let sum = header_checksum(&h[..56]);
        h[56..64].copy_from_slice(&sum);
        h
    }

    /// Parses and checks a header (checksum, magic, version, geometry).
    pub fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        let bad = |why: &str| Err(StorageError::Format(why.to_string()));
        let Some(h) = bytes.get(..HEADER_LEN) else {
            return bad("shorter than a header");
        };
        if &h[0..8] != HEADER_MAGIC {
            return bad("bad header magic");
        }
        if header_checksum(&h[..56]) != h[56..64] {
            return bad("header checksum mismatch");
        }
        if u16_at(h, 8) != FORMAT_VERSION {
            return bad("unknown format version");
        }
        if h[10] != CODEC_RS16 || h[11] != CIPHER_GCM_SIV {
            return bad("unknown codec or cipher");
        }
        if h[26..28] != [0, 0] || h[44..56].iter().any(|&b| b != 0) {
            return bad("reserved header bytes are set");
        }
        let geometry = Geometry::new(u16_at(h, 12), u16_at(h, 14), u32_at(h, 16))?;
        let index = u16_at(h, 24);
        if usize::from(index) >= geometry.total_shards() {
            return bad("shard index outside the geometry");
        }
        let mut object = [0u8; 16];
        object.copy_from_slice(&h[28..44]);
        Ok(ShardHeader {
            shard: ShardId {
                object: ObjectId(object),
                part: u32_at(h, 20),
                index,
            },
            geometry,
        })
    }

    /// [`ShardHeader::decode`] of the header of a file stored as `shard`,
    /// which must be the shard it names.
    pub fn decode_of(shard: ShardId, bytes: &[u8]) -> Result<Self, StorageError> {
        let header = ShardHeader::decode(bytes)?;
        if header.shard != shard {
            return Err(StorageError::corrupt(
                shard,
                format!("file holds shard {}", header.shard),
            ));
        }
        Ok(header)
    }
}

/// The trailer closing a shard file: how many blocks and how big the object is,
/// so truncation at a block boundary is visible without metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardTrailer {
    /// Blocks in the file (= stripes of the object).
    pub blocks: u64,
    /// Plain-text size of the object (part).
    pub size: u64,
}

impl ShardTrailer {
    /// Encodes the trailer of `shard`.
    pub fn encode(&self, shard: ShardId) -> [u8; TRAILER_LEN] {
        let mut t = [0u8; TRAILER_LEN];
        t[0..8].copy_from_slice(TRAILER_MAGIC);
        t[8..16].copy_from_slice(&self.blocks.to_le_bytes());
        t[16..24].copy_from_slice(&self.size.to_le_bytes());
        let sum = xxh3_64_with_seed(&t[..24], block_seed(shard, u64::MAX));
        t[24..32].copy_from_slice(&sum.to_le_bytes());
        t
    }

    /// Parses and checks the trailer of `shard`.
    pub fn decode(shard: ShardId, bytes: &[u8]) -> Result<Self, StorageError> {
        let Some(t) = bytes.get(..TRAILER_LEN) else {
            return Err(StorageError::corrupt(shard, "shorter than a trailer"));
        };
        if &t[0..8] != TRAILER_MAGIC
            || xxh3_64_with_seed(&t[..24], block_seed(shard, u64::MAX)).to_le_bytes() != t[24..32]
        {
            return Err(StorageError::corrupt(shard, "bad trailer"));
        }
        Ok(ShardTrailer {
            blocks: u64_at(t, 8),
            size: u64_at(t, 16),
        })
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Checks one framed block (`sealed | xxh3`) and returns the sealed bytes.
pub fn check_block(shard: ShardId, block: u64, framed: &[u8]) -> Result<&[u8], StorageError> {
    let Some(split) = framed.len().checked_sub(HASH_LEN) else {
        return Err(StorageError::corrupt(
            shard,
            format!("block {block} truncated"),
        ));
    };
    let (sealed, hash) = framed.split_at(split);
    if block_hash(shard, block, sealed) != hash {
        return Err(StorageError::corrupt(
            shard,
            format!("block {block} checksum mismatch"),
        ));
    }
    Ok(sealed)
}

/// A whole shard file, checked without the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardSummary {
    /// The header.
    pub header: ShardHeader,
    /// The trailer.
    pub trailer: ShardTrailer,
}

/// Parses and verifies a complete shard file held in memory: header, every
/// block's length and xxh3, and the trailer. Never panics on any input.
pub fn verify_shard_file(file: &[u8]) -> Result<ShardSummary, StorageError> {
    let header = ShardHeader::decode(file)?;
    let shard = header.shard;
    let Some(trailer_at) = file
        .len()
        .checked_sub(TRAILER_LEN)
        .filter(|&t| t >= HEADER_LEN)
    else {
        return Err(StorageError::corrupt(shard, "truncated: no trailer"));
    };
    let trailer = ShardTrailer::decode(shard, &file[trailer_at..])?;
    let g = header.geometry;
    // Every block but the last is full: bound the count before any arithmetic on it.
    let max_blocks = 1 + (file.len() / (g.block_size as usize + BLOCK_OVERHEAD)) as u64;
    if trailer.blocks > max_blocks
        || g.stripe_count(trailer.size) != trailer.blocks
        || g.shard_file_len(trailer.size, usize::from(shard.index)) != file.len() as u64
    {
        return Err(StorageError::corrupt(
            shard,
            "file length does not match its trailer",
        ));
    }
    let mut at = HEADER_LEN;
    for block in 0..trailer.blocks {
        let len = g.sealed_len(trailer.size, block, usize::from(shard.index)) + HASH_LEN;
        check_block(shard, block, &file[at..at + len])?;
        at += len;
    }
    Ok(ShardSummary { header, trailer })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_hash_fed_in_pieces_is_the_same() {
        let shard = ShardId {
            object: ObjectId([3; 16]),
            part: 2,
            index: 5,
        };
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        for len in [0, 1, 17, 240, 241, 1024, 65_536, 65_537, 131_202, 200_000] {
            for piece in [1, 64, 1000, 65_536] {
                let mut hasher = BlockHasher::new(shard, 9);
                for chunk in data[..len].chunks(piece) {
                    hasher.update(chunk);
                }
                assert_eq!(
                    hasher.finish(),
                    block_hash(shard, 9, &data[..len]),
                    "{len} bytes in pieces of {piece}"
                );
            }
        }
    }

    #[test]
    fn geometry_validation() {
        assert!(Geometry::new(4, 2, 1 << 20).is_ok());
        assert!(Geometry::new(0, 2, 64).is_err());
        assert!(Geometry::new(4, 0, 64).is_err());
        assert!(Geometry::new(4, 2, 63).is_err());
        assert!(Geometry::new(200, 57, 64).is_err());
        assert!(Geometry::new(4, 2, MAX_BLOCK_SIZE + 2).is_err());
        assert_eq!(Geometry::default(), Geometry::new(4, 2, 1 << 20).unwrap());
    }

    #[test]
    fn layout_of_a_short_last_stripe() {
        let g = Geometry::new(3, 2, 10).unwrap();
        // 35 bytes: stripe 0 full (30), stripe 1 holds 5 bytes in block 0.
        assert_eq!(g.stripe_count(35), 2);
        assert_eq!(g.plain_len(35, 1, 0), 5);
        assert_eq!(g.plain_len(35, 1, 1), 0);
        assert_eq!(g.sealed_len(35, 1, 0), 5 + TAG_LEN);
        assert_eq!(g.sealed_len(35, 1, 2), TAG_LEN);
        assert_eq!(g.sealed_len(35, 1, 3), 22);
        assert_eq!(g.shard_file_len(0, 0), (HEADER_LEN + TRAILER_LEN) as u64);
    }

    #[test]
    fn header_round_trip_and_rejects_changes() {
        let header = ShardHeader {
            shard: ShardId {
                object: ObjectId([9; 16]),
                part: 7,
                index: 5,
            },
            geometry: Geometry::new(4, 2, 4096).unwrap(),
        };
        let bytes = header.encode();
        assert_eq!(ShardHeader::decode(&bytes).unwrap(), header);
        for i in 0..HEADER_LEN {
            let mut b = bytes;
            b[i] ^= 0x10;
            assert!(ShardHeader::decode(&b).is_err(), "flip at {i} accepted");
        }
        // A well-formed header is still refused as another shard's file.
        assert_eq!(
            ShardHeader::decode_of(header.shard, &bytes).unwrap(),
            header
        );
        let other = ShardId {
            index: 4,
            ..header.shard
        };
        assert!(matches!(
            ShardHeader::decode_of(other, &bytes),
            Err(StorageError::Corrupt { shard, .. }) if shard == other
        ));
    }
}
