//! Corrupt and inconsistent pixel data: every codec path answers with an error, never a
//! panic, and the error names no pixel content.

use dicom_deid_detect::Rect;
use dicom_deid_pixel::{decode, encode, EncodedPixels, PixelData, PixelDescription, PixelError};

fn desc(ts: &str, spp: u16, ba: u16, photometric: &str, frames: u32) -> PixelDescription {
    PixelDescription {
        samples_per_pixel: spp,
        bits_allocated: ba,
        bits_stored: ba,
        high_bit: ba - 1,
        photometric: photometric.into(),
        number_of_frames: frames,
        ..PixelDescription::mono8(16, 16, ts)
    }
}

#[test]
fn garbage_in_every_compressed_syntax_is_an_error() {
    let syntaxes = [
        "1.2.840.10008.1.2.5",
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.57",
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.81",
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.91",
    ];
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for ts in syntaxes {
        for (spp, ba, pi) in [(1, 8, "MONOCHROME2"), (1, 16, "MONOCHROME1"), (3, 8, "RGB")] {
            for len in [0usize, 1, 2, 4, 63, 64, 65, 200, 3000] {
                let mut frag: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                // Give some of them a plausible start so the decoders read further.
                if len >= 4 && len % 2 == 0 {
                    frag[..2].copy_from_slice(&[0xFF, 0xD8]);
                }
                if ts.ends_with("1.2.5") && len >= 64 {
                    frag[..4].copy_from_slice(&(spp as u32 * ba as u32 / 8).to_le_bytes());
                }
                let d = desc(ts, spp, ba, pi, 1);
                let data = PixelData::Encapsulated {
                    fragments: vec![&frag],
                    offset_table: &[],
                };
                match decode(&d, &data) {
                    Err(PixelError::Corrupt { .. } | PixelError::Unsupported { .. }) => {}
                    Ok(decoded) => {
                        // Random bytes that happen to decode must still make a valid frame.
                        assert_eq!(decoded.frames(), 1, "{ts}");
                    }
                }
            }
        }
    }
}

#[test]
fn inconsistent_descriptions_are_errors() {
    let short = vec![0u8; 10];
    let cases = [
        desc("1.2.840.10008.1.2.1", 1, 8, "MONOCHROME2", 1), // too few bytes
        desc("1.2.840.10008.1.2.1", 1, 8, "MONOCHROME2", 0), // no frame
        desc("1.2.840.10008.1.2.1", 2, 8, "MONOCHROME2", 1), // 2 samples
        desc("1.2.840.10008.1.2.1", 1, 12, "MONOCHROME2", 1), // 12 bits allocated
        desc("1.2.840.10008.1.2.1", 1, 8, "HSV", 1),         // retired photometric
        desc("1.2.840.10008.1.2.4.100", 1, 8, "MONOCHROME2", 1), // MPEG2
    ];
    for d in cases {
        let err = decode(&d, &PixelData::Native(&short)).unwrap_err();
        assert!(!err.to_string().is_empty());
    }
    // Encapsulated data in a native syntax, and the other way round.
    let d = desc("1.2.840.10008.1.2.1", 1, 8, "MONOCHROME2", 1);
    let frag = [0u8; 256];
    assert!(decode(
        &d,
        &PixelData::Encapsulated {
            fragments: vec![&frag],
            offset_table: &[]
        }
    )
    .is_err());
    let d = desc("1.2.840.10008.1.2.5", 1, 8, "MONOCHROME2", 2);
    assert!(decode(&d, &PixelData::Native(&frag)).is_err());
}

#[test]
fn masks_use_the_native_representation() {
    // 16-bit signed MONOCHROME1, big endian OW: background is the most common stored value.
    let mut d = desc("1.2.840.10008.1.2.2", 1, 16, "MONOCHROME1", 2);
    d.rows = 4;
    d.columns = 4;
    d.pixel_representation = 1;
    d.pixel_data_vr_ow = true;
    let mut be = Vec::new();
    for f in 0..2i16 {
        for i in 0..16i16 {
            let v: i16 = if i < 10 { -3 } else { 100 * (i + f) };
            be.extend_from_slice(&v.to_be_bytes());
        }
    }
    let mut dec = decode(&d, &PixelData::Native(&be)).unwrap();
    dec.mask(
        1,
        &[Rect {
            x: 2,
            y: 2,
            width: 9,
            height: 9,
        }],
    );
    let out = encode(&dec).unwrap();
    assert_eq!(out.transfer_syntax, "1.2.840.10008.1.2.2");
    let EncodedPixels::Native(bytes) = out.pixel_data else {
        panic!()
    };
    let vals: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|c| i16::from_be_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(&vals[..16], &be_values(&be)[..16], "frame 0 untouched");
    for (i, v) in vals[16..].iter().enumerate() {
        let (x, y) = (i % 4, i / 4);
        if x >= 2 && y >= 2 {
            assert_eq!(*v, -3, "({x},{y})");
        } else {
            assert_eq!(*v, be_values(&be)[16 + i]);
        }
    }

    // RGB planar: every plane is filled, the layout stays planar.
    let mut d = desc("1.2.840.10008.1.2.1", 3, 8, "RGB", 1);
    d.rows = 2;
    d.columns = 2;
    d.planar_configuration = 1;
    let planes = [10, 10, 10, 99, 20, 20, 20, 98, 30, 30, 30, 97];
    let mut dec = decode(&d, &PixelData::Native(&planes)).unwrap();
    dec.mask(
        0,
        &[Rect {
            x: 1,
            y: 1,
            width: 1,
            height: 1,
        }],
    );
    let out = encode(&dec).unwrap();
    assert_eq!(out.planar_configuration, Some(1));
    assert_eq!(
        out.pixel_data,
        EncodedPixels::Native(vec![10, 10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30])
    );

    // 1 bit, two frames of 3x3 packed across the frame boundary.
    let mut d = desc("1.2.840.10008.1.2.1", 1, 1, "MONOCHROME2", 2);
    d.rows = 3;
    d.columns = 3;
    d.bits_stored = 1;
    d.high_bit = 0;
    let bits = [0b1110_1111u8, 0b0000_0001, 0b0000_0000, 0b0];
    let mut dec = decode(&d, &PixelData::Native(&bits)).unwrap();
    dec.mask(
        0,
        &[Rect {
            x: 1,
            y: 1,
            width: 1,
            height: 1,
        }],
    );
    let out = encode(&dec).unwrap();
    // Frame 0: its one 0 pixel (the centre) takes the background 1; frame 1 untouched.
    assert_eq!(
        out.pixel_data,
        EncodedPixels::Native(vec![0xFF, 0x01, 0x00, 0x00])
    );
}

fn be_values(be: &[u8]) -> Vec<i16> {
    be.chunks_exact(2)
        .map(|c| i16::from_be_bytes([c[0], c[1]]))
        .collect()
}
