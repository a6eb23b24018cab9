//! MD5, the S3 ETag of every single-part object and of every part.
//!
//! It is the one hash no PUT can skip, and it cannot be split within one
//! stream, so it is the ceiling of a single upload: aws-lc's assembly runs
//! one stream at about 780 MB/s. Concurrent uploads hash their bulk side by
//! side instead ([`Md5::update_shared`]): one thread runs up to sixteen
//! streams at once in the lanes of AVX-512 vectors, or eight in AVX2 ones,
//! or (in builds without the x86 kernels) up to four with their scalar
//! steps interleaved (see the `lanes` module).

// Calls into aws-lc's digest API on a context this type owns.
#![allow(unsafe_code)]

mod lanes;

use std::ptr::NonNull;

use aws_lc_sys::{
    EVP_DigestFinal_ex, EVP_DigestInit_ex, EVP_DigestUpdate, EVP_MD_CTX, EVP_MD_CTX_free,
    EVP_MD_CTX_new, EVP_md5, MD5_CTX,
};
use bytes::Bytes;

/// Updates shorter than this are hashed on the caller's thread.
const SHARED_MIN: usize = 64 * 1024;

/// An incremental MD5 computation.
pub struct Md5 {
    ctx: NonNull<EVP_MD_CTX>,
    /// Set by the first large [`update_shared`](Self::update_shared): from
    /// then on every byte goes to the shared lanes.
    lane: Option<lanes::Stream>,
    /// Bytes handed to `lane`.
    lane_bytes: u64,
}

// SAFETY: the context is owned exclusively by this value (no shared state in
// aws-lc), so it may move to and be used from another thread.
unsafe impl Send for Md5 {}

impl Md5 {
    /// A fresh computation.
    pub fn new() -> Self {
        // SAFETY: EVP_MD_CTX_new returns an initialised context or null (out
        // of memory); EVP_DigestInit_ex with the static MD5 method and no
        // engine only fails on allocation failure.
        unsafe {
            let Some(ctx) = NonNull::new(EVP_MD_CTX_new()) else {
                std::alloc::handle_alloc_error(std::alloc::Layout::new::<EVP_MD_CTX>());
            };
            if EVP_DigestInit_ex(ctx.as_ptr(), EVP_md5(), std::ptr::null_mut()) != 1 {
                std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u8; 128]>());
            }
            Md5 {
                ctx,
                lane: None,
                lane_bytes: 0,
            }
        }
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        if let Some(lane) = &mut self.lane {
            lane.push(Bytes::copy_from_slice(data));
            self.lane_bytes += data.len() as u64;
            return;
        }
        // SAFETY: the context is initialised and exclusively borrowed; the
        // pointer and length describe a live slice. MD5 updates cannot fail.
        unsafe {
            EVP_DigestUpdate(self.ctx.as_ptr(), data.as_ptr().cast(), data.len());
        }
    }

    /// Feeds `data` like [`update`](Self::update), but, when the CPU has
    /// the shared lanes, hashes it there beside other streams and returns
    /// without waiting for it: far less CPU per byte when several uploads
    /// run at once. The first piece of at least 64 KiB moves the stream to
    /// the lanes; every byte after it follows, and [`finish`](Self::finish)
    /// waits for them.
    pub fn update_shared(&mut self, data: &Bytes) {
        if self.lane.is_none() {
            let Some(lanes) = lanes::shared().filter(|_| data.len() >= SHARED_MIN) else {
                return self.update(data);
            };
            // Complete the buffered partial block first, so the lanes start
            // at a block boundary.
            let head = ((64 - self.state().num as usize) % 64).min(data.len());
            self.update(&data[..head]);
            self.lane = Some(lanes.open(self.state().h));
            return self.update_shared(&data.slice(head..));
        }
        if let Some(lane) = &mut self.lane {
            lane.push(data.clone());
            self.lane_bytes += data.len() as u64;
        }
    }

    /// The MD5 state inside the context.
    fn state(&mut self) -> &mut MD5_CTX {
        // SAFETY: a context initialised with EVP_md5 keeps its MD5_CTX
        // (openssl/md5.h) at `md_data` (openssl/digest.h); it lives as long
        // as the context and is borrowed through `self` exclusively.
        unsafe { &mut *(*self.ctx.as_ptr()).md_data.cast::<MD5_CTX>() }
    }

    /// The 16-byte digest of everything fed.
    pub fn finish(mut self) -> [u8; 16] {
        if let Some(lane) = self.lane.take() {
            let (h, rest) = lane.finish();
            let hashed = self.lane_bytes - rest.len() as u64;
            let state = self.state();
            state.h = h;
            let bits = ((u64::from(state.Nh) << 32) | u64::from(state.Nl)).wrapping_add(hashed * 8);
            state.Nl = bits as u32;
            state.Nh = (bits >> 32) as u32;
            self.update(&rest);
        }
        let mut out = [0u8; 16];
        let mut len = 0u32;
        // SAFETY: the context is initialised; `out` has the 16 bytes MD5 writes.
        unsafe {
            EVP_DigestFinal_ex(self.ctx.as_ptr(), out.as_mut_ptr(), &mut len);
        }
        out
    }

    /// The digest of `data` in one call.
    pub fn digest(data: &[u8]) -> [u8; 16] {
        let mut h = Md5::new();
        h.update(data);
        h.finish()
    }
}

