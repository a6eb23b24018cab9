//! The `multipart/form-data` body of a browser upload (POST Object, and
//! the console's upload form), read as a stream: the fields before the
//! file part are gathered (at most [`MAX_PRE_FILE_BYTES`], S3's 20 KB), the
//! file part's bytes are handed on as they arrive, holding back only what
//! could be the start of the closing boundary, so a file of any size passes
//! in bounded memory. Fields after the file are ignored, as S3 ignores them.

use bytes::{Buf, Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};
use memchr::memmem;

/// Most bytes of form data and boundaries before the file's content (S3:
/// "The form data and boundaries (excluding the contents of the file)
/// cannot exceed 20KB").
pub(crate) const MAX_PRE_FILE_BYTES: usize = 20 * 1024;

/// A body's bytes as they arrive.
pub(crate) type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// Why a form cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum FormError {
    /// Not well-formed `multipart/form-data`.
    #[error("the body of the POST request is not well-formed multipart/form-data: {0}")]
    Malformed(&'static str),
    /// More than [`MAX_PRE_FILE_BYTES`] before the file's content.
    #[error("the fields before the file are too large")]
    FieldsTooLarge,
    /// The form ended without a `file` field.
    #[error("the form has no file field")]
    NoFile,
    /// The body could not be read.
    #[error("reading the body failed: {0}")]
    Body(String),
}

/// Whether `content_type` is `multipart/form-data` (with any parameters).
pub(crate) fn is_form(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or_default();
    mime.trim().eq_ignore_ascii_case("multipart/form-data")
}

/// The boundary of a `multipart/form-data` content type, `None` for any
/// other type or a boundary RFC 2046 does not allow (none, or over 70
/// characters).
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    if !is_form(content_type) {
        return None;
    }
    content_type.split(';').skip(1).find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

/// The file's bytes, as they arrive.
pub(crate) type FileStream = BoxStream<'static, Result<Bytes, FormError>>;

/// A form read up to its file.
#[derive(Debug, Clone)]
pub(crate) struct Form {
    /// The fields before the file, in order, names lower-cased (S3 field
    /// names are case-insensitive).
    pub(crate) fields: Vec<(String, String)>,
    /// The file name the client gave the file part (`filename=`), without
    /// any directories.
    pub(crate) file_name: String,
}

impl Form {
    /// The value of field `name` (lower case), if the form has it.
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The body being read: what arrived and is not consumed yet.
struct Reader {
    body: ByteStream,
    buf: BytesMut,
    /// `\r\n--boundary`: what ends every part.
    delimiter: Vec<u8>,
    /// Bytes consumed before the file's content.
    consumed: usize,
}

impl Reader {
    /// Reads one more chunk; `false` at the end of the body.
    async fn fill(&mut self) -> Result<bool, FormError> {
        match self.body.next().await {
            Some(Ok(chunk)) => {
                self.buf.extend_from_slice(&chunk);
                Ok(true)
            }
            Some(Err(e)) => Err(FormError::Body(e.to_string())),
            None => Ok(false),
        }
    }

    /// Consumes `n` bytes of the part before the file.
    fn advance(&mut self, n: usize) -> Result<(), FormError> {
        self.consumed += n;
        if self.consumed > MAX_PRE_FILE_BYTES {
            return Err(FormError::FieldsTooLarge);
        }
        self.buf.advance(n);
        Ok(())
    }

    /// The bytes up to the first `pattern`, consuming both; within the
    /// pre-file limit.
    async fn until(&mut self, pattern: &[u8]) -> Result<Bytes, FormError> {
        loop {
            if let Some(i) = memmem::find(&self.buf, pattern) {
                let head = self.buf.split_to(i).freeze();
                self.consumed += i;
                self.advance(pattern.len())?;
                return Ok(head);
            }
            if self.consumed + self.buf.len() > MAX_PRE_FILE_BYTES + pattern.len() {
                return Err(FormError::FieldsTooLarge);
            }
            if !self.fill().await? {
                return Err(FormError::Malformed("the body ends within a part"));
            }
        }
    }

