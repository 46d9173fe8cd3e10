//! The request's `Content-Type`: is it a STOW-RS `multipart/related` body, and what is its boundary?

use http::StatusCode;
use snafu::Snafu;

/// The parts of a `multipart/related` media type that STOW-RS ingest needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartType {
    /// The boundary parameter, unquoted (1–70 characters, RFC 2046 `bchars`).
    pub boundary: String,
    /// The `type` parameter, unquoted and lower-cased, when the sender gave one
    /// (always `application/dicom` here, with any parameters it carried).
    pub root_type: Option<String>,
}

/// Why a `Content-Type` header is not one that STOW-RS ingest accepts.
///
/// [`ContentTypeError::status`] gives the HTTP status PS3.18 §10.5.3 assigns.
#[derive(Debug, Clone, PartialEq, Eq, Snafu)]
pub enum ContentTypeError {
    /// The media type is not multipart/related
    NotMultipartRelated,
    /// The multipart/related type parameter names something other than application/dicom
    UnsupportedRootType,
    /// The multipart/related media type has no boundary parameter
    MissingBoundary,
    /// The boundary parameter is empty, longer than 70 characters or has characters RFC 2046 forbids
    InvalidBoundary,
    /// The {name} parameter appears more than once
    DuplicateParameter {
        /// The parameter's name, lower-cased.
        name: String,
    },
    /// The media type's parameters do not parse (at byte {at})
    BadSyntax {
        /// Byte offset in the header value where parsing stopped.
        at: usize,
    },
}

impl ContentTypeError {
    /// The HTTP status for a request with this header: 415 when the media type
    /// (or its `type` parameter) is one the service does not take, 400 when it
    /// is the right media type written wrongly.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotMultipartRelated | Self::UnsupportedRootType => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::MissingBoundary
            | Self::InvalidBoundary
            | Self::DuplicateParameter { .. }
            | Self::BadSyntax { .. } => StatusCode::BAD_REQUEST,
        }
    }
}

/// Parses a STOW-RS request's `Content-Type`:
/// `multipart/related; type="application/dicom"; boundary=…`.
///
/// Parameter names are case-insensitive and may come in any order; values are
/// tokens or quoted strings (with `\` escapes). The boundary must be 1–70
/// characters of RFC 2046 `bchars`, not ending in a space.
///
/// **An absent `type` parameter is tolerated.** RFC 2387 makes `type`
/// required and PS3.18 §10.5.1 writes it in every example, but a missing one
/// carries no ambiguity for this service: it only ever reads
/// `application/dicom` parts, and each part's own `Content-Type` is checked
/// (a part that is not `application/dicom` fails alone). Refusing the request
/// outright would punish senders such as hand-written `curl` scripts for no
/// safety gain. A `type` that *is* present must be `application/dicom`
/// (optionally with parameters such as `transfer-syntax`); anything else —
/// e.g. `application/dicom+json` metadata with bulk data — is 415.
///
/// ```
/// use dicom_deid_dicomweb::parse_content_type;
/// let t = parse_content_type(r#"Multipart/Related; Boundary="a b"; type="application/dicom""#).unwrap();
/// assert_eq!(t.boundary, "a b");
/// ```
pub fn parse_content_type(header: &str) -> Result<MultipartType, ContentTypeError> {
    let (media, mut rest, mut offset) = match header.find(';') {
        Some(i) => (&header[..i], &header[i + 1..], i + 1),
        None => (header, "", header.len()),
    };
    if !media.trim().eq_ignore_ascii_case("multipart/related") {
        return Err(ContentTypeError::NotMultipartRelated);
    }
    let mut boundary = None;
    let mut root_type = None;
    loop {
        let trimmed = rest.trim_start_matches([' ', '\t']);
        offset += rest.len() - trimmed.len();
        rest = trimmed;
        if rest.is_empty() {
            break;
        }
        if let Some(r) = rest.strip_prefix(';') {
            // An empty parameter (";;" or a trailing ';') is harmless.
            rest = r;
            offset += 1;
            continue;
        }
        let eq = rest
            .find('=')
            .ok_or(ContentTypeError::BadSyntax { at: offset })?;
        let name = rest[..eq].trim().to_ascii_lowercase();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(ContentTypeError::BadSyntax { at: offset });
        }
        let after = &rest[eq + 1..];
        let after_trim = after.trim_start_matches([' ', '\t']);
        let value_at = offset + eq + 1 + (after.len() - after_trim.len());
        let (value, consumed) = if let Some(q) = after_trim.strip_prefix('"') {
            parse_quoted(q).ok_or(ContentTypeError::BadSyntax { at: value_at })?
        } else {
            let end = after_trim
                .find([';', ' ', '\t'])
                .unwrap_or(after_trim.len());
            let v = &after_trim[..end];
            // '/' is not a token character, but unquoted `type=application/dicom` is common.
            if v.is_empty() || !v.bytes().all(|b| is_token_byte(b) || b == b'/') {
                return Err(ContentTypeError::BadSyntax { at: value_at });
            }
            (v.to_string(), end)
        };
        let next = &after_trim[consumed..];
        let next_trim = next.trim_start_matches([' ', '\t']);
        if !next_trim.is_empty() && !next_trim.starts_with(';') {
            return Err(ContentTypeError::BadSyntax {
                at: value_at + consumed,
            });
        }
        offset = value_at + consumed;
        rest = next;
        let slot = match name.as_str() {
            "boundary" => &mut boundary,
            "type" => &mut root_type,
            _ => continue,
        };
        if slot.is_some() {
            return Err(ContentTypeError::DuplicateParameter { name });
        }
        *slot = Some(value);
    }
    let boundary = boundary.ok_or(ContentTypeError::MissingBoundary)?;
    if !valid_boundary(&boundary) {
        return Err(ContentTypeError::InvalidBoundary);
    }
    let root_type = root_type.map(|t| t.trim().to_ascii_lowercase());
    if let Some(t) = &root_type {
        let essence = t.split(';').next().unwrap_or("").trim();
        if essence != "application/dicom" {
            return Err(ContentTypeError::UnsupportedRootType);
        }
    }
    Ok(MultipartType {
        boundary,
        root_type,
    })
}

