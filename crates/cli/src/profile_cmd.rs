//! `dicom-deid profile list | show | check`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use dicom_deid_profile::{Profile, ProfileError, EDITION};

/// `profile list`: the built-in profiles with their descriptions.
pub fn list() -> u8 {
    let names = Profile::builtin_names();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    let mut out = String::new();
    for name in names {
        let description = Profile::builtin(name)
            .map(|p| p.description().to_string())
            .unwrap_or_default();
        let _ = writeln!(out, "{name:width$}  {description}");
    }
    emit(&out);
    0
}

/// `profile show NAME|FILE`: the effective table as aligned text.
pub fn show(name: &str) -> u8 {
    let profile = match Profile::load(name) {
        Ok(profile) => profile,
        Err(e) => return crate::fail(e),
    };
    let options: Vec<&str> = profile.options().map(|o| o.name()).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "profile {} v{} (PS3.15 {EDITION})",
        profile.name(),
        profile.version()
    );
    let _ = writeln!(out, "{}", profile.description());
    let _ = writeln!(
        out,
        "options: {}",
        if options.is_empty() {
            "none".to_string()
        } else {
            options.join(", ")
        }
    );
    let _ = writeln!(out, "{}", profile.pixel().summary());
    let _ = writeln!(out);

    let header = ["TAG", "NAME", "BASIC", "CODE", "ACTION", "SOURCE"];
    let rows: Vec<[String; 6]> = profile
        .effective_table()
        .into_iter()
        .map(|r| {
            [
                r.pattern,
                r.name,
                r.basic.map_or_else(|| "-".to_string(), |c| c.to_string()),
                r.code.to_string(),
                r.action.to_string(),
                r.source.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                text.push_str(cell);
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        text
    };
    let _ = writeln!(out, "{}", line(header));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row.each_ref().map(String::as_str)));
    }
    emit(&out);
    0
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a message.
fn emit(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// `profile check FILE...`: `FILE: ok` on stdout, or `FILE:LINE: reason` lines on stderr.
/// Exit 1 if any file is invalid, 2 if one cannot be read.
pub fn check(files: &[PathBuf]) -> u8 {
    let mut code = 0;
    for file in files {
        let origin = file.display().to_string();
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("{origin}: cannot read: {e}");
                code = code.max(2);
                continue;
            }
        };
        match Profile::from_toml(&text, &origin) {
            Ok(_) => println!("{origin}: ok"),
            Err(e @ ProfileError::Invalid { .. }) => {
                eprintln!("{e}");
                code = code.max(1);
            }
            Err(e) => {
                eprintln!("{origin}: {e}");
                code = code.max(1);
            }
        }
    }
    code
}
