//! Verification of an encoded output: no forbidden value survives.

use dicom_deid_wire::{tag_str, trim, DataSet, Tag, Value, Vr};
use snafu::Snafu;

use crate::clean::contains_token;
use crate::tags::*;
use crate::{is_watched, split_values, Forbidden};

/// An original value found in the output.
#[derive(Debug, Snafu, PartialEq, Eq)]
#[snafu(display(
    "verification failed: an original identifying value survives in {tag} (at {path})"
))]
pub struct Leak {
    /// The attribute that holds it.
    pub tag: String,
    /// Its path from the top level.
    pub path: String,
}

/// Scans every watched string attribute of `ds`, at every depth, for forbidden
/// values (see the crate docs). The marker attributes we write are not scanned.
pub fn verify(ds: &DataSet<'_>, forbidden: &Forbidden) -> Result<(), Leak> {
    let mut path = Vec::new();
    scan(ds, forbidden, &mut path)
}

fn scan(ds: &DataSet<'_>, f: &Forbidden, path: &mut Vec<Tag>) -> Result<(), Leak> {
    for e in &ds.elements {
        if path.is_empty()
            && matches!(
                e.tag,
                DEIDENTIFICATION_METHOD
                    | DEIDENTIFICATION_METHOD_CODE_SEQUENCE
                    | PATIENT_IDENTITY_REMOVED
            )
        {
            continue;
        }
        match &e.value {
            Value::Seq(items) => {
                path.push(e.tag);
                for item in items {
                    scan(item, f, path)?;
                }
                path.pop();
            }
            Value::Bytes(bytes) if is_watched(e.vr) && leaks(bytes, e.vr, f) => {
                let mut p: Vec<String> = path.iter().map(|t| tag_str(*t)).collect();
                p.push(tag_str(e.tag));
                return LeakSnafu {
                    tag: tag_str(e.tag),
                    path: p.join("/"),
                }
                .fail();
            }
            _ => {}
        }
    }
    Ok(())
}

fn leaks(bytes: &[u8], vr: Vr, f: &Forbidden) -> bool {
    if vr == Vr::UI {
        return split_values(bytes).any(|v| f.uids.contains(v));
    }
    let upper = trim(bytes).to_ascii_uppercase();
    if upper.is_empty() {
        return false;
    }
    f.terms.iter().any(|t| contains_token(&upper, t))
        || f.uids.iter().any(|u| contains_token(&upper, u))
}
