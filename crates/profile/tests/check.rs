//! `profile check`: every problem of a file is reported, each on the right line.

use dicom_deid_profile::{
    Code, DeidOption, Problem, ProblemKind, Profile, ProfileError, Selector, Unlisted,
};

fn problems(text: &str) -> Vec<Problem> {
    match Profile::from_toml(text, "test.toml") {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(e) => {
            assert!(matches!(e, ProfileError::Invalid { .. }), "{e:?}");
            e.problems().to_vec()
        }
    }
}

/// The only problem of `text`: its line and kind.
fn only(text: &str) -> (usize, ProblemKind) {
    let p = problems(text);
    assert_eq!(p.len(), 1, "expected one problem, got {p:#?}");
    (p[0].line, p[0].kind.clone())
}

#[test]
fn a_valid_profile_with_every_selector_loads() {
    let p = Profile::from_toml(
        r#"
name = "site-a"
description = "test"
version = "3"
options = ["retain-uids", "clean-descriptors"]
unlisted = "remove"
[date_shift]
min_days = -100
max_days = -10
[[override]]
keyword = "PatientAge"
action = "K"
[[override]]
tag = "0010,1020"
action = "X/Z/D"
[[override]]
tag = "60xx,3000"
action = "X"
[[override]]
private = { creator = "SIEMENS CSA HEADER", element = "10", group = "0029" }
action = "X/Z/U*"
[[override]]
path = "ReferencedStudySequence/ReferencedSOPInstanceUID"
action = "U"
"#,
        "site-a.toml",
    )
    .unwrap();
    assert_eq!(p.name(), "site-a");
    assert_eq!(p.version(), "3");
    assert_eq!(p.description(), "test");
    assert_eq!(p.unlisted(), Unlisted::Remove);
    assert_eq!(p.date_shift().min_days, -100);
    assert_eq!(p.date_shift().max_days, -10);
    assert_eq!(
        p.options().collect::<Vec<_>>(),
        [DeidOption::RetainUids, DeidOption::CleanDescriptors]
    );
    let rules: Vec<(String, Code, usize)> = p
        .overrides()
        .iter()
        .map(|r| (r.selector.to_string(), r.code, r.line))
        .collect();
    assert_eq!(
        rules,
        [
            ("0010,1010".to_string(), Code::K, 11),
            ("0010,1020".to_string(), Code::XZD, 14),
            ("60xx,3000".to_string(), Code::X, 17),
            (
                "0029,xx10 \"SIEMENS CSA HEADER\"".to_string(),
                Code::XZU,
                20
            ),
            (
                "ReferencedStudySequence/ReferencedSOPInstanceUID".to_string(),
                Code::U,
                23
            ),
        ]
    );
    assert_eq!(
        p.overrides()[4].selector,
        Selector::Path(vec![0x0008_1110, 0x0008_1155])
    );
}

#[test]
fn minimal_profile_takes_the_defaults() {
    let p = Profile::from_toml("name = \"x\"\n", "x.toml").unwrap();
    assert_eq!(p.version(), "1");
    assert_eq!(p.unlisted(), Unlisted::Keep);
    assert_eq!(p.date_shift().min_days, -3650);
    assert_eq!(p.date_shift().max_days, -365);
    assert_eq!(p.options().count(), 0);
}

#[test]
fn toml_syntax_error() {
    let p = problems("name = \"x\"\nversion = \"1\"\ndescription = \"unterminated\n");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].line, 3);
    assert!(matches!(p[0].kind, ProblemKind::Syntax(_)), "{p:?}");
    // Recovery may report more than one, all syntax, none before the first bad line.
    let p = problems("name = \"x\"\noptions = [\n\"retain-uids\"\n= 3\n");
    assert!(!p.is_empty());
    assert!(
        p.iter()
            .all(|p| p.line >= 3 && matches!(p.kind, ProblemKind::Syntax(_))),
        "{p:#?}"
    );
}

#[test]
fn unknown_keyword() {
    let (line, kind) =
        only("name = \"x\"\n\n[[override]]\nkeyword = \"PatientAgeX\"\naction = \"K\"\n");
    assert_eq!(line, 4);
    assert_eq!(kind, ProblemKind::UnknownKeyword("PatientAgeX".into()));
}

