//! Create-if-absent of a large local file without going through the page
//! cache.
//!
//! A flushed generation is written once and read rarely, yet a buffered
//! write copies all of it into the page cache first, and on a machine whose
//! fresh memory is expensive to touch (a VM) that copy cost as much CPU as
//! encoding the file. `O_DIRECT` hands the encoder's buffer to the disk
//! instead. The protocol is the one `object_store`'s local store uses, so
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

/// Write `bytes` as a new file at `path`, creating missing directories.
/// Never overwrites: an existing file gives [`CreateOutcome::AlreadyExists`]
/// and stays as it was. Durable (data and names) when it returns `Created`.
pub fn create(path: &Path, bytes: &[u8]) -> std::io::Result<CreateOutcome> {
    let parent = path
        .parent()
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "a file path has a parent"))?;
    create_dirs_durably(parent)?;
    let (file, staging) = open_staging(path)?;
    let written = write_all(&file, bytes).and_then(|_| file.sync_all());
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&staging);
        return Err(e);
    }
    let linked = std::fs::hard_link(&staging, path);
    let _ = std::fs::remove_file(&staging);
    match linked {
        Ok(()) => {
            fsync_dir(parent)?;
            Ok(CreateOutcome::Created)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(CreateOutcome::AlreadyExists),
        Err(e) => Err(e),
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

/// A new staging file beside `path`, opened for direct I/O where the file
/// system allows it (some refuse `O_DIRECT` with `EINVAL`).
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

/// The block-aligned body with direct I/O when the buffer allows it, the
/// rest (or everything) through the page cache. Returns the bytes written
/// directly.
fn write_all(mut file: &File, bytes: &[u8]) -> std::io::Result<usize> {
    let direct = is_direct(file)?;
    let body = if direct && (bytes.as_ptr() as usize).is_multiple_of(ALIGN) {
        bytes.len() / ALIGN * ALIGN
    } else {
        0
    };
    if body > 0 {
        file.write_all(&bytes[..body])?;
    }
    if body < bytes.len() {
        if direct {
            clear_direct(file)?;
        }
        file.write_all(&bytes[body..])?;
    }
    Ok(body)
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

    /// `len` bytes of a recognisable pattern starting at a page boundary.
    fn page_aligned(len: usize) -> (Vec<u8>, usize) {
        let mut buf = vec![0u8; len + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN);
        for (i, b) in buf[start..start + len].iter_mut().enumerate() {
            *b = (i * 7 % 251) as u8;
        }
        (buf, start)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn aligned_and_unaligned_buffers_are_written_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let (buf, start) = page_aligned(3 * ALIGN + 123);
        for (name, bytes) in [
            ("aligned-with-tail", &buf[start..start + 3 * ALIGN + 123]),
            ("aligned-exact", &buf[start..start + 2 * ALIGN]),
            ("unaligned", &buf[start + 1..start + 2 * ALIGN + 1]),
            ("small", &buf[start..start + 10]),
            ("empty", &buf[start..start]),
        ] {
            let path = dir.path().join("gen").join(name);
            assert_eq!(
                create(&path, bytes).unwrap(),
                CreateOutcome::Created,
                "{name}"
            );
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name}");
        }
        assert_eq!(
            names(&dir.path().join("gen")),
            [
                "aligned-exact",
                "aligned-with-tail",
                "empty",
                "small",
                "unaligned"
            ]
        );
    }

    #[test]
    fn a_taken_name_is_reported_and_keeps_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/data.parquet");
        let (buf, start) = page_aligned(2 * ALIGN);
        let first = &buf[start..start + ALIGN];
        let second = &buf[start + ALIGN..start + 2 * ALIGN];
        assert_eq!(create(&path, first).unwrap(), CreateOutcome::Created);
        assert_eq!(create(&path, second).unwrap(), CreateOutcome::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), first);
        assert_eq!(names(&dir.path().join("a/b")), ["data.parquet"]);
    }

    #[test]
    fn an_aligned_body_bypasses_the_page_cache_on_a_disk_file_system() {
        // The temp dir is on ext4 here, which supports O_DIRECT.
        let dir = tempfile::tempdir().unwrap();
        let (file, staging) = open_staging(&dir.path().join("f")).unwrap();
        assert!(is_direct(&file).unwrap());
        let (buf, start) = page_aligned(2 * ALIGN + 5);
        let direct = write_all(&file, &buf[start..start + 2 * ALIGN + 5]).unwrap();
        assert_eq!(direct, 2 * ALIGN);
        assert!(!is_direct(&file).unwrap(), "the tail needs buffered I/O");
        drop(file);
        assert_eq!(
            std::fs::read(&staging).unwrap(),
            &buf[start..start + 2 * ALIGN + 5]
        );
    }

    #[test]
    fn an_unaligned_buffer_is_written_through_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (file, staging) = open_staging(&dir.path().join("f")).unwrap();
        let (buf, start) = page_aligned(2 * ALIGN + 1);
        let bytes = &buf[start + 1..start + 2 * ALIGN + 1];
        assert_eq!(write_all(&file, bytes).unwrap(), 0);
        drop(file);
        assert_eq!(std::fs::read(&staging).unwrap(), bytes);
    }
}
