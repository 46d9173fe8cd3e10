//! TOML profiles: raw (serde), then checked and compiled into a [`Profile`].
//!
//! Every problem of a file is collected, each with its line.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use crate::code::Code;
use crate::dict;
use crate::error::{Problem, ProblemKind, ProfileError};
use crate::option::DeidOption;
use crate::profile::{DateShift, Profile, Rule, Selector, Unlisted};
use crate::table::{trim_creator, TagPattern};
use crate::Tag;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: Spanned<String>,
    #[serde(default)]
    description: Option<Spanned<String>>,
    #[serde(default)]
    version: Option<Spanned<String>>,
    #[serde(default)]
    options: Vec<Spanned<String>>,
    #[serde(default)]
    unlisted: Option<Spanned<String>>,
    #[serde(default)]
    date_shift: Option<RawDateShift>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDateShift {
    min_days: Option<Spanned<i32>>,
    max_days: Option<Spanned<i32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    tag: Option<Spanned<String>>,
    keyword: Option<Spanned<String>>,
    private: Option<Spanned<RawPrivate>>,
    path: Option<Spanned<String>>,
    action: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrivate {
    creator: Spanned<String>,
    element: Spanned<String>,
    group: Option<Spanned<String>>,
}

/// Byte offset → 1-based line.
struct Lines<'a>(&'a str);

impl Lines<'_> {
    fn at(&self, offset: usize) -> usize {
        let end = offset.min(self.0.len());
        self.0.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn of(&self, span: Range<usize>) -> usize {
        self.at(span.start)
    }
}

struct Checker<'a> {
    lines: Lines<'a>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn push(&mut self, span: Range<usize>, kind: ProblemKind) {
        let line = self.lines.of(span);
        self.problems.push(Problem { line, kind });
    }

    fn serde(&mut self, e: toml::de::Error, fallback: Range<usize>) {
        let message = e.message().trim().to_string();
        let kind = if message.starts_with("unknown field") {
            ProblemKind::UnknownField(message)
        } else {
            ProblemKind::Invalid(message)
        };
        self.push(e.span().unwrap_or(fallback), kind);
    }
}

pub(crate) fn parse(text: &str, origin: &str) -> Result<Profile, ProfileError> {
    let mut c = Checker {
        lines: Lines(text),
        problems: Vec::new(),
    };
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            let message = e.message().trim().to_string();
            c.push(e.span().unwrap_or(0..0), ProblemKind::Syntax(message));
        }
        return Err(invalid(origin, c.problems));
    }
    let root_span = root.span();
    let mut root = root.into_inner();
    let overrides = root.remove("override");
    let pixel_section = root.remove("pixel");

    let raw = RawProfile::deserialize(toml::de::Deserializer::from(Spanned::new(
        root_span.clone(),
        root,
    )));
    let header = match raw {
        Ok(raw) => Some(check_header(&mut c, raw)),
        Err(e) => {
            c.serde(e, root_span);
            None
        }
    };
    let rules = overrides.map_or_else(Vec::new, |o| check_overrides(&mut c, o));
    let pixel = pixel_section
        .map(|p| check_pixel(&mut c, p))
        .unwrap_or_default();

    if !c.problems.is_empty() {
        return Err(invalid(origin, c.problems));
    }
    let h = header.expect("no problems, so the header parsed");
    Ok(Profile::new(
        h.name,
        h.description,
        h.version,
        h.options,
        h.unlisted,
        h.date_shift,
        rules,
    )
    .with_pixel(pixel))
}

fn check_pixel(c: &mut Checker, value: Spanned<DeValue>) -> crate::pixel::PixelConfig {
    let span = value.span();
    let raw = crate::pixel::RawPixel::deserialize(ValueDeserializer::from(value));
    match raw {
        Ok(raw) => {
            let mut found = Vec::new();
            let config = crate::pixel::check(
                raw,
                &mut |span, reason| found.push((span, reason)),
                &|span| c.lines.of(span),
            );
            for (span, reason) in found {
                c.push(span, ProblemKind::Invalid(reason));
            }
            config
        }
        Err(e) => {
            c.serde(e, span);
            crate::pixel::PixelConfig::default()
        }
    }
}

fn invalid(origin: &str, mut problems: Vec<Problem>) -> ProfileError {
    problems.sort_by_key(|p| p.line);
    ProfileError::Invalid {
        origin: origin.to_string(),
        problems,
    }
}

struct Header {
    name: String,
    description: String,
    version: String,
    options: BTreeSet<DeidOption>,
    unlisted: Unlisted,
    date_shift: DateShift,
}

