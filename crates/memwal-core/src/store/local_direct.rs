//! Create-if-absent of a large local file, streamed, without going through
//! the page cache.
//!
//! A flushed generation is written once and read rarely, yet a buffered
//! write copies all of it into the page cache first, and on a machine whose
//! fresh memory is expensive to touch (a VM) that copy cost as much CPU as
//! encoding the file. [`StagedFile`] gathers what the encoder writes into
//! one reused, aligned block and hands each full block to the disk with
//! `O_DIRECT`, so neither the page cache nor a buffer the size of the file
//! is filled. The protocol is the one `object_store`'s local store uses, so
//! the two stay interchangeable: a staging file named `<name>#<digits>`
//! (hidden from listings), fsync, a hard link to the final name (which fails
//! if the name is taken), and fsyncs of every directory that changed.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::CreateOutcome;

/// Offsets, lengths and buffer addresses of direct I/O must be multiples
/// of the device's block size; a page is a multiple of every common one.
const ALIGN: usize = 4096;

/// Bytes gathered before each direct write: big enough that the disk sees
/// large requests, small next to a generation.
const BLOCK: usize = 1 << 20;

/// A new file written under a hidden staging name and published under its
/// final name by [`finish`](Self::finish), never replacing an existing
/// file. Dropped unfinished, it removes the staging file.
pub struct StagedFile {
    path: PathBuf,
    staging: PathBuf,
    file: File,
    /// `BLOCK + ALIGN` bytes, of which `BLOCK` from `start` are aligned;
    /// empty when the file system refused direct I/O.
    block: Vec<u8>,
    start: usize,
    filled: usize,
}

impl StagedFile {
    /// Create missing directories (durably) and the staging file.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let parent = path.parent().ok_or_else(|| {
            std::io::Error::new(ErrorKind::InvalidInput, "a file path has a parent")
        })?;
        create_dirs_durably(parent)?;
        let (file, staging) = open_staging(path)?;
        let block = if is_direct(&file)? {
            vec![0u8; BLOCK + ALIGN]
        } else {
            Vec::new()
        };
        let start = block.as_ptr().align_offset(ALIGN);
        Ok(Self {
            path: path.to_path_buf(),
            staging,
            file,
            block,
            start,
            filled: 0,
        })
    }

    /// Write what is left, make it durable and publish it under the final
    /// name: [`CreateOutcome::AlreadyExists`] if that name is taken (the
    /// existing file is left as it was).
    pub fn finish(mut self) -> std::io::Result<CreateOutcome> {
        if !self.block.is_empty() {
            let aligned = self.filled / ALIGN * ALIGN;
            self.write_block(aligned)?;
            if self.filled > 0 {
                clear_direct(&self.file)?;
                let tail = self.start..self.start + self.filled;
                (&self.file).write_all(&self.block[tail])?;
            }
        }
        self.file.sync_all()?;
        let linked = std::fs::hard_link(&self.staging, &self.path);
        let _ = std::fs::remove_file(&self.staging);
        match linked {
            Ok(()) => {
                if let Some(parent) = self.path.parent() {
                    fsync_dir(parent)?;
                }
                Ok(CreateOutcome::Created)
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(CreateOutcome::AlreadyExists),
            Err(e) => Err(e),
        }
    }

    /// Write the first `len` gathered bytes (a multiple of `ALIGN`) with
    /// direct I/O and keep the rest at the start of the block.
    fn write_block(&mut self, len: usize) -> std::io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        (&self.file).write_all(&self.block[self.start..self.start + len])?;
        let rest = self.start + len..self.start + self.filled;
        self.block.copy_within(rest, self.start);
        self.filled -= len;
        Ok(())
    }
}

impl Write for StagedFile {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.block.is_empty() {
            return (&self.file).write(data);
        }
        let n = data.len().min(BLOCK - self.filled);
        let at = self.start + self.filled;
        self.block[at..at + n].copy_from_slice(&data[..n]);
        self.filled += n;
        if self.filled == BLOCK {
            self.write_block(BLOCK)?;
        }
        Ok(n)
    }

    /// Bytes reach the file in whole blocks; [`finish`](StagedFile::finish)
    /// writes the rest.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        // After `finish` the staging name is gone already; this only
        // cleans up after an encode that failed or panicked.
        let _ = std::fs::remove_file(&self.staging);
    }
}

