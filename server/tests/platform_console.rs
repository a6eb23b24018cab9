//! The web console on the admin listener, over real sockets: nothing
//! without a session, no cross-site posts, logins checked, and a key's
//! role and grants respected (the browser walk-through is in
//! `console-tests/`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tessera_server::admin::{GrantSet, KeyCreate};
use tessera_server::testing::TestServer;

/// An answer: status, `Location`, `Set-Cookie`, body.
struct Answer {
    status: StatusCode,
    location: String,
    cookie: String,
    body: Bytes,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A browser of one console: its cookie and the headers it sends.
struct Browser {
    base: String,
    host: String,
    cookie: String,
}

impl Browser {
    fn new(server: &TestServer) -> Self {
        let addr = server.server().admin_addr;
        Browser {
            base: format!("http://{addr}"),
            host: addr.to_string(),
            cookie: String::new(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        content_type: &str,
        body: Vec<u8>,
    ) -> Answer {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, content_type);
        if !self.cookie.is_empty() {
            req = req.header(header::COOKIE, &self.cookie);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = client
            .request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let text = |name| {
            resp.headers()
                .get(name)
                .map(|v: &http::HeaderValue| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let (status, location, cookie) = (
            resp.status(),
            text(header::LOCATION),
            text(header::SET_COOKIE),
        );
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            location,
            cookie,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, &[], "text/plain", Vec::new())
            .await
    }

    /// Posts a url-encoded form from the console's own origin.
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let origin = self.base.clone();
        self.post_from(path, form, &[("origin", &origin)]).await
    }

    async fn post_from(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Answer {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut all = vec![("host", self.host.as_str())];
        all.extend_from_slice(headers);
        self.send(
            Method::POST,
            path,
            &all,
            "application/x-www-form-urlencoded",
            body.into_bytes(),
        )
        .await
    }

    /// Uploads `bytes` as `name` through the bucket page's multipart form.
    async fn upload(&self, bucket: &str, csrf: &str, name: &str, bytes: &[u8]) -> Answer {
        self.upload_form(bucket, csrf, name, bytes, true).await
    }

    /// The same form, its closing boundary left out unless `whole`.
    async fn upload_form(
        &self,
        bucket: &str,
        csrf: &str,
        name: &str,
        bytes: &[u8],
        whole: bool,
    ) -> Answer {
        let boundary = "----console-test-boundary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        if whole {
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        }
        let origin = self.base.clone();
        self.send(
            Method::POST,
            &format!("/console/upload?bucket={bucket}&prefix="),
            &[("host", &self.host), ("origin", &origin)],
            &format!("multipart/form-data; boundary={boundary}"),
            body,
        )
        .await
    }

    /// Logs in; keeps the session cookie.
    async fn login(&mut self, access_key: &str, secret: &str) -> Answer {
        let answer = self
            .post(
                "/console/login",
                &[("access_key", access_key), ("secret_key", secret)],
            )
            .await;
        if let Some(pair) = answer.cookie.split(';').next()
            && !pair.is_empty()
        {
            self.cookie = pair.to_owned();
        }
        answer
    }

    /// The CSRF token of the session, read from a page's form.
    async fn csrf(&self) -> String {
        let page = self.get("/console/buckets").await.text();
        let at = page.find("name=\"csrf\" value=\"").expect("a form") + 19;
        page[at..at + 64].to_owned()
    }
}

const PAGES: [&str; 8] = [
    "/console/",
    "/console/cluster",
    "/console/buckets",
    "/console/bucket?name=b",
    "/console/object?bucket=b&key=k",
    "/console/keys",
    "/console/jobs",
    "/console/nowhere",
];

const FORMS: [&str; 8] = [
    "/console/logout",
    "/console/buckets",
    "/console/versioning",
    "/console/upload?bucket=b",
    "/console/keys",
    "/console/keys/delete",
    "/console/grants",
    "/console/nowhere",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_shown_or_done_without_a_session() {
    let server = TestServer::start().await.unwrap();
    // Someone else is logged in: their session is not ours.
    let creds = server.credentials().clone();
    let mut other = Browser::new(&server);
    other.login(&creds.access_key, &creds.secret_key).await;
    assert_eq!(other.get("/console/cluster").await.status, StatusCode::OK);
    let mut browser = Browser::new(&server);
    for cookie in ["", "tessera_console=0123456789abcdef"] {
        browser.cookie = cookie.to_owned();
        for page in PAGES {
            let answer = browser.get(page).await;
            assert_eq!(answer.status, StatusCode::SEE_OTHER, "{page}");
            assert_eq!(answer.location, "/console/login", "{page}");
        }
        for form in FORMS {
            let answer = browser.post(form, &[("bucket", "sneaky")]).await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{form}");
        }
    }
    let client = common::s3_client(&server);
    assert!(common::bucket_names(&client).await.is_empty());
    // The login page itself and the vendored assets are open.
    assert_eq!(browser.get("/console/login").await.status, StatusCode::OK);
    let css = browser.get("/console/static/console.css").await;
    assert_eq!(css.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_checked() {
    let server = TestServer::start().await.unwrap();
    let creds = server.credentials().clone();
    let mut browser = Browser::new(&server);

    for (key, secret) in [
        (creds.access_key.as_str(), "wrong-secret"),
        (creds.access_key.as_str(), ""),
        ("NOSUCHKEY", creds.secret_key.as_str()),
        ("", "not-the-admin-token"),
    ] {
        let answer = browser.login(key, secret).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{key}");
        assert!(answer.cookie.is_empty(), "{key}: {}", answer.cookie);
        assert!(answer.text().contains("Wrong access key or secret"));
    }
    assert_eq!(
        browser.get("/console/cluster").await.status,
        StatusCode::SEE_OTHER
    );

    // A login from another site is refused before the secret is looked at.
    let answer = browser
        .post_from(
            "/console/login",
            &[
                ("access_key", &creds.access_key),
                ("secret_key", &creds.secret_key),
            ],
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);

    let answer = browser.login(&creds.access_key, &creds.secret_key).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location, "/console/cluster");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console/"] {
        assert!(answer.cookie.contains(attribute), "{}", answer.cookie);
    }
    let page = browser.get("/console/cluster").await;
    assert_eq!(page.status, StatusCode::OK);
    let text = page.text();
    assert!(
        text.contains("Health:") && text.contains("Metadata members"),
        "{text}"
    );
    assert!(text.contains("leader"), "{text}");

    // Logging out ends the session on the server, not only in the browser.
    let csrf = browser.csrf().await;
    let answer = browser.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        browser.get("/console/cluster").await.status,
        StatusCode::SEE_OTHER
    );

    // The admin token logs in too, as the root key.
    let token = server.server().admin_token.clone();
    let answer = browser.login("", &token).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/console/keys").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_posts_are_refused_and_same_site_ones_work() {
    let server = TestServer::start().await.unwrap();
    let creds = server.credentials().clone();
    let client = common::s3_client(&server);
    let mut browser = Browser::new(&server);
    browser.login(&creds.access_key, &creds.secret_key).await;
    let csrf = browser.csrf().await;
    assert_eq!(csrf.len(), 64);

    let refused = [
        browser
            .post("/console/buckets", &[("bucket", "forged")])
            .await,
        browser
            .post(
                "/console/buckets",
                &[("bucket", "forged"), ("csrf", "0000")],
            )
            .await,
        browser
            .post_from(
                "/console/buckets",
                &[("bucket", "forged"), ("csrf", &csrf)],
                &[("origin", "http://evil.example")],
            )
            .await,
        browser
            .post_from(
                "/console/buckets",
                &[("bucket", "forged"), ("csrf", &csrf)],
                &[("sec-fetch-site", "cross-site")],
            )
            .await,
        browser.upload("forged", "0000", "f.bin", b"x").await,
    ];
    for answer in refused {
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());
    }
    assert!(common::bucket_names(&client).await.is_empty());

    // The same form from the console's own page works.
    let answer = browser
        .post("/console/buckets", &[("bucket", "made"), ("csrf", &csrf)])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    assert_eq!(common::bucket_names(&client).await, vec!["made".to_owned()]);

    // Upload (two parts of an S3 multipart upload) and download: bytes equal.
    let data: Vec<u8> = (0..9_000_000u32).map(|i| (i % 251) as u8).collect();
    let answer = browser.upload("made", &csrf, "big.bin", &data).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    assert_eq!(common::get_bytes(&client, "made", "big.bin").await, data);
    let answer = browser.get("/console/object?bucket=made&key=big.bin").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body.as_ref(), data.as_slice());

