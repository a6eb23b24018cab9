//! [`DirectFile`]: a new file written around the page cache (`O_DIRECT`).
//!
//! A shard is written once, fsync'd, and read far less often than it is
//! written, so staging it in the page cache costs a copy into pages that
//! must first be found (on a fresh virtual machine, first backed by the
//! host: a write into free memory runs at a fifth of the disk's speed
//! there), and it pushes other data out of the cache. With `O_DIRECT` the
//! disk reads the bytes from the caller's memory or from one aligned buffer
//! per file.
//!
//! Bytes whose address sits at their file offset modulo [`ALIGN`] (the
//! writer lays framed blocks out so) go to the disk from where they are:
//! only the partial pages at their two ends pass through the buffer, which
//! then stays at [`FIRST_STAGE`] bytes. Other bytes grow it and go through
//! it in whole [`STAGE`] writes. The last, short
//! write is padded to [`ALIGN`] and the file then cut to its length. Where
//! the file system refuses `O_DIRECT` (at open, or with `EINVAL` on a
//! write) the file falls back to ordinary buffered writes.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::OFlags;

/// Alignment of the buffer, of every write's offset and of its length: a
/// multiple of every logical block size disks use (512 and 4,096 bytes).
const ALIGN: usize = crate::format::IO_ALIGN;

/// Bytes per write to the file through the buffer (the last may be
/// shorter), once bytes arrive that cannot go from where they are.
const STAGE: usize = 256 * 1024;

/// The buffer's size at first: the partial pages around bytes that go to
/// the disk from where they are, plus a header or trailer.
const FIRST_STAGE: usize = 2 * ALIGN;

/// A file being written, through an aligned buffer of [`FIRST_STAGE`]
/// bytes, grown to [`STAGE`] when needed.
pub(super) struct DirectFile {
    file: File,
    /// Backing memory; the buffer proper is `memory[offset..offset + stage]`,
    /// which starts on an [`ALIGN`] boundary.
    memory: Vec<u8>,
    offset: usize,
    /// The buffer's size: [`FIRST_STAGE`] or [`STAGE`].
    stage: usize,
    /// Bytes of the buffer holding data not yet written.
    filled: usize,
    /// Bytes written to the file so far, padding excluded.
    len: u64,
    /// Whether the file is still open with `O_DIRECT`.
    direct: bool,
}

impl DirectFile {
    /// Creates `path` (which must not exist) for writing, owner-only
    /// (0600), with `O_DIRECT` where the file system takes it.
    pub(super) fn create(path: &Path) -> std::io::Result<DirectFile> {
        let open = |flags: OFlags| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(flags.bits() as i32)
                .open(path)
        };
        let (file, direct) = match open(OFlags::DIRECT) {
            Ok(file) => (file, true),
            Err(e) if e.kind() == ErrorKind::InvalidInput => (open(OFlags::empty())?, false),
            Err(e) => return Err(e),
        };
        let memory = vec![0u8; FIRST_STAGE + ALIGN];
        let offset = memory.as_ptr().align_offset(ALIGN);
        Ok(DirectFile {
            file,
            memory,
            offset,
            stage: FIRST_STAGE,
            filled: 0,
            len: 0,
            direct,
        })
    }

    /// Appends `data`.
    pub(super) fn write(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        let at = self.len as usize + self.filled;
        if self.direct && (data.as_ptr() as usize) % ALIGN == at % ALIGN {
            // Complete the staged partial page; the whole pages after it
            // are aligned in memory and in the file alike.
            let head = ((ALIGN - at % ALIGN) % ALIGN).min(data.len());
            self.stage(&data[..head])?;
            data = &data[head..];
            let whole = data.len() / ALIGN * ALIGN;
            if whole > 0 {
                if self.filled > 0 {
                    self.flush_stage(self.filled)?;
                }
                self.write_at_end(&data[..whole])?;
                data = &data[whole..];
            }
        }
        self.stage(data)
    }

    /// Appends `data` through the buffer.
    fn stage(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            if data.len() > self.stage - self.filled && self.stage < STAGE {
                self.grow();
            }
            let n = data.len().min(self.stage - self.filled);
            let at = self.offset + self.filled;
            self.memory[at..at + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == self.stage {
                self.flush_stage(self.stage)?;
            }
        }
        Ok(())
    }

    /// Grows the buffer to [`STAGE`], keeping what it holds.
    fn grow(&mut self) {
        let mut memory = vec![0u8; STAGE + ALIGN];
        let offset = memory.as_ptr().align_offset(ALIGN);
        memory[offset..offset + self.filled]
            .copy_from_slice(&self.memory[self.offset..self.offset + self.filled]);
        self.memory = memory;
        self.offset = offset;
        self.stage = STAGE;
    }

    /// Writes what is staged and makes the file durable (`fsync`): its
    /// length is then what [`write`](Self::write) was given.
    pub(super) fn finish(mut self) -> std::io::Result<u64> {
        let filled = self.filled;
        if filled > 0 {
            let padded = if self.direct {
                filled.next_multiple_of(ALIGN)
            } else {
                filled
            };
            let at = self.offset;
            self.memory[at + filled..at + padded].fill(0);
            self.flush_stage(padded)?;
            if padded != filled {
                self.file.set_len(self.len)?;
            }
        }
        self.file.sync_all()?;
        Ok(self.len)
    }

    /// Writes the first `len` bytes of the buffer (of which the first
    /// `filled` are data) at the end of the data so far, and empties it.
    fn flush_stage(&mut self, len: usize) -> std::io::Result<()> {
        let buf = &self.memory[self.offset..self.offset + len];
        write_at(&self.file, &mut self.direct, buf, self.filled, self.len)?;
        self.len += self.filled as u64;
        self.filled = 0;
        Ok(())
    }

    /// Writes `buf`, whole pages, at the end of the data so far.
    fn write_at_end(&mut self, buf: &[u8]) -> std::io::Result<()> {
        write_at(&self.file, &mut self.direct, buf, buf.len(), self.len)?;
        self.len += buf.len() as u64;
        Ok(())
    }
}

