//! Append-only, hash-chained audit log of the gateway (issue 4). Being built; see the crate docs once it lands.
