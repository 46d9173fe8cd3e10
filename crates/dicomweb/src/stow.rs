//! The Store Instances response (PS3.18 §10.5.3 and Annex I): what a STOW-RS
//! server answers, in the DICOM JSON model (PS3.18 Annex F) or the Native
//! DICOM Model XML (PS3.19 Annex A).

use http::StatusCode;
use serde_json::{json, Map, Value};
use snafu::Snafu;

/// Failure Reason (0008,1197) values, PS3.18 Table I.2-2 (the `A7xx`, `A9xx`
/// and `Cxxx` rows are ranges; these are the values this project sends).
pub mod failure {
    /// `A700` Refused: out of resources (A7xx).
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// `A900` Error: data set does not match SOP Class (A9xx).
    pub const DATA_SET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
    /// `C000` Error: cannot understand (Cxxx) — e.g. a part that is not DICOM.
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// `C122` Referenced Transfer Syntax not supported.
    pub const TRANSFER_SYNTAX_NOT_SUPPORTED: u16 = 0xC122;
    /// `0110` Processing failure — e.g. de-identification could not complete (fail closed).
    pub const PROCESSING_FAILURE: u16 = 0x0110;
    /// `0122` Referenced SOP Class not supported.
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    /// `C409` The instance's Study Instance UID differs from the one in the
    /// request URL (`POST /studies/{uid}`). PS3.18 has no code of its own for
    /// this (§10.5.3 only names it as a cause of 409); this is an
    /// implementation-specific value in the `Cxxx` "cannot understand" range,
    /// the one dcm4chee uses, and belongs in the conformance statement.
    pub const STUDY_INSTANCE_UID_MISMATCH: u16 = 0xC409;
    /// `0111` Duplicate SOP Instance (the DIMSE status of that name, PS3.7 Annex C,
    /// reused by some STOW-RS servers for an instance they already hold). Not
    /// in Table I.2-2; the client reads it as "already present" (delivered).
    pub const DUPLICATE_SOP_INSTANCE: u16 = 0x0111;
}

/// Warning Reason (0008,1196) values, PS3.18 Table I.2-1.
pub mod warning {
    /// `B000` Coercion of data elements.
    pub const COERCION_OF_DATA_ELEMENTS: u16 = 0xB000;
    /// `B006` Elements discarded.
    pub const ELEMENTS_DISCARDED: u16 = 0xB006;
    /// `B007` Data set does not match SOP Class.
    pub const DATA_SET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xB007;
}

const RETRIEVE_URL: &str = "00081190";
const FAILED_SOP_SEQUENCE: &str = "00081198";
const REFERENCED_SOP_SEQUENCE: &str = "00081199";
const REFERENCED_SOP_CLASS_UID: &str = "00081150";
const REFERENCED_SOP_INSTANCE_UID: &str = "00081155";
const WARNING_REASON: &str = "00081196";
const FAILURE_REASON: &str = "00081197";

/// An instance the server stored (an item of ReferencedSOPSequence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referenced {
    /// Referenced SOP Class UID (0008,1150).
    pub sop_class: String,
    /// Referenced SOP Instance UID (0008,1155).
    pub sop_instance: String,
    /// Retrieve URL (0008,1190) of the stored instance.
    pub retrieve_url: Option<String>,
    /// Warning Reason (0008,1196), when it was stored with a warning.
    pub warning: Option<u16>,
}

/// An instance the server did not store (an item of FailedSOPSequence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// Referenced SOP Class UID (0008,1150); empty when it could not be read.
    pub sop_class: String,
    /// Referenced SOP Instance UID (0008,1155); empty when it could not be read.
    pub sop_instance: String,
    /// Failure Reason (0008,1197), see [`failure`].
    pub reason: u16,
}

/// A Store Instances response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StowResponse {
    /// Retrieve URL (0008,1190) of the study.
    pub retrieve_url: Option<String>,
    /// ReferencedSOPSequence (0008,1199): what was stored.
    pub referenced: Vec<Referenced>,
    /// FailedSOPSequence (0008,1198): what was not.
    pub failed: Vec<Failed>,
    /// The request itself was unreadable (see [`StowResponse::bad_request`]).
    bad_request: bool,
}

