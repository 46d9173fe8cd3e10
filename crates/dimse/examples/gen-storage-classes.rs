//! Writes `crates/dimse/src/storage_classes.rs`, the table of storage SOP classes the SCP
//! negotiates, from the PS3.6 registry of UIDs as dicom-dictionary-std carries it (its
//! `src/uids.rs`, table `SOP_CLASSES`; the crate does not export the table itself).
//!
//! ```text
//! cargo run -p dicom-deid-dimse --example gen-storage-classes            # rewrite the file
//! cargo run -p dicom-deid-dimse --example gen-storage-classes -- --check # compare only
//! ```
//!
//! The version of dicom-dictionary-std is the one in the workspace's `Cargo.lock`; its source
//! is read from cargo's registry (`$CARGO_HOME/registry/src/*/dicom-dictionary-std-{version}`).
//! Which entries are taken: every SOP class whose name says "Storage", except Storage
//! Commitment, the Media Storage Directory (DICOMDIR) and the retired print-management ones
//! (`1.2.840.10008.5.1.1.*`), in the registry's order. The output is already formatted as
//! rustfmt formats it, so `cargo fmt` leaves it alone and a test compares it byte for byte
//! (`crates/dimse/tests/storage_classes.rs`).

use std::path::{Path, PathBuf};

/// The command that regenerates the file, as written in its header.
pub const COMMAND: &str = "cargo run -p dicom-deid-dimse --example gen-storage-classes";

/// rustfmt's `fn_call_width` (its default): a tuple whose items, joined by ", ", are longer
/// than this is written one item per line.
const FN_CALL_WIDTH: usize = 60;

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The generated file.
pub fn output_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/storage_classes.rs")
}

/// The version of dicom-dictionary-std in the workspace's `Cargo.lock`.
pub fn locked_version(lock: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"dicom-dictionary-std\"" {
            let version = lines.next()?.trim().strip_prefix("version = \"")?;
            return Some(version.trim_end_matches('"').to_string());
        }
    }
    None
}

/// `src/uids.rs` of dicom-dictionary-std `version` in cargo's registry.
pub fn registry_source(version: &str) -> Result<PathBuf, String> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let src = cargo_home.join("registry/src");
    let wanted = format!("dicom-dictionary-std-{version}");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&src)
        .map_err(|e| format!("cannot read {}: {e}", src.display()))?
        .flatten()
        .map(|index| index.path().join(&wanted).join("src/uids.rs"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.into_iter().next().ok_or_else(|| {
        format!(
            "{wanted}/src/uids.rs is not under {} (run `cargo fetch` first)",
            src.display()
        )
    })
}

/// One entry of the `SOP_CLASSES` table: `E::new("uid", "name", "alias", SopClass, retired),`.
struct Entry<'a> {
    uid: &'a str,
    name: &'a str,
    retired: bool,
}

fn parse_entry(line: &str) -> Option<Entry<'_>> {
    let rest = line.trim().strip_prefix("E::new(")?;
    let mut strings = rest.split('"');
    let (_, uid, _, name, _, _alias, tail) = (
        strings.next()?,
        strings.next()?,
        strings.next()?,
        strings.next()?,
        strings.next()?,
        strings.next()?,
        strings.next()?,
    );
    let mut fields = tail.trim_start_matches(',').split(',').map(str::trim);
    if fields.next()? != "SopClass" {
        return None;
    }
    let retired = match fields.next()?.trim_end_matches(')') {
        "true" => true,
        "false" => false,
        _ => return None,
    };
    Some(Entry { uid, name, retired })
}

/// Whether a SOP class of the registry is one the SCP stores.
fn is_storage(e: &Entry<'_>) -> bool {
    e.name.contains("Storage")
        && !e.name.starts_with("Storage Commitment")
        && e.uid != "1.2.840.10008.1.3.10" // Media Storage Directory Storage (DICOMDIR)
        && !e.uid.starts_with("1.2.840.10008.5.1.1.") // print management (retired)
}

/// The generated file from the text of dicom-dictionary-std `version`'s `src/uids.rs`.
pub fn generate(uids_rs: &str, version: &str) -> Result<String, String> {
    let start = uids_rs
        .find("const SOP_CLASSES: &[E] = &[")
        .ok_or("no SOP_CLASSES table in uids.rs")?;
    let table = &uids_rs[start..];
    let table = &table[..table
        .find("];")
        .ok_or("the SOP_CLASSES table does not end")?];
    let mut out = format!(
        "// Generated from dicom-dictionary-std {version} src/uids.rs (the PS3.6 registry of UIDs,\n\
         // table SOP_CLASSES) by `{COMMAND}`:\n\
         // every SOP class whose name says \"Storage\", except Storage Commitment, the Media Storage\n\
         // Directory and the retired print-management ones. Do not edit; rerun the command.\n\
         \n\
         /// Storage SOP classes (UID, name, retired).\n\
         pub const STORAGE_SOP_CLASSES: &[(&str, &str, bool)] = &[\n"
    );
    let mut count = 0;
    for e in table.lines().filter_map(parse_entry).filter(is_storage) {
        for s in [e.uid, e.name] {
            if s.contains(['"', '\\']) {
                return Err(format!("unexpected quote or backslash in {s:?}"));
            }
        }
        let items = format!("\"{}\", \"{}\", {}", e.uid, e.name, e.retired);
        if items.len() <= FN_CALL_WIDTH {
            out.push_str(&format!("    ({items}),\n"));
        } else {
            out.push_str(&format!(
                "    (\n        \"{}\",\n        \"{}\",\n        {},\n    ),\n",
                e.uid, e.name, e.retired
            ));
        }
        count += 1;
    }
    if count == 0 {
        return Err("no storage SOP class found in uids.rs".into());
    }
    out.push_str("];\n");
    Ok(out)
}

/// Reads the registry source named by `Cargo.lock` and generates the file's text.
pub fn generate_from_registry() -> Result<String, String> {
    let lock_path = workspace_root().join("Cargo.lock");
    let lock = std::fs::read_to_string(&lock_path)
        .map_err(|e| format!("cannot read {}: {e}", lock_path.display()))?;
    let version = locked_version(&lock).ok_or("dicom-dictionary-std is not in Cargo.lock")?;
    let source = registry_source(&version)?;
    let text = std::fs::read_to_string(&source)
        .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
    generate(&text, &version)
}

#[allow(dead_code)] // not used when the test includes this file as a module
fn main() {
    let check = std::env::args().any(|a| a == "--check");
    let generated = generate_from_registry().unwrap_or_else(|e| {
        eprintln!("gen-storage-classes: {e}");
        std::process::exit(2);
    });
    let path = output_path();
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if check {
        if current == generated {
            println!("{} is up to date", path.display());
        } else {
            eprintln!("{} differs from what the generator writes", path.display());
            std::process::exit(1);
        }
    } else if current == generated {
        println!("{} unchanged", path.display());
    } else {
        std::fs::write(&path, generated).unwrap_or_else(|e| {
            eprintln!("gen-storage-classes: cannot write {}: {e}", path.display());
            std::process::exit(2);
        });
        println!("wrote {}", path.display());
    }
}
