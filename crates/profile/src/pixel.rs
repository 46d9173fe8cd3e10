//! The `[pixel]` section of a profile: when burned-in text detection runs, how much the
//! masks are padded, and region rules (device signatures → rectangles to blank). Plain
//! data; `dicom-deid-pixel` applies it.
//!
//! ```toml
//! [pixel]
//! detection = "usual"          # always | usual | never
//! padding = 3                  # pixels added on every side of each box
//! ultrasound_regions = false   # blank everything outside SequenceOfUltrasoundRegions (US)
//! [[pixel.region]]
//! id = "philips-iu22-600"      # reported as rule:<id>
//! modality = "US"              # exact, case-insensitive
//! manufacturer = "Philips"     # contained, case-insensitive
//! model = "iU22"               # ManufacturerModelName contained, case-insensitive
//! sop_class = "1.2.840.10008.5.1.4.1.1.6.1"
//! rows = 600
//! columns = 800
//! rects = [[0, 0, 800, 59]]    # x, y, width, height
//! ```

use serde::Deserialize;
use toml::Spanned;

/// When automatic text detection runs on an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DetectionMode {
    /// On every instance with pixel data.
    Always,
    /// On instances where burned-in text is usual, decided from the header alone:
    /// BurnedInAnnotation YES; a modality of [`USUAL_MODALITIES`]; a SOP class of
    /// [`USUAL_SOP_CLASSES`] (secondary capture, ultrasound, angiography and fluoroscopy,
    /// visible light), whatever the Modality says; an ImageType whose values name a screen
    /// save ([`USUAL_IMAGE_TYPE_WORDS`]; a plain DERIVED\SECONDARY reformat is not searched); or a
    /// ConversionType (0008,0064), which only converted images (screen, film, video, scan)
    /// carry. Primary CT, MR, PET, NM, CR, DX, MG … images pass through undecoded.
    #[default]
    Usual,
    /// Never; only region rules and BurnedInAnnotation YES (which needs a clean that a
    /// rule must then provide, or the instance is rejected) make the stage act.
    Never,
}

impl DetectionMode {
    /// The name used in profiles.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectionMode::Always => "always",
            DetectionMode::Usual => "usual",
            DetectionMode::Never => "never",
        }
    }
}

/// Modalities on which `usual` runs detection whatever BurnedInAnnotation says:
/// ultrasound, secondary capture and screenshots, angiography and fluoroscopy, endoscopy,
/// external and slide photography, document and other captures.
pub const USUAL_MODALITIES: &[&str] = &[
    "US", "SC", "XA", "RF", "ES", "XC", "OT", "GM", "SM", "DOC", "OP", "IVUS", "ECG", "HD",
];

/// SOP classes on which `usual` runs detection whatever the Modality says, each a UID
/// prefix matched whole components at a time (`…1.1.7` matches `…1.1.7` and `…1.1.7.2`,
/// not `…1.1.77.1.4`), with the name reports use. Secondary captures come first: a CT
/// workstation's screen save or a digitised film sheet is filed as Secondary Capture with
/// Modality CT, and carries the patient's name in its pixels more often than not.
pub const USUAL_SOP_CLASSES: &[(&str, &str)] = &[
    ("1.2.840.10008.5.1.4.1.1.7", "Secondary Capture SOP class"),
    ("1.2.840.10008.5.1.4.1.1.6", "Ultrasound SOP class"),
    (
        "1.2.840.10008.5.1.4.1.1.3",
        "Ultrasound Multi-frame SOP class",
    ),
    (
        "1.2.840.10008.5.1.4.1.1.12",
        "X-Ray Angiographic/Radiofluoroscopic SOP class",
    ),
    ("1.2.840.10008.5.1.4.1.1.77.1", "Visible Light SOP class"),
];

/// Words that, contained in any value of ImageType (0008,0008), mark a screen save
/// (`DERIVED\SECONDARY\SCREEN SAVE`, the words RSNA CTP's burned-in filter looks for).
pub const USUAL_IMAGE_TYPE_WORDS: &[&str] = &["SCREEN", "SAVE"];

