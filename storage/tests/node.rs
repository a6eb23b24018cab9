//! Storage nodes over the real cluster network: each node a NodeService on
//! its own mutual-TLS RPC server over LocalDir stores; the gateway side
//! writes and reads erasure-coded objects through Remote stores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{body, collect, data};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tessera_net::body::{Body, BodyError, full};
use tessera_net::tls::{client_config, server_config};
use tessera_net::{ClusterCa, RpcClient, RpcServer};
use tessera_storage::format::HEADER_LEN;
use tessera_storage::node::protocol;
use tessera_storage::{
    DataKey, Geometry, LocalDir, NodeScrub, NodeService, ObjectId, ObjectLocation, ReadOptions,
    Remote, ShardId, ShardStore, StorageError, WriteOptions, read_object, scrub_shard,
    verify_shard, write_object,
};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A running node: its address, its stores' ids and directories, and its
/// scrub findings.
struct Node {
    number: u64,
    addr: String,
    stores: Vec<String>,
    server: RpcServer,
    scrub: Arc<NodeScrub>,
    _dir: tempfile::TempDir,
}

/// A node of a version before `/v1/verify`: it answers that path as one it
/// does not know.
struct OlderNode(NodeService);

impl tessera_net::HttpService for OlderNode {
    async fn serve(&self, req: Request<hyper::body::Incoming>) -> http::Response<Body> {
        if req.uri().path() == protocol::VERIFY {
            return tessera_net::server::reply(StatusCode::NOT_FOUND, protocol::VERIFY);
        }
        self.0.serve(req).await
    }
}

async fn start_node(ca: &ClusterCa, number: u64, disks: usize) -> Node {
    start_node_of(ca, number, disks, false).await
}

/// A node; with `older`, one that does not know `/v1/verify`.
async fn start_node_of(ca: &ClusterCa, number: u64, disks: usize, older: bool) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<Arc<dyn ShardStore>> = (1..=disks)
        .map(|d| {
            let store = LocalDir::open(dir.path().join(format!("disk-{d}")));
            Arc::new(store.unwrap()) as Arc<dyn ShardStore>
        })
        .collect();
    let mut ids: Vec<String> = stores.iter().map(|s| s.id().to_owned()).collect();
    ids.sort();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let tls = server_config(&ca.issue(&format!("node-{number}"), &[]).unwrap()).unwrap();
    let scrub = Arc::new(NodeScrub::open(dir.path().join("scrub.findings")).unwrap());
    let service = NodeService::new(stores, Arc::clone(&scrub));
    let server = if older {
        RpcServer::start("node", listener, tls, Arc::new(OlderNode(service)))
    } else {
        RpcServer::start("node", listener, tls, Arc::new(service))
    };
    Node {
        number,
        addr,
        stores: ids,
        server,
        scrub,
        _dir: dir,
    }
}

fn gateway_client(ca: &ClusterCa) -> Arc<RpcClient> {
    let identity = ca.issue("gateway-1", &[]).unwrap();
    Arc::new(RpcClient::new(Some(client_config(&identity).unwrap())))
}

/// The Remote stores of `nodes`, as the node lists them.
async fn remotes(client: &Arc<RpcClient>, nodes: &[Node]) -> Vec<Arc<dyn ShardStore>> {
    let mut out: Vec<Arc<dyn ShardStore>> = Vec::new();
    for node in nodes {
        let ids = Remote::list_stores(client, node.number, &node.addr, TIMEOUT)
            .await
            .unwrap();
        assert_eq!(ids, node.stores);
        for id in ids {
            out.push(Arc::new(Remote::new(
                id,
                node.number,
                &node.addr,
                Arc::clone(client),
                TIMEOUT,
            )));
        }
    }
    out
}

fn shard(object: ObjectId, index: u16) -> ShardId {
    ShardId {
        object,
        part: 1,
        index,
    }
}

