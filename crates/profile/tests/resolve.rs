//! What `Profile::resolve` decides, and what the shipped profiles are.

use dicom_deid_profile::{
    Action, Code, DeidOption, ElementCtx, Longitudinal, Profile, Resolved, Source, Tag, TagPattern,
    Unlisted, EDITION, TABLE_E1_1,
};

fn profile(options: &[DeidOption]) -> Profile {
    let list: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
    let text = format!("name = \"t\"\noptions = [{}]\n", list.join(", "));
    Profile::from_toml(&text, "t.toml").unwrap()
}

fn toml(text: &str) -> Profile {
    Profile::from_toml(text, "t.toml").unwrap()
}

fn at(p: &Profile, tag: Tag, vr: &str) -> Resolved {
    in_seq(p, &[], tag, vr)
}

fn in_seq(p: &Profile, path: &[Tag], tag: Tag, vr: &str) -> Resolved {
    let vr: [u8; 2] = vr.as_bytes().try_into().unwrap();
    p.resolve(&ElementCtx {
        tag,
        vr,
        private_creator: None,
        path,
    })
}

fn private(p: &Profile, tag: Tag, vr: &str, creator: Option<&str>) -> Resolved {
    let vr: [u8; 2] = vr.as_bytes().try_into().unwrap();
    p.resolve(&ElementCtx {
        tag,
        vr,
        private_creator: creator,
        path: &[],
    })
}

fn row_of(tag: Tag) -> usize {
    TABLE_E1_1
        .iter()
        .position(|r| r.pattern == TagPattern::Exact(tag))
        .unwrap()
}

#[test]
fn basic_profile_uses_the_basic_column() {
    let p = profile(&[]);
    let r = at(&p, 0x0010_0010, "PN"); // Patient's Name: Z
    assert_eq!(
        r,
        Resolved {
            code: Code::Z,
            action: Action::Empty,
            source: Source::Table {
                row: row_of(0x0010_0010)
            }
        }
    );
    assert_eq!(at(&p, 0x0010_0020, "LO").code, Code::ZD); // Patient ID
    assert_eq!(at(&p, 0x0010_0020, "LO").action, Action::Dummy);
    assert_eq!(at(&p, 0x0020_000D, "UI").action, Action::Uid);
    assert_eq!(at(&p, 0x0010_1010, "AS").action, Action::Remove);
    assert_eq!(at(&p, 0x0008_1030, "LO").action, Action::Remove);
    // X/Z/U*: a reference sequence is kept and walked; its UIDs are remapped inside.
    assert_eq!(at(&p, 0x0008_1140, "SQ").action, Action::KeepRecurse);
    assert_eq!(at(&p, 0x0008_1140, "SQ").code, Code::XZU);
    // D on a sequence: Dummy (scrub recurses).
    assert_eq!(at(&p, 0x0040_A730, "SQ").action, Action::Dummy);
}

#[test]
fn every_option_column_changes_a_known_row() {
    use DeidOption::*;
    let cases: [(DeidOption, Tag, &str, Code, Code, Action); 9] = [
        (
            RetainUids,
            0x0020_000D,
            "UI",
            Code::U,
            Code::K,
            Action::Keep,
        ),
        (
            RetainDeviceIdentity,
            0x0018_1000,
            "LO",
            Code::XZD,
            Code::K,
            Action::Keep,
        ),
        (
            RetainInstitutionIdentity,
            0x0008_0080,
            "LO",
            Code::XZD,
            Code::K,
            Action::Keep,
        ),
        (
            RetainPatientCharacteristics,
            0x0010_1010,
            "AS",
            Code::X,
            Code::K,
            Action::Keep,
        ),
        (
            RetainLongFullDates,
            0x0008_0020,
            "DA",
            Code::Z,
            Code::K,
            Action::Keep,
        ),
        (
            RetainLongModifiedDates,
            0x0008_0020,
            "DA",
            Code::Z,
            Code::C,
            Action::Clean,
        ),
        (
            CleanDescriptors,
            0x0008_1030,
            "LO",
            Code::X,
            Code::C,
            Action::Clean,
        ),
        (
            CleanStructuredContent,
            0x0040_A730,
            "SQ",
            Code::D,
            Code::C,
            Action::Clean,
        ),
        (
            CleanGraphics,
            0x0070_0001,
            "SQ",
            Code::D,
            Code::C,
            Action::Clean,
        ),
    ];
    let basic = profile(&[]);
    for (option, tag, vr, before, after, action) in cases {
        assert_eq!(
            at(&basic, tag, vr).code,
            before,
            "{option} {tag:08X} without"
        );
        let r = at(&profile(&[option]), tag, vr);
        assert_eq!(
            r,
            Resolved {
                code: after,
                action,
                source: Source::Option(option)
            },
            "{option} {tag:08X}"
        );
    }
    // The tenth column, Retain Safe Private, acts on private attributes.
    let creator = Some("Philips PET Private Group");
    assert_eq!(
        private(&basic, 0x7053_1000, "DS", creator).action,
        Action::Remove
    );
    assert_eq!(
        private(&profile(&[RetainSafePrivate]), 0x7053_1000, "DS", creator).action,
        Action::Keep
    );
}

