//! The de-identification profile model of dicom-deid: PS3.15 Table E.1-1 and its options
//! (generated from the standard), TOML profiles with overrides, their validation, and the
//! resolution of one DICOM element to one [`Action`].
//!
//! This crate is pure: it reads no DICOM and touches no file except the profile asked for in
//! [`Profile::load`]. `dicom-deid-scrub` walks a dataset and asks [`Profile::resolve`] what to
//! do with each element; the values (dummy values, keyed UIDs, shifted dates) are its business.
//!
//! ```
//! use dicom_deid_profile::{Action, ElementCtx, Profile, Source};
//!
//! let profile = Profile::builtin("basic").unwrap();
//! let patient_name = ElementCtx { tag: 0x0010_0010, vr: *b"PN", private_creator: None, path: &[] };
//! let r = profile.resolve(&patient_name);
//! assert_eq!(r.action, Action::Empty); // Z in Table E.1-1
//! assert!(matches!(r.source, Source::Table { .. }));
//! ```
//!
//! # How an element is resolved
//!
//! [`Profile::resolve`] takes the element's tag, VR, private creator (odd groups) and the tags
//! of its enclosing sequences, and applies the first of these steps that says something:
//!
//! 1. **Group length** (`gggg,0000`): removed ([`Source::GroupLength`]).
//! 2. **Overrides** of the profile, the most specific first:
//!    1. a sequence `path` rule, anchored at the top level: it matches when the rule's path is
//!       exactly the enclosing sequences followed by the element's own tag;
//!    2. a `private` rule: creator (exact, after trimming padding) + element offset (`xxEE`),
//!       restricted to one group if the rule names it (a rule with a group beats one without);
//!    3. an exact `tag` or `keyword` rule (at every nesting level);
//!    4. a tag-mask rule such as `60xx,3000` (`x` = any hex digit); the mask with most fixed
//!       digits wins.
//!
//!    ([`Source::Override`] with the rule's line.)
//! 3. **Private elements** (odd group), as PS3.15 E.3.10 says:
//!    - a Private Creator element (`gggg,0010`–`gggg,00FF`) is kept when Retain Safe Private is
//!      in use and Table E.3.10-1 lists at least one element of that creator in that group, or
//!      when an override keeps an element of that creator's block (an element is only kept
//!      together with the creator that defines its block); otherwise removed;
//!    - a private data element is kept ([`Code::C`], [`Source::PrivateSafe`]; its items are
//!      walked if it is a sequence) when Retain Safe Private is in use and
//!      (group, creator, low byte of the element) is in Table E.3.10-1 (hex case-insensitive,
//!      creator exact after trimming spaces); otherwise removed ([`Code::X`],
//!      [`Source::PrivateUnsafe`]);
//!    - an element without a creator (orphan), or in a range a creator cannot reserve, is removed.
//! 4. **Table E.1-1 row** of the tag (exact tag, else the repeating groups `50xx,xxxx`,
//!    `60xx,3000`, `60xx,4000`): the code of an option in use whose column has a code for the
//!    row ([`Source::Option`]), else the Basic Profile code ([`Source::Table`]). When two
//!    options in use disagree (Retain Device Identity `K` against Retain Longitudinal Modified
//!    Dates `C` on device calibration date-times), the more protective `C` wins. Retain UIDs
//!    turns the `U` rows into `K` this way.
//! 5. **Unlisted attributes** (PS3.15 E.1 Note 4: the table is a minimum):
//!    - VR DA, DT or TM: handled like Content Date (0008,0023): `Z/D`, or `K` with Retain
//!      Longitudinal Full Dates, or `C` with Retain Longitudinal Modified Dates
//!      ([`Source::UnlistedDate`]);
//!    - VR UI: remapped (`U`) unless the UID names a *kind* of thing rather than an instance
//!      (SOP classes, transfer syntaxes, coding schemes…, see [`is_kind_uid`]) or Retain UIDs is
//!      in use, then kept ([`Source::UnlistedUid`]);
//!    - anything else: the profile's `unlisted` policy: `keep` (`K`) or `remove` (`X`)
//!      ([`Source::Unlisted`]). Dates and UIDs follow the two rules above in both modes.
//!
//! The code is then turned into one [`Action`] by [`Code::action`]. The IOD type of the
//! attribute is not known, so a combined code takes the value that is valid whatever type the
//! attribute has in any IOD and carries no information: `D`→Dummy, `Z`→Empty, `X`→Remove,
//! `K`→Keep (KeepRecurse for a sequence), `C`→Clean, `U`→Uid, `Z/D`, `X/D`, `X/Z/D`→Dummy,
//! `X/Z`→Empty, `X/Z/U*`→KeepRecurse for a sequence (the references are kept and their UIDs
//! remapped inside), else Empty.
//!
//! # Profiles
//!
//! A profile is TOML (see `profiles/*.toml`):
//!
//! ```toml
//! name = "research"
//! description = "…"
//! version = "1"
//! options = ["retain-long-modified-dates", "clean-descriptors"]
//! unlisted = "keep"            # or "remove" (allow-list mode)
//! [date_shift]
//! min_days = -3650
//! max_days = -365
//! [[override]]
//! keyword = "PatientAge"       # or tag = "0010,1010" | tag = "60xx,3000"
//!                              # | private = { creator = "…", element = "10", group = "0029" }
//!                              # | path = "ReferencedStudySequence/ReferencedSOPInstanceUID"
//! action = "K"                 # any code of Table E.1-1a
//! ```
//!
//! [`Profile::from_toml`] reports every problem of a file at once, each as `FILE:LINE: reason`.

