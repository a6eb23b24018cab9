//! The real `tessera` binary: first start generates and saves credentials,
//! SIGTERM finishes in-flight requests and exits 0, a restart keeps
//! everything, SIGINT exits 0 too, SIGKILL loses nothing that was
//! acknowledged, and requests refused for the client's fault do not fill
//! the log with errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

/// A running `tessera serve` and what it printed at start.
struct Served {
    child: Child,
    s3_url: String,
    admin_url: String,
    access_key: String,
    secret_key: Option<String>,
    _stdout: Lines<BufReader<ChildStdout>>,
}

/// Starts `tessera serve` on `data_dir`, logging warnings to the test's
/// stderr.
async fn serve(data_dir: &Path) -> Served {
    serve_with(data_dir, &[], false).await
}

/// Starts `tessera serve` on `data_dir` with further `flags`; with
/// `capture`, with the default log filter and its log in the child's piped
/// stderr.
async fn serve_with(data_dir: &Path, flags: &[&str], capture: bool) -> Served {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(flags)
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if capture {
        cmd.env_remove("RUST_LOG").stderr(Stdio::piped());
    } else {
        cmd.env("RUST_LOG", "warn").stderr(Stdio::inherit());
    }
    for (name, _) in std::env::vars() {
        if name.starts_with("TESSERA_") {
            cmd.env_remove(name);
        }
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut s3_url, mut admin_url, mut access_key, mut secret_key) = (None, None, None, None);
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("Tessera S3 API on ") {
                s3_url = rest.split(',').next().map(str::to_owned);
                admin_url = rest.split(", admin on ").nth(1).map(str::to_owned);
            } else if let Some(key) = line.strip_prefix("Access key: ") {
                access_key = Some(key.to_owned());
            } else if let Some(key) = line.strip_prefix("Secret key: ") {
                secret_key = Some(key.to_owned());
            } else if line.starts_with("Ready") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("server announced itself");
    Served {
        child,
        s3_url: s3_url.expect("S3 URL printed"),
        admin_url: admin_url.expect("admin URL printed"),
        access_key: access_key.expect("access key printed"),
        secret_key,
        _stdout: lines,
    }
}

