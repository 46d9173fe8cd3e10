//! The folder sink: one durable file per instance.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::meta::is_uid;

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
pub(crate) fn write_instances(
    dir: &Path,
    batch: &[(&str, &str, &[u8])],
) -> Vec<io::Result<PathBuf>> {
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
            let written = (|| {
                let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
                file.write_all(data)?;
                file.sync_data()
            })();
            match written {
                Ok(()) => Ok((study_dir, tmp, path)),
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
    let mut synced: Vec<(PathBuf, io::Result<()>)> = Vec::new();
    renamed
        .into_iter()
        .map(|renamed| {
            let (study_dir, path) = renamed?;
            let at = match synced.iter().position(|(d, _)| *d == study_dir) {
                Some(at) => at,
                None => {
                    let result = sync_dir(&study_dir);
                    synced.push((study_dir, result));
                    synced.len() - 1
                }
            };
            match &synced[at].1 {
                Ok(()) => Ok(path),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            }
        })
        .collect()
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