/// Why a server's reply could not be read as a Store Instances response.
/// The messages name tags, never values.
#[derive(Debug, Snafu)]
pub enum FromJsonError {
    /// The reply is not JSON
    NotJson {
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The reply is not a DICOM JSON data set (an object, or an array of one)
    NotADataSet,
    /// Attribute {tag} does not have the structure DICOM JSON gives its VR
    BadAttribute {
        /// The attribute, as 8 hexadecimal digits.
        tag: &'static str,
    },
}

impl StowResponse {
    /// An empty response, to which the server adds each instance's outcome.
    pub fn new() -> Self {
        Self::default()
    }

    /// The response to a request that could not be read at all (bad multipart
    /// syntax, no parts): status 400. Instances that failed before the syntax
    /// broke may still be listed in `failed`; `referenced` should be empty
    /// (if anything was stored, [`StowResponse::status`] says 202 instead).
    pub fn bad_request() -> Self {
        Self {
            bad_request: true,
            ..Self::default()
        }
    }

    /// Records a stored instance.
    pub fn stored(&mut self, sop_class: &str, sop_instance: &str, retrieve_url: Option<String>) {
        self.referenced.push(Referenced {
            sop_class: sop_class.to_string(),
            sop_instance: sop_instance.to_string(),
            retrieve_url,
            warning: None,
        });
    }

    /// Records an instance that was not stored.
    pub fn failed(&mut self, sop_class: &str, sop_instance: &str, reason: u16) {
        self.failed.push(Failed {
            sop_class: sop_class.to_string(),
            sop_instance: sop_instance.to_string(),
            reason,
        });
    }

    /// The HTTP status PS3.18 Table 10.5.3-1 assigns:
    /// - **200** every instance stored, none with a warning;
    /// - **202** some stored, and some failed or carry a warning (also: all
    ///   stored, some with warnings);
    /// - **409** nothing stored, failures listed per instance;
    /// - **400** nothing stored and the request itself was bad
    ///   ([`StowResponse::bad_request`]) or held no instance at all.
    ///
    /// 415 (unsupported media type) is decided before any part is read; see
    /// [`crate::ContentTypeError::status`].
    pub fn status(&self) -> StatusCode {
        let warned = self.referenced.iter().any(|r| r.warning.is_some());
        if !self.referenced.is_empty() {
            if self.failed.is_empty() && !warned && !self.bad_request {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            }
        } else if self.bad_request || self.failed.is_empty() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::CONFLICT
        }
    }

    /// The response in the DICOM JSON model (`application/dicom+json`).
    /// Sequences that would be empty are left out (PS3.18 Table I.1-1: each is
    /// required only when it has something to say).
    pub fn to_json(&self) -> Vec<u8> {
        let mut top = Map::new();
        if let Some(url) = &self.retrieve_url {
            top.insert(RETRIEVE_URL.into(), json!({"vr": "UR", "Value": [url]}));
        }
        if !self.failed.is_empty() {
            let items: Vec<Value> = self
                .failed
                .iter()
                .map(|f| {
                    json!({
                        REFERENCED_SOP_CLASS_UID: {"vr": "UI", "Value": [f.sop_class]},
                        REFERENCED_SOP_INSTANCE_UID: {"vr": "UI", "Value": [f.sop_instance]},
                        FAILURE_REASON: {"vr": "US", "Value": [f.reason]},
                    })
                })
                .collect();
            top.insert(
                FAILED_SOP_SEQUENCE.into(),
                json!({"vr": "SQ", "Value": items}),
            );
        }
        if !self.referenced.is_empty() {
            let items: Vec<Value> = self
                .referenced
                .iter()
                .map(|r| {
                    let mut item = Map::new();
                    item.insert(
                        REFERENCED_SOP_CLASS_UID.into(),
                        json!({"vr": "UI", "Value": [r.sop_class]}),
                    );
                    item.insert(
                        REFERENCED_SOP_INSTANCE_UID.into(),
                        json!({"vr": "UI", "Value": [r.sop_instance]}),
                    );
                    if let Some(url) = &r.retrieve_url {
                        item.insert(RETRIEVE_URL.into(), json!({"vr": "UR", "Value": [url]}));
                    }
                    if let Some(w) = r.warning {
                        item.insert(WARNING_REASON.into(), json!({"vr": "US", "Value": [w]}));
                    }
                    Value::Object(item)
                })
                .collect();
            top.insert(
                REFERENCED_SOP_SEQUENCE.into(),
                json!({"vr": "SQ", "Value": items}),
            );
        }
        serde_json::to_vec(&Value::Object(top)).expect("a JSON value serializes")
    }