/// `create_dir_all`, then fsync each directory whose entries changed, from
/// `dir` up to the deepest ancestor that already existed.
fn create_dirs_durably(dir: &Path) -> std::io::Result<()> {
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(p) => existing = p,
            None => break,
        }
    }
    if existing == dir {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let mut changed = dir;
    loop {
        fsync_dir(changed)?;
        if changed == existing {
            return Ok(());
        }
        match changed.parent() {
            Some(p) => changed = p,
            None => return Ok(()),
        }
    }
}

/// A new staging file beside `path` (`<name>#<digits>`, which listings
/// skip), opened for direct I/O where the file system allows it (some
/// refuse `O_DIRECT` with `EINVAL`).
fn open_staging(path: &Path) -> std::io::Result<(File, PathBuf)> {
    loop {
        let mut name = path.as_os_str().to_owned();
        name.push(format!("#{}", rand::random::<u32>()));
        let staging = PathBuf::from(name);
        let open = |flags: i32| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(flags)
                .open(&staging)
        };
        let opened = match open(libc::O_DIRECT) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => open(0),
            other => other,
        };
        match opened {
            Ok(file) => return Ok((file, staging)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

fn is_direct(file: &File) -> std::io::Result<bool> {
    // SAFETY: F_GETFL on a descriptor this `File` owns reads its flags only.
    let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(flags & libc::O_DIRECT != 0)
}

/// Back to buffered I/O for a tail that direct I/O cannot write.
fn clear_direct(file: &File) -> std::io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor this `File` owns change only
    // its status flags.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_DIRECT) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// Write `bytes` in pieces of `piece` bytes and publish.
    fn write_in_pieces(path: &Path, bytes: &[u8], piece: usize) -> CreateOutcome {
        let mut file = StagedFile::create(path).unwrap();
        for chunk in bytes.chunks(piece.max(1)) {
            file.write_all(chunk).unwrap();
        }
        file.finish().unwrap()
    }

    #[test]
    fn files_of_any_size_written_in_any_pieces_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("empty", 0, 1),
            ("small", 10, 3),
            ("one-page", ALIGN, 1000),
            ("blocks-and-tail", 2 * BLOCK + 3 * ALIGN + 123, 100_000),
            ("exact-blocks", 2 * BLOCK, 8192),
            ("one-big-write", BLOCK + 5, BLOCK + 5),
        ];
        for (name, len, piece) in cases {
            let bytes = pattern(len);
            let path = dir.path().join("gen").join(name);
            assert_eq!(
                write_in_pieces(&path, &bytes, piece),
                CreateOutcome::Created,
                "{name}"
            );
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name}");
        }
        let mut expected: Vec<_> = cases.iter().map(|c| c.0.to_string()).collect();
        expected.sort();
        assert_eq!(names(&dir.path().join("gen")), expected);
    }

    #[test]
    fn a_taken_name_is_reported_and_keeps_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/data.parquet");
        let first = pattern(BLOCK + 17);
        assert_eq!(write_in_pieces(&path, &first, 4096), CreateOutcome::Created);
        assert_eq!(
            write_in_pieces(&path, &[1, 2, 3], 1),
            CreateOutcome::AlreadyExists
        );
        assert_eq!(std::fs::read(&path).unwrap(), first);
        assert_eq!(names(&dir.path().join("a/b")), ["data.parquet"]);
    }

    #[test]
    fn full_blocks_bypass_the_page_cache_on_a_disk_file_system() {
        // The temp dir is on ext4 here, which supports O_DIRECT.
        let dir = tempfile::tempdir().unwrap();
        let mut file = StagedFile::create(&dir.path().join("f")).unwrap();
        assert!(is_direct(&file.file).unwrap());
        file.write_all(&pattern(BLOCK + 10)).unwrap();
        assert_eq!(
            std::fs::metadata(&file.staging).unwrap().len(),
            BLOCK as u64
        );
        assert!(is_direct(&file.file).unwrap());
        assert_eq!(file.finish().unwrap(), CreateOutcome::Created);
    }

    #[test]
    fn an_unfinished_file_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = StagedFile::create(&dir.path().join("f")).unwrap();
        file.write_all(&pattern(BLOCK * 2)).unwrap();
        drop(file);
        assert!(names(dir.path()).is_empty());
    }
}
