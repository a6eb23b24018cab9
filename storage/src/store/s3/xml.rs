//! The few S3 XML documents the bucket store reads and writes: a
//! `ListObjectsV2` page, a new multipart upload's id, the part list that
//! completes one, and an error.

use serde::Deserialize;

/// One page of `ListObjectsV2` (`ListBucketResult`): the keys, in the
/// bucket's (UTF-8 byte) order, and whether more follow.
#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListPage {
    /// Whether keys past this page remain.
    #[serde(default)]
    pub is_truncated: bool,
    /// The objects of the page.
    #[serde(default)]
    pub contents: Vec<ListEntry>,
}

/// An object of a [`ListPage`].
#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListEntry {
    /// Its key.
    pub key: String,
}

/// The answer to `CreateMultipartUpload` (`InitiateMultipartUploadResult`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct InitiatedUpload {
    /// The upload's id, named by every later call on it.
    pub upload_id: String,
}

/// An S3 error document (`<Error><Code>…</Code><Message>…</Message></Error>`).
#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ErrorDoc {
    /// The error code (`NoSuchKey`, `SignatureDoesNotMatch`, …).
    #[serde(default)]
    pub code: String,
    /// The human-readable explanation.
    #[serde(default)]
    pub message: String,
}

/// Parses an XML document of type `T`; the parser's complaint otherwise.
pub(super) fn parse<'de, T: Deserialize<'de>>(text: &'de str) -> Result<T, String> {
    quick_xml::de::from_str(text).map_err(|e| e.to_string())
}

/// The error document in `text`, if it is one (a `CompleteMultipartUpload`
/// may fail after its `200 OK` has been sent, with an `<Error>` body).
pub(super) fn error_in(text: &str) -> Option<ErrorDoc> {
    let start = text.find("<Error>")?;
    parse(&text[start..]).ok()
}

/// The `CompleteMultipartUpload` body listing the parts' ETags in order
/// (part numbers start at 1).
pub(super) fn complete_upload(etags: &[String]) -> String {
    let mut body = String::from("<CompleteMultipartUpload>");
    for (i, etag) in etags.iter().enumerate() {
        body.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
            i + 1,
            escape(etag)
        ));
    }
    body.push_str("</CompleteMultipartUpload>");
    body
}

/// `s` with the characters XML text may not hold escaped.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_listing_page() {
        let text = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>offsite</Name><Prefix>t/</Prefix><StartAfter>t/a</StartAfter>
  <KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
  <Contents><Key>t/a&amp;b</Key><LastModified>2026-01-02T03:04:05.000Z</LastModified>
    <ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>3</Size>
    <StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>t/c</Key><Size>0</Size></Contents>
  <NextContinuationToken>abc</NextContinuationToken>
</ListBucketResult>"#;
        let page: ListPage = parse(text).unwrap();
        assert!(page.is_truncated);
        let keys: Vec<&str> = page.contents.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["t/a&b", "t/c"]);

        let empty = r#"<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount>
            <IsTruncated>false</IsTruncated></ListBucketResult>"#;
        assert_eq!(parse::<ListPage>(empty).unwrap(), ListPage::default());
        assert!(parse::<ListPage>("<ListBucketResult><IsTruncated>maybe").is_err());
    }

    #[test]
    fn reads_upload_ids_and_errors() {
        let text = "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>\
                    <UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>";
        assert_eq!(
            parse::<InitiatedUpload>(text).unwrap().upload_id,
            "VXBsb2FkIElE"
        );
        let text = "<?xml version=\"1.0\"?>\n<Error><Code>InternalError</Code>\
                    <Message>try again</Message><RequestId>1</RequestId></Error>";
        let doc = error_in(text).unwrap();
        assert_eq!(
            (doc.code.as_str(), doc.message.as_str()),
            ("InternalError", "try again")
        );
        assert_eq!(error_in("<CompleteMultipartUploadResult/>"), None);
    }

    #[test]
    fn lists_the_parts_that_complete_an_upload() {
        let etags = ["\"a1\"".to_owned(), "\"b2\"".to_owned()];
        assert_eq!(
            complete_upload(&etags),
            "<CompleteMultipartUpload>\
             <Part><PartNumber>1</PartNumber><ETag>\"a1\"</ETag></Part>\
             <Part><PartNumber>2</PartNumber><ETag>\"b2\"</ETag></Part>\
             </CompleteMultipartUpload>"
        );
    }
}