    /// The response in the PS3.19 Native DICOM Model (`application/dicom+xml`).
    pub fn to_xml(&self) -> Vec<u8> {
        let mut x = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <NativeDicomModel xmlns=\"http://dicom.nema.org/PS3.19/models/NativeDICOM\">\n",
        );
        if let Some(url) = &self.retrieve_url {
            xml_text(&mut x, RETRIEVE_URL, "UR", "RetrieveURL", url);
        }
        if !self.failed.is_empty() {
            x.push_str(&format!(
                "<DicomAttribute tag=\"{FAILED_SOP_SEQUENCE}\" vr=\"SQ\" keyword=\"FailedSOPSequence\">\n"
            ));
            for (n, f) in self.failed.iter().enumerate() {
                x.push_str(&format!("<Item number=\"{}\">\n", n + 1));
                xml_uids(&mut x, &f.sop_class, &f.sop_instance);
                xml_text(
                    &mut x,
                    FAILURE_REASON,
                    "US",
                    "FailureReason",
                    &f.reason.to_string(),
                );
                x.push_str("</Item>\n");
            }
            x.push_str("</DicomAttribute>\n");
        }
        if !self.referenced.is_empty() {
            x.push_str(&format!(
                "<DicomAttribute tag=\"{REFERENCED_SOP_SEQUENCE}\" vr=\"SQ\" keyword=\"ReferencedSOPSequence\">\n"
            ));
            for (n, r) in self.referenced.iter().enumerate() {
                x.push_str(&format!("<Item number=\"{}\">\n", n + 1));
                xml_uids(&mut x, &r.sop_class, &r.sop_instance);
                if let Some(url) = &r.retrieve_url {
                    xml_text(&mut x, RETRIEVE_URL, "UR", "RetrieveURL", url);
                }
                if let Some(w) = r.warning {
                    xml_text(
                        &mut x,
                        WARNING_REASON,
                        "US",
                        "WarningReason",
                        &w.to_string(),
                    );
                }
                x.push_str("</Item>\n");
            }
            x.push_str("</DicomAttribute>\n");
        }
        x.push_str("</NativeDicomModel>\n");
        x.into_bytes()
    }

    /// Reads a destination's DICOM JSON reply. Tolerant: attributes other than
    /// the five it needs are ignored, a sequence without `Value` is empty, a
    /// top-level array of one data set is accepted, US values may be numbers
    /// or numeric strings. A failed item without a Failure Reason reads as
    /// [`failure::PROCESSING_FAILURE`]; an item whose SOP Instance UID is
    /// missing is kept with an empty one (it matches no instance sent).
    pub fn from_json(body: &[u8]) -> Result<Self, FromJsonError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|source| FromJsonError::NotJson { source })?;
        let top = match &value {
            Value::Object(o) => o,
            Value::Array(a) if a.len() == 1 => {
                a[0].as_object().ok_or(FromJsonError::NotADataSet)?
            }
            _ => return Err(FromJsonError::NotADataSet),
        };
        let mut out = StowResponse {
            retrieve_url: string_value(top, RETRIEVE_URL)?,
            ..Self::default()
        };
        for item in sequence(top, REFERENCED_SOP_SEQUENCE)? {
            out.referenced.push(Referenced {
                sop_class: string_value(item, REFERENCED_SOP_CLASS_UID)?.unwrap_or_default(),
                sop_instance: string_value(item, REFERENCED_SOP_INSTANCE_UID)?.unwrap_or_default(),
                retrieve_url: string_value(item, RETRIEVE_URL)?,
                warning: us_value(item, WARNING_REASON)?,
            });
        }
        for item in sequence(top, FAILED_SOP_SEQUENCE)? {
            out.failed.push(Failed {
                sop_class: string_value(item, REFERENCED_SOP_CLASS_UID)?.unwrap_or_default(),
                sop_instance: string_value(item, REFERENCED_SOP_INSTANCE_UID)?.unwrap_or_default(),
                reason: us_value(item, FAILURE_REASON)?.unwrap_or(failure::PROCESSING_FAILURE),
            });
        }
        Ok(out)
    }
}

