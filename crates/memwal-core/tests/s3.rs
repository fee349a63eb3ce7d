//! The S3 backend against a real S3-compatible server on loopback: moto's
//! server (`python3 -m moto.server`, pip package `moto[server]`, installed
//! by `.ci/run`). Conditional create is proven first, so a server that
//! ignored `If-None-Match: *` would fail here rather than let the fencing
//! tests pass vacuously.

mod common;

use std::net::TcpListener;

use bytes::Bytes;
use common::moto::*;
use common::*;
use memwal_core::read::scan::ScanRequest;
use memwal_core::read::shard_reader::ShardReader;
use memwal_core::store::CreateOutcome;
use memwal_core::{ErrorCode, StorageOptions, StorageRoot, WalTailer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backend_create_if_absent_writer_tailer_reader_and_fencing() {
    let moto = start_moto();
    let port = moto.port;

    // 1. Conformance: the server must refuse a second create of one key.
    let root = s3_root(port, "conformance");
    let key = root.path("slot.bin");
    assert_eq!(
        root.put_if_absent(&key, Bytes::from_static(b"first"))
            .await
            .unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        root.put_if_absent(&key, Bytes::from_static(b"second"))
            .await
            .unwrap(),
        CreateOutcome::AlreadyExists,
        "the S3 server ignored If-None-Match: *"
    );
    assert_eq!(
        root.get(&key).await.unwrap().unwrap(),
        Bytes::from_static(b"first")
    );

    // 2. Writer, flush, crash, replay, reader, tailer.
    let root = s3_root(port, "writer");
    let writer = open(&root, None, memtable()).await;
    let shard = writer.shard_id();
    writer.put(vec![batch(0, 10)]).await.unwrap();
    writer.put(vec![batch(10, 5), batch(15, 5)]).await.unwrap();
    writer.force_seal_active().await.unwrap();
    within("a flush to S3", writer.wait_for_flush_drain())
        .await
        .unwrap();
    writer.put(vec![batch(20, 7)]).await.unwrap();
    drop(writer); // no close: the last put lives only in the WAL
    let reopened = open(&root, Some(shard), memtable()).await;
    assert_eq!(reopened.epoch(), 2);
    assert_eq!(reopened.memtable_stats().unwrap().row_count, 7);
    let reader = ShardReader::open(root.clone(), shard).await.unwrap();
    assert_eq!(reader.generations().len(), 1);
    let (_, batches) = reader.scan(&ScanRequest::default()).await.unwrap();
    assert_eq!(ids(&batches), (0..27).collect::<Vec<_>>());
    let tailer = WalTailer::new(root.clone(), shard);
    let mut wal_rows = 0;
    let mut position = 1;
    while let Some(entry) = tailer.read_entry(position).await.unwrap() {
        wal_rows += entry.num_rows();
        position += 1;
    }
    assert_eq!(wal_rows, 27);

    // 3. A third writer fences the second, whose durable put then fails.
    let third = open(&root, Some(shard), memtable()).await;
    let err = reopened.put(vec![batch(100, 1)]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Fenced, "{err}");
    third.put(vec![batch(27, 3)]).await.unwrap();
    third.close().await.unwrap();
    let reader = ShardReader::open(root.clone(), shard).await.unwrap();
    let (_, batches) = reader.scan(&ScanRequest::default()).await.unwrap();
    assert_eq!(ids(&batches), (0..30).collect::<Vec<_>>());
}

#[tokio::test]
async fn credentials_never_appear_in_errors_or_debug_output() {
    // Nothing listens on this port: every request fails.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = StorageOptions {
        region: Some("us-east-1".into()),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        access_key_id: Some("memwal-key-id".into()),
        secret_access_key: Some(SECRET.into()),
        session_token: Some(SECRET.into()),
        allow_http: Some(true),
        ..Default::default()
    };
    assert!(!format!("{options:?}").contains(SECRET));
    let root = StorageRoot::open_with(&format!("s3://{BUCKET}/x"), &options).unwrap();
    assert!(!format!("{root:?}").contains(SECRET));
    let err = root.get(&root.path("missing")).await.unwrap_err();
    assert!(!err.to_string().contains(SECRET), "{err}");
    let bad = StorageRoot::open_with("s3://Bad_Bucket/x", &options).unwrap_err();
    assert_eq!(bad.code(), ErrorCode::InvalidInput);
}
