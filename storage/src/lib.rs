//! Tessera storage: the data plane. Erasure-coded, encrypted, checksummed
//! shards on pluggable stores. It knows nothing of S3 or raft.
//!
//! # What this crate owns
//!
//! * [`write_object`]: a body stream of unknown length in; MD5 (the ETag) and
//!   optional CRC32/CRC32C/CRC64NVME/SHA1/SHA256 computed on the way; the body
//!   cut into stripes of k blocks, each block sealed with AES-256-GCM-SIV under
//!   the object's [`DataKey`], m parity blocks computed with Reed-Solomon, and
//!   the k + m shard streams written in parallel to k + m distinct
//!   [`ShardStore`]s. Memory is bounded by `stripes_in_flight` stripes, and
//!   across writes by a shared [`MemoryBudget`].
//! * [`read_object`]: any byte range, reading only the stripes it covers from
//!   k stores in parallel; missing, failing, slow or corrupt shards are read
//!   around (parity + reconstruction) and reported. Never wrong bytes. Memory
//!   across reads is bounded by a shared [`MemoryBudget`] too.
//! * [`repair_shard`] (rebuild one shard onto a store, its decoding on the
//!   lowest-priority threads of [`background`]), [`copy_shard`] (copy one as
//!   it is, for a copy of a segment on another site), [`scrub_shard`]
//!   (check a stored shard without the key, reading it) and
//!   [`verify_shard`] (check it where it is: a storage node checks its own).
//! * [`seal_inline`] / [`open_inline`] for objects small enough to live in metadata.
//! * Keys: [`MasterKey`] wraps [`DataKey`]s and seals secrets (see [`crypto`]).
//! * Stores: the [`ShardStore`] trait, [`LocalDir`] (a directory on a disk,
//!   fsync + rename), [`Memory`], [`Remote`] (a store on a storage node) and
//!   [`S3Bucket`] (shards as objects in any S3-compatible bucket).
//! * [`node`]: the storage node protocol and its server, [`NodeService`].
//!
//! # Layout of an object
//!
//! Stripe `s` holds object bytes `[s·k·B, (s+1)·k·B)`; data block `j` of the
//! stripe holds the `B` bytes starting at `(s·k + j)·B` (B = block size). Only
//! the last stripe is short: its blocks fill in order, later ones may be empty.
//! Shard `i < k` holds data block `i` of every stripe; shard `k + p` holds
//! parity block `p`.
//!
//! Encryption happens before coding: each data block is sealed
//! (`ciphertext | 16-byte tag`), and parity is computed over the sealed data
//! blocks, zero-padded to the longest one rounded up to even. So parity
//! shards hold only functions of ciphertext, sealing costs one pass over the
//! data (not (k+m)/k), a rebuilt data block is authenticated by its own tag,
//! and repair is deterministic: a rebuilt shard is byte-identical to the lost one.
//!
//! Block nonce: `part (4) | shard index (2) | block index (6)`, little endian,
//! under a random per-object key; associated data: `"tessera/block/v1" |
//! object id | part | shard index | block index (8) | k | m | B`. A block moved
//! to another position, shard or object fails its tag (see [`crypto`]).
//!
//! # Shard file format (version 1)
//!
//! One file per (object, part, shard index), little endian throughout:
//!
//! ```text
//! header   64 bytes
//!   0..8    magic "TESSHARD"
//!   8..10   format version (1)
//!   10      codec (1 = Reed-Solomon GF(2^16), reed-solomon-simd)
//!   11      cipher (1 = AES-256-GCM-SIV, encrypt-then-code)
//!   12..14  k            14..16  m           16..20  block size B
//!   20..24  part         24..26  shard index 26..28  reserved (0)
//!   28..44  object id    44..56  reserved (0)
//!   56..64  xxh3-64 of bytes 0..56
//! blocks   one per stripe, back to back; block b starts at 64 + b·(B + 24)
//!   sealed bytes   data shard: ciphertext | tag (plain length + 16)
//!                  parity shard: Reed-Solomon parity of the sealed data blocks
//!   xxh3-64 of the sealed bytes, seeded from (object, part, shard index, b)
//!   Every block but the last is B + 16 + 8 bytes.
//! trailer  32 bytes
//!   0..8    magic "TESSEND\0"
//!   8..16   block count  16..24  object (part) size in bytes
//!   24..32  xxh3-64 of bytes 0..24, seeded from the shard id
//! ```
//!
//! A node verifies every block without the key ([`format::verify_shard_file`],
//! [`scrub_shard`]); the seeded checksum also catches blocks copied from
//! another position, and the trailer makes truncation at a block boundary
//! visible. The reader authenticates every data block's tag before returning
//! a byte of it.
//!
//! # Kernels
//!
//! Three per-byte costs have x86-64 kernels of their own beside a portable
//! path that every build has. Each kernel's output is the portable path's,
//! byte for byte (the tests compare them), so nodes on different CPUs and
//! architectures read each other's shards.
//!
//! | Work | x86-64 kernels | Portable path |
//! |------|----------------|---------------|
//! | Reed-Solomon ([`codec`]): parity, and lost data shards from k others | coefficient matrices applied with GFNI on AVX-512 (needs AVX-512F, AVX-512BW, GFNI) | reed-solomon-simd's encoder and decoder (their own run-time SIMD) |
//! | Shard blocks' AES-256-GCM-SIV ([`crypto`]) | VAES + VPCLMULQDQ on 512-bit vectors (with AVX-512F/BW) or 256-bit ones (with AVX2) | aws-lc's AES-256-GCM-SIV |
//! | MD5 of concurrent uploads ([`md5`]) | eight streams in AVX2 lanes, sixteen in AVX-512F lanes | two to four streams' scalar steps interleaved (plain Rust), or aws-lc's MD5 one stream at a time |
//!
//! How they are chosen:
//!
//! * On x86-64 the kernels are compiled in and picked at run time by what
//!   the CPU reports (`is_x86_feature_detected!`): the codec per call, the
//!   cipher per key ([`crypto::BlockCipher::implementation`] says which), and
//!   the MD5 worker once at start, timing every kernel the CPU runs and
//!   taking, for each number of streams a round holds, the quickest. A CPU
//!   without the features gets the portable path; one without AVX2 hashes
//!   every stream on its caller's thread.
//! * On every other target (aarch64 storage nodes, for example) the x86
//!   modules are not compiled: the codec and the cipher take the portable
//!   path, and the MD5 worker runs on any CPU, choosing between the
//!   interleaved kernel and aws-lc's MD5 by the same timing.
//! * `RUSTFLAGS="--cfg tessera_portable"` compiles the x86 kernels out on
//!   x86-64 too, so the portable build is tested on x86 machines (CI runs
//!   `cargo test -p tessera-storage` that way). Every x86 gate is
//!   `#[cfg(all(target_arch = "x86_64", not(tessera_portable)))]`. The
//!   MD5 worker's `tessera_md5_lane_rounds_total` metric has a `kernel`
//!   label value for each kernel the build has.

pub mod background;
pub mod budget;
pub mod checksum;
pub mod codec;
pub mod crypto;
pub mod error;
pub mod format;
pub mod inline;
pub mod md5;
pub mod node;
mod pool;
pub mod reader;
pub mod repair;
pub mod store;
pub mod writer;

pub use budget::{MemoryBudget, Reservation};
pub use checksum::{ChecksumAlgorithm, Checksums};
pub use crypto::{DataKey, MasterKey};
pub use error::StorageError;
pub use format::Geometry;
pub use inline::{DEFAULT_INLINE_THRESHOLD, open_inline, seal_inline};
pub use node::{NodeScrub, NodeService};
pub use reader::{BadShardCallback, ObjectLocation, ReadOptions, SlowShardCallback, read_object};
pub use repair::{Pace, copy_shard, repair_shard, scrub_shard, verify_shard};
pub use store::{
    ByteStream, LocalDir, Memory, NodeQueryError, ObjectId, Remote, S3Bucket, S3BucketConfig,
    ScrubFinding, SelfScrubbing, ShardId, ShardReader, ShardStat, ShardStore, StoreHealth,
};
pub use writer::{FailedStoreCallback, StripeEncoder, WriteOptions, WriteOutcome, write_object};