/// Name and version go into DeidentificationMethod (LO, 64 characters, no backslash).
fn check_name(c: &mut Checker, field: &'static str, value: &Spanned<String>, max: usize) {
    let v = value.get_ref();
    let reason = if v.is_empty() {
        Some("must not be empty")
    } else if v.len() > max {
        Some("too long for De-identification Method (0012,0063), 64 characters in all")
    } else if !v
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
    {
        Some("use only letters, digits, '-', '_' and '.'")
    } else {
        None
    };
    if let Some(reason) = reason {
        c.push(value.span(), ProblemKind::BadName { field, reason });
    }
}

fn check_header(c: &mut Checker, raw: RawProfile) -> Header {
    // "dicom-deid NAME vVERSION (PS3.15 2026d)" must fit in 64 characters.
    check_name(c, "name", &raw.name, 24);
    let version = raw
        .version
        .unwrap_or_else(|| Spanned::new(0..0, "1".into()));
    check_name(c, "version", &version, 12);

    let mut options = BTreeSet::new();
    let mut dates: Option<&Spanned<String>> = None;
    for o in &raw.options {
        match o.get_ref().parse::<DeidOption>() {
            Ok(opt) => {
                if matches!(
                    opt,
                    DeidOption::RetainLongFullDates | DeidOption::RetainLongModifiedDates
                ) {
                    match dates {
                        Some(first) if first.get_ref() != o.get_ref() => {
                            c.push(o.span(), ProblemKind::ExclusiveDateOptions)
                        }
                        _ => dates = Some(o),
                    }
                }
                options.insert(opt);
            }
            Err(_) => c.push(o.span(), ProblemKind::UnknownOption(o.get_ref().clone())),
        }
    }

    let unlisted = match raw.unlisted.as_ref().map(|u| (u.get_ref().as_str(), u)) {
        None | Some(("keep", _)) => Unlisted::Keep,
        Some(("remove", _)) => Unlisted::Remove,
        Some((other, u)) => {
            c.push(u.span(), ProblemKind::BadUnlisted(other.to_string()));
            Unlisted::Keep
        }
    };

    let mut date_shift = DateShift::default();
    if let Some(ds) = raw.date_shift {
        let min = ds.min_days.as_ref();
        let max = ds.max_days.as_ref();
        if let Some(m) = min {
            date_shift.min_days = *m.get_ref();
        }
        if let Some(m) = max {
            date_shift.max_days = *m.get_ref();
        }
        let span = min.or(max).map_or(0..0, |s| s.span());
        if date_shift.min_days > date_shift.max_days {
            c.push(
                span,
                ProblemKind::DateShiftOrder {
                    min: date_shift.min_days,
                    max: date_shift.max_days,
                },
            );
        } else if date_shift.min_days <= 0 && date_shift.max_days >= 0 {
            c.push(span, ProblemKind::DateShiftZero);
        }
    }

    Header {
        name: raw.name.into_inner(),
        description: raw.description.map(Spanned::into_inner).unwrap_or_default(),
        version: version.into_inner(),
        options,
        unlisted,
        date_shift,
    }
}

fn check_overrides(c: &mut Checker, value: Spanned<DeValue>) -> Vec<Rule> {
    let span = value.span();
    let items = match value.into_inner() {
        DeValue::Array(items) => items,
        _ => {
            c.push(
                span,
                ProblemKind::Invalid(
                    "`override` must be an array of tables: write each as [[override]]".into(),
                ),
            );
            return Vec::new();
        }
    };
    let mut rules: Vec<Rule> = Vec::new();
    let mut seen: HashMap<Selector, (Code, usize)> = HashMap::new();
    for item in items {
        let item_span = item.span();
        let raw = match RawOverride::deserialize(ValueDeserializer::from(item)) {
            Ok(raw) => raw,
            Err(e) => {
                c.serde(e, item_span);
                continue;
            }
        };
        let code = match raw.action.get_ref().parse::<Code>() {
            Ok(code) => Some(code),
            Err(_) => {
                c.push(
                    raw.action.span(),
                    ProblemKind::BadAction(raw.action.get_ref().clone()),
                );
                None
            }
        };
        let selector = check_selector(c, &raw, item_span);
        let (Some(selector), Some(code)) = (selector, code) else {
            continue;
        };
        let (selector, rule_line) = selector;
        match seen.get(&selector) {
            Some(&(other, other_line)) if other != code => c.problems.push(Problem {
                line: rule_line,
                kind: ProblemKind::Conflict { line: other_line },
            }),
            Some(_) => {}
            None => {
                seen.insert(selector.clone(), (code, rule_line));
                rules.push(Rule {
                    selector,
                    code,
                    line: rule_line,
                });
            }
        }
    }
    rules
}

