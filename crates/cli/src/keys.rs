//! Finding the key for `batch`, and `keygen`.

use std::path::{Path, PathBuf};

use dicom_deid_engine::{Key, KEY_FILE_ENV};

/// How to make a key, for every message that needs one.
fn how_to_make_one() -> String {
    format!(
        "make one once and keep it (the same key gives the same pseudonyms on every run):\n\
         \x20   dicom-deid keygen ~/.config/dicom-deid/key\n\
         then pass it with `--key-file ~/.config/dicom-deid/key`, or set {KEY_FILE_ENV}=~/.config/dicom-deid/key"
    )
}

/// The key from `--key-file`, else from the file named by `$DICOM_DEID_KEY_FILE`.
/// Never invents one: pseudonyms from a throwaway key could not be reproduced.
pub fn load(key_file: Option<&Path>) -> Result<Key, String> {
    let path = match key_file {
        Some(path) => path.to_path_buf(),
        None => match std::env::var_os(KEY_FILE_ENV).filter(|v| !v.is_empty()) {
            Some(path) => PathBuf::from(path),
            None => {
                return Err(format!(
                    "no pseudonymisation key: give --key-file FILE or set {KEY_FILE_ENV}; {}",
                    how_to_make_one()
                ))
            }
        },
    };
    Key::load(&path).map_err(|e| e.to_string())
}

/// `dicom-deid keygen PATH`.
pub fn keygen(path: &Path) -> u8 {
    if path.exists() || path.is_symlink() {
        return crate::fail(format!(
            "{} already exists; a key is never overwritten (pseudonyms made with it could not be \
             reproduced). Choose another path or remove the old key deliberately.",
            path.display()
        ));
    }
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        if let Err(e) = builder.create(dir) {
            return crate::fail(format!("cannot create the folder {}: {e}", dir.display()));
        }
    }
    let key = match Key::generate() {
        Ok(key) => key,
        Err(e) => return crate::fail(e),
    };
    if let Err(e) = key.write_new(path) {
        return crate::fail(e);
    }
    tracing::info!(message = "Key written.", path = %path.display(), key_id = %key.id());
    println!("{}", path.display());
    println!("key id {}", key.id());
    eprintln!(
        "Keep this file private and backed up: without it the same inputs get different pseudonyms.\n\
         Use it with `dicom-deid batch --key-file {} IN OUT` or {KEY_FILE_ENV}={}.",
        path.display(),
        path.display()
    );
    0
}