impl Drop for Md5 {
    fn drop(&mut self) {
        // SAFETY: the context came from EVP_MD_CTX_new and is freed once.
        unsafe { EVP_MD_CTX_free(self.ctx.as_ptr()) }
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Md5::new()
    }
}

/// Runs MD5's compression over whole blocks from state `h` (the scalar path
/// of the lanes) on `scratch`, a context kept for this alone: its length
/// count means nothing, and it holds no partial block since it is only ever
/// fed whole ones.
fn compress_scalar(scratch: &mut Md5, h: [u32; 4], blocks: &[u8]) -> [u32; 4] {
    scratch.state().h = h;
    scratch.update(blocks);
    scratch.state().h
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::Md5;

    #[test]
    fn rfc_1321_vectors() {
        let hex = |d: [u8; 16]| hex::encode(d);
        assert_eq!(hex(Md5::digest(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(Md5::digest(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        let mut h = Md5::new();
        for chunk in
            b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
                .chunks(7)
        {
            h.update(chunk);
        }
        assert_eq!(hex(h.finish()), "57edf4a22be3c955ac49da2e2107b67a");
    }

    #[test]
    fn shared_updates_match_one_stream_from_many_threads() {
        // Six streams at once, fed in uneven pieces (partial blocks, pieces
        // under and over the sharing threshold): each digest must equal the
        // plain one.
        let threads: Vec<_> = (0..6u64)
            .map(|t| {
                std::thread::spawn(move || {
                    let len = 3 * 1024 * 1024 + 17 * t as usize;
                    let data: Vec<u8> = (0..len)
                        .map(|i| (i as u64).wrapping_mul(2_654_435_761 + t) as u8)
                        .collect();
                    let data = Bytes::from(data);
                    let mut shared = Md5::new();
                    let mut at = 0;
                    let mut piece = 1 + 37 * t as usize;
                    while at < data.len() {
                        let end = (at + piece).min(data.len());
                        shared.update_shared(&data.slice(at..end));
                        at = end;
                        piece = (piece * 7 + 100_003) % 700_000 + 1;
                    }
                    assert_eq!(shared.finish(), Md5::digest(&data), "stream {t}");
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn plain_updates_after_the_move_to_the_lanes_count() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut h = Md5::new();
        h.update(&data[..5]);
        h.update_shared(&Bytes::copy_from_slice(&data[5..200_000]));
        h.update(&data[200_000..200_003]);
        h.update_shared(&Bytes::copy_from_slice(&data[200_003..]));
        assert_eq!(h.finish(), Md5::digest(&data));
    }

    #[test]
    fn a_stream_dropped_unfinished_leaves_the_others_whole() {
        let data = Bytes::from((0..1_000_000u32).map(|i| (i / 3) as u8).collect::<Vec<_>>());
        for _ in 0..20 {
            let mut dropped = Md5::new();
            dropped.update_shared(&data);
            let mut kept = Md5::new();
            kept.update_shared(&data);
            drop(dropped);
            kept.update_shared(&data.slice(..77_777));
            let mut whole = data.to_vec();
            whole.extend_from_slice(&data[..77_777]);
            assert_eq!(kept.finish(), Md5::digest(&whole));
        }
    }
}