    /// At least `n` buffered bytes, unless the body ends first.
    async fn want(&mut self, n: usize) -> Result<(), FormError> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(FormError::Malformed("the body ends within a boundary"));
            }
        }
        Ok(())
    }
}

/// What a part's headers say (its `Content-Type` is not used: S3 takes
/// the object's from the `Content-Type` field).
struct PartHeaders {
    name: String,
    file_name: Option<String>,
}

/// Parses the `Content-Disposition` of a part.
fn part_headers(block: &[u8]) -> Result<PartHeaders, FormError> {
    let text = std::str::from_utf8(block).map_err(|_| FormError::Malformed("part headers"))?;
    let mut disposition = None;
    for line in text.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else {
            return Err(FormError::Malformed("a part header without a colon"));
        };
        if name.trim().eq_ignore_ascii_case("content-disposition") {
            disposition = Some(value.trim());
        }
    }
    let disposition =
        disposition.ok_or(FormError::Malformed("a part without Content-Disposition"))?;
    let params = disposition_params(disposition)?;
    let param = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    Ok(PartHeaders {
        name: param("name").ok_or(FormError::Malformed("a part without a name"))?,
        file_name: param("filename"),
    })
}

/// The parameters of `form-data; name="a"; filename="b"` (quoted values
/// may hold `;`).
fn disposition_params(value: &str) -> Result<Vec<(String, String)>, FormError> {
    let malformed = FormError::Malformed("Content-Disposition");
    let (kind, mut rest) = value.split_once(';').unwrap_or((value, ""));
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return Err(malformed);
    }
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            return Ok(out);
        }
        let (key, after) = rest
            .split_once('=')
            .ok_or(FormError::Malformed("Content-Disposition"))?;
        let after = after.trim_start();
        // Browsers quote values without escapes (a `"` in a file name is
        // sent as `%22`), and old ones send Windows paths: a backslash is a
        // character like any other.
        let (val, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let (val, rest) = quoted
                .split_once('"')
                .ok_or(FormError::Malformed("Content-Disposition"))?;
            (val.to_owned(), rest)
        } else {
            let (v, r) = after.split_once(';').unwrap_or((after, ""));
            (v.trim().to_owned(), r)
        };
        out.push((key.trim().to_owned(), val));
        rest = remaining;
    }
}

/// The name of a file without the directories a browser may send with it
/// (S3: only the text after the last `/` or `\`).
fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// Reads `body` (of a request whose boundary is `boundary`) up to the
/// file's content; the file's bytes follow in the stream.
pub(crate) async fn read(
    body: ByteStream,
    boundary: &str,
) -> Result<(Form, FileStream), FormError> {
    let mut delimiter = b"\r\n--".to_vec();
    delimiter.extend_from_slice(boundary.as_bytes());
    let mut r = Reader {
        body,
        buf: BytesMut::new(),
        delimiter,
        consumed: 0,
    };
    // The first boundary has no CRLF before it (any preamble is skipped).
    let delimiter = r.delimiter.clone();
    r.until(&delimiter[2..]).await?;
    let mut fields = Vec::new();
    loop {
        // After a boundary: `--` ends the form, CRLF starts a part.
        r.want(2).await?;
        if r.buf.starts_with(b"--") {
            return Err(FormError::NoFile);
        }
        if !r.buf.starts_with(b"\r\n") {
            return Err(FormError::Malformed("a boundary not followed by CRLF"));
        }
        r.advance(2)?;
        let block = r.until(b"\r\n\r\n").await?;
        let headers = part_headers(&block)?;
        let name = headers.name.to_ascii_lowercase();
        if name == "file" {
            let form = Form {
                fields,
                file_name: base_name(headers.file_name.as_deref().unwrap_or("")).to_owned(),
            };
            return Ok((form, file_stream(r)));
        }
        let value = r.until(&delimiter).await?;
        let value = String::from_utf8(value.to_vec())
            .map_err(|_| FormError::Malformed("a field that is not UTF-8"))?;
        fields.push((name, value));
    }
}

