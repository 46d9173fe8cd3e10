//! DIMSE command sets (PS3.7 §9.3, §E): always Implicit VR Little Endian, group 0000 only.
//!
//! Only what a C-STORE / C-ECHO SCP needs is read; unknown elements are skipped. The reader is
//! bounded by the caller (the whole command set is at most [`MAX_COMMAND_BYTES`]).

/// Largest command set accepted (a real one is a few hundred bytes).
pub const MAX_COMMAND_BYTES: usize = 64 << 10;

/// `CommandDataSetType` value meaning "no data set follows".
pub const NO_DATA_SET: u16 = 0x0101;

/// C-STORE-RQ command field.
pub const C_STORE_RQ: u16 = 0x0001;
/// C-ECHO-RQ command field.
pub const C_ECHO_RQ: u16 = 0x0030;

/// The fields of a request command set the SCP uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    /// (0000,0002) Affected SOP Class UID.
    pub affected_sop_class: String,
    /// (0000,0100) Command Field.
    pub command_field: u16,
    /// (0000,0110) Message ID.
    pub message_id: u16,
    /// (0000,0800) Command Data Set Type (0x0101: none).
    pub data_set_type: u16,
    /// (0000,1000) Affected SOP Instance UID.
    pub affected_sop_instance: String,
}

impl Command {
    /// Whether a data set follows the command.
    pub fn has_data_set(&self) -> bool {
        self.data_set_type != NO_DATA_SET
    }
}

/// Why a command set could not be read (the message names the element, never a value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError(pub &'static str);

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for CommandError {}

/// Reads a request command set.
pub fn parse(bytes: &[u8]) -> Result<Command, CommandError> {
    if bytes.len() > MAX_COMMAND_BYTES {
        return Err(CommandError("the command set is too large"));
    }
    let mut cmd = Command::default();
    let mut seen_field = false;
    let mut seen_type = false;
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.len() < 8 {
            return Err(CommandError(
                "the command set ends inside an element header",
            ));
        }
        let group = u16::from_le_bytes([rest[0], rest[1]]);
        let element = u16::from_le_bytes([rest[2], rest[3]]);
        let len = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        if group != 0 {
            return Err(CommandError(
                "the command set has an element outside group 0000",
            ));
        }
        let Some(value) = rest.get(8..8usize.saturating_add(len)) else {
            return Err(CommandError(
                "an element of the command set is longer than the set",
            ));
        };
        rest = &rest[8 + len..];
        match element {
            0x0002 => cmd.affected_sop_class = uid(value)?,
            0x0100 => {
                cmd.command_field = us(value, "(0000,0100) CommandField is not a US")?;
                seen_field = true;
            }
            0x0110 => cmd.message_id = us(value, "(0000,0110) MessageID is not a US")?,
            0x0800 => {
                cmd.data_set_type = us(value, "(0000,0800) CommandDataSetType is not a US")?;
                seen_type = true;
            }
            0x1000 => cmd.affected_sop_instance = uid(value)?,
            _ => {}
        }
    }
    if !seen_field {
        return Err(CommandError(
            "the command set has no (0000,0100) CommandField",
        ));
    }
    if !seen_type {
        return Err(CommandError(
            "the command set has no (0000,0800) CommandDataSetType",
        ));
    }
    Ok(cmd)
}

fn us(value: &[u8], err: &'static str) -> Result<u16, CommandError> {
    match value {
        [a, b] => Ok(u16::from_le_bytes([*a, *b])),
        _ => Err(CommandError(err)),
    }
}

fn uid(value: &[u8]) -> Result<String, CommandError> {
    let text = value
        .iter()
        .rev()
        .skip_while(|b| **b == 0 || **b == b' ')
        .count();
    let text = &value[..text];
    if text.len() > 64 || !text.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
        return Err(CommandError("a UID of the command set is not a valid UID"));
    }
    Ok(String::from_utf8(text.to_vec()).expect("ASCII"))
}

