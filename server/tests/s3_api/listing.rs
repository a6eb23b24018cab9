//! ListObjects V1/V2 paging, delimiters, encoding; ListObjectVersions on an
//! unversioned bucket.

use aws_sdk_s3::types::EncodingType;

use super::{put, with_bucket};

const KEYS: [&str; 9] = [
    "a.txt",
    "docs/one.md",
    "docs/sub/two.md",
    "docs/three.md",
    "img/1.png",
    "img/2.png",
    "z",
    "sp ace/é+1",
    "docs/zz",
];

async fn filled() -> (tessera_server::testing::TestServer, aws_sdk_s3::Client) {
    let (s, c) = with_bucket("lst").await;
    for k in KEYS {
        put(&c, "lst", k, k.as_bytes()).await;
    }
    (s, c)
}

fn sorted() -> Vec<String> {
    let mut k: Vec<String> = KEYS.iter().map(|s| (*s).to_owned()).collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_paging_prefix_delimiter() {
    let (_s, c) = filled().await;
    // Page through two keys at a time.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = c
            .list_objects_v2()
            .bucket("lst")
            .max_keys(2)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        assert!(page.key_count().unwrap() <= 2);
        seen.extend(page.contents().iter().map(|o| o.key().unwrap().to_owned()));
        if page.is_truncated() != Some(true) {
            break;
        }
        token = page.next_continuation_token().map(str::to_owned);
    }
    assert_eq!(seen, sorted());

    let page = c
        .list_objects_v2()
        .bucket("lst")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = page.contents().iter().map(|o| o.key().unwrap()).collect();
    let prefixes: Vec<&str> = page
        .common_prefixes()
        .iter()
        .map(|p| p.prefix().unwrap())
        .collect();
    assert_eq!(keys, ["a.txt", "z"]);
    assert_eq!(prefixes, ["docs/", "img/", "sp ace/"]);

    let page = c
        .list_objects_v2()
        .bucket("lst")
        .prefix("docs/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = page.contents().iter().map(|o| o.key().unwrap()).collect();
    assert_eq!(keys, ["docs/one.md", "docs/three.md", "docs/zz"]);
    assert_eq!(page.common_prefixes()[0].prefix(), Some("docs/sub/"));

    let page = c
        .list_objects_v2()
        .bucket("lst")
        .start_after("img/1.png")
        .send()
        .await
        .unwrap();
    assert_eq!(page.contents()[0].key(), Some("img/2.png"));

    let page = c
        .list_objects_v2()
        .bucket("lst")
        .prefix("docs/")
        .delimiter("/")
        .max_keys(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page.is_truncated(), Some(true));
    let rest = c
        .list_objects_v2()
        .bucket("lst")
        .prefix("docs/")
        .delimiter("/")
        .continuation_token(page.next_continuation_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.key_count().unwrap() + rest.key_count().unwrap(), 4);

    let owned = c
        .list_objects_v2()
        .bucket("lst")
        .fetch_owner(true)
        .max_keys(1)
        .send()
        .await
        .unwrap();
    assert!(owned.contents()[0].owner().and_then(|o| o.id()).is_some());
    let plain = c
        .list_objects_v2()
        .bucket("lst")
        .max_keys(1)
        .send()
        .await
        .unwrap();
    assert!(plain.contents()[0].owner().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_url_encoding() {
    let (_s, c) = filled().await;
    // The SDK decodes url-encoded names itself; the raw listing must still round-trip.
    let page = c
        .list_objects_v2()
        .bucket("lst")
        .prefix("sp ace/")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let key = page.contents()[0].key().unwrap();
    assert!(key == "sp ace/é+1" || key == "sp%20ace/%C3%A9%2B1", "{key}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_markers() {
    let (_s, c) = filled().await;
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = c
            .list_objects()
            .bucket("lst")
            .max_keys(3)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        let keys: Vec<String> = page
            .contents()
            .iter()
            .map(|o| o.key().unwrap().to_owned())
            .collect();
        seen.extend(keys.iter().cloned());
        if page.is_truncated() != Some(true) {
            break;
        }
        marker = page
            .next_marker()
            .map(str::to_owned)
            .or_else(|| keys.last().cloned());
    }
    assert_eq!(seen, sorted());
    let page = c
        .list_objects()
        .bucket("lst")
        .delimiter("/")
        .prefix("img/")
        .send()
        .await
        .unwrap();
    assert_eq!(page.contents().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_of_unversioned_bucket() {
    let (_s, c) = filled().await;
    let v = c.list_object_versions().bucket("lst").send().await.unwrap();
    assert_eq!(v.versions().len(), KEYS.len());
    assert!(
        v.versions()
            .iter()
            .all(|v| v.version_id() == Some("null") && v.is_latest() == Some(true))
    );
    assert!(v.delete_markers().is_empty());
}

/// An empty delimiter is no delimiter: every key, no common prefixes, and
/// no `Delimiter` element in the answer (V1, V2 and versions alike).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_delimiter_lists_flat_and_is_not_echoed() {
    let (_s, c) = filled().await;
    let v2 = c
        .list_objects_v2()
        .bucket("lst")
        .delimiter("")
        .send()
        .await
        .unwrap();
    assert_eq!(v2.delimiter(), None);
    assert!(v2.common_prefixes().is_empty());
    let keys: Vec<String> = v2
        .contents()
        .iter()
        .map(|o| o.key().unwrap().to_owned())
        .collect();
    assert_eq!(keys, sorted());
    let v1 = c
        .list_objects()
        .bucket("lst")
        .delimiter("")
        .send()
        .await
        .unwrap();
    assert_eq!(v1.delimiter(), None);
    assert_eq!(v1.contents().len(), KEYS.len());
    let versions = c
        .list_object_versions()
        .bucket("lst")
        .delimiter("")
        .send()
        .await
        .unwrap();
    assert_eq!(versions.delimiter(), None);
    assert_eq!(versions.versions().len(), KEYS.len());
}