    // A form cut off within its file is refused and stores nothing, of one
    // part or of several; a file name keeps no directories.
    for size in [1000, 9_000_000] {
        let answer = browser
            .upload_form("made", &csrf, "cut.bin", &data[..size], false)
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
        assert!(
            answer.text().contains("MalformedPOSTRequest"),
            "{}",
            answer.text()
        );
    }
    let answer = browser
        .upload("made", &csrf, "C:\\Users\\me\\small.bin", &data[..10])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    let listed = client
        .list_objects_v2()
        .bucket("made")
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["big.bin", "small.bin"]);
    let uploads = client
        .list_multipart_uploads()
        .bucket("made")
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
    assert!(
        browser
            .get("/console/bucket?name=made")
            .await
            .text()
            .contains("big.bin")
    );

    // Versioning is switched from the bucket page.
    let answer = browser
        .post(
            "/console/versioning",
            &[("bucket", "made"), ("status", "Enabled"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    let versioning = client
        .get_bucket_versioning()
        .bucket("made")
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_key_manages_keys_and_grants() {
    let server = TestServer::start().await.unwrap();
    let creds = server.credentials().clone();
    let root = common::s3_client(&server);
    root.create_bucket().bucket("team").send().await.unwrap();
    let admin = server.server().admin_client();
    let mut browser = Browser::new(&server);
    browser.login(&creds.access_key, &creds.secret_key).await;
    let csrf = browser.csrf().await;

    let page = browser
        .post(
            "/console/keys",
            &[("name", "writer"), ("role", "read-write"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let text = page.text();
    let field = |class: &str| {
        let tag = format!("<code class=\"{class}\">");
        let at = text.find(&tag).expect(class) + tag.len();
        text[at..at + text[at..].find('<').unwrap()].to_owned()
    };
    let (id, secret) = (field("access"), field("secret"));
    let made = admin.list_keys().await.unwrap();
    let key = made
        .iter()
        .find(|k| k.access_key == id)
        .expect("the new key");
    assert!(key.allow_create_bucket && !key.admin && key.name == "writer");

    let answer = browser
        .post(
            "/console/grants",
            &[
                ("access_key", &id),
                ("bucket", "team"),
                ("read", "on"),
                ("write", "on"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    // The secret shown once works, with the grant just set.
    let writer = common::client_for(&server.s3_url(), &id, &secret);
    common::put_bytes(&writer, "team", "w.txt", b"written".to_vec()).await;

    let answer = browser
        .post(
            "/console/keys/delete",
            &[("access_key", &id), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert!(
        admin
            .list_keys()
            .await
            .unwrap()
            .iter()
            .all(|k| k.access_key != id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_key_sees_but_cannot_change() {
    let server = TestServer::start().await.unwrap();
    let root = common::s3_client(&server);
    root.create_bucket().bucket("shared").send().await.unwrap();
    common::put_bytes(&root, "shared", "doc.txt", b"hello".to_vec()).await;
    let admin = server.server().admin_client();
    let key = admin
        .create_key(&KeyCreate {
            name: "viewer".to_owned(),
            allow_create_bucket: false,
            admin: false,
        })
        .await
        .unwrap();
    admin
        .set_grant(&GrantSet {
            access_key: key.access_key.clone(),
            bucket: "shared".to_owned(),
            read: true,
            write: false,
            owner: false,
        })
        .await
        .unwrap();

    let mut browser = Browser::new(&server);
    let answer = browser.login(&key.access_key, &key.secret_key).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let csrf = browser.csrf().await;

    // It sees the bucket it may read, and its object.
    assert!(
        browser
            .get("/console/buckets")
            .await
            .text()
            .contains("shared")
    );
    assert!(
        browser
            .get("/console/bucket?name=shared")
            .await
            .text()
            .contains("doc.txt")
    );
    let file = browser
        .get("/console/object?bucket=shared&key=doc.txt")
        .await;
    assert_eq!(
        (file.status, file.body.as_ref()),
        (StatusCode::OK, &b"hello"[..])
    );

    // It cannot create a bucket, upload, change versioning or touch keys.
    let answer = browser
        .post("/console/buckets", &[("bucket", "mine"), ("csrf", &csrf)])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.text().contains("AccessDenied"), "{}", answer.text());
    assert_eq!(common::bucket_names(&root).await, vec!["shared".to_owned()]);
    let answer = browser.upload("shared", &csrf, "new.txt", b"nope").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        common::get_code(&root, "shared", "new.txt").await,
        "NoSuchKey"
    );
    let answer = browser
        .post(
            "/console/versioning",
            &[("bucket", "shared"), ("status", "Enabled"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        browser.get("/console/keys").await.status,
        StatusCode::FORBIDDEN
    );
    let answer = browser
        .post(
            "/console/keys",
            &[("name", "escalate"), ("role", "admin"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(admin.list_keys().await.unwrap().len(), 2);
}
