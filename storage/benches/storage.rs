//! Throughput of the data path, in MB/s of object data (`cargo bench -p tessera-storage`).
//!
//! Groups: `codec` (the default codec: reed-solomon-simd encoding, rebuilds
//! by cached recovery matrix on GFNI; reed-solomon-simd's own decoder and
//! reed-solomon-novelpoly beside it), `primitives` (the block cipher,
//! aws-lc's GCM-SIV, the block checksum and memcpy on one 1 MiB block),
//! `writer_pipeline` (split + seal + encode + xxh3; no MD5, no I/O),
//! `read` (healthy and with m data shards lost, from memory stores),
//! `full_writer` (write_object with MD5 into memory stores) against `md5` alone
//! and eight MD5 streams sharing the AVX-512 lanes.
//!
//! The clock is the process CPU time (all threads), so a figure is what one
//! core does per second, unaffected by other load on a shared machine.
//! `TESSERA_BENCH_WALL=1` measures wall-clock time instead: the full writer's
//! figure a single upload sees, with MD5 on its own thread beside encoding.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use md5::Digest;
use reed_solomon_novelpoly::{CodeParams, WrappedShard};
use tessera_storage::codec::{Codec, DEFAULT_CODEC};
use tessera_storage::crypto::BlockPosition;
use tessera_storage::{
    DataKey, Geometry, Memory, ObjectId, ObjectLocation, ReadOptions, ShardStore, StripeEncoder,
    WriteOptions, read_object, write_object,
};

const MIB: usize = 1 << 20;
/// Object size for the pipeline, read and writer benchmarks.
const OBJECT: usize = 64 * MIB;

/// Process CPU time (all threads) as a criterion measurement.
struct CpuTime;

static WALL: WallTime = WallTime;

fn cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

impl Measurement for CpuTime {
    type Intermediate = (Duration, Instant);
    type Value = Duration;

    fn start(&self) -> Self::Intermediate {
        (cpu_now(), Instant::now())
    }
    fn end(&self, (cpu, wall): Self::Intermediate) -> Self::Value {
        if std::env::var_os("TESSERA_BENCH_WALL").is_some() {
            wall.elapsed()
        } else {
            cpu_now() - cpu
        }
    }
    fn add(&self, a: &Self::Value, b: &Self::Value) -> Self::Value {
        *a + *b
    }
    fn zero(&self) -> Self::Value {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Self::Value) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

type Cpu = Criterion<CpuTime>;

fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn codec(c: &mut Cpu) {
    let mut group = c.benchmark_group("codec");
    group.sample_size(10);
    for (k, m) in [(4usize, 2usize), (8, 4)] {
        let data: Vec<Vec<u8>> = (0..k).map(|i| payload(MIB + i)[i..].to_vec()).collect();
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        group.throughput(Throughput::BytesDecimal((k * MIB) as u64));
        let mut parity = vec![vec![0u8; MIB]; m];
        let encode = |parity: &mut Vec<Vec<u8>>| {
            let mut out: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
            DEFAULT_CODEC.encode(&refs, &mut out).unwrap();
        };
        encode(&mut parity);
        group.bench_function(format!("simd_encode_{k}+{m}"), |b| {
            b.iter(|| encode(&mut parity))
        });
        // Lose the first m data shards; rebuild them from the rest + parity.
        let present: Vec<(usize, &[u8])> = (m..k)
            .map(|i| (i, refs[i]))
            .chain((0..m).map(|p| (k + p, parity[p].as_slice())))
            .collect();
        let mut rebuilt = vec![vec![0u8; MIB]; m];
        let reconstruct = |rebuilt: &mut Vec<Vec<u8>>| {
            let mut out: Vec<(usize, &mut [u8])> = rebuilt
                .iter_mut()
                .enumerate()
                .map(|(i, v)| (i, v.as_mut_slice()))
                .collect();
            DEFAULT_CODEC.reconstruct(k, m, &present, &mut out).unwrap();
        };
        reconstruct(&mut rebuilt);
        assert_eq!(rebuilt[0], data[0]);
        group.bench_function(format!("simd_reconstruct_{k}+{m}"), |b| {
            b.iter(|| reconstruct(&mut rebuilt))
        });
        group.bench_function(format!("simd_decoder_reconstruct_{k}+{m}"), |b| {
            b.iter(|| {
                black_box(
                    reed_solomon_simd::decode(
                        k,
                        m,
                        present
                            .iter()
                            .filter(|(i, _)| *i < k)
                            .map(|(i, s)| (*i, *s)),
                        present
                            .iter()
                            .filter(|(i, _)| *i >= k)
                            .map(|(i, s)| (*i - k, *s)),
                    )
                    .unwrap(),
                )
            })
        });

        let whole = data.concat();
        let rs = CodeParams::derive_parameters(k + m, k)
            .unwrap()
            .make_encoder();
        group.bench_function(format!("novelpoly_encode_{k}+{m}"), |b| {
            b.iter(|| black_box(rs.encode::<WrappedShard>(&whole).unwrap()))
        });
        let shards = rs.encode::<WrappedShard>(&whole).unwrap();
        group.bench_function(format!("novelpoly_reconstruct_{k}+{m}"), |b| {
            b.iter(|| {
                let received: Vec<Option<WrappedShard>> = shards
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (i >= m).then(|| s.clone()))
                    .collect();
                black_box(rs.reconstruct(received).unwrap())
            })
        });
    }
    group.finish();
}

