//! `Profile::resolve` is the hot path of scrub: once warm, it does not allocate.

use dicom_deid_profile::{ElementCtx, Profile};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

#[test]
fn resolve_does_not_allocate() {
    let profile = Profile::from_toml(
        r#"name = "t"
options = ["retain-safe-private", "retain-long-modified-dates"]
[[override]]
path = "ReferencedStudySequence/ReferencedSOPInstanceUID"
action = "U"
[[override]]
private = { creator = "ACME", element = "10" }
action = "K"
[[override]]
tag = "60xx,3000"
action = "K"
"#,
        "t.toml",
    )
    .unwrap();
    let path = [0x0008_1110];
    let cases: [ElementCtx; 9] = [
        ElementCtx {
            tag: 0x0010_0010,
            vr: *b"PN",
            private_creator: None,
            path: &[],
        },
        ElementCtx {
            tag: 0x0008_1155,
            vr: *b"UI",
            private_creator: None,
            path: &path,
        },
        ElementCtx {
            tag: 0x0029_1010,
            vr: *b"OB",
            private_creator: Some("ACME"),
            path: &[],
        },
        ElementCtx {
            tag: 0x7053_1000,
            vr: *b"DS",
            private_creator: Some("Philips PET Private Group"),
            path: &[],
        },
        ElementCtx {
            tag: 0x7053_0010,
            vr: *b"LO",
            private_creator: Some("Philips PET Private Group"),
            path: &[],
        },
        ElementCtx {
            tag: 0x6002_3000,
            vr: *b"OW",
            private_creator: None,
            path: &[],
        },
        ElementCtx {
            tag: 0x0014_0102,
            vr: *b"DA",
            private_creator: None,
            path: &[],
        },
        ElementCtx {
            tag: 0x0020_9312,
            vr: *b"UI",
            private_creator: None,
            path: &[],
        },
        ElementCtx {
            tag: 0x0028_0010,
            vr: *b"US",
            private_creator: None,
            path: &[],
        },
    ];
    // Warm the lazily built indexes (the table, the safe list, the dictionary).
    for c in &cases {
        profile.resolve(c);
    }
    let region = Region::new(GLOBAL);
    let mut kept = 0;
    for _ in 0..100 {
        for c in &cases {
            kept += usize::from(profile.resolve(c).action == dicom_deid_profile::Action::Keep);
        }
    }
    let stats = region.change();
    assert_eq!(
        stats.allocations + stats.reallocations,
        0,
        "resolve allocated: {stats:?}"
    );
    assert!(kept > 0);
}
