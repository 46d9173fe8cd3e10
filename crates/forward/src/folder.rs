//! The folder sink: one durable file per instance.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::OFlags;

use crate::meta::is_uid;

/// One instance to write: its Study Instance UID, its SOP Instance UID and its bytes.
pub(crate) type Instance<'a> = (&'a str, &'a str, &'a [u8]);

/// Distinguishes concurrent temporary files.
static TEMPS: AtomicU64 = AtomicU64::new(0);

/// Writes `data` to `<dir>/<study>/<sop>.dcm` durably and returns the path: a temporary file in
/// the same folder is written and fsynced, renamed over the final name (so a reader sees the old
/// file or the complete new one, never a partial one) and the folder is fsynced. Folders created
/// on the way are fsynced in their parents. An existing file of that name is replaced (delivery
/// is at-least-once; the same SOP Instance UID is the same instance).
///
/// `study` and `sop` must be UIDs ([`is_uid`]): anything else is refused with
/// `InvalidInput`, so no value can name a path outside `dir`.
#[cfg(test)]
pub(crate) fn write_instance(
    dir: &Path,
    study: &str,
    sop: &str,
    data: &[u8],
) -> io::Result<PathBuf> {
    write_instances(dir, &[(study, sop, data)])
        .pop()
        .expect("one result per instance")
}

/// [`write_instance`] for a batch, one result per instance in order: every temporary file is
/// written and fsynced, then each is renamed into place, then each study folder touched is
/// fsynced once — one directory fsync per study of the batch rather than one per instance.
/// A result is `Ok` only once the file's data and its name are durable.
pub(crate) fn write_instances(dir: &Path, batch: &[Instance<'_>]) -> Vec<io::Result<PathBuf>> {
    // Temporary files, written and synced.
    let staged: Vec<io::Result<(PathBuf, PathBuf, PathBuf)>> = batch
        .iter()
        .map(|&(study, sop, data)| {
            if !is_uid(study) || !is_uid(sop) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a UID (digits and dots, at most 64)",
                ));
            }
            let study_dir = dir.join(study);
            ensure_dir(dir, &study_dir)?;
            let path = study_dir.join(format!("{sop}.dcm"));
            let tmp = study_dir.join(format!(
                ".{sop}.{}-{}.tmp",
                std::process::id(),
                TEMPS.fetch_add(1, Ordering::Relaxed)
            ));
            match write_synced(&tmp, data) {
                Ok(_) => Ok((study_dir, tmp, path)),
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    Err(e)
                }
            }
        })
        .collect();
    // Into place.
    let renamed: Vec<io::Result<(PathBuf, PathBuf)>> = staged
        .into_iter()
        .map(|staged| {
            let (study_dir, tmp, path) = staged?;
            if let Err(e) = fs::rename(&tmp, &path) {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
            Ok((study_dir, path))
        })
        .collect();
    // Each study folder once; its outcome is that of every name in it.
    let mut synced: HashMap<PathBuf, io::Result<()>> = HashMap::new();
    renamed
        .into_iter()
        .map(|renamed| {
            let (study_dir, path) = renamed?;
            match synced.entry(study_dir).or_insert_with_key(|d| sync_dir(d)) {
                Ok(()) => Ok(path),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            }
        })
        .collect()
}

/// Alignment of direct writes: of the buffer, the file offset and the length. 4 KiB covers
/// devices with 512-byte and with 4 KiB logical blocks.
const DIRECT_ALIGN: usize = 4096;
/// Largest direct write; an instance above it is written in pieces of this size.
const DIRECT_CHUNK: usize = 1 << 20;

thread_local! {
    /// A reused block-aligned buffer for direct writes (at most `DIRECT_CHUNK` plus the
    /// alignment slack per thread that writes to a folder).
    static ALIGNED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How [`write_synced`] wrote a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// Its whole blocks with direct I/O (bypassing the page cache), the last partial block
    /// buffered.
    Direct,
    /// Through the page cache: the filesystem refused direct I/O, or the file is smaller than
    /// one block.
    Buffered,
}

/// Creates `path` (which must not exist), writes `data` to it and `fdatasync`s it.
///
/// The whole blocks go with direct I/O: a delivered file is written once and not read back by
/// the gateway, so copying it into the page cache would only cost CPU and push out pages that
/// are read again (the spool's); the `fdatasync` that follows is needed for durability either
/// way. The last partial block is written buffered (a direct write must be a whole number of
/// blocks), and where the filesystem refuses direct I/O — when the descriptor cannot take
/// `O_DIRECT`, or a direct write fails with `EINVAL` — the file is written through the page
/// cache instead.
fn write_synced(path: &Path, data: &[u8]) -> io::Result<Written> {
    let file = OpenOptions::new().write(true).create_new(true).open(path)?;
    let whole = data.len() / DIRECT_ALIGN * DIRECT_ALIGN;
    let mut how = Written::Buffered;
    let mut tail = 0;
    if whole > 0 && set_direct(&file, true).is_ok() {
        match write_direct(&file, &data[..whole]) {
            Ok(()) => {
                how = Written::Direct;
                tail = whole;
            }
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {}
            Err(e) => return Err(e),
        }
        set_direct(&file, false)?;
    }
    file.write_all_at(&data[tail..], tail as u64)?;
    file.sync_data()?;
    Ok(how)
}