#[test]
fn unknown_keyword_in_a_path() {
    let (line, kind) = only(
        "name = \"x\"\n[[override]]\naction = \"K\"\npath = \"ReferencedStudySequence/Nope\"\n",
    );
    assert_eq!(line, 4);
    assert_eq!(kind, ProblemKind::UnknownKeyword("Nope".into()));
}

#[test]
fn unknown_option() {
    let (line, kind) =
        only("name = \"x\"\noptions = [\n  \"retain-uids\",\n  \"retain-everything\",\n]\n");
    assert_eq!(line, 4);
    assert_eq!(kind, ProblemKind::UnknownOption("retain-everything".into()));
}

#[test]
fn bad_action_code() {
    let (line, kind) =
        only("name = \"x\"\n[[override]]\ntag = \"0010,1010\"\n\naction = \"KEEP\"\n");
    assert_eq!(line, 5);
    assert_eq!(kind, ProblemKind::BadAction("KEEP".into()));
}

#[test]
fn bad_tag_syntax() {
    for bad in [
        "0010,101",
        "0010-1010",
        "00G0,1010",
        "gggg,eeee",
        "0010,0000",
    ] {
        let text = format!("name = \"x\"\n[[override]]\naction = \"X\"\ntag = \"{bad}\"\n");
        let (line, kind) = only(&text);
        assert_eq!(line, 4, "{bad}");
        assert!(
            matches!(&kind, ProblemKind::BadTag { text, .. } if text == bad),
            "{bad}: {kind:?}"
        );
    }
}

#[test]
fn bad_private_selector() {
    let text = "name = \"x\"\n[[override]]\naction = \"K\"\nprivate = { creator = \"ACME\", element = \"1010\" }\n";
    let (line, kind) = only(text);
    assert_eq!(line, 4);
    assert!(matches!(kind, ProblemKind::BadTag { .. }), "{kind:?}");
    // An even group is not private.
    let text = "name = \"x\"\n[[override]]\naction = \"K\"\nprivate = { creator = \"ACME\", element = \"10\", group = \"0028\" }\n";
    let (line, kind) = only(text);
    assert_eq!(line, 4);
    assert!(matches!(kind, ProblemKind::BadTag { text, .. } if text == "0028"));
}

#[test]
fn more_than_one_selector() {
    let (line, kind) = only(
        "name = \"x\"\n[[override]]\ntag = \"0010,1010\"\nkeyword = \"PatientAge\"\naction = \"K\"\n",
    );
    assert_eq!(line, 4, "reported on the second selector");
    assert_eq!(
        kind,
        ProblemKind::SelectorCount {
            found: vec!["tag", "keyword"]
        }
    );
}

#[test]
fn no_selector() {
    let (line, kind) = only("name = \"x\"\n\n[[override]]\naction = \"K\"\n");
    assert_eq!(line, 3, "at the override");
    assert_eq!(kind, ProblemKind::SelectorCount { found: vec![] });
}

#[test]
fn conflicting_overrides() {
    let text = r#"name = "x"
[[override]]
keyword = "PatientAge"
action = "K"
[[override]]
tag = "0010,1010"
action = "X"
[[override]]
tag = "0010,1010"
action = "K"
"#;
    // The third rule agrees with the first: not a conflict. The second disagrees.
    let (line, kind) = only(text);
    assert_eq!(line, 6);
    assert_eq!(kind, ProblemKind::Conflict { line: 3 });
    let message = Profile::from_toml(text, "x.toml").unwrap_err().to_string();
    assert_eq!(
        message,
        "x.toml:6: override conflicts with the rule at line 3 (same selector, different action)"
    );
}

#[test]
fn full_and_modified_dates_together() {
    let (line, kind) = only(
        "name = \"x\"\noptions = [\n  \"retain-long-full-dates\",\n  \"clean-graphics\",\n  \"retain-long-modified-dates\",\n]\n",
    );
    assert_eq!(line, 5);
    assert_eq!(kind, ProblemKind::ExclusiveDateOptions);
}

#[test]
fn empty_date_shift_range() {
    let (line, kind) = only("name = \"x\"\n[date_shift]\nmin_days = -10\nmax_days = -20\n");
    assert_eq!(line, 3);
    assert_eq!(kind, ProblemKind::DateShiftOrder { min: -10, max: -20 });
}

