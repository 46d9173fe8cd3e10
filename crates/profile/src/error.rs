//! Errors of loading and checking a profile.

use std::fmt;

use snafu::Snafu;

/// A profile could not be loaded. Messages name files, lines and profile text, never DICOM data.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
pub enum ProfileError {
    /// {origin}: cannot read the profile file
    Read {
        /// The file path.
        origin: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// unknown profile `{name}`: no such file, and not a built-in profile (built-in: {builtins})
    Unknown {
        /// What was asked for.
        name: String,
        /// The built-in names, comma separated.
        builtins: String,
    },
    /// The file has problems; displayed as one `FILE:LINE: reason` line per problem.
    #[snafu(display("{}", render(origin, problems)))]
    Invalid {
        /// The file path (or `profiles/NAME.toml` for a built-in).
        origin: String,
        /// Every problem found, in line order.
        problems: Vec<Problem>,
    },
}

impl ProfileError {
    /// The problems of an invalid profile (empty for other errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ProfileError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

fn render(origin: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{origin}:{}: {}", p.line, p.kind))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One problem in a profile file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the file.
    pub line: usize,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.kind)
    }
}

/// What is wrong with a line of a profile file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not valid TOML.
    Syntax(String),
    /// A field the profile format does not have.
    UnknownField(String),
    /// A value of the wrong type, a missing field, or a similar structural problem.
    Invalid(String),
    /// A keyword the DICOM dictionary does not know.
    UnknownKeyword(String),
    /// An option name that is not one of the options.
    UnknownOption(String),
    /// An action that is not a Table E.1-1a code.
    BadAction(String),
    /// A malformed tag, tag mask, private element or path.
    BadTag {
        /// The text as written.
        text: String,
        /// Why it is not accepted.
        reason: &'static str,
    },
    /// An override with no selector or more than one.
    SelectorCount {
        /// The selectors present.
        found: Vec<&'static str>,
    },
    /// Another override has the same selector and a different action.
    Conflict {
        /// The line of the other rule.
        line: usize,
    },
    /// retain-long-full-dates and retain-long-modified-dates are alternatives.
    ExclusiveDateOptions,
    /// The date shift range is empty.
    DateShiftOrder {
        /// min_days as written.
        min: i32,
        /// max_days as written.
        max: i32,
    },
    /// The date shift range includes 0, which would leave some patients' dates real.
    DateShiftZero,
    /// `unlisted` is neither `keep` nor `remove`.
    BadUnlisted(String),
    /// The name or version is not usable in DeidentificationMethod.
    BadName {
        /// The field (`name` or `version`).
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::Syntax(m) => write!(f, "TOML syntax: {m}"),
            ProblemKind::UnknownField(m) => write!(f, "{m}"),
            ProblemKind::Invalid(m) => write!(f, "{m}"),
            ProblemKind::UnknownKeyword(k) => {
                write!(
                    f,
                    "unknown keyword `{k}` (not in the DICOM data dictionary)"
                )
            }
            ProblemKind::UnknownOption(o) => write!(
                f,
                "unknown option `{o}` (options: {})",
                crate::DeidOption::ALL.map(|o| o.name()).join(", ")
            ),
            ProblemKind::BadAction(a) => write!(
                f,
                "bad action `{a}` (expected one of D Z X K C U Z/D X/Z X/D X/Z/D X/Z/U*)"
            ),
            ProblemKind::BadTag { text, reason } => write!(f, "bad tag `{text}`: {reason}"),
            ProblemKind::SelectorCount { found } if found.is_empty() => write!(
                f,
                "override needs exactly one of tag, keyword, private, path; found none"
            ),
            ProblemKind::SelectorCount { found } => write!(
                f,
                "override needs exactly one of tag, keyword, private, path; found {}",
                found.join(" and ")
            ),
            ProblemKind::Conflict { line } => write!(
                f,
                "override conflicts with the rule at line {line} (same selector, different action)"
            ),
            ProblemKind::ExclusiveDateOptions => write!(
                f,
                "retain-long-full-dates and retain-long-modified-dates cannot be used together"
            ),
            ProblemKind::DateShiftOrder { min, max } => {
                write!(
                    f,
                    "date_shift: min_days ({min}) is greater than max_days ({max})"
                )
            }
            ProblemKind::DateShiftZero => write!(
                f,
                "date_shift: the range includes 0 days, which would keep some real dates"
            ),
            ProblemKind::BadUnlisted(v) => {
                write!(f, "unlisted must be \"keep\" or \"remove\", not `{v}`")
            }
            ProblemKind::BadName { field, reason } => write!(f, "{field}: {reason}"),
        }
    }
}
