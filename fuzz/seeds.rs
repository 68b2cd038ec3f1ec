//! Writes the seed corpora of the fuzz targets into `fuzz/corpus/<target>/`: a few valid
//! frames, one encoded request per kind of message, and valid raft-log segments (raw mode)
//! and segment recipes (structured mode), each a small file.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds` (scripts/fuzz.sh seeds).

use std::collections::HashMap;
use std::path::Path;

use bytes::BytesMut;
use core_shard::log::format::{put_append, put_compact, put_remove, Entry, HardState, BLOCK};
use net::frame::encode;
use net::proto::eraftpb;
use net::proto::rpcpb::{Envelope, Method, Status};
use net::proto::{adminpb, kvrpcpb, metapb, pdpb, raft_serverpb};
use percore_fuzz::segment::{put_batch, structured_seed};
use percore_fuzz::Output;
use prost::Message;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn ctx() -> Option<kvrpcpb::Context> {
    Some(kvrpcpb::Context {
        region_id: 7,
        region_epoch: Some(metapb::RegionEpoch { conf_ver: 2, version: 3 }),
        peer: Some(metapb::Peer { id: 8, store_id: 1, role: 0 }),
    })
}

fn region() -> metapb::Region {
    metapb::Region {
        id: 7,
        start_key: b"a".to_vec().into(),
        end_key: b"m".to_vec().into(),
        region_epoch: Some(metapb::RegionEpoch { conf_ver: 2, version: 3 }),
        peers: vec![metapb::Peer { id: 8, store_id: 1, role: 0 }, metapb::Peer { id: 9, store_id: 2, role: 1 }],
    }
}