#[test]
fn each_option_applies_its_whole_column() {
    for option in DeidOption::ALL {
        let p = profile(&[option]);
        let table = p.effective_table();
        for (i, row) in TABLE_E1_1.iter().enumerate() {
            let expected = row.options[option.column()].unwrap_or(row.basic);
            assert_eq!(table[i].code, expected, "{option} row {i} {}", row.name);
        }
    }
}

#[test]
fn retain_uids_keeps_unlisted_uids_too() {
    let p = profile(&[DeidOption::RetainUids]);
    assert_eq!(at(&p, 0x0008_0018, "UI").action, Action::Keep);
    // Volume Frame of Reference UID (0020,9312) is not in the table.
    assert_eq!(at(&p, 0x0020_9312, "UI").code, Code::K);
    assert_eq!(at(&profile(&[]), 0x0020_9312, "UI").code, Code::U);
}

#[test]
fn disagreeing_options_give_the_more_protective_clean() {
    use DeidOption::*;
    let calibration = 0x0018_1200; // Date of Last Calibration: device K, modified dates C
    assert_eq!(
        at(&profile(&[RetainDeviceIdentity]), calibration, "DA").code,
        Code::K
    );
    for options in [
        [RetainDeviceIdentity, RetainLongModifiedDates],
        [RetainLongModifiedDates, RetainDeviceIdentity],
    ] {
        let r = at(&profile(&options), calibration, "DA");
        assert_eq!(r.code, Code::C);
        assert_eq!(r.action, Action::Clean);
        assert_eq!(r.source, Source::Option(RetainLongModifiedDates));
    }
    // Full dates and device identity agree on K.
    let r = at(
        &profile(&[RetainDeviceIdentity, RetainLongFullDates]),
        calibration,
        "DA",
    );
    assert_eq!(r.code, Code::K);
}

#[test]
fn group_length_is_removed_whatever_the_overrides() {
    let p = toml("name = \"t\"\n[[override]]\ntag = \"0010,xxxx\"\naction = \"K\"\n");
    for tag in [0x0008_0000, 0x0010_0000, 0x0029_0000] {
        assert_eq!(
            at(&p, tag, "UL"),
            Resolved {
                code: Code::X,
                action: Action::Remove,
                source: Source::GroupLength
            }
        );
    }
    assert_eq!(at(&p, 0x0010_0010, "PN").action, Action::Keep);
}

#[test]
fn safe_private_elements_are_kept_only_with_the_option() {
    let p = profile(&[DeidOption::RetainSafePrivate]);
    let creator = Some("Philips PET Private Group");
    // Block 0x10: 7053,1000 is xx00 (safe), 7053,1055 is not listed.
    assert_eq!(
        private(&p, 0x7053_1000, "DS", creator),
        Resolved {
            code: Code::C,
            action: Action::Keep,
            source: Source::PrivateSafe
        }
    );
    assert_eq!(private(&p, 0x7053_1009, "DS", creator).action, Action::Keep);
    // The block byte does not matter: xx00 in block 0x42.
    assert_eq!(private(&p, 0x7053_4200, "DS", creator).action, Action::Keep);
    assert_eq!(
        private(&p, 0x7053_1055, "DS", creator),
        Resolved {
            code: Code::X,
            action: Action::Remove,
            source: Source::PrivateUnsafe
        }
    );
    // Another creator or another group at the same offset is not safe.
    assert_eq!(
        private(&p, 0x7053_1000, "DS", Some("ACME")).action,
        Action::Remove
    );
    assert_eq!(
        private(&p, 0x7055_1000, "DS", creator).action,
        Action::Remove
    );
    // Case of the hex in the table does not matter: 2001,xx0a.
    assert_eq!(
        private(&p, 0x2001_100A, "IS", Some("Philips Imaging DD 001")).action,
        Action::Keep
    );
    // A safe private sequence is walked.
    assert_eq!(
        private(&p, 0x2001_105F, "SQ", Some("Philips Imaging DD 001")).action,
        Action::KeepRecurse
    );
    // Without the option every private element goes.
    assert_eq!(
        private(&profile(&[]), 0x7053_1000, "DS", creator).action,
        Action::Remove
    );
}