/// The selector of an override and the line it is written on.
fn check_selector(
    c: &mut Checker,
    raw: &RawOverride,
    item_span: Range<usize>,
) -> Option<(Selector, usize)> {
    let mut present: Vec<(&'static str, Range<usize>)> = Vec::new();
    if let Some(t) = &raw.tag {
        present.push(("tag", t.span()));
    }
    if let Some(k) = &raw.keyword {
        present.push(("keyword", k.span()));
    }
    if let Some(p) = &raw.private {
        present.push(("private", p.span()));
    }
    if let Some(p) = &raw.path {
        present.push(("path", p.span()));
    }
    present.sort_by_key(|(_, s)| s.start);
    match present.len() {
        0 => {
            c.push(item_span, ProblemKind::SelectorCount { found: Vec::new() });
            return None;
        }
        1 => {}
        _ => {
            let found = present.iter().map(|(n, _)| *n).collect();
            c.push(present[1].1.clone(), ProblemKind::SelectorCount { found });
            return None;
        }
    }
    let line = c.lines.of(present[0].1.clone());
    let selector = if let Some(t) = &raw.tag {
        check_tag(c, t)?
    } else if let Some(k) = &raw.keyword {
        check_keyword(c, k)?
    } else if let Some(p) = &raw.private {
        check_private(c, p.get_ref())?
    } else if let Some(p) = &raw.path {
        check_path(c, p)?
    } else {
        unreachable!("one selector is present")
    };
    Some((selector, line))
}

fn bad_tag(c: &mut Checker, s: &Spanned<String>, reason: &'static str) -> Option<Selector> {
    c.push(
        s.span(),
        ProblemKind::BadTag {
            text: s.get_ref().clone(),
            reason,
        },
    );
    None
}

fn check_tag(c: &mut Checker, t: &Spanned<String>) -> Option<Selector> {
    match t.get_ref().parse::<TagPattern>() {
        Ok(TagPattern::Exact(tag)) if tag & 0xFFFF == 0 => {
            bad_tag(c, t, "group length elements are always removed")
        }
        Ok(TagPattern::Exact(tag)) => Some(Selector::Tag(tag)),
        Ok(p @ TagPattern::Mask { .. }) => Some(Selector::Mask(p)),
        Ok(TagPattern::AnyPrivate) => bad_tag(
            c,
            t,
            "select private elements with private = { creator = \"…\", element = \"EE\" }",
        ),
        Err(_) => bad_tag(
            c,
            t,
            "expected GGGG,EEEE in hex, x for an open digit (e.g. 0010,0010 or 60xx,3000)",
        ),
    }
}

fn check_keyword(c: &mut Checker, k: &Spanned<String>) -> Option<Selector> {
    match dict::keyword_range(k.get_ref()) {
        Some((tag, 0xFFFF_FFFF)) => Some(Selector::Tag(tag)),
        Some((value, mask)) => Some(Selector::Mask(TagPattern::Mask { value, mask })),
        None => {
            c.push(k.span(), ProblemKind::UnknownKeyword(k.get_ref().clone()));
            None
        }
    }
}

fn check_private(c: &mut Checker, p: &RawPrivate) -> Option<Selector> {
    let mut ok = true;
    let creator = trim_creator(p.creator.get_ref()).to_string();
    if creator.is_empty() {
        bad_tag(c, &p.creator, "the private creator must not be empty");
        ok = false;
    }
    let e = p.element.get_ref();
    let e = e
        .strip_prefix("xx")
        .or_else(|| e.strip_prefix("XX"))
        .unwrap_or(e);
    let element = match u8::from_str_radix(e, 16) {
        Ok(v) if e.len() == 2 => Some(v),
        _ => {
            bad_tag(
                c,
                &p.element,
                "expected the element's offset in its block: two hex digits, e.g. \"10\" for xx10",
            );
            None
        }
    };
    let group = match &p.group {
        None => Some(None),
        Some(g) => match u16::from_str_radix(g.get_ref(), 16) {
            Ok(v) if g.get_ref().len() == 4 && v & 1 == 1 => Some(Some(v)),
            _ => {
                bad_tag(
                    c,
                    g,
                    "expected an odd (private) group: four hex digits, e.g. \"0029\"",
                );
                None
            }
        },
    };
    match (ok, element, group) {
        (true, Some(element), Some(group)) => Some(Selector::Private {
            creator,
            group,
            element,
        }),
        _ => None,
    }
}

fn check_path(c: &mut Checker, p: &Spanned<String>) -> Option<Selector> {
    let mut tags: Vec<Tag> = Vec::new();
    for part in p.get_ref().split('/') {
        let part = part.trim();
        let tag = if part.contains(',') {
            match part.parse::<TagPattern>() {
                Ok(TagPattern::Exact(t)) if t & 0xFFFF != 0 => Some(t),
                _ => None,
            }
        } else {
            dict::keyword_to_tag(part)
        };
        match tag {
            Some(t) => tags.push(t),
            None if part.contains(',') || part.is_empty() => {
                return bad_tag(
                    c,
                    p,
                    "each step of a path is a keyword or an exact GGGG,EEEE, separated by /",
                );
            }
            None => {
                c.push(p.span(), ProblemKind::UnknownKeyword(part.to_string()));
                return None;
            }
        }
    }
    Some(Selector::Path(tags))
}
