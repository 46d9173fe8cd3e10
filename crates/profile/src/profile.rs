//! The compiled profile and the resolution of one element to one action.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::OnceLock;

use crate::code::{Action, Code};
use crate::dict;
use crate::option::{cid_meaning, DeidOption};
use crate::ps315_generated::{EDITION, TABLE_E1_1};
use crate::table::{has_safe_private, is_safe_private, trim_creator, TagPattern};
use crate::Tag;

/// What to do with an attribute that neither Table E.1-1 nor an override names (and that is
/// not a date, time or UID, which are handled by VR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unlisted {
    /// Keep it (Table E.1-1 is a minimum: everything not listed is kept).
    #[default]
    Keep,
    /// Remove it (allow-list mode: only what the table or an override keeps survives).
    Remove,
}

/// Longitudinal Temporal Information Modified (0028,0303) for instances made with a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Longitudinal {
    /// `REMOVED`: neither longitudinal option is used.
    Removed,
    /// `UNMODIFIED`: Retain Longitudinal Temporal Information Full Dates.
    Unmodified,
    /// `MODIFIED`: Retain Longitudinal Temporal Information Modified Dates.
    Modified,
}

impl Longitudinal {
    /// The defined term for (0028,0303).
    pub const fn as_str(self) -> &'static str {
        match self {
            Longitudinal::Removed => "REMOVED",
            Longitudinal::Unmodified => "UNMODIFIED",
            Longitudinal::Modified => "MODIFIED",
        }
    }
}

/// The range of the per-patient date shift, in days (both ends included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateShift {
    /// Smallest shift.
    pub min_days: i32,
    /// Largest shift.
    pub max_days: i32,
}

impl Default for DateShift {
    /// 1 to 10 years back: -3650..=-365.
    fn default() -> Self {
        DateShift {
            min_days: -3650,
            max_days: -365,
        }
    }
}

/// Why an element gets its action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The Basic Profile column of Table E.1-1, row index into [`TABLE_E1_1`](crate::TABLE_E1_1).
    Table {
        /// Row index.
        row: usize,
    },
    /// The column of an option in use.
    Option(DeidOption),
    /// A profile override at this line of the profile file.
    Override {
        /// 1-based line.
        line: usize,
    },
    /// Listed in Table E.3.10-1 (Retain Safe Private Option), or the creator of such a block.
    PrivateSafe,
    /// Private, not retained.
    PrivateUnsafe,
    /// A date or time not in the table, handled like Content Date (PS3.15 E.1 Note 4).
    UnlistedDate,
    /// A UID not in the table.
    UnlistedUid,
    /// Not in the table; the profile's `unlisted` policy.
    Unlisted,
    /// A group length element (gggg,0000).
    GroupLength,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Table { .. } => f.write_str("basic profile"),
            Source::Option(o) => write!(f, "option {o}"),
            Source::Override { line } => write!(f, "override at line {line}"),
            Source::PrivateSafe => f.write_str("safe private (E.3.10-1)"),
            Source::PrivateUnsafe => f.write_str("private"),
            Source::UnlistedDate => f.write_str("unlisted date/time"),
            Source::UnlistedUid => f.write_str("unlisted UID"),
            Source::Unlisted => f.write_str("unlisted"),
            Source::GroupLength => f.write_str("group length"),
        }
    }
}

/// The outcome of [`Profile::resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The effective Table E.1-1a code.
    pub code: Code,
    /// The one action scrub takes.
    pub action: Action,
    /// Why.
    pub source: Source,
}

/// One element as scrub meets it.
#[derive(Debug, Clone, Copy)]
pub struct ElementCtx<'a> {
    /// `(group << 16) | element`.
    pub tag: Tag,
    /// The element's VR, e.g. `*b"SQ"`.
    pub vr: [u8; 2],
    /// For an odd group: the trimmed Private Creator value of the element's block (for a
    /// creator element, its own value).
    pub private_creator: Option<&'a str>,
    /// Tags of the enclosing sequences, outermost first; empty at top level.
    pub path: &'a [Tag],
}