/// Whether a part's own `Content-Type` is `application/dicom` (any parameters,
/// any case). A part without a `Content-Type` is not: PS3.18 requires one.
pub fn is_application_dicom(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/dicom"))
}

/// A quoted-string's content (after the opening quote): the unescaped value and
/// how many bytes of `s` it used, closing quote included.
fn parse_quoted(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 2)), // the opening quote counts as one
            '\\' => out.push(chars.next()?.1),
            '\r' | '\n' => return None,
            c => out.push(c),
        }
    }
    None
}

/// RFC 7230 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 2046 §5.1.1: `0*69<bchars> bcharsnospace`.
pub(crate) fn valid_boundary(b: &str) -> bool {
    let ok = |c: u8| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c);
    (1..=70).contains(&b.len()) && b.bytes().all(ok) && !b.ends_with(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_usual_forms() {
        let t = parse_content_type(r#"multipart/related; type="application/dicom"; boundary=abc"#)
            .unwrap();
        assert_eq!(t.boundary, "abc");
        assert_eq!(t.root_type.as_deref(), Some("application/dicom"));
        let t = parse_content_type(
            "MULTIPART/RELATED;BOUNDARY=\"x\\(y z\";Type=Application/DICOM; start=\"<a>\"",
        )
        .unwrap();
        assert_eq!(t.boundary, "x(y z");
        let t = parse_content_type(r#"multipart/related; boundary="--=_1"; type="application/dicom; transfer-syntax=1.2.840.10008.1.2.1""#).unwrap();
        assert_eq!(t.boundary, "--=_1");
    }

    #[test]
    fn absent_type_is_tolerated() {
        let t = parse_content_type("multipart/related; boundary=b").unwrap();
        assert_eq!(t.root_type, None);
    }

    #[test]
    fn classifies_failures() {
        use ContentTypeError::*;
        let cases: &[(&str, ContentTypeError, u16)] = &[
            ("application/dicom", NotMultipartRelated, 415),
            ("multipart/form-data; boundary=x", NotMultipartRelated, 415),
            ("", NotMultipartRelated, 415),
            (
                r#"multipart/related; type="application/dicom+json"; boundary=x"#,
                UnsupportedRootType,
                415,
            ),
            (
                r#"multipart/related; type="application/dicom""#,
                MissingBoundary,
                400,
            ),
            ("multipart/related; boundary=\"\"", InvalidBoundary, 400),
            ("multipart/related; boundary=\"a \"", InvalidBoundary, 400),
            (
                "multipart/related; boundary=\"a\u{e9}\"",
                InvalidBoundary,
                400,
            ),
            (
                "multipart/related; boundary=a; boundary=b",
                DuplicateParameter {
                    name: "boundary".into(),
                },
                400,
            ),
            ("multipart/related; boundary", BadSyntax { at: 19 }, 400),
            (
                "multipart/related; boundary=\"abc",
                BadSyntax { at: 28 },
                400,
            ),
            ("multipart/related; boundary=a b", BadSyntax { at: 29 }, 400),
        ];
        for (header, want, status) in cases {
            let got = parse_content_type(header).unwrap_err();
            assert_eq!(&got, want, "{header}");
            assert_eq!(got.status().as_u16(), *status, "{header}");
        }
    }

    #[test]
    fn boundary_length_limit() {
        let ok = "a".repeat(70);
        assert!(parse_content_type(&format!("multipart/related; boundary={ok}")).is_ok());
        let long = "a".repeat(71);
        assert_eq!(
            parse_content_type(&format!("multipart/related; boundary={long}")),
            Err(ContentTypeError::InvalidBoundary)
        );
    }

    #[test]
    fn part_type_check() {
        assert!(is_application_dicom("application/dicom"));
        assert!(is_application_dicom(
            "Application/DICOM; transfer-syntax=1.2.840.10008.1.2.1"
        ));
        assert!(!is_application_dicom("application/dicom+json"));
        assert!(!is_application_dicom("text/plain"));
    }
}
