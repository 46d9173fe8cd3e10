//! Tags the reader, writer and callers need by name.
#![allow(missing_docs)]

use crate::Tag;

pub const FILE_META_GROUP_LENGTH: Tag = 0x0002_0000;
pub const FILE_META_VERSION: Tag = 0x0002_0001;
pub const MEDIA_STORAGE_SOP_CLASS_UID: Tag = 0x0002_0002;
pub const MEDIA_STORAGE_SOP_INSTANCE_UID: Tag = 0x0002_0003;
pub const TRANSFER_SYNTAX_UID: Tag = 0x0002_0010;
pub const IMPLEMENTATION_CLASS_UID: Tag = 0x0002_0012;
pub const IMPLEMENTATION_VERSION_NAME: Tag = 0x0002_0013;
pub const SPECIFIC_CHARACTER_SET: Tag = 0x0008_0005;
pub const SOP_CLASS_UID: Tag = 0x0008_0016;
pub const SOP_INSTANCE_UID: Tag = 0x0008_0018;
pub const PIXEL_DATA: Tag = 0x7FE0_0010;
pub const ITEM: Tag = 0xFFFE_E000;
pub const ITEM_DELIMITER: Tag = 0xFFFE_E00D;
pub const SEQUENCE_DELIMITER: Tag = 0xFFFE_E0DD;