/// The pipeline's per-byte steps alone, on one 1 MiB block: the block cipher
/// (the writer's; VAES where the CPU has it), aws-lc's AES-256-GCM-SIV (the
/// fallback) and the block checksum.
fn primitives(c: &mut Cpu) {
    use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, LessSafeKey, Nonce, UnboundKey};
    let mut group = c.benchmark_group("primitives");
    group.sample_size(20);
    group.throughput(Throughput::BytesDecimal(MIB as u64));
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM_SIV, &[7; 32]).unwrap());
    let mut block = payload(MIB);
    let cipher = DataKey::generate().block_cipher();
    let pos = BlockPosition {
        object: ObjectId::random(),
        part: 1,
        index: 0,
        block: 0,
        geometry: Geometry::default(),
    };
    group.bench_function(format!("block_seal_{}", cipher.implementation()), |b| {
        b.iter(|| black_box(cipher.seal(&pos, &mut block)))
    });
    let tag = cipher.seal(&pos, &mut block);
    group.bench_function(
        format!("block_seal_open_{}", cipher.implementation()),
        |b| {
            b.iter(|| {
                let tag = cipher.seal(&pos, &mut block);
                cipher.open(&pos, &mut block, &tag).unwrap();
            })
        },
    );
    cipher.open(&pos, &mut block, &tag).unwrap();
    group.bench_function("aws_lc_aes_256_gcm_siv_seal", |b| {
        b.iter(|| {
            let nonce = Nonce::assume_unique_for_key([1; 12]);
            black_box(
                key.seal_in_place_separate_tag(nonce, Aad::from(b"aad"), &mut block)
                    .unwrap(),
            )
        })
    });
    group.bench_function("xxh3_64", |b| {
        b.iter(|| black_box(xxhash_rust::xxh3::xxh3_64_with_seed(&block, 7)))
    });
    group.bench_function("memcpy", |b| {
        let mut out = vec![0u8; MIB];
        b.iter(|| {
            out.copy_from_slice(&block);
            black_box(&out);
        })
    });
    group.finish();
}

fn writer_pipeline(c: &mut Cpu) {
    let mut group = c.benchmark_group("writer_pipeline");
    group.sample_size(10);
    group.throughput(Throughput::BytesDecimal(OBJECT as u64));
    let data = payload(OBJECT);
    for (k, m) in [(4u16, 2u16), (8, 4)] {
        let g = Geometry::new(k, m, MIB as u32).unwrap();
        let enc = StripeEncoder::new(&DataKey::generate(), g, ObjectId::random(), 1).unwrap();
        group.bench_function(format!("{k}+{m}"), |b| {
            b.iter(|| {
                for (s, stripe) in data.chunks(g.stripe_size() as usize).enumerate() {
                    black_box(enc.encode(s as u64, stripe).unwrap());
                }
            })
        });
    }
    group.finish();
}

/// Memory stores, a key and options for one object of geometry k + m.
struct Target {
    g: Geometry,
    all: Vec<Arc<dyn ShardStore>>,
    key: DataKey,
    object: ObjectId,
    opts: WriteOptions,
}