#[test]
fn private_creators_are_kept_only_for_blocks_with_safe_elements() {
    let p = profile(&[DeidOption::RetainSafePrivate]);
    let r = private(&p, 0x7053_0010, "LO", Some("Philips PET Private Group"));
    assert_eq!((r.action, r.source), (Action::Keep, Source::PrivateSafe));
    let r = private(&p, 0x0029_0010, "LO", Some("SIEMENS CSA HEADER"));
    assert_eq!(
        (r.action, r.source),
        (Action::Remove, Source::PrivateUnsafe)
    );
    let r = private(
        &profile(&[]),
        0x7053_0010,
        "LO",
        Some("Philips PET Private Group"),
    );
    assert_eq!(r.action, Action::Remove);
}

#[test]
fn orphan_and_malformed_private_elements_are_removed() {
    let p = profile(&[DeidOption::RetainSafePrivate]);
    for (tag, creator) in [
        (0x7053_1000, None),                              // no creator
        (0x7053_0001, Some("Philips PET Private Group")), // not a block element
        (0x7053_0500, Some("Philips PET Private Group")), // 0100-0FFF: not reservable
    ] {
        assert_eq!(
            private(&p, tag, "UN", creator),
            Resolved {
                code: Code::X,
                action: Action::Remove,
                source: Source::PrivateUnsafe
            },
            "{tag:08X}"
        );
    }
}

#[test]
fn unlisted_dates_are_handled_like_content_date() {
    use DeidOption::*;
    let acquisition_date_time_like = 0x0014_0102; // Secondary Review Date, not in the table
    assert!(!TABLE_E1_1
        .iter()
        .any(|r| r.pattern.matches(acquisition_date_time_like)));
    for (options, code, action) in [
        (&[][..], Code::ZD, Action::Dummy),
        (&[RetainLongFullDates][..], Code::K, Action::Keep),
        (&[RetainLongModifiedDates][..], Code::C, Action::Clean),
    ] {
        let p = profile(options);
        for vr in ["DA", "DT", "TM"] {
            assert_eq!(
                at(&p, acquisition_date_time_like, vr),
                Resolved {
                    code,
                    action,
                    source: Source::UnlistedDate
                },
                "{options:?} {vr}"
            );
        }
    }
    // Also in allow-list mode.
    let p = toml("name = \"t\"\nunlisted = \"remove\"\n");
    assert_eq!(
        at(&p, acquisition_date_time_like, "DT").action,
        Action::Dummy
    );
}

#[test]
fn unlisted_uids_are_remapped_unless_they_name_a_kind() {
    let p = profile(&[]);
    let uid = |tag| at(&p, tag, "UI");
    // Frame of Reference UID is listed (U); Volume Frame of Reference UID (0020,9312) is not.
    assert!(!TABLE_E1_1.iter().any(|r| r.pattern.matches(0x0020_9312)));
    assert_eq!(
        uid(0x0020_9312),
        Resolved {
            code: Code::U,
            action: Action::Uid,
            source: Source::UnlistedUid
        }
    );
    for kind in [
        0x0008_0016,
        0x0008_1150,
        0x0002_0010,
        0x0008_010C,
        0x0008_0062,
        0x3010_0053,
    ] {
        assert_eq!(
            uid(kind),
            Resolved {
                code: Code::K,
                action: Action::Keep,
                source: Source::UnlistedUid
            },
            "{kind:08X}"
        );
    }
}

#[test]
fn unlisted_attributes_follow_the_unlisted_policy() {
    let keep = toml("name = \"t\"\nunlisted = \"keep\"\n");
    let remove = toml("name = \"t\"\nunlisted = \"remove\"\n");
    assert_eq!(keep.unlisted(), Unlisted::Keep);
    let rows = 0x0028_0010; // Rows
    assert_eq!(
        at(&keep, rows, "US"),
        Resolved {
            code: Code::K,
            action: Action::Keep,
            source: Source::Unlisted
        }
    );
    // Performed Protocol Code Sequence is not listed: kept and walked.
    assert_eq!(at(&keep, 0x0040_0260, "SQ").action, Action::KeepRecurse);
    assert_eq!(
        at(&remove, rows, "US"),
        Resolved {
            code: Code::X,
            action: Action::Remove,
            source: Source::Unlisted
        }
    );
    // Listed attributes are unaffected by the policy.
    assert_eq!(at(&remove, 0x0010_0010, "PN").action, Action::Empty);
}

