//! The `[pixel]` section: parsed, defaulted, matched, and every problem reported on its line.

use dicom_deid_profile::pixel::Signature;
use dicom_deid_profile::{DetectionMode, Profile, ProfileError};

#[test]
fn a_pixel_section_loads_and_its_rules_match_their_signature() {
    let p = Profile::from_toml(
        r#"
name = "site-a"
[pixel]
detection = "always"
padding = 5
ultrasound_regions = true
[[pixel.region]]
id = "iu22-600"
modality = "us"
manufacturer = "philips"
model = "iU22"
rows = 600
rects = [[0, 0, 800, 59], [700, 560, 100, 40]]
"#,
        "site.toml",
    )
    .unwrap();
    let px = p.pixel();
    assert_eq!(px.detection, DetectionMode::Always);
    assert_eq!(px.padding, 5);
    assert!(px.ultrasound_regions);
    let rule = &px.regions[0];
    assert_eq!(rule.line, 7);
    assert_eq!(rule.rects, vec![[0, 0, 800, 59], [700, 560, 100, 40]]);
    let mut sig = Signature {
        modality: Some("US"),
        manufacturer: Some("Philips Medical Systems"),
        model: Some("IU22 xMATRIX"),
        sop_class: None,
        rows: 600,
        columns: 800,
    };
    assert!(rule.matches(&sig));
    sig.rows = 768;
    assert!(!rule.matches(&sig));
    sig.rows = 600;
    sig.manufacturer = None;
    assert!(!rule.matches(&sig));
    assert!(p.pixel().summary().contains("rule:iu22-600 (line 7)"));
}

#[test]
fn without_a_section_the_defaults_apply_and_shipped_profiles_say_usual() {
    let p = Profile::from_toml("name = \"x\"\n", "x.toml").unwrap();
    assert_eq!(p.pixel().detection, DetectionMode::Usual);
    assert!(p.pixel().regions.is_empty());
    for name in Profile::builtin_names() {
        let b = Profile::builtin(name).unwrap();
        assert_eq!(b.pixel().detection, DetectionMode::Usual, "{name}");
        assert_eq!(b.pixel().padding, 3, "{name}");
    }
}

#[test]
fn every_problem_of_the_section_is_reported_with_its_line() {
    let text = r#"name = "x"
[pixel]
detection = "sometimes"
padding = -1
[[pixel.region]]
id = "a b"
rects = [[0, 0, 0, 10]]
[[pixel.region]]
id = "ok"
modality = "US"
rows = 0
rects = [[0, 0, 10, 10]]
"#;
    let e = Profile::from_toml(text, "bad.toml").unwrap_err();
    assert!(matches!(e, ProfileError::Invalid { .. }));
    let lines: Vec<usize> = e.problems().iter().map(|p| p.line).collect();
    let shown = e.to_string();
    assert!(lines.contains(&3), "{shown}"); // detection
    assert!(lines.contains(&4), "{shown}"); // padding
    assert!(lines.contains(&6), "{shown}"); // id
    assert!(lines.contains(&7), "{shown}"); // rects
    assert!(lines.contains(&11), "{shown}"); // rows
    assert!(shown.contains("needs a signature"), "{shown}");
    assert!(shown.contains("bad.toml:3:"), "{shown}");
    // An unknown key is refused too.
    let e = Profile::from_toml("name = \"x\"\n[pixel]\nmode = \"always\"\n", "u.toml").unwrap_err();
    assert_eq!(e.problems()[0].line, 3, "{e}");
}