async fn read(
    stores: &[Arc<dyn ShardStore>],
    object: ObjectId,
    size: u64,
    geometry: Geometry,
    key: &DataKey,
    range: std::ops::Range<u64>,
) -> Result<Vec<u8>, tessera_storage::StorageError> {
    let loc = ObjectLocation {
        object,
        part: 1,
        size,
        geometry,
        stores: stores.iter().cloned().map(Some).collect(),
    };
    let opts = ReadOptions {
        shard_timeout: TIMEOUT,
        ..ReadOptions::default()
    };
    collect(read_object(loc, key.clone(), range, opts)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_round_trip_through_remote_stores_and_survive_a_lost_node() {
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let mut nodes = Vec::new();
    for n in 1..=3 {
        nodes.push(start_node(&ca, n, 2).await);
    }
    let client = gateway_client(&ca);
    let stores = remotes(&client, &nodes).await;
    let geometry = Geometry::new(4, 2, 64 << 10).unwrap();
    let object = ObjectId::random();
    let key = DataKey::generate();
    let bytes = data(3 * (1 << 20) + 12_345, 7);
    let opts = WriteOptions {
        geometry,
        ..WriteOptions::default()
    };
    let outcome = write_object(&stores, object, 1, &key, &opts, body(&bytes, 100_000))
        .await
        .unwrap();
    assert_eq!(outcome.size, bytes.len() as u64);

    // Every shard landed, whole, on its node's disk: stat over the wire
    // agrees with the node's own store.
    for (i, store) in stores.iter().enumerate() {
        let stat = store.stat(shard(object, i as u16)).await.unwrap().unwrap();
        assert!(stat.size > 0);
        let page = store.list(None, 100).await.unwrap();
        assert_eq!(page, vec![shard(object, i as u16)]);
        let health = store.health().await.unwrap();
        assert!(health.ok && health.capacity >= health.free);
    }

    let size = bytes.len() as u64;
    let all = read(&stores, object, size, geometry, &key, 0..size)
        .await
        .unwrap();
    assert_eq!(all, bytes);
    let mid = read(&stores, object, size, geometry, &key, 1_000_000..1_300_000)
        .await
        .unwrap();
    assert_eq!(mid, &bytes[1_000_000..1_300_000]);

    // Node 2 goes away (two shards, as many as the parity): reads go on.
    let lost = nodes.remove(1);
    lost.server.stop().await;
    let all = read(&stores, object, size, geometry, &key, 0..size)
        .await
        .unwrap();
    assert_eq!(all, bytes);
    let err = stores[2].stat(shard(object, 2)).await.unwrap_err();
    assert!(
        matches!(err, tessera_storage::StorageError::Unavailable { .. }),
        "{err}"
    );

    // Deleting through the wire removes the shard; a second delete finds none.
    assert!(stores[0].delete(shard(object, 0)).await.unwrap());
    assert!(!stores[0].delete(shard(object, 0)).await.unwrap());
    assert_eq!(stores[0].stat(shard(object, 0)).await.unwrap(), None);
    let missing = stores[0].get(shard(object, 0), 0..10).await.err().unwrap();
    assert!(
        matches!(missing, tessera_storage::StorageError::NotFound(_)),
        "{missing}"
    );
    for node in nodes {
        node.server.stop().await;
    }
}

#[tokio::test]
async fn a_gateway_reads_and_acknowledges_a_nodes_scrub_findings() {
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let node = start_node(&ca, 1, 2).await;
    let client = gateway_client(&ca);
    let stores = remotes(&client, std::slice::from_ref(&node)).await;
    let object = ObjectId::random();
    for (i, id) in node.stores.iter().enumerate() {
        node.scrub
            .record(id, shard(object, i as u16), "bad xxh3")
            .unwrap();
    }
    node.scrub
        .record(&node.stores[0], shard(object, 5), "short")
        .unwrap();

    // Each store's findings, and only its own.
    let scrubbing = stores[0].self_scrubbing().expect("a node scrubs itself");
    let found = scrubbing.scrub_findings().await.unwrap();
    let shards: Vec<ShardId> = found.iter().map(|f| f.shard).collect();
    assert_eq!(shards, vec![shard(object, 0), shard(object, 5)]);
    assert!(found.iter().all(|f| f.store == node.stores[0]));

    // Acknowledged up to the first: the second stays, the other store's too.
    scrubbing.acknowledge_findings(found[0].seq).await.unwrap();
    let left = scrubbing.scrub_findings().await.unwrap();
    assert_eq!(left, found[1..].to_vec());
    let other = stores[1].self_scrubbing().unwrap();
    assert_eq!(other.scrub_findings().await.unwrap().len(), 1);

    // A gateway's request starts the node's pass.
    assert!(!node.scrub.take_request());
    scrubbing.start_scrub().await.unwrap();
    assert!(node.scrub.take_request());
    node.server.stop().await;
}

/// PUTs a shard upload of `chunks` with an optional length trailer.
async fn raw_upload(
    client: &RpcClient,
    node: &Node,
    path: &str,
    chunks: Vec<&'static [u8]>,
    trailer: Option<&str>,
) -> StatusCode {
    let mut frames: Vec<Result<Frame<Bytes>, BodyError>> = chunks
        .into_iter()
        .map(|c| Ok(Frame::data(Bytes::from_static(c))))
        .collect();
    if let Some(length) = trailer {
        let mut t = HeaderMap::new();
        t.insert(
            protocol::LENGTH_TRAILER,
            HeaderValue::from_str(length).unwrap(),
        );
        frames.push(Ok(Frame::trailers(t)));
    }
    let body: Body = StreamBody::new(futures::stream::iter(frames)).boxed_unsync();
    let request = Request::put(path).body(body).unwrap();
    let response = client
        .send(node.number, &node.addr, request, TIMEOUT)
        .await
        .unwrap();
    response.status()
}

#[tokio::test]
async fn a_node_keeps_nothing_of_a_cut_or_malformed_upload() {
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let node = start_node(&ca, 1, 1).await;
    let client = gateway_client(&ca);
    let store = Remote::new(&node.stores[0], 1, &node.addr, Arc::clone(&client), TIMEOUT);
    let id = shard(ObjectId::random(), 0);
    let path = protocol::shard_path(&node.stores[0], id);

    // Ended without a trailer, a trailer that lies, a trailer that is no
    // number: refused, and no shard appears.
    for (trailer, what) in [
        (None, "no trailer"),
        (Some("9"), "wrong length"),
        (Some("x"), "bad trailer"),
    ] {
        let status = raw_upload(&client, &node, &path, vec![b"abc", b"def"], trailer).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        assert_eq!(store.stat(id).await.unwrap(), None, "{what}");
    }
    // The same upload with its true length is kept.
    let status = raw_upload(&client, &node, &path, vec![b"abc", b"def"], Some("6")).await;
    assert_eq!(status, StatusCode::OK);
    let kept = collect(store.get(id, 0..u64::MAX).await.unwrap())
        .await
        .unwrap();
    assert_eq!(kept, b"abcdef");

    // A Remote put (its own trailer) replaces it.
    let put = futures::stream::iter([Ok(Bytes::from_static(b"xyz"))]).boxed();
    assert_eq!(store.put(id, put).await.unwrap(), 3);
    let kept = collect(store.get(id, 1..3).await.unwrap()).await.unwrap();
    assert_eq!(kept, b"yz");

    // Malformed requests: refused with the status that says why.
    let other_store = format!("{path}?start=0&end=9").replace(&node.stores[0], "other");
    let cases: Vec<(&str, String, Body, StatusCode)> = vec![
        (
            "GET",
            format!("{path}?start=5"),
            full(""),
            StatusCode::BAD_REQUEST,
        ),
        ("GET", other_store, full(""), StatusCode::NOT_FOUND),
        (
            "GET",
            "/v1/shards/st/00/1/2?start=0&end=1".into(),
            full(""),
            StatusCode::NOT_FOUND,
        ),
        (
            "POST",
            protocol::STAT.into(),
            full("garbage"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            protocol::LIST.into(),
            full(vec![0u8; 1 << 20]),
            StatusCode::BAD_REQUEST,
        ),
        (
            "DELETE",
            path.clone(),
            full(""),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "POST",
            "/v1/unknown".into(),
            full(""),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (method, uri, body, want) in cases {
        let request = Request::builder()
            .method(method)
            .uri(&uri)
            .body(body)
            .unwrap();
        let response = client.send(1, &node.addr, request, TIMEOUT).await.unwrap();
        assert_eq!(response.status(), want, "{method} {uri}");
    }
    // ... and the stored shard is untouched.
    let kept = collect(store.get(id, 0..u64::MAX).await.unwrap())
        .await
        .unwrap();
    assert_eq!(kept, b"xyz");
    node.server.stop().await;
}

/// A gateway has a node check a shard on its own disk (what repair and
/// replication verify a written shard with): intact, damaged and missing
/// come back as the reading check would say them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_verifies_a_shard_where_it_is() {
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let node = start_node(&ca, 1, 3).await;
    let client = gateway_client(&ca);
    let stores = remotes(&client, std::slice::from_ref(&node)).await;
    let geometry = Geometry::new(2, 1, 64 << 10).unwrap();
    let object = ObjectId::random();
    let opts = WriteOptions {
        geometry,
        ..WriteOptions::default()
    };
    let (bytes, key) = (data(300_000, 3), DataKey::generate());
    let write = |stores: Vec<Arc<dyn ShardStore>>| {
        let (key, opts, bytes) = (&key, &opts, &bytes);
        async move { write_object(&stores, object, 1, key, opts, body(bytes, 50_000)).await }
    };
    write(stores.clone()).await.unwrap();
    for (i, store) in stores.iter().enumerate() {
        let id = shard(object, i as u16);
        let verified = verify_shard(store.as_ref(), id).await.unwrap();
        assert_eq!(verified, scrub_shard(store.as_ref(), id).await.unwrap());
        assert_eq!(verified.trailer.size, 300_000);
    }

    // A byte flipped on the node's disk: the node's check finds it.
    let id = shard(object, 0);
    let file = (1..=3)
        .map(|d| LocalDir::open(node._dir.path().join(format!("disk-{d}"))).unwrap())
        .map(|disk| disk.shard_path(id))
        .find(|path| path.exists())
        .unwrap();
    let mut held = std::fs::read(&file).unwrap();
    held[HEADER_LEN + 1_000] ^= 1;
    std::fs::write(&file, held).unwrap();
    let damaged = verify_shard(stores[0].as_ref(), id).await.unwrap_err();
    assert!(matches!(damaged, StorageError::Corrupt { .. }), "{damaged}");

    // A shard that is not there is missing, not damaged.
    assert!(stores[1].delete(shard(object, 1)).await.unwrap());
    let missing = verify_shard(stores[1].as_ref(), shard(object, 1))
        .await
        .unwrap_err();
    assert!(matches!(missing, StorageError::NotFound(_)), "{missing}");
    node.server.stop().await;

    // A node of an older version has its shards read back instead.
    let older = start_node_of(&ca, 2, 3, true).await;
    let stores = remotes(&client, std::slice::from_ref(&older)).await;
    write(stores.clone()).await.unwrap();
    let id = shard(object, 2);
    let verified = verify_shard(stores[2].as_ref(), id).await.unwrap();
    assert_eq!(verified, scrub_shard(stores[2].as_ref(), id).await.unwrap());
    older.server.stop().await;
}
