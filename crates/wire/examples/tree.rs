//! Prints the element tree of a file (tags, VRs, lengths; no values): `tree FILE`.
use dicom_deid_wire::*;
fn show(ds: &DataSet, depth: usize) {
    for e in &ds.elements {
        match &e.value {
            Value::Bytes(b) => println!(
                "{}{} {} len={}",
                "  ".repeat(depth),
                tag_str(e.tag),
                e.vr,
                b.len()
            ),
            Value::Fragments(f) => println!(
                "{}{} {} fragments={}",
                "  ".repeat(depth),
                tag_str(e.tag),
                e.vr,
                f.len()
            ),
            Value::Seq(items) => {
                println!(
                    "{}{} SQ items={}",
                    "  ".repeat(depth),
                    tag_str(e.tag),
                    items.len()
                );
                for i in items {
                    show(i, depth + 1);
                }
            }
        }
    }
}
fn main() {
    let bytes = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let l = Limits::default();
    let raw = read_file(&bytes, &l).unwrap();
    println!("syntax {:?} ts {}", raw.syntax, raw.transfer_syntax_uid);
    show(&raw.parse(&l).unwrap(), 0);
}
