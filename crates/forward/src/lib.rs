//! Forwarding de-identified instances from the spool to their destinations (issue 4). Being built.
