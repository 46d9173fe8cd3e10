//! Round-trips one file through the reader and writer: `roundtrip IN OUT`.
use dicom_deid_wire::*;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&args[1]).unwrap();
    let l = Limits::default();
    let raw = read_file(&bytes, &l).unwrap();
    let inflated;
    let (body, syntax) = if raw.syntax.deflated {
        inflated = raw.inflate(&l).unwrap();
        (&inflated[..], Syntax::EXPLICIT_LE)
    } else {
        (raw.body, raw.syntax)
    };
    let ds = parse_dataset(body, syntax, &l).unwrap();
    let meta = FileMetaOut::for_dataset(&ds, &raw.transfer_syntax_uid, "1.2.3", "TEST");
    let mut out = Vec::new();
    write_file(&mut out, &meta, &ds, syntax).unwrap();
    std::fs::write(&args[2], out).unwrap();
}