#[test]
fn repeating_groups_use_the_masked_rows() {
    let p = profile(&[]);
    assert_eq!(at(&p, 0x6000_3000, "OW").code, Code::X);
    assert_eq!(at(&p, 0x6002_3000, "OW").code, Code::X);
    assert_eq!(at(&p, 0x6002_4000, "LT").code, Code::X);
    assert_eq!(at(&p, 0x5004_3000, "OB").code, Code::X);
    let g = profile(&[DeidOption::CleanGraphics]);
    let r = at(&g, 0x6002_3000, "OW");
    assert_eq!(
        (r.code, r.source),
        (Code::C, Source::Option(DeidOption::CleanGraphics))
    );
    // Overlay Rows (60xx,0010) is not listed.
    assert_eq!(at(&p, 0x6002_0010, "US").source, Source::Unlisted);
}

#[test]
fn overrides_most_specific_first() {
    let p = toml(
        r#"name = "t"
[[override]]
tag = "00xx,1155"
action = "X"
[[override]]
keyword = "ReferencedSOPInstanceUID"
action = "K"
[[override]]
path = "ReferencedStudySequence/ReferencedSOPInstanceUID"
action = "U"
[[override]]
path = "0008,1111"
action = "Z"
[[override]]
tag = "60xx,3000"
action = "K"
[[override]]
tag = "6xxx,3000"
action = "Z"
[[override]]
private = { creator = "ACME 1", element = "10" }
action = "K"
[[override]]
private = { creator = "ACME 1", element = "10", group = "0029" }
action = "D"
[[override]]
tag = "0029,1010"
action = "X"
"#,
    );
    let sop_ref = 0x0008_1155;
    // Path: exact and anchored at the top level.
    let r = in_seq(&p, &[0x0008_1110], sop_ref, "UI");
    assert_eq!((r.code, r.source), (Code::U, Source::Override { line: 9 }));
    // Not that path: deeper, or another sequence → the tag rule.
    let r = in_seq(&p, &[0x0040_0275, 0x0008_1110], sop_ref, "UI");
    assert_eq!((r.code, r.source), (Code::K, Source::Override { line: 6 }));
    let r = in_seq(&p, &[0x0008_1140], sop_ref, "UI");
    assert_eq!(r.code, Code::K);
    // A one-step path applies at the top level only.
    assert_eq!(at(&p, 0x0008_1111, "SQ").code, Code::Z);
    assert_eq!(
        in_seq(&p, &[0x0040_A730], 0x0008_1111, "SQ").code,
        Code::XZD
    );
    // Tag rule beats mask rule; of two masks the one with more fixed digits wins.
    assert_eq!(at(&p, 0x0000_1155, "UI").code, Code::X);
    let r = at(&p, 0x6002_3000, "OW");
    assert_eq!((r.code, r.source), (Code::K, Source::Override { line: 15 }));
    assert_eq!(at(&p, 0x6102_3000, "OW").code, Code::Z);
    // Private: creator + element, the group-specific rule first, and before a tag rule.
    let r = private(&p, 0x0029_1010, "LO", Some("ACME 1"));
    assert_eq!(
        (r.code, r.action, r.source),
        (Code::D, Action::Dummy, Source::Override { line: 24 })
    );
    let r = private(&p, 0x0031_2210, "LO", Some("ACME 1 "));
    assert_eq!((r.code, r.source), (Code::K, Source::Override { line: 21 }));
    let r = private(&p, 0x0029_1010, "LO", Some("OTHER"));
    assert_eq!((r.code, r.source), (Code::X, Source::Override { line: 27 }));
    // The creator of a block with a kept element is kept with it.
    let r = private(&p, 0x0031_0022, "LO", Some("ACME 1"));
    assert_eq!(
        (r.action, r.source),
        (Action::Keep, Source::Override { line: 21 })
    );
    assert_eq!(
        private(&p, 0x0031_0022, "LO", Some("OTHER")).action,
        Action::Remove
    );
}