/// What an override selects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    /// One tag, written as a tag or a keyword.
    Tag(Tag),
    /// A tag with open digits (`60xx,3000`).
    Mask(TagPattern),
    /// An element of a private block.
    Private {
        /// The Private Creator value (trimmed).
        creator: String,
        /// The odd group; any group when `None`.
        group: Option<u16>,
        /// The low byte of the element (offset in the block).
        element: u8,
    },
    /// An element at an exact sequence path from the top level, the element's own tag last.
    Path(Vec<Tag>),
}

fn tag_text(tag: Tag) -> String {
    TagPattern::Exact(tag).to_string()
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Tag(t) => f.write_str(&tag_text(*t)),
            Selector::Mask(p) => write!(f, "{p}"),
            Selector::Private {
                creator,
                group: Some(g),
                element,
            } => write!(f, "{g:04X},xx{element:02X} \"{creator}\""),
            Selector::Private {
                creator,
                group: None,
                element,
            } => write!(f, "gggg,xx{element:02X} \"{creator}\""),
            Selector::Path(tags) => {
                let parts: Vec<String> = tags
                    .iter()
                    .map(|&t| dict::tag_keyword(t).map_or_else(|| tag_text(t), str::to_string))
                    .collect();
                f.write_str(&parts.join("/"))
            }
        }
    }
}

/// One compiled override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// What it selects.
    pub selector: Selector,
    /// The code it applies.
    pub code: Code,
    /// Its line in the profile file.
    pub line: usize,
}

#[derive(Debug, Clone, Copy)]
struct Hit {
    code: Code,
    line: usize,
}

#[derive(Debug, Clone, Copy)]
struct PrivateHit {
    group: Option<u16>,
    element: u8,
    hit: Hit,
}

/// The enclosing sequence tags of a path rule, and its hit.
type PathHit = (Box<[Tag]>, Hit);

/// Overrides indexed for [`Profile::resolve`].
#[derive(Debug, Clone, Default)]
struct Overrides {
    rules: Vec<Rule>,
    /// Last tag of the path → (enclosing sequence tags, hit).
    by_path: HashMap<Tag, Vec<PathHit>>,
    /// Trimmed creator → rules for its elements.
    by_private: HashMap<String, Vec<PrivateHit>>,
    by_tag: HashMap<Tag, Hit>,
    /// Most specific (most fixed bits) first.
    masks: Vec<(TagPattern, Hit)>,
}

impl Overrides {
    fn new(rules: Vec<Rule>) -> Self {
        let mut o = Overrides::default();
        for r in &rules {
            let hit = Hit {
                code: r.code,
                line: r.line,
            };
            match &r.selector {
                Selector::Path(tags) => {
                    let (last, enclosing) = tags.split_last().expect("a path has a tag");
                    o.by_path
                        .entry(*last)
                        .or_default()
                        .push((enclosing.into(), hit));
                }
                Selector::Private {
                    creator,
                    group,
                    element,
                } => {
                    let list = o.by_private.entry(creator.clone()).or_default();
                    list.push(PrivateHit {
                        group: *group,
                        element: *element,
                        hit,
                    });
                    // A rule for one group beats a rule for any group.
                    list.sort_by_key(|p| p.group.is_none());
                }
                Selector::Tag(t) => {
                    o.by_tag.insert(*t, hit);
                }
                Selector::Mask(p) => o.masks.push((*p, hit)),
            }
        }
        o.masks.sort_by_key(|(p, _)| match p {
            TagPattern::Mask { mask, .. } => std::cmp::Reverse(mask.count_ones()),
            _ => std::cmp::Reverse(32),
        });
        o.rules = rules;
        o
    }

    fn find(&self, ctx: &ElementCtx) -> Option<Hit> {
        if let Some(list) = self.by_path.get(&ctx.tag) {
            if let Some((_, hit)) = list.iter().find(|(p, _)| **p == *ctx.path) {
                return Some(*hit);
            }
        }
        let group = (ctx.tag >> 16) as u16;
        let element = ctx.tag as u16;
        if group & 1 == 1 && element >= 0x1000 {
            if let Some(creator) = ctx.private_creator {
                if let Some(hit) = self.private(group, creator, element as u8) {
                    return Some(hit);
                }
            }
        }
        if let Some(hit) = self.by_tag.get(&ctx.tag) {
            return Some(*hit);
        }
        self.masks
            .iter()
            .find(|(p, _)| p.matches(ctx.tag))
            .map(|(_, hit)| *hit)
    }