/// Writes `buf` (of which the first `data` bytes count; the rest is
/// padding) to `file` at `offset`. If the file system refuses the direct
/// write, clears `direct` and writes the data buffered.
fn write_at(
    file: &File,
    direct: &mut bool,
    buf: &[u8],
    data: usize,
    offset: u64,
) -> std::io::Result<()> {
    match file.write_all_at(buf, offset) {
        Err(e) if *direct && e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
            // The file system takes O_DIRECT at open but not these writes (a
            // larger alignment, say): go on buffered.
            let flags = rustix::fs::fcntl_getfl(file)?;
            rustix::fs::fcntl_setfl(file, flags.difference(OFlags::DIRECT))?;
            *direct = false;
            file.write_all_at(&buf[..data], offset)
        }
        result => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_read_back_as_written_whatever_the_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3 * STAGE + 5000)
            .map(|i| (i * 7 + i / 4099) as u8)
            .collect();
        // Lengths: empty, under one block, aligned, a whole stage, several
        // stages with a tail; pieces smaller and larger than a stage.
        for (n, &len) in [0, 1, 100, ALIGN, STAGE, STAGE + 1, data.len()]
            .iter()
            .enumerate()
        {
            for piece in [1000, 64 * 1024 + 3, 2 * STAGE + 17] {
                let path = dir.path().join(format!("{n}-{piece}"));
                let mut file = DirectFile::create(&path).unwrap();
                for chunk in data[..len].chunks(piece) {
                    file.write(chunk).unwrap();
                }
                assert_eq!(file.finish().unwrap(), len as u64);
                assert_eq!(
                    std::fs::read(&path).unwrap(),
                    &data[..len],
                    "{len} in {piece}s"
                );
            }
        }
    }

    #[test]
    fn pieces_aligned_with_their_offsets_read_back_as_written() {
        // A 64-byte header, then pieces laid in memory at their file offset
        // modulo ALIGN, as the writer lays framed blocks: their whole pages
        // go to the disk from where they are.
        let dir = tempfile::tempdir().unwrap();
        let memory: Vec<u8> = (0..4 * STAGE).map(|i| (i * 13 + i / 5003) as u8).collect();
        let base = memory.as_ptr() as usize;
        let path = dir.path().join("aligned");
        let mut file = DirectFile::create(&path).unwrap();
        let mut want = vec![7u8; 64];
        file.write(&want).unwrap();
        for len in [10, ALIGN, STAGE + ALIGN + 48, 3 * ALIGN - 1, 100_000] {
            let at = (want.len() + ALIGN - base % ALIGN) % ALIGN;
            let piece = &memory[at..at + len];
            assert_eq!(piece.as_ptr() as usize % ALIGN, want.len() % ALIGN);
            file.write(piece).unwrap();
            want.extend_from_slice(piece);
        }
        // Only the partial pages went through the buffer.
        assert_eq!(file.stage, FIRST_STAGE);
        assert_eq!(file.finish().unwrap(), want.len() as u64);
        assert_eq!(std::fs::read(&path).unwrap(), want);
    }

    #[test]
    fn an_existing_file_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taken");
        std::fs::write(&path, b"old").unwrap();
        let err = DirectFile::create(&path).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
    }
}
