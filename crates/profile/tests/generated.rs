//! Generates `src/ps315_generated.rs` from the PS3.15/PS3.16 CSVs in `shared/ps315/` and checks
//! that the committed file is what they give.
//!
//! Regenerate with `UPDATE_PS315=1 cargo test -p dicom-deid-profile --test generated`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const HEADER: &str = "// Generated from PS3.15 2026d Table E.1-1, Table E.3.10-1 and PS3.16 CID 7050 (shared/ps315/*.csv) by crates/profile/tests/generated.rs. Do not edit.\n";

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `shared/ps315` sits beside the clone: `<repo>/../shared/ps315`.
fn source_dir() -> PathBuf {
    crate_dir().join("../../../shared/ps315")
}

fn read(dir: &Path, file: &str) -> Vec<csv::StringRecord> {
    let path = dir.join(file);
    let mut reader =
        csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader
        .records()
        .map(|r| r.unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

fn code(text: &str) -> &'static str {
    match text {
        "D" => "Code::D",
        "Z" => "Code::Z",
        "X" => "Code::X",
        "K" => "Code::K",
        "C" => "Code::C",
        "U" => "Code::U",
        "Z/D" => "Code::ZD",
        "X/Z" => "Code::XZ",
        "X/D" => "Code::XD",
        "X/Z/D" => "Code::XZD",
        "X/Z/U*" => "Code::XZU",
        other => panic!("unknown action code {other:?}"),
    }
}

fn yes_no(text: &str) -> bool {
    match text {
        "Y" => true,
        "N" => false,
        other => panic!("expected Y or N, got {other:?}"),
    }
}

fn pattern(text: &str) -> String {
    if text == "gggg,eeee" {
        return "TagPattern::AnyPrivate".into();
    }
    let (g, e) = text.split_once(',').expect("tag with a comma");
    assert!(g.len() == 4 && e.len() == 4, "bad tag {text:?}");
    let digits: String = format!("{g}{e}");
    if !digits.contains(['x', 'X']) {
        u32::from_str_radix(&digits, 16).unwrap_or_else(|_| panic!("bad tag {text:?}"));
        return format!("TagPattern::Exact(0x{g}_{e})");
    }
    let value: String = digits
        .chars()
        .map(|c| if c == 'x' { '0' } else { c })
        .collect();
    let mask: String = digits
        .chars()
        .map(|c| if c == 'x' { '0' } else { 'F' })
        .collect();
    u32::from_str_radix(&value, 16).unwrap_or_else(|_| panic!("bad tag {text:?}"));
    format!(
        "TagPattern::Mask {{ value: 0x{}_{}, mask: 0x{}_{} }}",
        &value[..4],
        &value[4..],
        &mask[..4],
        &mask[4..]
    )
}

fn render(dir: &Path) -> String {
    let table = read(dir, "table-e1-1.csv");
    let safe = read(dir, "safe-private.csv");
    let cid = read(dir, "cid-7050.csv");
    assert_eq!(table.len(), 657, "Table E.1-1 rows");
    assert_eq!(safe.len(), 479, "Table E.3.10-1 rows");
    assert_eq!(cid.len(), 13, "CID 7050 codes");

    let mut out = String::new();
    out.push_str(HEADER);
    out.push('\n');
    out.push_str("use crate::code::Code;\n");
    out.push_str("use crate::table::{CidCode, SafePrivateRow, TableRow, TagPattern};\n\n");
    out.push_str("/// The edition of the standard the tables come from.\n");
    out.push_str("pub const EDITION: &str = \"2026d\";\n\n");

    writeln!(out, "/// PS3.15 Table E.1-1, in the table's order. Option columns in [`crate::DeidOption`] order.").unwrap();
    writeln!(
        out,
        "pub static TABLE_E1_1: [TableRow; {}] = [",
        table.len()
    )
    .unwrap();
    for r in &table {
        assert_eq!(r.len(), 15, "Table E.1-1 columns");
        let options: Vec<String> = (5..15)
            .map(|i| match &r[i] {
                "" => "None".to_string(),
                c => format!("Some({})", code(c)),
            })
            .collect();
        writeln!(
            out,
            "    TableRow {{ pattern: {}, name: {:?}, retired: {}, in_std_iod: {}, basic: {}, options: [{}] }},",
            pattern(&r[0]),
            &r[1],
            yes_no(&r[2]),
            yes_no(&r[3]),
            code(&r[4]),
            options.join(", ")
        )
        .unwrap();
    }
    out.push_str("];\n\n");

    writeln!(
        out,
        "/// PS3.15 Table E.3.10-1 \"Safe Private Attributes\", in the table's order."
    )
    .unwrap();
    writeln!(
        out,
        "pub static SAFE_PRIVATE: [SafePrivateRow; {}] = [",
        safe.len()
    )
    .unwrap();
    for r in &safe {
        let (g, e) = r[1].split_once(',').expect("tag with a comma");
        let group = u16::from_str_radix(g, 16).expect("hex group");
        assert!(group & 1 == 1, "private group must be odd: {}", &r[1]);
        let offset = e
            .strip_prefix("xx")
            .and_then(|e| u8::from_str_radix(e, 16).ok())
            .unwrap_or_else(|| panic!("expected xxEE, got {}", &r[1]));
        assert!(r[5].is_empty(), "conditions column is always empty");
        writeln!(
            out,
            "    SafePrivateRow {{ creator: {:?}, group: 0x{:04X}, element_offset: 0x{:02X}, vr: {:?}, vm: {:?}, meaning: {:?} }},",
            &r[0], group, offset, &r[2], &r[3], &r[4]
        )
        .unwrap();
    }
    out.push_str("];\n\n");

    writeln!(
        out,
        "/// PS3.16 CID 7050 \"De-identification Method\", in code order."
    )
    .unwrap();
    writeln!(out, "pub static CID_7050: [CidCode; {}] = [", cid.len()).unwrap();
    for r in &cid {
        writeln!(
            out,
            "    CidCode {{ code_value: {:?}, scheme: {:?}, code_meaning: {:?} }},",
            &r[0], &r[1], &r[2]
        )
        .unwrap();
    }
    out.push_str("];\n");
    out
}

#[test]
fn generated_tables_match_the_standard() {
    let dir = source_dir();
    if !dir.join("table-e1-1.csv").exists() {
        let msg = format!(
            "shared/ps315 not found at {}: cannot check src/ps315_generated.rs against the standard",
            dir.display()
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
        return;
    }
    let expected = render(&dir);
    let target = crate_dir().join("src/ps315_generated.rs");
    if std::env::var_os("UPDATE_PS315").is_some() {
        std::fs::write(&target, &expected).expect("write src/ps315_generated.rs");
        return;
    }
    let committed = std::fs::read_to_string(&target).unwrap_or_default();
    assert!(
        committed == expected,
        "src/ps315_generated.rs is stale or edited; regenerate with UPDATE_PS315=1 cargo test -p dicom-deid-profile --test generated"
    );
}