#[test]
fn date_shift_that_can_be_zero() {
    let (line, kind) = only("name = \"x\"\n[date_shift]\nmin_days = -10\nmax_days = 10\n");
    assert_eq!(line, 3);
    assert_eq!(kind, ProblemKind::DateShiftZero);
}

#[test]
fn unknown_field_at_top_level() {
    let (line, kind) = only("name = \"x\"\n\nretain_everything = true\n");
    assert_eq!(line, 3);
    assert!(
        matches!(&kind, ProblemKind::UnknownField(m) if m.contains("retain_everything")),
        "{kind:?}"
    );
}

#[test]
fn unknown_field_in_an_override() {
    let (line, kind) =
        only("name = \"x\"\n[[override]]\ntag = \"0010,1010\"\naction = \"K\"\nreason = \"why\"\n");
    assert_eq!(line, 5);
    assert!(
        matches!(&kind, ProblemKind::UnknownField(m) if m.contains("reason")),
        "{kind:?}"
    );
}

#[test]
fn unknown_field_in_date_shift() {
    let (line, kind) = only("name = \"x\"\n[date_shift]\nmin_days = -10\nmax = -2\n");
    assert_eq!(line, 4);
    assert!(
        matches!(&kind, ProblemKind::UnknownField(m) if m.contains("max")),
        "{kind:?}"
    );
}

#[test]
fn bad_unlisted_and_bad_name() {
    let p = problems("name = \"my profile\"\nunlisted = \"drop\"\n");
    let got: Vec<(usize, bool)> = p
        .iter()
        .map(|p| {
            (
                p.line,
                matches!(p.kind, ProblemKind::BadName { field: "name", .. }),
            )
        })
        .collect();
    assert_eq!(got, [(1, true), (2, false)]);
    assert_eq!(p[1].kind, ProblemKind::BadUnlisted("drop".into()));
}

#[test]
fn every_problem_of_a_file_is_reported_in_line_order() {
    let text = r#"name = "x"
options = ["retain-uids", "retain-nothing"]
[date_shift]
min_days = 5
max_days = 1
[[override]]
keyword = "NoSuchThing"
action = "K"
[[override]]
tag = "0010,1010"
action = "Q"
[[override]]
tag = "0010,1010"
action = "K"
colour = "red"
"#;
    let p = problems(text);
    let lines: Vec<usize> = p.iter().map(|p| p.line).collect();
    assert_eq!(lines, [2, 4, 7, 11, 15], "{p:#?}");
    let message = Profile::from_toml(text, "dir/x.toml")
        .unwrap_err()
        .to_string();
    let prefixes: Vec<&str> = message
        .lines()
        .map(|l| &l[..l[11..].find(':').unwrap() + 11])
        .collect();
    assert_eq!(
        prefixes,
        [
            "dir/x.toml:2",
            "dir/x.toml:4",
            "dir/x.toml:7",
            "dir/x.toml:11",
            "dir/x.toml:15"
        ]
    );
}

#[test]
fn wrong_types_are_reported_with_their_line() {
    let (line, kind) = only("name = \"x\"\n\n\nversion = 2\n");
    assert_eq!(line, 4);
    assert!(matches!(kind, ProblemKind::Invalid(_)), "{kind:?}");
    let (line, kind) = only("name = \"x\"\noverride = \"K\"\n");
    assert_eq!(line, 2);
    assert!(matches!(kind, ProblemKind::Invalid(_)), "{kind:?}");
}

#[test]
fn load_prefers_a_file_then_a_builtin_and_lists_builtins_when_unknown() {
    let dir = std::env::temp_dir().join(format!("deid-profile-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("basic");
    std::fs::write(&path, "name = \"from-file\"\n").unwrap();
    let from_file = Profile::load(path.to_str().unwrap()).unwrap();
    assert_eq!(from_file.name(), "from-file");
    std::fs::write(&path, "name = \"from-file\"\nbogus = 1\n").unwrap();
    let err = Profile::load(path.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(&format!("{}:2: ", path.display())), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(Profile::load("research").unwrap().name(), "research");
    let err = Profile::load("no-such-profile").unwrap_err().to_string();
    assert!(err.contains("no-such-profile"), "{err}");
    for name in Profile::builtin_names() {
        assert!(err.contains(name), "{err}");
    }
}
