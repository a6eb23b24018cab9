//! MD5, the S3 ETag of every single-part object, from aws-lc's assembly
//! implementation: it is the one hash no PUT can skip, so it is the ceiling
//! of a single upload stream (about twice the speed of a portable one here).

// The only unsafe code in the crate: calls into aws-lc's digest API on a
// context this type owns.
#![allow(unsafe_code)]

use std::ptr::NonNull;

use aws_lc_sys::{
    EVP_DigestFinal_ex, EVP_DigestInit_ex, EVP_DigestUpdate, EVP_MD_CTX, EVP_MD_CTX_free,
    EVP_MD_CTX_new, EVP_md5,
};

/// An incremental MD5 computation.
pub struct Md5(NonNull<EVP_MD_CTX>);

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
            Md5(ctx)
        }
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        // SAFETY: the context is initialised and exclusively borrowed; the
        // pointer and length describe a live slice. MD5 updates cannot fail.
        unsafe {
            EVP_DigestUpdate(self.0.as_ptr(), data.as_ptr().cast(), data.len());
        }
    }

    /// The 16-byte digest of everything fed.
    pub fn finish(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let mut len = 0u32;
        // SAFETY: the context is initialised; `out` has the 16 bytes MD5 writes.
        unsafe {
            EVP_DigestFinal_ex(self.0.as_ptr(), out.as_mut_ptr(), &mut len);
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
        unsafe { EVP_MD_CTX_free(self.0.as_ptr()) }
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Md5::new()
    }
}

#[cfg(test)]
mod tests {
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
}