/// Sets or clears `O_DIRECT` on an open file.
fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let mut flags = rustix::fs::fcntl_getfl(file)?;
    flags.set(OFlags::DIRECT, on);
    Ok(rustix::fs::fcntl_setfl(file, flags)?)
}

/// Writes `data` (a whole number of `DIRECT_ALIGN` blocks) at offset 0 of a file opened for
/// direct I/O, through the thread's aligned buffer.
fn write_direct(file: &File, data: &[u8]) -> io::Result<()> {
    debug_assert_eq!(data.len() % DIRECT_ALIGN, 0);
    ALIGNED.with(|cell| {
        let mut buf = cell.borrow_mut();
        let need = data.len().min(DIRECT_CHUNK) + DIRECT_ALIGN;
        if buf.len() < need {
            buf.resize(need, 0);
        }
        let start = buf.as_ptr().align_offset(DIRECT_ALIGN);
        for (i, piece) in data.chunks(DIRECT_CHUNK).enumerate() {
            let window = &mut buf[start..start + piece.len()];
            window.copy_from_slice(piece);
            file.write_all_at(window, (i * DIRECT_CHUNK) as u64)?;
        }
        Ok(())
    })
}

/// Makes sure `dir` and `dir/<study>` exist, with durable directory entries.
fn ensure_dir(dir: &Path, study_dir: &Path) -> io::Result<()> {
    if study_dir.is_dir() {
        return Ok(());
    }
    if !dir.is_dir() {
        fs::create_dir_all(dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    match fs::create_dir(study_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_writes_keep_every_byte_whatever_the_length() {
        let root = tempfile::tempdir().unwrap();
        // Whether this filesystem takes direct I/O at all (tmpfs before Linux 6.6 does not).
        let probe = File::create(root.path().join("probe")).unwrap();
        let direct_ok = set_direct(&probe, true).is_ok();
        let lengths = [
            0,
            1,
            DIRECT_ALIGN - 1,
            DIRECT_ALIGN,
            DIRECT_ALIGN + 1,
            3 * DIRECT_ALIGN + 17,
            DIRECT_CHUNK - 1,
            DIRECT_CHUNK,
            2 * DIRECT_CHUNK + DIRECT_ALIGN + 5,
        ];
        for (n, len) in lengths.into_iter().enumerate() {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8 + 1).collect();
            let path = root.path().join(format!("f{n}"));
            let how = write_synced(&path, &data).unwrap();
            assert_eq!(fs::read(&path).unwrap(), data, "length {len}");
            let expected = if len >= DIRECT_ALIGN && direct_ok {
                Written::Direct
            } else {
                Written::Buffered
            };
            assert_eq!(how, expected, "length {len}");
            assert!(
                write_synced(&path, &data).is_err(),
                "an existing file is never written over"
            );
        }
    }

    #[test]
    fn writes_replaces_and_leaves_no_temporary_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out/deeper");
        let path = write_instance(&dir, "2.25.1", "2.25.2", b"first").unwrap();
        assert_eq!(path, dir.join("2.25.1/2.25.2.dcm"));
        assert_eq!(fs::read(&path).unwrap(), b"first");
        write_instance(&dir, "2.25.1", "2.25.2", b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.join("2.25.1"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["2.25.2.dcm"]);
    }

    #[test]
    fn refuses_anything_but_uids_as_path_components() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        for (study, sop) in [
            ("..", "1"),
            ("1", ".."),
            ("../x", "1"),
            ("1", "a/b"),
            ("", "1"),
        ] {
            let e = write_instance(&dir, study, sop, b"x").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        }
        assert!(!dir.exists(), "nothing was created");
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_batch_is_written_whole_and_a_bad_instance_does_not_stop_the_others() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        let results = write_instances(
            &dir,
            &[
                ("2.25.1", "2.25.10", b"a"),
                ("2.25.1", "../escape", b"b"),
                ("2.25.2", "2.25.20", b"c"),
                ("2.25.1", "2.25.11", b"d"),
            ],
        );
        assert_eq!(results.len(), 4);
        assert_eq!(
            results[0].as_ref().unwrap(),
            &dir.join("2.25.1/2.25.10.dcm")
        );
        assert_eq!(
            results[1].as_ref().unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            results[2].as_ref().unwrap(),
            &dir.join("2.25.2/2.25.20.dcm")
        );
        assert_eq!(fs::read(dir.join("2.25.1/2.25.11.dcm")).unwrap(), b"d");
        assert_eq!(fs::read(dir.join("2.25.2/2.25.20.dcm")).unwrap(), b"c");
        let mut names: Vec<_> = fs::read_dir(dir.join("2.25.1"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["2.25.10.dcm", "2.25.11.dcm"],
            "no temporary file left"
        );
        assert!(write_instances(&dir, &[]).is_empty());
    }

    #[test]
    fn a_file_in_the_way_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("2.25.1"), b"not a folder").unwrap();
        assert!(write_instance(root.path(), "2.25.1", "2.25.2", b"x").is_err());
    }
}