/// Whether `uid` is `prefix` or lies under it (whole components).
pub fn uid_under(uid: &str, prefix: &str) -> bool {
    uid.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// One region rule: a device signature and the rectangles to blank on its images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionRule {
    /// Reported as `rule:<id>`.
    pub id: String,
    /// Line in the profile file.
    pub line: usize,
    /// Modality, exact (case-insensitive).
    pub modality: Option<String>,
    /// Manufacturer, contained (case-insensitive).
    pub manufacturer: Option<String>,
    /// ManufacturerModelName, contained (case-insensitive).
    pub model: Option<String>,
    /// SOP Class UID, exact.
    pub sop_class: Option<String>,
    /// Rows, exact.
    pub rows: Option<u16>,
    /// Columns, exact.
    pub columns: Option<u16>,
    /// Rectangles `[x, y, width, height]`.
    pub rects: Vec<[u32; 4]>,
}

/// What a region rule is matched against.
#[derive(Debug, Clone, Default)]
pub struct Signature<'a> {
    /// Modality (0008,0060).
    pub modality: Option<&'a str>,
    /// Manufacturer (0008,0070).
    pub manufacturer: Option<&'a str>,
    /// ManufacturerModelName (0008,1090).
    pub model: Option<&'a str>,
    /// SOP Class UID (0008,0016).
    pub sop_class: Option<&'a str>,
    /// Rows (0028,0010).
    pub rows: u16,
    /// Columns (0028,0011).
    pub columns: u16,
}

fn contains_ci(hay: Option<&str>, needle: &str) -> bool {
    hay.is_some_and(|h| {
        h.to_ascii_lowercase()
            .contains(&needle.to_ascii_lowercase())
    })
}

impl RegionRule {
    /// Whether every condition of the rule holds for the instance.
    pub fn matches(&self, s: &Signature<'_>) -> bool {
        self.modality
            .as_deref()
            .is_none_or(|m| s.modality.is_some_and(|v| v.eq_ignore_ascii_case(m)))
            && self
                .manufacturer
                .as_deref()
                .is_none_or(|m| contains_ci(s.manufacturer, m))
            && self
                .model
                .as_deref()
                .is_none_or(|m| contains_ci(s.model, m))
            && self
                .sop_class
                .as_deref()
                .is_none_or(|c| s.sop_class == Some(c))
            && self.rows.is_none_or(|r| r == s.rows)
            && self.columns.is_none_or(|c| c == s.columns)
    }
}

/// The `[pixel]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PixelConfig {
    /// When detection runs.
    pub detection: DetectionMode,
    /// Pixels added on every side of each masked box.
    pub padding: u32,
    /// Blank everything outside SequenceOfUltrasoundRegions on ultrasound images.
    pub ultrasound_regions: bool,
    /// Region rules, in file order; every matching rule applies.
    pub regions: Vec<RegionRule>,
}

impl Default for PixelConfig {
    fn default() -> Self {
        PixelConfig {
            detection: DetectionMode::Usual,
            padding: 3,
            ultrasound_regions: false,
            regions: Vec::new(),
        }
    }
}