/// The file part's bytes: everything up to the next delimiter, less what
/// could be the delimiter's start kept back until more arrives.
fn file_stream(reader: Reader) -> FileStream {
    futures::stream::try_unfold(Some(reader), |state| async move {
        let Some(mut r) = state else {
            return Ok(None);
        };
        loop {
            if let Some(i) = memmem::find(&r.buf, &r.delimiter) {
                let last = r.buf.split_to(i).freeze();
                return Ok(Some((last, None)));
            }
            let keep = r.delimiter.len() - 1;
            if r.buf.len() > keep {
                let ready = r.buf.split_to(r.buf.len() - keep).freeze();
                return Ok(Some((ready, Some(r))));
            }
            if !r.fill().await? {
                return Err(FormError::Malformed("the body ends within the file"));
            }
        }
    })
    .filter(|chunk| futures::future::ready(!matches!(chunk, Ok(b) if b.is_empty())))
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(chunks: Vec<&'static [u8]>) -> ByteStream {
        futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c))),
        )
        .boxed()
    }

    async fn file(mut s: FileStream) -> Result<Vec<u8>, FormError> {
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    const FORM: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"Key\"\r\n\r\nup/${filename}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"x-amz-meta-a\"\r\n\r\nsemi;colon\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"C:\\dir\\a;b.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--Xy world\r\n--XyZ\r\nContent-Disposition: form-data; name=\"after\"\r\n\r\nignored\r\n--XyZ--\r\n";

    #[tokio::test]
    async fn fields_then_the_file_in_any_chunking() {
        for size in [1, 2, 3, 7, 64, FORM.len()] {
            let chunks: Vec<&'static [u8]> = FORM.chunks(size).collect();
            let (form, stream) = read(body(chunks), "XyZ").await.unwrap();
            assert_eq!(
                form.fields,
                vec![
                    ("key".to_owned(), "up/${filename}".to_owned()),
                    ("x-amz-meta-a".to_owned(), "semi;colon".to_owned())
                ]
            );
            assert_eq!(form.field("key"), Some("up/${filename}"));
            assert_eq!(form.file_name, "a;b.txt");
            assert_eq!(
                file(stream).await.unwrap(),
                b"hello\r\n--Xy world",
                "{size}"
            );
        }
    }

    #[tokio::test]
    async fn refusals() {
        let no_file: &'static [u8] =
            b"--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--b--\r\n";
        assert_eq!(
            read(body(vec![no_file]), "b").await.err(),
            Some(FormError::NoFile)
        );
        let cut: &'static [u8] =
            b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabcdefgh";
        let (_, stream) = read(body(vec![cut]), "b").await.unwrap();
        assert!(matches!(file(stream).await, Err(FormError::Malformed(_))));
        let no_name: &'static [u8] = b"--b\r\nContent-Disposition: form-data\r\n\r\nk\r\n--b--";
        assert!(matches!(
            read(body(vec![no_name]), "b").await,
            Err(FormError::Malformed(_))
        ));
        let big = Box::leak(
            format!(
                "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n{}\r\n--b--",
                "a".repeat(MAX_PRE_FILE_BYTES)
            )
            .into_bytes()
            .into_boxed_slice(),
        );
        assert_eq!(
            read(body(vec![big]), "b").await.err(),
            Some(FormError::FieldsTooLarge)
        );
    }

    #[test]
    fn boundaries_from_the_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(
            boundary("Multipart/Form-Data;boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary("application/xml"), None);
        assert_eq!(boundary("multipart/form-data"), None);
    }
}