fn target(k: u16, m: u16) -> Target {
    let g = Geometry::new(k, m, MIB as u32).unwrap();
    Target {
        g,
        all: stores(g.total_shards()),
        key: DataKey::generate(),
        object: ObjectId::random(),
        opts: WriteOptions {
            geometry: g,
            ..WriteOptions::default()
        },
    }
}

fn stores(n: usize) -> Vec<Arc<dyn ShardStore>> {
    (0..n)
        .map(|i| Arc::new(Memory::new(format!("m{i}"))) as Arc<dyn ShardStore>)
        .collect()
}

fn body(
    data: &Bytes,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static {
    let data = data.clone();
    let chunks: Vec<_> = (0..data.len())
        .step_by(MIB)
        .map(|at| Ok(data.slice(at..(at + MIB).min(data.len()))))
        .collect();
    futures::stream::iter(chunks)
}

fn read(c: &mut Cpu) {
    let rt = runtime();
    let mut group = c.benchmark_group("read");
    group.sample_size(10);
    group.throughput(Throughput::BytesDecimal(OBJECT as u64));
    let data = Bytes::from(payload(OBJECT));
    for (k, m) in [(4u16, 2u16), (8, 4)] {
        let t = target(k, m);
        let (g, all, key, object) = (t.g, t.all, t.key, t.object);
        rt.block_on(write_object(&all, object, 1, &key, &t.opts, body(&data)))
            .unwrap();
        for lost in [0, usize::from(m)] {
            let mut loc = ObjectLocation {
                object,
                part: 1,
                size: OBJECT as u64,
                geometry: g,
                stores: all.iter().cloned().map(Some).collect(),
            };
            for s in loc.stores.iter_mut().take(lost) {
                *s = None;
            }
            let name = if lost == 0 {
                format!("healthy_{k}+{m}")
            } else {
                format!("degraded_{k}+{m}_lost_{lost}")
            };
            group.bench_function(name, |b| {
                b.iter(|| {
                    rt.block_on(async {
                        let mut stream = read_object(
                            loc.clone(),
                            key.clone(),
                            0..OBJECT as u64,
                            ReadOptions::default(),
                        );
                        let mut n = 0;
                        while let Some(chunk) = stream.next().await {
                            n += chunk.unwrap().len();
                        }
                        assert_eq!(n, OBJECT);
                    })
                })
            });
        }
    }
    group.finish();
}

fn full_writer(c: &mut Cpu) {
    let rt = runtime();
    let mut group = c.benchmark_group("full_writer");
    group.sample_size(10);
    group.throughput(Throughput::BytesDecimal(OBJECT as u64));
    let data = Bytes::from(payload(OBJECT));
    // The writer's MD5 (aws-lc, assembly) is the ceiling; the portable
    // RustCrypto one is shown for comparison.
    group.bench_function("md5_alone", |b| {
        b.iter(|| black_box(tessera_storage::md5::Md5::digest(&data)))
    });
    group.bench_function("md5_rustcrypto", |b| {
        b.iter(|| black_box(md5::Md5::digest(&data)))
    });
    // Eight uploads at once, each hashing its own 1/8 of the object in 4 MiB
    // stripes through the shared lanes (MB/s per CPU second, all threads).
    group.bench_function("md5_shared_8_streams", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for part in 0..8 {
                    let data = data.slice(part * OBJECT / 8..(part + 1) * OBJECT / 8);
                    s.spawn(move || {
                        let mut h = tessera_storage::md5::Md5::new();
                        for at in (0..data.len()).step_by(4 * MIB) {
                            h.update_shared(&data.slice(at..(at + 4 * MIB).min(data.len())));
                        }
                        black_box(h.finish())
                    });
                }
            })
        })
    });
    for (k, m) in [(4u16, 2u16), (8, 4)] {
        let t = target(k, m);
        let (all, key, object, opts) = (t.all, t.key, t.object, t.opts);
        group.bench_function(format!("write_object_md5_{k}+{m}"), |b| {
            b.iter(|| {
                rt.block_on(write_object(&all, object, 1, &key, &opts, body(&data)))
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime).warm_up_time(Duration::from_secs(1));
    targets = codec, primitives, writer_pipeline, read, full_writer
}
criterion_main!(benches);