mod code;
mod dict;
mod error;
mod load;
mod option;
pub mod pixel;
mod profile;
#[rustfmt::skip]
mod ps315_generated;
mod table;

pub use code::{Action, Code, ParseCodeError};
pub use dict::{is_kind_uid, is_kind_uid_keyword, keyword_to_tag, tag_keyword};
pub use error::{Problem, ProblemKind, ProfileError};
pub use option::{cid_meaning, DeidOption, ParseOptionError};
pub use pixel::{DetectionMode, PixelConfig, RegionRule};
pub use profile::{
    DateShift, EffectiveRow, ElementCtx, Longitudinal, Profile, Resolved, Rule, Selector, Source,
    Unlisted,
};
pub use ps315_generated::{CID_7050, EDITION, SAFE_PRIVATE, TABLE_E1_1};
pub use table::{
    has_safe_private, is_safe_private, parse_tag, CidCode, ParseTagError, SafePrivateRow, TableRow,
    TagPattern,
};

/// A DICOM tag: `(group << 16) | element`.
pub type Tag = u32;

/// The shipped profiles: (name, TOML text).
const BUILTINS: [(&str, &str); 3] = [
    ("basic", include_str!("../../../profiles/basic.toml")),
    ("research", include_str!("../../../profiles/research.toml")),
    (
        "ai-dataset",
        include_str!("../../../profiles/ai-dataset.toml"),
    ),
];

const BUILTIN_NAMES: [&str; 3] = [BUILTINS[0].0, BUILTINS[1].0, BUILTINS[2].0];

impl Profile {
    /// A shipped profile by name (see [`Profile::builtin_names`]).
    pub fn builtin(name: &str) -> Option<Profile> {
        let (name, text) = BUILTINS.iter().find(|(n, _)| *n == name)?;
        let origin = format!("profiles/{name}.toml");
        Some(Profile::from_toml(text, &origin).expect("shipped profiles are valid"))
    }

    /// The names of the shipped profiles.
    pub fn builtin_names() -> &'static [&'static str] {
        &BUILTIN_NAMES
    }

    /// Parses and checks a TOML profile; `origin` (the file path) prefixes every message.
    pub fn from_toml(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        load::parse(text, origin)
    }

    /// Loads a profile file if `name_or_path` is an existing file, else a shipped profile.
    pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
        let path = std::path::Path::new(name_or_path);
        if path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
                origin: name_or_path.to_string(),
                source,
            })?;
            return Profile::from_toml(&text, name_or_path);
        }
        Profile::builtin(name_or_path).ok_or_else(|| ProfileError::Unknown {
            name: name_or_path.to_string(),
            builtins: BUILTIN_NAMES.join(", "),
        })
    }
}