/// The first value of a string attribute, if present and non-empty.
fn string_value(
    ds: &Map<String, Value>,
    tag: &'static str,
) -> Result<Option<String>, FromJsonError> {
    match first_value(ds, tag)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FromJsonError::BadAttribute { tag }),
    }
}

/// The first value of a US attribute.
fn us_value(ds: &Map<String, Value>, tag: &'static str) -> Result<Option<u16>, FromJsonError> {
    let bad = || FromJsonError::BadAttribute { tag };
    match first_value(ds, tag)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .map(Some)
            .ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

fn first_value<'a>(
    ds: &'a Map<String, Value>,
    tag: &'static str,
) -> Result<Option<&'a Value>, FromJsonError> {
    let Some(attr) = ds.get(tag).or_else(|| ds.get(&tag.to_ascii_lowercase())) else {
        return Ok(None);
    };
    let attr = attr
        .as_object()
        .ok_or(FromJsonError::BadAttribute { tag })?;
    match attr.get("Value") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(v)) => Ok(v.first()),
        Some(_) => Err(FromJsonError::BadAttribute { tag }),
    }
}

/// The items of a sequence attribute (none when absent or without `Value`).
fn sequence<'a>(
    ds: &'a Map<String, Value>,
    tag: &'static str,
) -> Result<Vec<&'a Map<String, Value>>, FromJsonError> {
    let Some(attr) = ds.get(tag) else {
        return Ok(Vec::new());
    };
    let attr = attr
        .as_object()
        .ok_or(FromJsonError::BadAttribute { tag })?;
    match attr.get("Value") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_object().ok_or(FromJsonError::BadAttribute { tag }))
            .collect(),
        Some(_) => Err(FromJsonError::BadAttribute { tag }),
    }
}

fn xml_uids(x: &mut String, class: &str, instance: &str) {
    xml_text(
        x,
        REFERENCED_SOP_CLASS_UID,
        "UI",
        "ReferencedSOPClassUID",
        class,
    );
    xml_text(
        x,
        REFERENCED_SOP_INSTANCE_UID,
        "UI",
        "ReferencedSOPInstanceUID",
        instance,
    );
}