    fn private(&self, group: u16, creator: &str, element: u8) -> Option<Hit> {
        self.by_private
            .get(trim_creator(creator))?
            .iter()
            .find(|p| p.element == element && p.group.is_none_or(|g| g == group))
            .map(|p| p.hit)
    }

    /// A rule that keeps something in the block of `creator` in `group` (so its creator
    /// element must be kept too).
    fn keeps_in_block(&self, group: u16, creator: &str) -> Option<Hit> {
        self.by_private
            .get(trim_creator(creator))?
            .iter()
            .find(|p| p.hit.code != Code::X && p.group.is_none_or(|g| g == group))
            .map(|p| p.hit)
    }
}

/// The effective code of one Table E.1-1 row under a set of options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RowEffect {
    code: Code,
    source: Source,
}

/// Row index by exact tag, and the indices of the masked rows.
struct RowIndex {
    exact: HashMap<Tag, usize>,
    masked: Vec<usize>,
    content_date: usize,
}

fn row_index() -> &'static RowIndex {
    static INDEX: OnceLock<RowIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut exact = HashMap::with_capacity(TABLE_E1_1.len());
        let mut masked = Vec::new();
        for (i, row) in TABLE_E1_1.iter().enumerate() {
            match row.pattern {
                TagPattern::Exact(t) => {
                    exact.insert(t, i);
                }
                TagPattern::Mask { .. } => masked.push(i),
                TagPattern::AnyPrivate => {}
            }
        }
        let content_date = exact[&0x0008_0023];
        RowIndex {
            exact,
            masked,
            content_date,
        }
    })
}

fn row_effects(options: &BTreeSet<DeidOption>) -> Vec<RowEffect> {
    TABLE_E1_1
        .iter()
        .enumerate()
        .map(|(row, r)| {
            let mut effect = RowEffect {
                code: r.basic,
                source: Source::Table { row },
            };
            let mut from_option: Option<(Code, DeidOption)> = None;
            for &o in options {
                if let Some(code) = r.options[o.column()] {
                    from_option = match from_option {
                        // Two options disagree (only K vs C occurs): the more protective C wins.
                        Some((Code::C, _)) => from_option,
                        _ => Some((code, o)),
                    };
                }
            }
            if let Some((code, o)) = from_option {
                effect = RowEffect {
                    code,
                    source: Source::Option(o),
                };
            }
            effect
        })
        .collect()
}

/// One line of `dicom-deid profile show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveRow {
    /// Tag, tag pattern or override selector as text.
    pub pattern: String,
    /// The table's name, or the selector's description for an override.
    pub name: String,
    /// The Basic Profile code (`None` for an override of an attribute the table does not list).
    pub basic: Option<Code>,
    /// The effective code.
    pub code: Code,
    /// The action (sequence or not taken from the dictionary).
    pub action: Action,
    /// Why.
    pub source: Source,
}

/// A compiled de-identification profile. See the crate docs for how it resolves an element.
#[derive(Debug, Clone)]
pub struct Profile {
    name: String,
    description: String,
    version: String,
    options: BTreeSet<DeidOption>,
    unlisted: Unlisted,
    date_shift: DateShift,
    rows: Vec<RowEffect>,
    overrides: Overrides,
    pixel: crate::pixel::PixelConfig,
}

const fn resolved(code: Code, is_sequence: bool, source: Source) -> Resolved {
    Resolved {
        code,
        action: code.action(is_sequence),
        source,
    }
}

impl Profile {
    /// Builds a profile from checked parts.
    pub(crate) fn new(
        name: String,
        description: String,
        version: String,
        options: BTreeSet<DeidOption>,
        unlisted: Unlisted,
        date_shift: DateShift,
        rules: Vec<Rule>,
    ) -> Profile {
        let rows = row_effects(&options);
        Profile {
            name,
            description,
            version,
            options,
            unlisted,
            date_shift,
            rows,
            overrides: Overrides::new(rules),
            pixel: crate::pixel::PixelConfig::default(),
        }
    }