fn signal(child: &Child, sig: &str) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn exit_code(mut child: Child) -> Option<i32> {
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("server exited in time")
        .unwrap();
    status.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_restart_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve(dir.path()).await;
    let secret = first
        .secret_key
        .clone()
        .expect("secret printed at first start");
    let creds_file = dir.path().join("credentials");
    let mode = std::fs::metadata(&creds_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        std::fs::read_to_string(&creds_file)
            .unwrap()
            .contains(&secret)
    );
    for name in ["master.key", "admin.token"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    for n in 1..=6 {
        let id = dir.path().join(format!("disks/disk-{n}/store.id"));
        let mode = std::fs::metadata(&id).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", id.display());
    }
    assert!(dir.path().join("meta").is_dir());

    let client = common::client_for(&first.s3_url, &first.access_key, &secret);
    client
        .create_bucket()
        .bucket("durable")
        .send()
        .await
        .unwrap();

    // An upload in flight when SIGTERM arrives still completes.
    let presigned = client
        .put_object()
        .bucket("durable")
        .key("slow.bin")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(120)).unwrap())
        .await
        .unwrap();
    let chunk = Bytes::from(vec![42u8; 256 * 1024]);
    let chunks = 8usize;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
    let body = StreamBody::new(tokio_stream_from(rx));
    let request = http::Request::put(presigned.uri())
        .header(http::header::CONTENT_LENGTH, chunk.len() * chunks)
        .body(body)
        .unwrap();
    let http: Client<_, StreamBody<_>> = Client::builder(TokioExecutor::new()).build_http();
    let upload = tokio::spawn(async move { http.request(request).await });
    tx.send(Ok(Frame::data(chunk.clone()))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&first.child, "-TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 1..chunks {
        tx.send(Ok(Frame::data(chunk.clone()))).await.unwrap();
    }
    drop(tx);
    let resp = upload.await.unwrap().unwrap();
    let status = resp.status();
    let text = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&text));
    assert_eq!(exit_code(first.child).await, Some(0));

    // Restart on the same directory: same key, no new secret, data intact.
    let second = serve(dir.path()).await;
    assert_eq!(second.access_key, first.access_key);
    assert!(
        second.secret_key.is_none(),
        "secret is printed only at first start"
    );
    let client = common::client_for(&second.s3_url, &second.access_key, &secret);
    let got = client
        .get_object()
        .bucket("durable")
        .key("slow.bin")
        .send()
        .await
        .unwrap();
    let bytes = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(bytes.len(), 256 * 1024 * chunks);
    assert!(bytes.iter().all(|b| *b == 42));
    client
        .put_object()
        .bucket("durable")
        .key("after")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    signal(&second.child, "-INT");
    assert_eq!(exit_code(second.child).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_write() {
    // The state machine commits most batches without fsync (the raft log is
    // the durable record): a kill right after the answers must still find
    // every write on restart, replayed from the log.
    let dir = tempfile::tempdir().unwrap();
    let first = serve(dir.path()).await;
    let secret = first.secret_key.clone().unwrap();
    let client = common::client_for(&first.s3_url, &first.access_key, &secret);
    client.create_bucket().bucket("kill").send().await.unwrap();
    let mut expected = std::collections::BTreeMap::new();
    for i in 0..60u32 {
        let key = format!("k{i:03}");
        // Small objects live in metadata only; every fifth is large enough for shards.
        let len = if i % 5 == 0 {
            200_000
        } else {
            100 + i as usize
        };
        let body: Vec<u8> = (0..len).map(|b| (b as u32 * 7 + i) as u8).collect();
        client
            .put_object()
            .bucket("kill")
            .key(&key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        expected.insert(key, body);
    }
    for i in (0..60u32).step_by(7) {
        let key = format!("k{i:03}");
        client
            .delete_object()
            .bucket("kill")
            .key(&key)
            .send()
            .await
            .unwrap();
        expected.remove(&key);
    }
    signal(&first.child, "-KILL");
    exit_code(first.child).await;

    let second = serve(dir.path()).await;
    let client = common::client_for(&second.s3_url, &second.access_key, &secret);
    let listed = listed_keys(&client, "kill").await;
    assert_eq!(listed, expected.keys().cloned().collect::<Vec<_>>());
    for (key, body) in &expected {
        let got = client
            .get_object()
            .bucket("kill")
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            &got.body.collect().await.unwrap().into_bytes()[..],
            &body[..],
            "{key}"
        );
    }
    signal(&second.child, "-TERM");
    assert_eq!(exit_code(second.child).await, Some(0));
}

/// The keys `ListObjectsV2` shows in `bucket` (one page).
async fn listed_keys(client: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    client
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// The receiving end of a channel as a stream.
fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + Sync + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .env("TESSERA_ACCESS_KEY", "TKFROMENV00000000000")
        .env("TESSERA_SECRET_KEY", "secret-from-the-environment")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let url = first
        .strip_prefix("Tessera S3 API on ")
        .and_then(|r| r.split(',').next())
        .unwrap()
        .to_owned();
    assert_eq!(
        lines.next_line().await.unwrap().unwrap(),
        "Access key: TKFROMENV00000000000"
    );
    let client = common::client_for(&url, "TKFROMENV00000000000", "secret-from-the-environment");
    client
        .create_bucket()
        .bucket("from-env")
        .send()
        .await
        .unwrap();
    assert!(!dir.path().join("credentials").exists());
    signal(&child, "-TERM");
    assert_eq!(exit_code(child).await, Some(0));
}

/// Every shard file of the embedded default's six disks.
fn shard_count(data_dir: &Path) -> usize {
    common::shard_files(data_dir).len()
}

/// The body of object `key` in the kill test: derived from the key alone,
/// so an upload that committed without an answer can be checked too.
fn kill_body(key: &str) -> Vec<u8> {
    let seed = key
        .bytes()
        .fold(7u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
    (0..1_200_000usize)
        .map(|i| (i as u8).wrapping_mul(11).wrapping_add(seed))
        .collect()
}

/// Runs the real `tessera admin job start NAME` against a served process.
fn start_job(served: &Served, data_dir: &Path, name: &str) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["admin", "--url", &served.admin_url, "--data-dir"])
        .arg(data_dir)
        .args(["job", "start", name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_upload_leaves_orphans_the_sweep_removes() {
    let dir = tempfile::tempdir().unwrap();
    let grace = ["--orphan-grace-secs", "2"];
    let first = serve_with(dir.path(), &grace, false).await;
    let secret = first.secret_key.clone().unwrap();
    let client = common::client_for(&first.s3_url, &first.access_key, &secret);
    client.create_bucket().bucket("kill").send().await.unwrap();

    // Four writers upload until the process dies under them.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (client, acked) = (client.clone(), acked.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("w{w}-{i:04}");
                    let sent = client
                        .put_object()
                        .bucket("kill")
                        .key(&key)
                        .body(ByteStream::from(kill_body(&key)))
                        .send()
                        .await;
                    match sent {
                        Ok(_) => acked.lock().unwrap().push(key),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 12 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(&first.child, "-KILL");
    exit_code(first.child).await;
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    // Shards of a write that never committed: a whole set under an id no
    // metadata names, as a kill between the shard writes and the commit
    // leaves it.
    let planted: Vec<std::path::PathBuf> = common::shard_files(dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&format!("-{:08x}-", 1)))
        .take(6)
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let shards = p.parent().unwrap().parent().unwrap().parent().unwrap();
            let orphan = shards
                .join("ff/ff")
                .join(format!("{}{}", "f".repeat(32), &name[32..]));
            std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
            std::fs::copy(&p, &orphan).unwrap();
            orphan
        })
        .collect();
    assert!(!planted.is_empty());

    let second = serve_with(dir.path(), &grace, false).await;
    let client = common::client_for(&second.s3_url, &second.access_key, &secret);
    let listed = listed_keys(&client, "kill").await;
    for key in &acked {
        assert!(listed.contains(key), "acknowledged {key} survives");
    }
    let before = shard_count(dir.path());
    assert!(
        before > 6 * listed.len(),
        "orphans are on disk: {before} files, {} objects",
        listed.len()
    );

    // Past the grace period, a sweep leaves exactly the committed shards.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    start_job(&second, dir.path(), "sweep");
    let swept =
        common::eventually(30, || async { shard_count(dir.path()) == 6 * listed.len() }).await;
    assert!(
        swept,
        "{} shard files for {} objects",
        shard_count(dir.path()),
        listed.len()
    );
    assert!(
        planted.iter().all(|p| !p.exists()),
        "planted orphans removed"
    );
    for key in &listed {
        let bytes = common::get_bytes(&client, "kill", key).await;
        assert!(bytes == kill_body(key), "{key} reads back whole");
    }
    signal(&second.child, "-TERM");
    assert_eq!(exit_code(second.child).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_log_no_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve_with(dir.path(), &[], true).await;
    let mut stderr: ChildStderr = served.child.stderr.take().unwrap();
    let log = tokio::spawn(async move {
        let mut log = String::new();
        stderr.read_to_string(&mut log).await.unwrap();
        log
    });
    let secret = served.secret_key.clone().unwrap();
    let http: Client<_, http_body_util::Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    // Anyone can send these: unsigned reads and writes, a presigned URL
    // with a forged credential, a header signature by an unknown key.
    let base = &served.s3_url;
    let refused = [
        ("GET", format!("{base}/bucket/key"), None),
        ("PUT", format!("{base}/bucket/key"), None),
        (
            "GET",
            format!("{base}/bucket?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=forged"),
            None,
        ),
        (
            "GET",
            format!("{base}/bucket"),
            Some(
                "AWS4-HMAC-SHA256 Credential=TKUNKNOWN/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
            ),
        ),
    ];
    for (method, url, authorization) in refused {
        let mut request = http::Request::builder().method(method).uri(&url);
        if let Some(value) = authorization {
            request = request.header(http::header::AUTHORIZATION, value);
        }
        let body = http_body_util::Full::new(Bytes::from_static(b"data"));
        let resp = http.request(request.body(body).unwrap()).await.unwrap();
        assert!(
            resp.status().is_client_error(),
            "{method} {url}: {}",
            resp.status()
        );
    }
    // A refusal by a known key (no such bucket) too.
    let client = common::client_for(&served.s3_url, &served.access_key, &secret);
    assert_eq!(
        common::get_code(&client, "missing", "key").await,
        "NoSuchBucket"
    );

    signal(&served.child, "-TERM");
    assert_eq!(exit_code(served.child).await, Some(0));
    let log = log.await.unwrap();
    assert!(
        log.contains("tessera serving"),
        "the log was captured: {log}"
    );
    assert!(!log.contains("ERROR"), "{log}");
}
