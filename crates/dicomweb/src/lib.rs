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

mod client;
mod content_type;
mod multipart;
mod stow;

pub use client::{
    Auth, ClientConfig, ClientError, InstanceOutcome, RetryReason, Secret, StoreOutcome, StowClient,
};
pub use content_type::{is_application_dicom, parse_content_type, ContentTypeError, MultipartType};
pub use multipart::{encode_parts, new_boundary, Limits, Part, PartError, PartStream};
pub use stow::{failure, warning, Failed, FromJsonError, Referenced, StowResponse};