    /// The same profile with this `[pixel]` section.
    pub(crate) fn with_pixel(mut self, pixel: crate::pixel::PixelConfig) -> Profile {
        self.pixel = pixel;
        self
    }

    /// The `[pixel]` section: detection mode, padding, region rules.
    pub fn pixel(&self) -> &crate::pixel::PixelConfig {
        &self.pixel
    }

    /// The profile's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The profile's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The profile's description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether the option is in use.
    pub fn has(&self, o: DeidOption) -> bool {
        self.options.contains(&o)
    }

    /// The options in use, in column order.
    pub fn options(&self) -> impl Iterator<Item = DeidOption> + '_ {
        self.options.iter().copied()
    }

    /// The compiled overrides, in file order.
    pub fn overrides(&self) -> &[Rule] {
        &self.overrides.rules
    }

    /// The policy for attributes nobody lists.
    pub fn unlisted(&self) -> Unlisted {
        self.unlisted
    }

    /// The range of the per-patient date shift.
    pub fn date_shift(&self) -> DateShift {
        self.date_shift
    }

    /// Longitudinal Temporal Information Modified (0028,0303).
    pub fn longitudinal(&self) -> Longitudinal {
        if self.has(DeidOption::RetainLongFullDates) {
            Longitudinal::Unmodified
        } else if self.has(DeidOption::RetainLongModifiedDates) {
            Longitudinal::Modified
        } else {
            Longitudinal::Removed
        }
    }

    /// De-identification Method Code Sequence (0012,0064) content: (code value, meaning) in
    /// CID 7050, scheme DCM. 113100 first, then each option in use in code-value order.
    pub fn method_codes(&self) -> Vec<(&'static str, &'static str)> {
        let mut options: Vec<(&'static str, &'static str)> = self
            .options()
            .map(|o| (o.cid_code(), o.meaning()))
            .collect();
        options.sort_unstable();
        let basic = (
            "113100",
            cid_meaning("113100").expect("113100 is in CID 7050"),
        );
        std::iter::once(basic).chain(options).collect()
    }

    /// De-identification Method (0012,0063), at most 64 characters (LO), e.g.
    /// `dicom-deid basic v1 (PS3.15 2026d)`.
    pub fn method_text(&self) -> String {
        let text = format!(
            "dicom-deid {} v{} (PS3.15 {EDITION})",
            self.name, self.version
        );
        match text.char_indices().nth(64) {
            Some((end, _)) => text[..end].to_string(),
            None => text,
        }
    }

    /// The action for one element. See the crate docs for the rule. Does not allocate.
    pub fn resolve(&self, ctx: &ElementCtx) -> Resolved {
        let group = (ctx.tag >> 16) as u16;
        let element = ctx.tag as u16;
        let is_sequence = ctx.vr == *b"SQ";

        if element == 0 {
            return resolved(Code::X, false, Source::GroupLength);
        }
        if let Some(hit) = self.overrides.find(ctx) {
            return resolved(hit.code, is_sequence, Source::Override { line: hit.line });
        }
        if group & 1 == 1 {
            return self.resolve_private(ctx, group, element, is_sequence);
        }
        let index = row_index();
        let row = index.exact.get(&ctx.tag).copied().or_else(|| {
            index
                .masked
                .iter()
                .copied()
                .find(|&i| TABLE_E1_1[i].pattern.matches(ctx.tag))
        });
        if let Some(row) = row {
            let effect = self.rows[row];
            return resolved(effect.code, is_sequence, effect.source);
        }
        self.resolve_unlisted(ctx, is_sequence)
    }

    fn resolve_private(
        &self,
        ctx: &ElementCtx,
        group: u16,
        element: u16,
        is_sequence: bool,
    ) -> Resolved {
        let unsafe_ = resolved(Code::X, false, Source::PrivateUnsafe);
        let safe = Resolved {
            code: Code::C,
            action: if is_sequence {
                Action::KeepRecurse
            } else {
                Action::Keep
            },
            source: Source::PrivateSafe,
        };
        let retain = self.has(DeidOption::RetainSafePrivate);
        let Some(creator) = ctx.private_creator else {
            return unsafe_;
        };
        match element {
            0x0010..=0x00FF => {
                if retain && has_safe_private(group, creator) {
                    Resolved {
                        action: Action::Keep,
                        ..safe
                    }
                } else if let Some(hit) = self.overrides.keeps_in_block(group, creator) {
                    Resolved {
                        code: Code::K,
                        action: Action::Keep,
                        source: Source::Override { line: hit.line },
                    }
                } else {
                    unsafe_
                }
            }
            0x1000..=0xFFFF if retain && is_safe_private(group, creator, element as u8) => safe,
            _ => unsafe_,
        }
    }

    fn resolve_unlisted(&self, ctx: &ElementCtx, is_sequence: bool) -> Resolved {
        match &ctx.vr {
            b"DA" | b"DT" | b"TM" => {
                let code = self.rows[row_index().content_date].code;
                resolved(code, is_sequence, Source::UnlistedDate)
            }
            b"UI" if dict::is_kind_uid(ctx.tag) || self.has(DeidOption::RetainUids) => {
                resolved(Code::K, false, Source::UnlistedUid)
            }
            b"UI" => resolved(Code::U, false, Source::UnlistedUid),
            _ => match self.unlisted {
                Unlisted::Keep => resolved(Code::K, is_sequence, Source::Unlisted),
                Unlisted::Remove => resolved(Code::X, is_sequence, Source::Unlisted),
            },
        }
    }

    /// For `profile show`: one row per Table E.1-1 row (tag and mask overrides applied), then
    /// one row per override.
    pub fn effective_table(&self) -> Vec<EffectiveRow> {
        let mut out = Vec::with_capacity(TABLE_E1_1.len() + self.overrides.rules.len());
        for (i, row) in TABLE_E1_1.iter().enumerate() {
            let is_sequence = row_is_sequence(row.pattern, row.name);
            let mut effect = self.rows[i];
            let hit = match row.pattern {
                TagPattern::Exact(t) => self.overrides.by_tag.get(&t).copied(),
                pattern => self
                    .overrides
                    .rules
                    .iter()
                    .find(|r| r.selector == Selector::Mask(pattern))
                    .map(|r| Hit {
                        code: r.code,
                        line: r.line,
                    }),
            };
            if let Some(hit) = hit {
                effect = RowEffect {
                    code: hit.code,
                    source: Source::Override { line: hit.line },
                };
            }
            let action = match (row.pattern, effect.source) {
                // Private attributes: the option keeps the listed safe elements as they are.
                (TagPattern::AnyPrivate, Source::Option(_)) => Action::Keep,
                _ => effect.code.action(is_sequence),
            };
            out.push(EffectiveRow {
                pattern: row.pattern.to_string(),
                name: row.name.to_string(),
                basic: Some(row.basic),
                code: effect.code,
                action,
                source: effect.source,
            });
        }
        for rule in &self.overrides.rules {
            let last = match &rule.selector {
                Selector::Tag(t) => Some(*t),
                Selector::Path(p) => p.last().copied(),
                _ => None,
            };
            let basic = last
                .and_then(|t| row_index().exact.get(&t))
                .map(|&i| TABLE_E1_1[i].basic);
            let name = match &rule.selector {
                Selector::Tag(t) => dict::tag_keyword(*t).unwrap_or("").to_string(),
                Selector::Mask(_) => "tag mask".to_string(),
                Selector::Private { .. } => "private element".to_string(),
                Selector::Path(_) => "sequence path".to_string(),
            };
            out.push(EffectiveRow {
                pattern: rule.selector.to_string(),
                name,
                basic,
                code: rule.code,
                action: rule.code.action(last.is_some_and(dict::is_sequence_tag)),
                source: Source::Override { line: rule.line },
            });
        }
        out
    }
}

fn row_is_sequence(pattern: TagPattern, name: &str) -> bool {
    match pattern {
        TagPattern::Exact(t) => dict::is_sequence_tag(t) || name.contains("Sequence"),
        _ => false,
    }
}
