//! The pseudonymisation key: where it comes from, and what is derived from it.
//!
//! A key is 32 random bytes stored as 64 hex digits in a file that only its owner
//! may read. Everything pseudonymous (UIDs, patient IDs and names, date offsets)
//! is an HMAC-SHA256 of the original under this key, so the same input gives the
//! same output on every run and every machine that has the key, and nobody
//! without it can recompute or reverse the mapping.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use snafu::{ResultExt, Snafu};

/// The environment variable that may name the key file.
pub const KEY_FILE_ENV: &str = "DICOM_DEID_KEY_FILE";

/// Why a key could not be loaded or written.
#[derive(Debug, Snafu)]
pub enum KeyError {
    /// The key file could not be read
    #[snafu(display("cannot read key file {}: {source}", path.display()))]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file is readable by group or others
    #[snafu(display("key file {} is accessible by group or others (mode {mode:04o}); run `chmod 600 {}`", path.display(), path.display()))]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The key file does not hold 64 hex digits
    #[snafu(display("key file {} must hold exactly 64 hexadecimal digits (32 bytes); make one with `dicom-deid keygen PATH`", path.display()))]
    Format {
        /// The file.
        path: PathBuf,
    },
    /// The key file could not be written
    #[snafu(display("cannot write key file {}: {source}", path.display()))]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No random bytes from the operating system
    #[snafu(display("the operating system gave no random bytes: {reason}"))]
    Random {
        /// Why.
        reason: String,
    },
}

/// A 256-bit pseudonymisation key. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct Key {
    bytes: [u8; 32],
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(**REDACTED**)")
    }
}

impl Key {
    /// A key from raw bytes (tests and embedding).
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key { bytes }
    }

    /// A fresh random key.
    pub fn generate() -> Result<Key, KeyError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| KeyError::Random {
            reason: e.to_string(),
        })?;
        Ok(Key { bytes })
    }

    /// Loads a key file, refusing one that group or others can access.
    pub fn load(path: &Path) -> Result<Key, KeyError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(path).context(ReadSnafu { path })?;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return PermissionsSnafu { path, mode }.fail();
            }
        }
        let text = std::fs::read_to_string(path).context(ReadSnafu { path })?;
        let hex = text.trim();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return FormatSnafu { path }.fail();
        }
        let mut bytes = [0u8; 32];
        for (i, out) in bytes.iter_mut().enumerate() {
            *out =
                u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| KeyError::Format {
                    path: path.to_path_buf(),
                })?;
        }
        Ok(Key { bytes })
    }

    /// Writes this key to a new file with mode 0600. Never overwrites.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).context(WriteSnafu { path })?;
        let hex: String = self.bytes.iter().map(|b| format!("{b:02x}")).collect();
        file.write_all(format!("{hex}\n").as_bytes())
            .context(WriteSnafu { path })?;
        file.sync_all().context(WriteSnafu { path })
    }

    /// A short public identifier of the key (for the audit and reports): the
    /// first 8 bytes of SHA-256 over a label and the key, in hex.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"dicom-deid key id\0");
        h.update(self.bytes);
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// HMAC-SHA256 of `message` under this key.
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut m =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes).expect("HMAC takes any key length");
        m.update(message);
        m.finalize().into_bytes().into()
    }

    /// HMAC-SHA256 of a domain label and a value, so that derivations for
    /// different purposes never collide. UIDs use [`Key::mac`] directly (the
    /// mapping the design fixes); labels contain letters, which UIDs never do.
    pub fn mac_labeled(&self, label: &str, value: &[u8]) -> [u8; 32] {
        let mut msg = Vec::with_capacity(label.len() + 1 + value.len());
        msg.extend_from_slice(label.as_bytes());
        msg.push(0);
        msg.extend_from_slice(value);
        self.mac(&msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let key = Key::from_bytes([0xAB; 32]);
        let shown = format!("{key:?} {:?}", Some(&key));
        assert!(!shown.to_lowercase().contains("abab"), "{shown}");
        assert!(shown.contains("REDACTED"));
    }

    #[test]
    fn write_then_load_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = Key::generate().unwrap();
        key.write_new(&path).unwrap();
        let back = Key::load(&path).unwrap();
        assert_eq!(back.mac(b"x"), key.mac(b"x"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        // Never overwrites an existing key.
        assert!(matches!(
            Key::generate().unwrap().write_new(&path),
            Err(KeyError::Write { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn group_or_world_readable_key_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        Key::from_bytes([1; 32]).write_new(&path).unwrap();
        for mode in [0o640, 0o604, 0o644, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = Key::load(&path).unwrap_err();
            assert!(
                matches!(err, KeyError::Permissions { .. }),
                "{mode:o}: {err}"
            );
            assert!(
                !err.to_string().contains("0101"),
                "the message must not show key bytes"
            );
        }
    }

    #[test]
    fn malformed_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (i, text) in ["", "abc", &"z".repeat(64), &"a".repeat(63)]
            .iter()
            .enumerate()
        {
            let path = dir.path().join(format!("k{i}"));
            std::fs::write(&path, text).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
            assert!(
                matches!(Key::load(&path), Err(KeyError::Format { .. })),
                "{text:?}"
            );
        }
    }

    #[test]
    fn derivations_are_keyed_and_separated() {
        let a = Key::from_bytes([1; 32]);
        let b = Key::from_bytes([2; 32]);
        assert_eq!(a.mac(b"1.2.3"), a.mac(b"1.2.3"));
        assert_ne!(a.mac(b"1.2.3"), b.mac(b"1.2.3"));
        assert_ne!(a.mac_labeled("patient-id", b"1.2.3"), a.mac(b"1.2.3"));
        assert_eq!(a.id().len(), 16);
        assert_ne!(a.id(), b.id());
    }
}
