//! The gateway: STOW-RS ingest, configuration, health (issue 4). Being built.
