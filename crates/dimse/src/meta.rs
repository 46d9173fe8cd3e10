//! The Part 10 envelope around a received data set: preamble, `DICM` and a file meta group
//! (PS3.10 §7.1) built from the C-STORE command and the presentation context, so the engine
//! reads a C-STORE instance exactly as it reads a STOW-RS part. The engine writes its own
//! file meta on output; nothing of this one is kept.

/// Preamble, `DICM` and the file meta group for a data set of `sop_class` / `sop_instance`
/// in `transfer_syntax`. The data set bytes follow as received (deflated ones stay deflated,
/// as in a Part 10 file).
pub fn envelope(
    sop_class: &str,
    sop_instance: &str,
    transfer_syntax: &str,
    implementation_class_uid: &str,
    implementation_version_name: &str,
) -> Vec<u8> {
    let mut group = Vec::with_capacity(256);
    // (0002,0001) FileMetaInformationVersion, OB: reserved 2 bytes and a 4-byte length.
    group.extend_from_slice(&[0x02, 0x00, 0x01, 0x00, b'O', b'B', 0, 0]);
    group.extend_from_slice(&2u32.to_le_bytes());
    group.extend_from_slice(&[0x00, 0x01]);
    short(&mut group, 0x0002, b"UI", sop_class, 0);
    short(&mut group, 0x0003, b"UI", sop_instance, 0);
    short(&mut group, 0x0010, b"UI", transfer_syntax, 0);
    short(&mut group, 0x0012, b"UI", implementation_class_uid, 0);
    short(&mut group, 0x0013, b"SH", implementation_version_name, b' ');
    let mut out = Vec::with_capacity(128 + 4 + 12 + group.len());
    out.extend_from_slice(&[0u8; 128]);
    out.extend_from_slice(b"DICM");
    out.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
    out.extend_from_slice(&(group.len() as u32).to_le_bytes());
    out.extend_from_slice(&group);
    out
}

fn short(out: &mut Vec<u8>, element: u16, vr: &[u8; 2], text: &str, pad: u8) {
    let mut value = text.as_bytes().to_vec();
    if value.len() % 2 == 1 {
        value.push(pad);
    }
    out.extend_from_slice(&0x0002u16.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(vr);
    out.extend_from_slice(&(value.len().min(0xFFFE) as u16).to_le_bytes());
    out.extend_from_slice(&value[..value.len().min(0xFFFE)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_a_valid_file_meta() {
        let m = envelope(
            "1.2.840.10008.5.1.4.1.1.2",
            "1.2.3",
            "1.2.840.10008.1.2",
            "1.2.9",
            "X",
        );
        assert_eq!(&m[128..132], b"DICM");
        let len = u32::from_le_bytes(m[140..144].try_into().unwrap()) as usize;
        assert_eq!(len, m.len() - 144);
        // Every element is even-length and the transfer syntax is where it belongs.
        let at = m.windows(4).position(|w| w == [0x02, 0, 0x10, 0]).unwrap();
        assert_eq!(&m[at + 4..at + 6], b"UI");
        let n = u16::from_le_bytes([m[at + 6], m[at + 7]]) as usize;
        assert_eq!(&m[at + 8..at + 8 + n], b"1.2.840.10008.1.2\0");
        assert!(m.ends_with(b"X "));
    }
}
