//! DICOMweb STOW-RS: multipart/related codec, response model, client (issue 4). Being built; see the crate docs once it lands.