fn xml_text(x: &mut String, tag: &str, vr: &str, keyword: &str, value: &str) {
    x.push_str(&format!(
        "<DicomAttribute tag=\"{tag}\" vr=\"{vr}\" keyword=\"{keyword}\"><Value number=\"1\">"
    ));
    for c in value.chars() {
        match c {
            '&' => x.push_str("&amp;"),
            '<' => x.push_str("&lt;"),
            '>' => x.push_str("&gt;"),
            '"' => x.push_str("&quot;"),
            '\'' => x.push_str("&apos;"),
            c => x.push(c),
        }
    }
    x.push_str("</Value></DicomAttribute>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

    #[test]
    fn status_per_ps3_18() {
        let mut r = StowResponse::new();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "no instances at all");
        r.stored(CT, "1.1", None);
        assert_eq!(r.status(), StatusCode::OK);
        r.referenced[0].warning = Some(warning::COERCION_OF_DATA_ELEMENTS);
        assert_eq!(r.status(), StatusCode::ACCEPTED, "stored with a warning");
        r.referenced[0].warning = None;
        r.failed(CT, "1.2", failure::CANNOT_UNDERSTAND);
        assert_eq!(r.status(), StatusCode::ACCEPTED, "some failed");
        r.referenced.clear();
        assert_eq!(r.status(), StatusCode::CONFLICT, "all failed");
        let mut bad = StowResponse::bad_request();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        bad.failed(CT, "1.2", failure::CANNOT_UNDERSTAND);
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        bad.stored(CT, "1.3", None);
        assert_eq!(bad.status(), StatusCode::ACCEPTED);
    }

    fn sample() -> StowResponse {
        let mut r = StowResponse::new();
        r.retrieve_url = Some("http://h/studies/1?a=1&b=<2>".into());
        r.stored(CT, "1.1", Some("http://h/i/1.1".into()));
        r.stored(CT, "1.2", None);
        r.referenced[1].warning = Some(warning::ELEMENTS_DISCARDED);
        r.failed(CT, "1.3", failure::STUDY_INSTANCE_UID_MISMATCH);
        r
    }

    #[test]
    fn json_has_the_dicom_json_shape() {
        let v: Value = serde_json::from_slice(&sample().to_json()).unwrap();
        assert_eq!(
            v,
            json!({
                "00081190": {"vr": "UR", "Value": ["http://h/studies/1?a=1&b=<2>"]},
                "00081198": {"vr": "SQ", "Value": [{
                    "00081150": {"vr": "UI", "Value": [CT]},
                    "00081155": {"vr": "UI", "Value": ["1.3"]},
                    "00081197": {"vr": "US", "Value": [0xC409]},
                }]},
                "00081199": {"vr": "SQ", "Value": [
                    {
                        "00081150": {"vr": "UI", "Value": [CT]},
                        "00081155": {"vr": "UI", "Value": ["1.1"]},
                        "00081190": {"vr": "UR", "Value": ["http://h/i/1.1"]},
                    },
                    {
                        "00081150": {"vr": "UI", "Value": [CT]},
                        "00081155": {"vr": "UI", "Value": ["1.2"]},
                        "00081196": {"vr": "US", "Value": [0xB006]},
                    },
                ]},
            })
        );
        // Keys come out in tag order.
        let text = String::from_utf8(sample().to_json()).unwrap();
        assert!(text.find("00081190").unwrap() < text.find("00081198").unwrap());
        assert!(text.find("00081198").unwrap() < text.find("00081199").unwrap());
        assert_eq!(StowResponse::new().to_json(), b"{}");
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        assert_eq!(StowResponse::from_json(&r.to_json()).unwrap(), r);
    }

    #[test]
    fn xml_is_native_dicom_model() {
        let x = String::from_utf8(sample().to_xml()).unwrap();
        assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<NativeDicomModel xmlns=\"http://dicom.nema.org/PS3.19/models/NativeDICOM\">"));
        assert!(x.contains("<DicomAttribute tag=\"00081199\" vr=\"SQ\" keyword=\"ReferencedSOPSequence\">\n<Item number=\"1\">\n<DicomAttribute tag=\"00081150\" vr=\"UI\" keyword=\"ReferencedSOPClassUID\"><Value number=\"1\">1.2.840.10008.5.1.4.1.1.2</Value></DicomAttribute>"));
        assert!(x.contains("<Item number=\"2\">"));
        assert!(x.contains("keyword=\"FailureReason\"><Value number=\"1\">50185</Value>"));
        assert!(x.contains("keyword=\"WarningReason\"><Value number=\"1\">45062</Value>"));
        assert!(x.contains("http://h/studies/1?a=1&amp;b=&lt;2&gt;"));
        assert!(x.ends_with("</NativeDicomModel>\n"));
        assert_eq!(x.matches("<Item ").count(), x.matches("</Item>").count());
        assert_eq!(
            x.matches("<DicomAttribute ").count(),
            x.matches("</DicomAttribute>").count()
        );
    }

    #[test]
    fn xml_parses_and_nests() {
        use quick_xml::events::Event;
        let xml = sample().to_xml();
        let mut reader = quick_xml::Reader::from_reader(&xml[..]);
        let mut stack: Vec<String> = Vec::new();
        let mut values = Vec::new();
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Start(e) => {
                    stack.push(e.name().0.to_string());
                }
                Event::End(e) => {
                    assert_eq!(stack.pop().as_deref(), Some(e.name().0));
                }
                Event::Text(t) if stack.last().map(String::as_str) == Some("Value") => {
                    values.push(t.into_inner().into_owned());
                }
                Event::GeneralRef(r) => {
                    let name = r.into_inner().into_owned();
                    values.push(format!("&{name};"));
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert!(stack.is_empty());
        assert_eq!(
            values
                .iter()
                .filter(|v| v.as_str() == "1.2.840.10008.5.1.4.1.1.2")
                .count(),
            3
        );
        assert!(values.contains(&"50185".to_string()));
    }

    #[test]
    fn reads_orthancs_reply() {
        // The shape Orthanc 1.10 + DICOMweb 1.7 answers a STOW-RS with (PEERS.md).
        let body = br#"{
           "00081190" : { "Value" : [ "http://127.0.0.1:8042/dicom-web/studies/1.2.3" ], "vr" : "UR" },
           "00081199" : { "Value" : [ {
                 "00081150" : { "Value" : [ "1.2.840.10008.5.1.4.1.1.2" ], "vr" : "UI" },
                 "00081155" : { "Value" : [ "1.2.3.4" ], "vr" : "UI" },
                 "00081190" : { "Value" : [ "http://127.0.0.1:8042/dicom-web/studies/1.2.3/series/1.2.3.1/instances/1.2.3.4" ], "vr" : "UR" }
              } ], "vr" : "SQ" }
        }"#;
        let r = StowResponse::from_json(body).unwrap();
        assert_eq!(r.referenced.len(), 1);
        assert_eq!(r.referenced[0].sop_instance, "1.2.3.4");
        assert!(r.failed.is_empty());
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[test]
    fn tolerates_extra_and_loose_attributes() {
        let body = br#"[{
           "00081198" : { "vr" : "SQ", "Value": [ { "00081155": {"vr":"UI","Value":["9"]}, "00081197": {"vr":"US","Value":["272"]}, "00081196": {"vr":"US"} },
                                                  { "00081155": {"vr":"UI","Value":["8"]} } ] },
           "00081199" : { "vr" : "SQ" },
           "00080005" : { "vr" : "CS", "Value": ["ISO_IR 192"] },
           "00081196" : { "vr" : "US", "Value": [45056] }
        }]"#;
        let r = StowResponse::from_json(body).unwrap();
        assert!(r.referenced.is_empty());
        assert_eq!(r.failed.len(), 2);
        assert_eq!(r.failed[0].reason, 272);
        assert_eq!(r.failed[1].reason, failure::PROCESSING_FAILURE);
        assert_eq!(r.failed[1].sop_class, "");
    }

    #[test]
    fn rejects_what_is_not_a_response() {
        assert!(matches!(
            StowResponse::from_json(b"<html>"),
            Err(FromJsonError::NotJson { .. })
        ));
        assert!(matches!(
            StowResponse::from_json(b"42"),
            Err(FromJsonError::NotADataSet)
        ));
        assert!(matches!(
            StowResponse::from_json(b"[{},{}]"),
            Err(FromJsonError::NotADataSet)
        ));
        let e = StowResponse::from_json(
            br#"{"00081199":{"vr":"SQ","Value":[{"00081155":{"vr":"UI","Value":[1.5]}}]}}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Attribute 00081155 does not have the structure DICOM JSON gives its VR"
        );
        let e = StowResponse::from_json(br#"{"00081199":{"vr":"SQ","Value":"x"}}"#).unwrap_err();
        assert!(matches!(e, FromJsonError::BadAttribute { tag: "00081199" }));
    }
}