impl PixelConfig {
    /// The section as `profile show` prints it: one line of settings, then one line per
    /// region rule.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "pixel: detection {}, padding {} px, blank outside ultrasound regions: {}, {} region rule(s)",
            self.detection.as_str(),
            self.padding,
            if self.ultrasound_regions { "yes" } else { "no" },
            self.regions.len()
        );
        for r in &self.regions {
            let mut sig = Vec::new();
            let mut add = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    sig.push(format!("{k}={v}"));
                }
            };
            add("modality", r.modality.clone());
            add("manufacturer~", r.manufacturer.clone());
            add("model~", r.model.clone());
            add("sop_class", r.sop_class.clone());
            add("rows", r.rows.map(|v| v.to_string()));
            add("columns", r.columns.map(|v| v.to_string()));
            let rects: Vec<String> = r
                .rects
                .iter()
                .map(|[x, y, w, h]| format!("({x},{y} {w}x{h})"))
                .collect();
            out.push_str(&format!(
                "\n  rule:{} (line {}): {} -> {}",
                r.id,
                r.line,
                sig.join(" "),
                rects.join(" ")
            ));
        }
        out
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPixel {
    detection: Option<Spanned<String>>,
    padding: Option<Spanned<i64>>,
    ultrasound_regions: Option<bool>,
    #[serde(default)]
    region: Vec<Spanned<RawRegion>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegion {
    id: Spanned<String>,
    modality: Option<String>,
    manufacturer: Option<String>,
    model: Option<String>,
    sop_class: Option<String>,
    rows: Option<Spanned<i64>>,
    columns: Option<Spanned<i64>>,
    rects: Spanned<Vec<Vec<i64>>>,
}

/// Checks a raw section; `push(span, reason)` records a problem.
pub(crate) fn check(
    raw: RawPixel,
    push: &mut dyn FnMut(std::ops::Range<usize>, String),
    line_of: &dyn Fn(std::ops::Range<usize>) -> usize,
) -> PixelConfig {
    let mut config = PixelConfig::default();
    if let Some(d) = &raw.detection {
        config.detection = match d.get_ref().as_str() {
            "always" => DetectionMode::Always,
            "usual" => DetectionMode::Usual,
            "never" => DetectionMode::Never,
            other => {
                push(
                    d.span(),
                    format!("pixel.detection must be always, usual or never, not {other:?}"),
                );
                DetectionMode::Usual
            }
        };
    }
    if let Some(p) = &raw.padding {
        match u32::try_from(*p.get_ref()) {
            Ok(v) if v <= 256 => config.padding = v,
            _ => push(p.span(), "pixel.padding must be 0 to 256 pixels".into()),
        }
    }
    config.ultrasound_regions = raw.ultrasound_regions.unwrap_or(false);
    let mut ids: Vec<String> = Vec::new();
    for r in raw.region {
        let span = r.span();
        let r = r.into_inner();
        let id = r.id.get_ref().clone();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            push(
                r.id.span(),
                "pixel.region id: use only letters, digits, '-', '_' and '.'".into(),
            );
        } else if ids.contains(&id) {
            push(r.id.span(), format!("pixel.region id {id:?} is used twice"));
        }
        ids.push(id.clone());
        let mut dim = |v: &Option<Spanned<i64>>, name: &str| -> Option<u16> {
            let v = v.as_ref()?;
            match u16::try_from(*v.get_ref()) {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    push(v.span(), format!("pixel.region {name} must be 1 to 65535"));
                    None
                }
            }
        };
        let rows = dim(&r.rows, "rows");
        let columns = dim(&r.columns, "columns");
        if r.modality.is_none()
            && r.manufacturer.is_none()
            && r.model.is_none()
            && r.sop_class.is_none()
            && r.rows.is_none()
            && r.columns.is_none()
        {
            push(
                span.clone(),
                "pixel.region needs a signature: modality, manufacturer, model, sop_class, rows or columns".into(),
            );
        }
        let mut rects = Vec::new();
        if r.rects.get_ref().is_empty() {
            push(r.rects.span(), "pixel.region rects is empty".into());
        }
        for rect in r.rects.get_ref() {
            let ok = rect.len() == 4 && rect.iter().all(|&v| (0..=65535).contains(&v));
            if !ok || rect[2] == 0 || rect[3] == 0 {
                push(
                    r.rects.span(),
                    "pixel.region rects are [x, y, width, height] with 0 <= values <= 65535 and width, height > 0".into(),
                );
                continue;
            }
            rects.push([
                rect[0] as u32,
                rect[1] as u32,
                rect[2] as u32,
                rect[3] as u32,
            ]);
        }
        config.regions.push(RegionRule {
            id,
            line: line_of(span),
            modality: r.modality,
            manufacturer: r.manufacturer,
            model: r.model,
            sop_class: r.sop_class,
            rows,
            columns,
            rects,
        });
    }
    config
}
