//! Reading a ListObjectsV2 answer.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::ports::object_store::{ObjectMeta, ObjectPage};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListBucketResult {
    #[serde(default)]
    contents: Vec<Contents>,
    is_truncated: bool,
    next_continuation_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Contents {
    key: String,
    size: u64,
    last_modified: String,
}

/// The page a ListObjectsV2 XML answer describes.
///
/// # Errors
/// Why the XML is not a listing.
pub(super) fn parse(xml: &str) -> Result<ObjectPage, String> {
    let result: ListBucketResult = quick_xml::de::from_str(xml).map_err(|e| format!("unreadable listing: {e}"))?;
    let objects = result
        .contents
        .into_iter()
        .map(|c| {
            let last_modified = DateTime::parse_from_rfc3339(&c.last_modified)
                .map_err(|e| format!("LastModified {:?} of {:?}: {e}", c.last_modified, c.key))?
                .with_timezone(&Utc);
            Ok(ObjectMeta { key: c.key, size: c.size, last_modified, immutable_until: None })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let continuation = result.next_continuation_token.filter(|_| result.is_truncated);
    Ok(ObjectPage { objects, continuation })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_listing_gives_objects_and_the_next_token() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name><Prefix>backups/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents><Key>backups/a&amp;b</Key><LastModified>2026-11-22T06:00:00.000Z</LastModified>
    <ETag>"x"</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>backups/c</Key><LastModified>2026-11-22T06:00:01.000Z</LastModified>
    <ETag>"y"</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>"#;
        let page = parse(xml).expect("listing");
        let keys: Vec<_> = page.objects.iter().map(|o| (o.key.as_str(), o.size)).collect();
        assert_eq!(keys, [("backups/a&b", 12), ("backups/c", 0)]);
        assert_eq!(page.continuation.as_deref(), Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="));
        let last = r#"<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>"#;
        assert_eq!(parse(last).expect("empty listing"), ObjectPage::default());
        assert!(parse("<html>proxy error</html>").is_err());
    }
}
