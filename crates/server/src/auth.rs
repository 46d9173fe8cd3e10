//! Ingest tokens: `Authorization: Bearer <token>` on the STOW routes.
//!
//! The configuration holds only the SHA-256 of each token (`[[tokens]] sha256 = "<hex>"`), with
//! a name and the routes it may use; [`mint`] makes a new token and its hash (`dicom-deid token
//! new NAME`). A presented token is hashed and compared with **every** configured hash in
//! constant time (no early exit), so the answer's timing says nothing about which hash came
//! close. Logs name the token (its `name`), never the token or its hash.
//!
//! Answers: no `Authorization` header (or not `Bearer`) → 401 with `WWW-Authenticate: Bearer`;
//! an unknown token → 401 (`error="invalid_token"`); a known token not allowed on the route →
//! 403 (`error="insufficient_scope"`). Without configured tokens nothing is checked (allowed
//! only on a loopback listener; see [`crate::config`]).

use std::collections::BTreeSet;
use std::fmt;

use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Characters of random in a token (hex digits of 32 bytes).
const TOKEN_BYTES: usize = 32;
/// Prefix of minted tokens: makes them recognisable to secret scanners and to people.
pub const TOKEN_PREFIX: &str = "ddt_";

/// One configured token: its name, the SHA-256 of the token, the routes it may use.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenEntry {
    /// Its name (logged, audited); not secret.
    pub name: String,
    /// SHA-256 of the token.
    pub sha256: [u8; 32],
    /// Names of the routes it may use.
    pub routes: BTreeSet<String>,
}

impl fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEntry")
            .field("name", &self.name)
            .field("sha256", &"**REDACTED**")
            .field("routes", &self.routes)
            .finish()
    }
}

/// The configured tokens. Empty: nothing is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    entries: Vec<TokenEntry>,
}

/// Why a request was not let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A bearer token that matches no configured hash.
    Invalid,
    /// A known token that may not use this route.
    Forbidden {
        /// The token's name.
        token: String,
    },
}

impl Denied {
    /// The metrics label of this refusal.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Denied::Missing => "missing",
            Denied::Invalid => "invalid",
            Denied::Forbidden { .. } => "forbidden",
        }
    }
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let (status, challenge, text) = match self {
            Denied::Missing => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"dicom-deid\"",
                "an ingest token is required: Authorization: Bearer <token>\n",
            ),
            Denied::Invalid => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"dicom-deid\", error=\"invalid_token\"",
                "the ingest token is not valid\n",
            ),
            Denied::Forbidden { .. } => (
                StatusCode::FORBIDDEN,
                "Bearer realm=\"dicom-deid\", error=\"insufficient_scope\"",
                "the ingest token may not use this route\n",
            ),
        };
        let mut res = (status, text).into_response();
        let headers = res.headers_mut();
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        res
    }
}

impl Tokens {
    /// Tokens from validated entries.
    pub fn new(entries: Vec<TokenEntry>) -> Tokens {
        Tokens { entries }
    }