/// One encoded request for each kind of message, named after its method.
fn requests() -> Vec<(Method, Vec<u8>)> {
    let header = Some(pdpb::RequestHeader { cluster_id: 42 });
    let msg = raft_serverpb::RaftMessage {
        region_id: 7,
        from_peer: Some(metapb::Peer { id: 8, store_id: 1, role: 0 }),
        to_peer: Some(metapb::Peer { id: 9, store_id: 2, role: 0 }),
        message: Some(eraftpb::Message {
            msg_type: eraftpb::MessageType::MsgAppend as i32,
            to: 9,
            from: 8,
            term: 5,
            log_term: 5,
            index: 10,
            commit: 10,
            entries: vec![eraftpb::Entry { term: 5, index: 11, data: b"put k v".to_vec(), ..Default::default() }],
            ..Default::default()
        }),
        region_epoch: Some(metapb::RegionEpoch { conf_ver: 2, version: 3 }),
        ..Default::default()
    };
    vec![
        (Method::RawGet, kvrpcpb::RawGetRequest { context: ctx(), key: b"key".to_vec().into() }.encode_to_vec()),
        (
            Method::RawBatchPut,
            kvrpcpb::RawBatchPutRequest {
                context: ctx(),
                pairs: vec![
                    kvrpcpb::KvPair { key: b"k1".to_vec().into(), value: b"v1".to_vec().into() },
                    kvrpcpb::KvPair { key: b"k2".to_vec().into(), value: vec![0u8; 100].into() },
                ],
            }
            .encode_to_vec(),
        ),
        (
            Method::RawScan,
            kvrpcpb::RawScanRequest {
                context: ctx(),
                start_key: b"a".to_vec().into(),
                end_key: b"z".to_vec().into(),
                limit: 100,
                key_only: true,
                reverse: true,
            }
            .encode_to_vec(),
        ),
        (
            Method::RawCas,
            kvrpcpb::RawCasRequest {
                context: ctx(),
                key: b"k".to_vec().into(),
                value: b"new".to_vec().into(),
                previous_not_exist: false,
                previous_value: b"old".to_vec().into(),
                delete: false,
            }
            .encode_to_vec(),
        ),
        (
            Method::PdBootstrap,
            pdpb::BootstrapRequest {
                header: header.clone(),
                store: Some(metapb::Store {
                    id: 1,
                    address: "127.0.0.1:20160".into(),
                    shard_addresses: vec!["127.0.0.1:20160".into(), "127.0.0.1:20161".into()],
                    version: "0.1.0".into(),
                    start_timestamp: 1_700_000_000_000,
                    ..Default::default()
                }),
                region: Some(region()),
            }
            .encode_to_vec(),
        ),
        (
            Method::PdRegionHeartbeat,
            pdpb::RegionHeartbeatRequest {
                header: header.clone(),
                region: Some(region()),
                leader: Some(metapb::Peer { id: 8, store_id: 1, role: 0 }),
                leader_shard: 1,
                approximate_size: 1 << 20,
                approximate_keys: 1000,
                term: 5,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            Method::PdScheduleConfig,
            pdpb::ScheduleConfigRequest {
                header: header.clone(),
                set: HashMap::from([("leader-schedule-limit".to_string(), "4".to_string())]),
            }
            .encode_to_vec(),
        ),
        (Method::PdTso, pdpb::TsoRequest { header, count: 10 }.encode_to_vec()),
        (
            Method::RaftBatch,
            raft_serverpb::RaftMessageBatch { from_store: 1, msgs: vec![msg.clone(), msg] }.encode_to_vec(),
        ),
        (
            Method::SnapshotChunk,
            raft_serverpb::SnapshotChunk {
                from_store: 1,
                region_id: 7,
                snap_index: 100,
                snap_term: 5,
                nonce: 99,
                seq: 0,
                data: vec![7u8; 64].into(),
                last: true,
            }
            .encode_to_vec(),
        ),
        (
            Method::AdminChangePeer,
            adminpb::ChangePeerRequest {
                context: ctx(),
                change_type: 1,
                peer: Some(metapb::Peer { id: 10, store_id: 3, role: 1 }),
            }
            .encode_to_vec(),
        ),
        (Method::DebugRegion, adminpb::RegionDebugRequest { region_id: 7 }.encode_to_vec()),
    ]
}

fn frame_seeds(dir: &Path) -> std::io::Result<()> {
    let header = |raw: u32, flags: u8, cut: u32| {
        let mut o = Output::default();
        o.u32(raw).u8(flags).u32(cut);
        o.0
    };
    let mut frames = BytesMut::new();
    for (i, (method, payload)) in requests().into_iter().take(4).enumerate() {
        let env = Envelope {
            request_id: i as u64 + 1,
            method: method as i32,
            payload: payload.into(),
            status: (i % 2 == 1).then(|| Status { code: 0, message: String::new() }),
            is_response: i % 2 == 1,
        };
        encode(&env, &mut frames);
    }
    let mut one = BytesMut::new();
    encode(&Envelope { request_id: 1, method: Method::PdTso as i32, ..Default::default() }, &mut one);
    let cat = |h: Vec<u8>, b: &[u8]| [h, b.to_vec()].concat();
    write(dir, "seed-one-frame", &cat(header(0, 2, 3), &one))?;
    write(dir, "seed-four-frames", &cat(header(1 << 20, 1, 17), &frames))?;
    write(dir, "seed-torn-frame", &cat(header(0, 3, 9), &frames[..frames.len() - 5]))?;
    write(dir, "seed-small-max", &cat(header(20, 0, 2), &frames))?;
    write(dir, "seed-too-large", &cat(header(16, 0, 0), &[0xff, 0xff, 0xff, 0xff, 1, 2, 3]))?;
    write(dir, "seed-empty-envelope", &cat(header(0, 2, 0), &[0, 0, 0, 0]))
}

fn request_seeds(dir: &Path) -> std::io::Result<()> {
    for (method, bytes) in requests() {
        write(dir, &format!("seed-{method:?}"), &bytes)?;
    }
    Ok(())
}

fn log_seeds(dir: &Path) -> std::io::Result<()> {
    // Raw mode: a segment of three batches (the second spans two blocks), then zeros.
    let mut seg = Vec::new();
    put_batch(&mut seg, 1, 3, |b| {
        let hs = HardState { term: 5, vote: 1, commit: 4 };
        let entries: Vec<Entry> =
            (1..=3).map(|i| Entry { index: i, term: 5, data: format!("entry {i}").into_bytes().into() }).collect();
        put_append(b, 7, Some(&hs), &entries);
        put_append(b, 8, None, &entries[..1]);
        2
    });
    put_batch(&mut seg, 2, 3, |b| {
        put_append(b, 7, None, &[Entry { index: 4, term: 5, data: vec![0x5a; 5000].into() }]);
        put_compact(b, 7, 2);
        2
    });
    put_batch(&mut seg, 3, 3, |b| {
        put_remove(b, 8);
        1
    });
    seg.resize(seg.len() + BLOCK, 0);
    let raw = |expected: Option<u64>, from: u32, data: &[u8]| {
        let mut o = Output::default();
        o.u8(0).u64(3).u8(u8::from(expected.is_some())).u64(expected.unwrap_or(0)).u32(from).bytes(data);
        o.0
    };
    write(dir, "seed-raw-segment", &raw(None, 0, &seg))?;
    write(dir, "seed-raw-continued", &raw(Some(1), 4097, &seg))?;
    let mut torn = seg.clone();
    torn[BLOCK + 100] ^= 1;
    write(dir, "seed-raw-torn-middle", &raw(Some(1), 1, &torn))?;
    write(dir, "seed-raw-cut", &raw(None, 0, &seg[..BLOCK + 1000]))?;

    // Structured mode: recipes; `rest` = tail kind (+ its bytes), damage kind, position, ...
    let mut o = Output::default();
    o.u8(1).u8(1).u8(2).u32(5000).u8(0x40);
    write(dir, "seed-structured-flip", &structured_seed(3, 1, false, 4, &o.0))?;
    let mut o = Output::default();
    o.u8(0).u8(1).u32(6000);
    write(dir, "seed-structured-truncate", &structured_seed(3, 10, true, 3, &o.0))?;
    let mut o = Output::default();
    o.u8(2).u8(0).u8(0).u64(50).u8(3).u8(1).u8(0).u32(4096 * 3 + 10);
    write(dir, "seed-structured-stale-lost-block", &structured_seed(3, 7, true, 5, &o.0))?;
    let mut o = Output::default();
    o.u8(1).u8(0).u8(3).u32(100).u16(40);
    write(dir, "seed-structured-zero-first", &structured_seed(9, 1, false, 3, &o.0))?;
    let mut o = Output::default();
    o.u8(0).u8(4);
    write(dir, "seed-structured-undamaged", &structured_seed(5, 1, true, 6, &o.0))
}

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    frame_seeds(&root.join("frame_codec"))?;
    request_seeds(&root.join("request_decoding"))?;
    log_seeds(&root.join("log_recovery"))?;
    println!("seeds written to {}", root.display());
    Ok(())
}
