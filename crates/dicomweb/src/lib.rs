//! DICOMweb STOW-RS for the gateway: the `multipart/related` codec its ingest
//! reads requests with, the Store Instances response model (PS3.18 §10.5.3,
//! Annex I) it answers with, and the client its forwarder delivers with.
//!
//! What it does not do: DICOM parsing (the engine's job), deciding what to do
//! with a failed delivery (the forwarder's), HTTP serving (the server's).
//!
//! ```
//! use dicom_deid_dicomweb::{encode_parts, new_boundary, parse_content_type};
//! let boundary = new_boundary();
//! let header = format!("multipart/related; type=\"application/dicom\"; boundary={boundary}");
//! assert_eq!(parse_content_type(&header).unwrap().boundary, boundary);
//! let body = encode_parts(&boundary, &[("application/dicom", b"DICM")]);
//! assert!(body.ends_with(format!("--{boundary}--\r\n").as_bytes()));
//! ```
//!
//! # Ingest with these pieces
//!
//! 1. [`parse_content_type`] on the request header; on `Err(e)` answer
//!    `e.status()` (415 wrong media type or `type`, 400 bad/missing boundary)
//!    before reading the body. A missing `type` parameter is accepted.
//! 2. [`PartStream::new`]`(body_stream, &boundary, limits)` and poll it. For each
//!    `Ok(part)`: check [`is_application_dicom`] on `part.content_type` (a part
//!    that is not gets a FailedSOPSequence item, reason
//!    [`failure::CANNOT_UNDERSTAND`]), then de-identify and spool it.
//! 3. For each `Err(e)`: if [`PartError::is_recoverable`], that part alone
//!    failed — record it in FailedSOPSequence (`PartTooLarge` →
//!    [`failure::OUT_OF_RESOURCES`], header trouble →
//!    [`failure::CANNOT_UNDERSTAND`]; its UIDs are unknown, so the item has
//!    empty UIDs) and keep polling. Otherwise the stream ends after it: keep
//!    what was already stored and answer with what you have, using
//!    [`StowResponse::bad_request`] when nothing was stored (→ 400).
//!    `PartError::Body` is the client's connection failing: there is nobody to answer.
//! 4. [`StowResponse::status`] gives 200/202/409/400; send
//!    [`StowResponse::to_json`] as `application/dicom+json`, or
//!    [`StowResponse::to_xml`] as `application/dicom+xml` when the `Accept`
//!    header prefers it. Orthanc's STOW client fails its whole job unless
//!    every instance it sent is in ReferencedSOPSequence, so answer 200 only
//!    once everything is spooled.
//!
//! Memory: a `PartStream` holds the current part plus one incoming chunk
//! (plus the growth slack of its buffer), so per-request memory is bounded by
//! `max_part_bytes` and the body's chunk size; the in-flight limit across
//! requests is the server's.
//!
//! # Deliver with the client
//!
//! [`StowClient::store`] sends one batch and returns a [`StoreOutcome`]:
//! `Answered` with one [`InstanceOutcome`] per instance (delete the
//! [`InstanceOutcome::is_delivered`] ones from the spool, dead-letter
//! `Failed`, resend `Unconfirmed`), `Retryable` (back off, honouring
//! `retry_after`), or `Permanent` (the destination refused the request
//! itself: dead-letter the batch). It never follows redirects.

mod client;
mod content_type;
mod multipart;
mod stow;

pub use client::{
    Auth, ClientConfig, ClientError, InstanceOutcome, RetryReason, Secret, StoreOutcome, StowClient,
};
pub use content_type::{is_application_dicom, parse_content_type, ContentTypeError, MultipartType};
pub use multipart::{encode_parts, new_boundary, Event, Limits, Part, PartError, PartStream};
pub use stow::{failure, warning, Failed, FromJsonError, Referenced, StowResponse};
