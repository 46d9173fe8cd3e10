//! Keyword ⇄ tag through the standard data dictionary (dicom-dictionary-std).

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, TagRange};
use dicom_dictionary_std::StandardDataDictionary;

use crate::Tag;

static DICT: StandardDataDictionary = StandardDataDictionary;

fn to_core(tag: Tag) -> dicom_core::Tag {
    dicom_core::Tag((tag >> 16) as u16, tag as u16)
}

fn from_core(tag: dicom_core::Tag) -> Tag {
    (u32::from(tag.0) << 16) | u32::from(tag.1)
}

/// The tag of a standard keyword, e.g. `PatientAge` → `0x0010_1010`.
/// For a repeating-group attribute (e.g. `OverlayData`) this is the tag of its first group.
pub fn keyword_to_tag(keyword: &str) -> Option<Tag> {
    DICT.by_name(keyword)
        .map(|e| from_core(e.tag_range().inner()))
}

/// The keyword of a tag when the dictionary knows it (including repeating groups such as
/// `60xx,3000`), e.g. `0x0010_1010` → `PatientAge`. Does not allocate.
pub fn tag_keyword(tag: Tag) -> Option<&'static str> {
    DICT.by_tag(to_core(tag))
        .map(|e| e.alias)
        .filter(|alias| !alias.is_empty())
}

/// The keyword's tag range: `(value, mask)` where the mask has zero bits on open digits.
pub(crate) fn keyword_range(keyword: &str) -> Option<(Tag, Tag)> {
    let entry = DICT.by_name(keyword)?;
    Some(match entry.tag_range() {
        TagRange::Single(t) => (from_core(t), 0xFFFF_FFFF),
        TagRange::Group100(t) => (from_core(t) & 0xFF00_FFFF, 0xFF00_FFFF),
        TagRange::Element100(t) => (from_core(t) & 0xFFFF_FF00, 0xFFFF_FF00),
        other => (from_core(other.inner()), 0xFFFF_FFFF),
    })
}

/// Whether the dictionary's VR of `tag` is SQ.
pub(crate) fn is_sequence_tag(tag: Tag) -> bool {
    DICT.by_tag(to_core(tag))
        .is_some_and(|e| e.vr == dicom_core::dictionary::VirtualVr::Exact(dicom_core::VR::SQ))
}

/// Whether a UI attribute names a *kind* of thing (an SOP class, a transfer syntax, a coding
/// scheme, an organisation that defines codes or private data) rather than an instance. Such
/// UIDs identify no patient and are kept; every other UID is remapped.
///
/// The rule, on the dictionary keyword:
/// - contains `ClassUID` (SOPClassUID, ReferencedSOPClassUID, ImplementationClassUID,
///   ReferencedSOPClassUIDInFile, …) or `SOPClasses` (SOPClassesInStudy, SOPClassesSupported,
///   PertinentSOPClassesInSeries, …);
/// - contains `TransferSyntax` (TransferSyntaxUID, ReferencedTransferSyntaxUIDInFile, …);
/// - is one of CodingSchemeUID, ContextUID, ContextGroupExtensionCreatorUID,
///   PrivateInformationCreatorUID, MappingResourceUID, TemplateExtensionOrganizationUID,
///   TemplateExtensionCreatorUID.
pub fn is_kind_uid(tag: Tag) -> bool {
    tag_keyword(tag).is_some_and(is_kind_uid_keyword)
}

/// [`is_kind_uid`] on a keyword.
pub fn is_kind_uid_keyword(keyword: &str) -> bool {
    const NAMED: [&str; 7] = [
        "CodingSchemeUID",
        "ContextUID",
        "ContextGroupExtensionCreatorUID",
        "PrivateInformationCreatorUID",
        "MappingResourceUID",
        "TemplateExtensionOrganizationUID",
        "TemplateExtensionCreatorUID",
    ];
    keyword.contains("ClassUID")
        || keyword.contains("SOPClasses")
        || keyword.contains("TransferSyntax")
        || NAMED.contains(&keyword)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_and_tags() {
        assert_eq!(keyword_to_tag("PatientAge"), Some(0x0010_1010));
        assert_eq!(keyword_to_tag("NoSuchKeyword"), None);
        assert_eq!(tag_keyword(0x0010_1010), Some("PatientAge"));
        assert_eq!(tag_keyword(0x6002_3000), Some("OverlayData"));
        assert_eq!(
            keyword_range("OverlayData"),
            Some((0x6000_3000, 0xFF00_FFFF))
        );
        assert!(is_sequence_tag(0x0008_1110));
        assert!(!is_sequence_tag(0x0010_1010));
    }

    #[test]
    fn kind_uids_are_told_from_instance_uids() {
        for kind in [
            0x0008_0016, // SOPClassUID
            0x0008_1150, // ReferencedSOPClassUID
            0x0002_0010, // TransferSyntaxUID
            0x0002_0012, // ImplementationClassUID
            0x0008_010C, // CodingSchemeUID
            0x0008_0062, // SOPClassesInStudy
            0x0004_1510, // ReferencedSOPClassUIDInFile
            0x0008_115A, // SOPClassesSupported
            0x0008_0117, // ContextUID
            0x0004_1512, // ReferencedTransferSyntaxUIDInFile
        ] {
            assert!(is_kind_uid(kind), "{:08X} {:?}", kind, tag_keyword(kind));
        }
        for instance in [
            0x0008_0018, // SOPInstanceUID
            0x0020_000D, // StudyInstanceUID
            0x0008_1155, // ReferencedSOPInstanceUID
            0x0020_0052, // FrameOfReferenceUID
            0x0008_0014, // InstanceCreatorUID
            0x0020_9312, // VolumeFrameOfReferenceUID
            0x0040_E030, // RepositoryUniqueID
        ] {
            assert!(
                !is_kind_uid(instance),
                "{:08X} {:?}",
                instance,
                tag_keyword(instance)
            );
        }
    }
}
