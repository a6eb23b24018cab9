//! Browser uploads (POST Object): raw `multipart/form-data` forms built
//! and SigV4-signed here as a browser SDK does (policy → base64 → HMAC
//! under the signing key), posted over real sockets, path style and
//! virtual-host style; what they store is read back with aws-sdk-s3.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_s3::Client;
use hmac::{Hmac, KeyInit as _, Mac as _};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use sha2::Sha256;
use tessera_server::testing::TestServer;
use time::OffsetDateTime;
use time::macros::format_description;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{common, data, get, md5_hex, xml_code};

const BUCKET: &str = "uploads";
const BOUNDARY: &str = "----TesseraFormBoundary7MA4YWxkTrZu0gW";

/// HMAC-SHA256, for signing as the browser SDKs do.
fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// Signs forms for one key, as a browser SDK's presigned POST does.
struct Signer {
    access_key: String,
    secret_key: String,
}

impl Signer {
    fn root(server: &TestServer) -> Self {
        let c = server.credentials();
        Signer {
            access_key: c.access_key.clone(),
            secret_key: c.secret_key.clone(),
        }
    }

    /// The authentication fields of a form whose policy has `conditions`
    /// (plus the bucket and the `x-amz-*` fields, as SDKs add them) and
    /// expires in `valid_for`.
    fn fields(&self, conditions: Vec<Value>, valid_for: time::Duration) -> Vec<(String, String)> {
        let now = OffsetDateTime::now_utc();
        let stamp = now
            .format(format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap();
        let day = &stamp[..8];
        let credential = format!("{}/{day}/us-east-1/s3/aws4_request", self.access_key);
        let expiration = (now + valid_for)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let mut all = conditions;
        all.push(json!({"bucket": BUCKET}));
        all.push(json!({"x-amz-algorithm": "AWS4-HMAC-SHA256"}));
        all.push(json!({"x-amz-credential": credential}));
        all.push(json!({"x-amz-date": stamp}));
        let policy = policy_b64(&json!({"expiration": expiration, "conditions": all}));
        let key = [day, "us-east-1", "s3", "aws4_request"].iter().fold(
            format!("AWS4{}", self.secret_key).into_bytes(),
            |k, part| hmac(&k, part.as_bytes()),
        );
        let signature = super::hex_string(&hmac(&key, policy.as_bytes()));
        vec![
            ("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into()),
            ("X-Amz-Credential".into(), credential),
            ("X-Amz-Date".into(), stamp),
            ("Policy".into(), policy),
            ("X-Amz-Signature".into(), signature),
        ]
    }
}

fn policy_b64(doc: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(doc.to_string())
}

/// `(name, value)` pairs from string slices.
fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A `multipart/form-data` body: `fields`, then the file part (when
/// `file` is given) named `file_name`.
fn multipart(fields: &[(String, String)], file: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((file_name, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// An answer: status, headers, body.
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// POSTs `body` as a form to `path` of `server`, with `host` as the Host
/// header when given.
async fn post(server: &TestServer, host: Option<&str>, path: &str, body: Vec<u8>) -> Answer {
    use hyper_util::client::legacy::Client as HttpClient;
    use hyper_util::rt::TokioExecutor;
    let client: HttpClient<_, Full<bytes::Bytes>> =
        HttpClient::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("{}{path}", server.s3_url()))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        );
    if let Some(host) = host {
        req = req.header("host", host);
    }
    let resp = client
        .request(req.body(Full::new(bytes::Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

/// Whether `key` exists in [`BUCKET`].
async fn exists(client: &Client, key: &str) -> bool {
    client
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .is_ok()
}

async fn with_uploads_bucket() -> (TestServer, Client) {
    super::with_bucket(BUCKET).await
}

/// A signed form carrying everything PutObject takes as headers, answered
/// 201 with the PostResponse document: the stored object has the file's
/// bytes (several stripes, so it streams through the shard writer), the
/// key from `${filename}`, the content type, user metadata, canned ACL
/// and tags the form gave.
#[tokio::test]
async fn a_signed_form_stores_the_file_as_put_object_would() {
    let (server, client) = with_uploads_bucket().await;
    let file = data(3 * 1024 * 1024 + 17, 1);
    let tagging =
        "<Tagging><TagSet><Tag><Key>team</Key><Value>web</Value></Tag></TagSet></Tagging>";
    let mut fields = pairs(&[
        ("key", "docs/${filename}"),
        ("Content-Type", "text/plain"),
        ("x-amz-meta-Owner", "ann"),
        ("x-amz-meta-city", "Zürich"),
        ("acl", "public-read"),
        ("tagging", tagging),
        ("success_action_status", "201"),
        ("x-ignore-note", "not in the policy"),
    ]);
    fields.extend(Signer::root(&server).fields(
        vec![
            json!(["starts-with", "$key", "docs/"]),
            json!(["eq", "$Content-Type", "text/plain"]),
            json!({"x-amz-meta-owner": "ann"}),
            json!(["starts-with", "$x-amz-meta-city", "Z"]),
            json!({"acl": "public-read"}),
            json!(["starts-with", "$tagging", ""]),
            json!(["eq", "$success_action_status", "201"]),
            json!(["content-length-range", 1, 10 * 1024 * 1024]),
        ],
        time::Duration::minutes(5),
    ));
    let answer = post(
        &server,
        None,
        &format!("/{BUCKET}"),
        multipart(&fields, Some(("C:\\Users\\ann\\report 1.txt", &file))),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    let key = "docs/report 1.txt";
    let etag = format!("\"{}\"", md5_hex(&file));
    let location = format!("{}/{BUCKET}/docs/report%201.txt", server.s3_url());
    assert_eq!(
        answer.text(),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>{location}</Location><Bucket>{BUCKET}</Bucket><Key>{key}</Key><ETag>&quot;{}&quot;</ETag></PostResponse>",
            md5_hex(&file)
        )
    );
    assert_eq!(answer.headers["etag"], etag.as_str());
    assert_eq!(answer.headers["location"], location.as_str());

    assert_eq!(get(&client, BUCKET, key).await, file);
    let head = client
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert_eq!(
        head.metadata().unwrap().get("owner").map(String::as_str),
        Some("ann")
    );
    // Non-ASCII values come back RFC 2047-encoded, as from PutObject.
    assert_eq!(
        head.metadata().unwrap().get("city").map(String::as_str),
        Some("=?UTF-8?B?WsO8cmljaA==?=")
    );
    let tags = client
        .get_object_tagging()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tag_set().len(), 1);
    assert_eq!(
        (tags.tag_set()[0].key(), tags.tag_set()[0].value()),
        ("team", "web")
    );
    // public-read: anyone may read it.
    let (status, body) = super::anonymous(
        "GET",
        &format!("{}/{BUCKET}/docs/report%201.txt", server.s3_url()),
        b"",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, file);
}

/// Virtual-host style (`Host: uploads.DOMAIN`, path `/`): the default
/// answer is 204, `success_action_status` 200 an empty 200, and
/// `success_action_redirect` a 303 to the URL with bucket, key and ETag
/// in its query.
#[tokio::test]
async fn virtual_host_forms_redirect_or_answer_200_or_204() {
    const DOMAIN: &str = "s3.tessera.test";
    let server = TestServer::start_with(|c| c.domain = Some(DOMAIN.to_owned()))
        .await
        .unwrap();
    let client = common::s3_client(&server);
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    let host = format!("{BUCKET}.{DOMAIN}:{}", server.s3_addr().port());
    let signer = Signer::root(&server);
    let form = |key: &str, extra: &[(&str, &str)]| {
        let mut fields = pairs(&[("key", key)]);
        fields.extend(pairs(extra));
        let mut conditions = vec![json!({"key": key})];
        conditions.extend(extra.iter().map(|(k, v)| json!(["eq", format!("${k}"), v])));
        fields.extend(signer.fields(conditions, time::Duration::minutes(5)));
        fields
    };

    let file = data(1000, 2);
    let answer = post(
        &server,
        Some(&host),
        "/",
        multipart(&form("plain", &[]), Some(("a.bin", &file))),
    )
    .await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    assert!(answer.body.is_empty());
    assert_eq!(
        answer.headers["etag"],
        format!("\"{}\"", md5_hex(&file)).as_str()
    );
    assert_eq!(
        answer.headers["location"],
        format!("http://{host}/plain").as_str()
    );
    assert_eq!(get(&client, BUCKET, "plain").await, file);

    let fields = form("ok", &[("success_action_status", "200")]);
    let answer = post(
        &server,
        Some(&host),
        "/",
        multipart(&fields, Some(("a.bin", &file))),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.body.is_empty());

    let fields = form(
        "went/there",
        &[(
            "success_action_redirect",
            "https://app.example/done?from=form",
        )],
    );
    let answer = post(
        &server,
        Some(&host),
        "/",
        multipart(&fields, Some(("a.bin", &file))),
    )
    .await;
    assert_eq!(answer.status, 303, "{}", answer.text());
    assert_eq!(
        answer.headers["location"],
        format!(
            "https://app.example/done?from=form&bucket={BUCKET}&key=went%2Fthere&etag=%22{}%22",
            md5_hex(&file)
        )
        .as_str()
    );
    assert_eq!(get(&client, BUCKET, "went/there").await, file);
}

/// Every wrong field gets S3's error (status, code, message), and nothing
/// is stored.
#[tokio::test]
async fn every_wrong_field_gets_the_s3_error() {
    let (server, client) = with_uploads_bucket().await;
    let signer = Signer::root(&server);
    let small = data(100, 3);
    let key_field = pairs(&[("key", "k")]);
    let signed = |conditions: Vec<Value>, valid_for: time::Duration| {
        let mut f = key_field.clone();
        f.extend(signer.fields(conditions, valid_for));
        f
    };
    let ok_conditions = || vec![json!({"key": "k"})];
    let five_min = time::Duration::minutes(5);
    let replace = |mut fields: Vec<(String, String)>, name: &str, value: &str| {
        for f in &mut fields {
            if f.0.eq_ignore_ascii_case(name) {
                f.1 = value.to_owned();
            }
        }
        fields
    };
    let without = |fields: Vec<(String, String)>, name: &str| {
        fields
            .into_iter()
            .filter(|f| !f.0.eq_ignore_ascii_case(name))
            .collect::<Vec<_>>()
    };
    let wrong_secret = Signer {
        access_key: signer.access_key.clone(),
        secret_key: "not-the-secret".into(),
    };
    let unknown_key = Signer {
        access_key: "TKNOSUCHKEY0000000000".into(),
        secret_key: "whatever".into(),
    };
    let mut with_key = key_field.clone();
    with_key.extend(wrong_secret.fields(ok_conditions(), five_min));
    let bad_signature = with_key;
    let mut unknown = key_field.clone();
    unknown.extend(unknown_key.fields(ok_conditions(), five_min));
    let mut extra = signed(ok_conditions(), five_min);
    extra.insert(1, ("x-amz-meta-sneaky".into(), "1".into()));
    let mut big_fields = key_field.clone();
    big_fields.push(("x-ignore-padding".into(), "p".repeat(21 * 1024)));

    let well_formed = |fields: &[(String, String)]| multipart(fields, Some(("f.bin", &small)));
    let cases: Vec<(&str, Vec<u8>, u16, &str, &str)> = vec![
        (
            "expired policy",
            well_formed(&signed(ok_conditions(), time::Duration::seconds(-1))),
            403,
            "AccessDenied",
            "Invalid according to Policy: Policy expired.",
        ),
        (
            "key against its condition",
            well_formed(&replace(signed(ok_conditions(), five_min), "key", "other")),
            403,
            "AccessDenied",
            "Invalid according to Policy: Policy Condition failed: [\"eq\", \"$key\", \"k\"]",
        ),
        (
            "field outside the policy",
            well_formed(&extra),
            403,
            "AccessDenied",
            "Invalid according to Policy: Extra input fields: x-amz-meta-sneaky",
        ),
        (
            "file over the range",
            well_formed(&signed(
                vec![json!({"key": "k"}), json!(["content-length-range", 0, 99])],
                five_min,
            )),
            400,
            "EntityTooLarge",
            "exceeds the maximum allowed size",
        ),
        (
            "file under the range",
            well_formed(&signed(
                vec![
                    json!({"key": "k"}),
                    json!(["content-length-range", 101, 1000]),
                ],
                five_min,
            )),
            400,
            "EntityTooSmall",
            "smaller than the minimum allowed size",
        ),
        (
            "no key",
            well_formed(&without(signed(ok_conditions(), five_min), "key")),
            400,
            "InvalidArgument",
            "Bucket POST must contain a field named 'key'.",
        ),
        (
            "no signature",
            well_formed(&without(
                signed(ok_conditions(), five_min),
                "x-amz-signature",
            )),
            400,
            "InvalidArgument",
            "Bucket POST must contain a field named 'x-amz-signature'.",
        ),
        (
            "no credential",
            well_formed(&without(
                signed(ok_conditions(), five_min),
                "x-amz-credential",
            )),
            400,
            "InvalidArgument",
            "Bucket POST must contain a field named 'x-amz-credential'.",
        ),
        (
            "policy not JSON",
            well_formed(&replace(
                signed(ok_conditions(), five_min),
                "policy",
                "bm90IGpzb24=",
            )),
            400,
            "InvalidPolicyDocument",
            "Invalid Policy: Invalid JSON.",
        ),
        (
            "signed with another secret",
            well_formed(&bad_signature),
            403,
            "SignatureDoesNotMatch",
            "does not match the signature you provided",
        ),
        (
            "tampered policy",
            well_formed(&replace(
                signed(ok_conditions(), five_min),
                "policy",
                &policy_b64(
                    &json!({"expiration": "2099-01-01T00:00:00Z", "conditions": [["starts-with", "$key", ""]]}),
                ),
            )),
            403,
            "SignatureDoesNotMatch",
            "does not match the signature you provided",
        ),
        (
            "unknown access key",
            well_formed(&unknown),
            403,
            "InvalidAccessKeyId",
            "does not exist",
        ),
        (
            "no file",
            multipart(&signed(ok_conditions(), five_min), None),
            400,
            "InvalidArgument",
            "POST requires exactly one file upload per request.",
        ),
        (
            "file never closed",
            {
                let mut b = well_formed(&signed(ok_conditions(), five_min));
                b.truncate(b.len() - BOUNDARY.len() - 10);
                b
            },
            400,
            "MalformedPOSTRequest",
            "not well-formed multipart/form-data",
        ),
        (
            "fields over 20 KB",
            well_formed(&big_fields),
            400,
            "MaxPostPreDataLengthExceededError",
            "too large",
        ),
    ];
    for (what, body, status, code, message) in cases {
        let answer = post(&server, None, &format!("/{BUCKET}"), body).await;
        assert_eq!(
            (answer.status, xml_code(&answer.body).as_str()),
            (status, code),
            "{what}: {}",
            answer.text()
        );
        assert!(
            answer.text().contains(&xml_escape(message)),
            "{what}: {}",
            answer.text()
        );
        assert!(!exists(&client, "k").await, "{what} stored the file");
        assert!(!exists(&client, "other").await, "{what} stored the file");
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Anonymous forms (no policy, no signature) are uploads of the
/// anonymous user: refused unless the bucket policy lets anyone
/// `s3:PutObject` there.
#[tokio::test]
async fn anonymous_forms_only_where_the_bucket_policy_allows() {
    let (server, client) = with_uploads_bucket().await;
    let file = data(5000, 4);
    let form = |key: &str| multipart(&pairs(&[("key", key)]), Some(("f.bin", &file)));
    let answer = post(&server, None, &format!("/{BUCKET}/"), form("public/a")).await;
    assert_eq!(
        (answer.status, xml_code(&answer.body).as_str()),
        (403, "AccessDenied"),
        "{}",
        answer.text()
    );
    assert!(!exists(&client, "public/a").await);

    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::{BUCKET}/public/*"}}]}}"#
    );
    client
        .put_bucket_policy()
        .bucket(BUCKET)
        .policy(policy)
        .send()
        .await
        .unwrap();
    let answer = post(&server, None, &format!("/{BUCKET}/"), form("public/a")).await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    assert_eq!(get(&client, BUCKET, "public/a").await, file);
    let answer = post(&server, None, &format!("/{BUCKET}/"), form("private/a")).await;
    assert_eq!(
        (answer.status, xml_code(&answer.body).as_str()),
        (403, "AccessDenied")
    );
    assert!(!exists(&client, "private/a").await);
}

/// `content-length-range` is enforced while the file streams: a client
/// announcing a 1 GiB form is answered EntityTooLarge once the file passes
/// the policy's 1 MiB, long before it could send the rest, and nothing is
/// stored (no object, no shard left behind).
#[tokio::test]
async fn the_length_range_stops_a_large_file_as_it_streams() {
    let (server, client) = with_uploads_bucket().await;
    let mut fields = pairs(&[("key", "huge")]);
    fields.extend(Signer::root(&server).fields(
        vec![
            json!({"key": "huge"}),
            json!(["content-length-range", 0, 1024 * 1024]),
        ],
        time::Duration::minutes(5),
    ));
    let mut head = multipart(&fields, None);
    // Cut the closing boundary: the file part follows, then never ends.
    head.truncate(head.len() - BOUNDARY.len() - 6);
    head.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big\"\r\n\r\n")
            .as_bytes(),
    );
    let (text, sent) = stream_form(&server, BOUNDARY, head).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("<Code>EntityTooLarge</Code>"), "{text}");
    assert!(sent < FORM_DECLARED / 4, "the whole form was read: {sent}");
    assert!(!exists(&client, "huge").await);
    let dir = server.data_dir().to_owned();
    assert!(
        common::eventually(10, || {
            let dir = dir.clone();
            async move { common::shard_files(&dir).is_empty() }
        })
        .await,
        "shards left behind"
    );
}

/// A form whose boundary RFC 2046 does not allow (over 70 characters) is
/// refused as malformed before its file is read, signed or not; it is
/// never gathered in memory to be judged.
#[tokio::test]
async fn a_form_with_a_boundary_too_long_is_refused_unread() {
    let (server, _client) = with_uploads_bucket().await;
    let boundary = "b".repeat(71);
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n"
    );
    let (text, sent) = stream_form(&server, &boundary, head.into_bytes()).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("<Code>MalformedPOSTRequest</Code>"), "{text}");
    assert!(sent < FORM_DECLARED / 4, "the whole form was read: {sent}");
}

/// What [`stream_form`] announces as the form's length: 1 GiB.
const FORM_DECLARED: u64 = 1 << 30;

/// Sends `head` (a form cut within its file part) to [`BUCKET`] with
/// `boundary`, announcing [`FORM_DECLARED`] bytes, then file bytes until
/// the server answers and closes: the answer, and the bytes sent.
async fn stream_form(server: &TestServer, boundary: &str, head: Vec<u8>) -> (String, u64) {
    let declared = FORM_DECLARED;
    let sock = tokio::net::TcpStream::connect(server.s3_addr())
        .await
        .unwrap();
    let (mut rd, mut wr) = sock.into_split();
    let request = format!(
        "POST /{BUCKET} HTTP/1.1\r\nHost: {}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {declared}\r\n\r\n",
        server.s3_addr()
    );
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let writer = tokio::spawn(async move {
        wr.write_all(request.as_bytes()).await?;
        wr.write_all(&head).await?;
        let chunk = vec![b'x'; 64 * 1024];
        // Stops when the server closes the connection.
        while counter.load(Ordering::Relaxed) < declared {
            wr.write_all(&chunk).await?;
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        Ok::<(), std::io::Error>(())
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("</Error>") {
            let n = rd.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no answer while the file streamed");
    drop(rd);
    writer.abort();
    (
        String::from_utf8_lossy(&answer).into_owned(),
        sent.load(Ordering::Relaxed),
    )
}