/// A response command set: `request` answered with `status` (and an optional comment, already
/// sanitised by [`error_comment`]).
pub fn response(request: &Command, status: u16, comment: Option<&str>) -> Vec<u8> {
    let mut body = Vec::with_capacity(160);
    put(&mut body, 0x0002, &padded_uid(&request.affected_sop_class));
    put(
        &mut body,
        0x0100,
        &(request.command_field | 0x8000).to_le_bytes(),
    );
    put(&mut body, 0x0120, &request.message_id.to_le_bytes());
    put(&mut body, 0x0800, &NO_DATA_SET.to_le_bytes());
    put(&mut body, 0x0900, &status.to_le_bytes());
    if let Some(comment) = comment.filter(|c| !c.is_empty()) {
        let mut text = comment.as_bytes().to_vec();
        if text.len() % 2 == 1 {
            text.push(b' ');
        }
        put(&mut body, 0x0902, &text);
    }
    if !request.affected_sop_instance.is_empty() {
        put(
            &mut body,
            0x1000,
            &padded_uid(&request.affected_sop_instance),
        );
    }
    let mut out = Vec::with_capacity(body.len() + 12);
    put(&mut out, 0x0000, &(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// An ErrorComment (LO, at most 64 characters): printable ASCII without backslash, cut at 64.
pub fn error_comment(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '\\' || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(64)
        .collect::<String>()
        .trim_end()
        .to_string()
}

fn padded_uid(uid: &str) -> Vec<u8> {
    let mut v = uid.as_bytes().to_vec();
    if v.len() % 2 == 1 {
        v.push(0);
    }
    v
}

fn put(out: &mut Vec<u8>, element: u16, value: &[u8]) {
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A C-STORE-RQ of a CT Image with a data set (message id 7, instance 1.2.3.4).
    pub(crate) fn store_rq() -> Vec<u8> {
        let mut body = Vec::new();
        put(&mut body, 0x0002, b"1.2.840.10008.5.1.4.1.1.2\0");
        put(&mut body, 0x0100, &C_STORE_RQ.to_le_bytes());
        put(&mut body, 0x0110, &7u16.to_le_bytes());
        put(&mut body, 0x0700, &0u16.to_le_bytes());
        put(&mut body, 0x0800, &0u16.to_le_bytes());
        put(&mut body, 0x1000, b"1.2.3.4\0");
        let mut out = Vec::new();
        put(&mut out, 0x0000, &(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn reads_a_store_request() {
        let cmd = parse(&store_rq()).unwrap();
        assert_eq!(cmd.affected_sop_class, "1.2.840.10008.5.1.4.1.1.2");
        assert_eq!(cmd.command_field, C_STORE_RQ);
        assert_eq!(cmd.message_id, 7);
        assert!(cmd.has_data_set());
        assert_eq!(cmd.affected_sop_instance, "1.2.3.4");
    }

    #[test]
    fn response_round_trips_through_the_reader() {
        let cmd = parse(&store_rq()).unwrap();
        let rsp = response(&cmd, 0xA700, Some(&error_comment("too large")));
        // The response parses as a command set too (0000,0120 is skipped by the reader).
        let back = parse(&rsp).unwrap();
        assert_eq!(back.command_field, 0x8001);
        assert!(!back.has_data_set());
        assert_eq!(back.affected_sop_instance, "1.2.3.4");
        // Group length is right, and the status and comment are where PS3.7 puts them.
        let len = u32::from_le_bytes(rsp[8..12].try_into().unwrap()) as usize;
        assert_eq!(len, rsp.len() - 12);
        let status_at = rsp
            .windows(8)
            .position(|w| w[..4] == [0, 0, 0x00, 0x09])
            .unwrap();
        assert_eq!(
            &rsp[status_at + 8..status_at + 10],
            &0xA700u16.to_le_bytes()
        );
        assert!(rsp.windows(10).any(|w| w == b"too large "));
    }

    #[test]
    fn malformed_command_sets_are_errors() {
        let good = store_rq();
        assert!(parse(&good[..good.len() - 3]).is_err());
        assert!(parse(&[0u8; 5]).is_err());
        let mut other_group = good.clone();
        other_group[0] = 8;
        assert!(parse(&other_group).is_err());
        let mut huge_len = good.clone();
        huge_len[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse(&huge_len).is_err());
        // No CommandField.
        let mut body = Vec::new();
        put(&mut body, 0x0800, &NO_DATA_SET.to_le_bytes());
        assert!(parse(&body).is_err());
        // A UID that is not one.
        let mut body = Vec::new();
        put(&mut body, 0x0002, b"DOE^JOHN");
        put(&mut body, 0x0100, &C_STORE_RQ.to_le_bytes());
        put(&mut body, 0x0800, &0u16.to_le_bytes());
        let e = parse(&body).unwrap_err();
        assert!(!e.to_string().contains("DOE"));
    }

    #[test]
    fn error_comments_are_short_plain_ascii() {
        let c = error_comment(&format!("bad\\value é{}", "x".repeat(100)));
        assert_eq!(c.len(), 64);
        assert!(c.starts_with("bad?value ?x"));
    }
}