#[test]
fn builtins_all_load_and_say_what_they_are() {
    assert_eq!(
        Profile::builtin_names(),
        ["basic", "research", "ai-dataset"]
    );
    for name in Profile::builtin_names() {
        let p = Profile::builtin(name).unwrap();
        assert_eq!(p.name(), *name);
        assert!(!p.description().is_empty());
        assert_eq!(p.effective_table().len(), 657 + p.overrides().len());
        assert!(p.method_text().len() <= 64);
    }
    assert!(Profile::builtin("nope").is_none());

    let basic = Profile::builtin("basic").unwrap();
    assert_eq!(basic.options().count(), 0);
    assert_eq!(basic.longitudinal(), Longitudinal::Removed);
    assert_eq!(
        basic.method_text(),
        format!("dicom-deid basic v1 (PS3.15 {EDITION})")
    );
    assert_eq!(
        basic.method_codes(),
        [("113100", "Basic Application Confidentiality Profile")]
    );

    let research = Profile::builtin("research").unwrap();
    use DeidOption::*;
    assert_eq!(
        research.options().collect::<Vec<_>>(),
        [
            RetainSafePrivate,
            RetainDeviceIdentity,
            RetainPatientCharacteristics,
            RetainLongModifiedDates,
            CleanDescriptors
        ]
    );
    assert_eq!(research.longitudinal(), Longitudinal::Modified);
    assert_eq!(research.date_shift().min_days, -3650);
    assert_eq!(research.date_shift().max_days, -365);
    let codes: Vec<&str> = research.method_codes().iter().map(|c| c.0).collect();
    assert_eq!(
        codes,
        ["113100", "113105", "113107", "113108", "113109", "113111"]
    );

    let ai = Profile::builtin("ai-dataset").unwrap();
    for o in [CleanStructuredContent, CleanGraphics, RetainSafePrivate] {
        assert!(ai.has(o), "{o}");
    }
    assert!(!ai.has(RetainUids));
}

#[test]
fn longitudinal_follows_the_date_options() {
    assert_eq!(
        profile(&[DeidOption::RetainLongFullDates]).longitudinal(),
        Longitudinal::Unmodified
    );
    assert_eq!(
        profile(&[DeidOption::RetainLongModifiedDates]).longitudinal(),
        Longitudinal::Modified
    );
    assert_eq!(Longitudinal::Modified.as_str(), "MODIFIED");
}

#[test]
fn method_text_fits_in_a_long_string() {
    let p = toml("name = \"abcdefghijklmnopqrstuvwx\"\nversion = \"2026.10.01-1\"\n");
    assert!(p.method_text().chars().count() <= 64, "{}", p.method_text());
    assert!(p.method_text().ends_with(&format!("(PS3.15 {EDITION})")));
}

#[test]
fn effective_table_has_every_row_then_the_overrides() {
    let basic = Profile::builtin("basic").unwrap();
    let t = basic.effective_table();
    assert_eq!(t.len(), 657);
    for (row, e) in TABLE_E1_1.iter().zip(&t) {
        assert_eq!(e.pattern, row.pattern.to_string());
        assert_eq!(e.name, row.name);
        assert_eq!(e.basic, Some(row.basic));
        assert_eq!(e.code, row.basic);
    }
    let private = t.iter().find(|e| e.pattern == "gggg,eeee").unwrap();
    assert_eq!((private.code, private.action), (Code::X, Action::Remove));
    let refs = t.iter().find(|e| e.pattern == "0008,1140").unwrap();
    assert_eq!(refs.action, Action::KeepRecurse);

    let p = toml(
        "name = \"t\"\noptions = [\"retain-safe-private\"]\n[[override]]\nkeyword = \"PatientAge\"\naction = \"K\"\n[[override]]\npath = \"ReferencedStudySequence/ReferencedSOPInstanceUID\"\naction = \"U\"\n",
    );
    let t = p.effective_table();
    assert_eq!(t.len(), 659);
    let age = t.iter().find(|e| e.pattern == "0010,1010").unwrap();
    assert_eq!(
        (age.basic, age.code, age.source),
        (Some(Code::X), Code::K, Source::Override { line: 4 })
    );
    let private = t.iter().find(|e| e.pattern == "gggg,eeee").unwrap();
    assert_eq!((private.code, private.action), (Code::C, Action::Keep));
    assert_eq!(
        t[658].pattern,
        "ReferencedStudySequence/ReferencedSOPInstanceUID"
    );
    assert_eq!((t[658].code, t[658].action), (Code::U, Action::Uid));
}