    /// Whether no token is configured (then nothing is checked).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks the request's bearer token for `route`. `Ok(None)`: no tokens are configured;
    /// `Ok(Some(name))`: let in as token `name`.
    pub fn check(&self, headers: &HeaderMap, route: &str) -> Result<Option<&str>, Denied> {
        if self.entries.is_empty() {
            return Ok(None);
        }
        let presented = bearer(headers).ok_or(Denied::Missing)?;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Compare with every entry; remember the match without branching on the comparison.
        let mut found = u64::MAX;
        for (i, entry) in self.entries.iter().enumerate() {
            found.conditional_assign(&(i as u64), entry.sha256.ct_eq(&digest));
        }
        let entry = usize::try_from(found)
            .ok()
            .and_then(|i| self.entries.get(i))
            .ok_or(Denied::Invalid)?;
        if entry.routes.contains(route) {
            Ok(Some(&entry.name))
        } else {
            Err(Denied::Forbidden {
                token: entry.name.clone(),
            })
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None; // two Authorization headers: ambiguous, refused
    }
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Lowercase hex of the SHA-256 of `token`: what `[[tokens]] sha256` holds.
pub fn hash_hex(token: &str) -> String {
    to_hex(&Sha256::digest(token.as_bytes()))
}

/// Parses 64 hex digits (either case).
pub fn parse_hash(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A new random token (`ddt_` + 64 hex digits) and its hash for the config.
pub fn mint() -> Result<(String, String), getrandom::Error> {
    let mut random = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut random)?;
    let token = format!("{TOKEN_PREFIX}{}", to_hex(&random));
    let hash = hash_hex(&token);
    Ok((token, hash))
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> (Tokens, String, String) {
        let (a, ha) = mint().unwrap();
        let (b, hb) = mint().unwrap();
        let entry = |name: &str, hash: &str, routes: &[&str]| TokenEntry {
            name: name.into(),
            sha256: parse_hash(hash).unwrap(),
            routes: routes.iter().map(|r| r.to_string()).collect(),
        };
        (
            Tokens::new(vec![
                entry("site-a", &ha, &["a"]),
                entry("site-b", &hb, &["a", "b"]),
            ]),
            a,
            b,
        )
    }

    fn auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn minted_tokens_are_distinct_and_hash_to_their_config_line() {
        let (t1, h1) = mint().unwrap();
        let (t2, _) = mint().unwrap();
        assert_ne!(t1, t2);
        assert!(t1.starts_with(TOKEN_PREFIX) && t1.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(h1, hash_hex(&t1));
        assert_eq!(parse_hash(&h1.to_uppercase()), parse_hash(&h1));
        // Known vector: SHA-256("abc").
        assert_eq!(
            hash_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn bad_hashes_do_not_parse() {
        assert!(parse_hash("").is_none());
        assert!(parse_hash(&"a".repeat(63)).is_none());
        assert!(parse_hash(&"g".repeat(64)).is_none());
        assert!(parse_hash(&"é".repeat(32)).is_none());
    }

    #[test]
    fn each_token_is_let_in_on_its_routes_only() {
        let (t, a, b) = tokens();
        assert_eq!(
            t.check(&auth(&format!("Bearer {a}")), "a"),
            Ok(Some("site-a"))
        );
        assert_eq!(
            t.check(&auth(&format!("bearer  {b}")), "b"),
            Ok(Some("site-b"))
        );
        assert_eq!(
            t.check(&auth(&format!("Bearer {a}")), "b"),
            Err(Denied::Forbidden {
                token: "site-a".into()
            })
        );
        assert_eq!(t.check(&HeaderMap::new(), "a"), Err(Denied::Missing));
        assert_eq!(
            t.check(&auth("Basic dXNlcjpwdw=="), "a"),
            Err(Denied::Missing)
        );
        assert_eq!(t.check(&auth("Bearer "), "a"), Err(Denied::Missing));
        assert_eq!(
            t.check(&auth(&format!("Bearer {a}x")), "a"),
            Err(Denied::Invalid)
        );
        // The hash itself is not a token.
        assert_eq!(
            t.check(&auth(&format!("Bearer {}", hash_hex(&a))), "a"),
            Err(Denied::Invalid)
        );
        let mut two = auth(&format!("Bearer {a}"));
        two.append(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {a}")).unwrap(),
        );
        assert_eq!(t.check(&two, "a"), Err(Denied::Missing));
        // No tokens: nothing is checked.
        assert_eq!(Tokens::default().check(&HeaderMap::new(), "a"), Ok(None));
    }

    #[test]
    fn debug_does_not_show_the_hash() {
        let (t, a, _) = tokens();
        let text = format!("{t:?}");
        assert!(
            text.contains("site-a") && text.contains("REDACTED"),
            "{text}"
        );
        assert!(!text.contains(&hash_hex(&a)[..16]), "{text}");
    }
}
