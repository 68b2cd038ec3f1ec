//! Table-driven tests of the region and store caches.

use super::*;
use crate::proto::metapb::RegionEpoch;

fn peer(id: u64, store_id: u64) -> Peer {
    Peer { id, store_id, role: PeerRole::Voter as i32 }
}

fn region(id: u64, start: &str, end: &str) -> Region {
    Region {
        id,
        start_key: Bytes::copy_from_slice(start.as_bytes()),
        end_key: Bytes::copy_from_slice(end.as_bytes()),
        region_epoch: Some(RegionEpoch { conf_ver: 1, version: 1 }),
        peers: vec![peer(id * 10 + 1, 1), peer(id * 10 + 2, 2), peer(id * 10 + 3, 3)],
    }
}

fn route(id: u64, start: &str, end: &str) -> Route {
    Route { region: region(id, start, end), leader: None, leader_shard: None }
}

fn cache_of(regions: &[(u64, &str, &str)]) -> RegionCache {
    let mut c = RegionCache::new();
    for &(id, s, e) in regions {
        c.insert(route(id, s, e));
    }
    c
}

fn ids(c: &RegionCache) -> Vec<u64> {
    c.iter().map(|r| r.region.id).collect()
}

const THREE: &[(u64, &str, &str)] = &[(1, "", "b"), (2, "b", "d"), (3, "d", "")];

#[test]
fn lookup_by_key_at_boundaries() {
    let full = cache_of(THREE);
    let gappy = cache_of(&[(2, "b", "d"), (4, "f", "h")]);
    let cases: [(&RegionCache, &[u8], Option<u64>); 14] = [
        (&full, b"", Some(1)),
        (&full, b"\x00", Some(1)),
        (&full, b"a\xff\xff", Some(1)),
        (&full, b"b", Some(2)),
        (&full, b"b\x00", Some(2)),
        (&full, b"c", Some(2)),
        (&full, b"d", Some(3)),
        (&full, b"\xff\xff\xff", Some(3)),
        (&gappy, b"", None),
        (&gappy, b"a", None),
        (&gappy, b"b", Some(2)),
        (&gappy, b"d", None),
        (&gappy, b"g", Some(4)),
        (&gappy, b"h", None),
    ];
    for (i, (c, key, want)) in cases.into_iter().enumerate() {
        assert_eq!(c.by_key(key).map(|r| r.region.id), want, "case {i}: key {key:?}");
    }
}

#[test]
fn lookup_of_the_region_below_an_end_key() {
    let full = cache_of(THREE);
    let gappy = cache_of(&[(2, "b", "d"), (4, "f", "h")]);
    let cases: [(&RegionCache, &[u8], Option<u64>); 11] = [
        (&full, b"", Some(3)),
        (&full, b"z", Some(3)),
        (&full, b"d\x00", Some(3)),
        (&full, b"d", Some(2)),
        (&full, b"c", Some(2)),
        (&full, b"b\x00", Some(2)),
        (&full, b"b", Some(1)),
        (&full, b"\x00", Some(1)),
        (&gappy, b"", None),
        (&gappy, b"e", None),
        (&gappy, b"h", Some(4)),
    ];
    for (i, (c, end, want)) in cases.into_iter().enumerate() {
        assert_eq!(c.before(end).map(|r| r.region.id), want, "case {i}: end {end:?}");
    }
}

#[test]
fn the_whole_key_space_in_one_region() {
    let c = cache_of(&[(1, "", "")]);
    for key in [&b""[..], b"a", b"\xff"] {
        assert_eq!(c.by_key(key).map(|r| r.region.id), Some(1));
    }
    assert_eq!(c.before(b"").map(|r| r.region.id), Some(1));
    assert_eq!(c.before(b"a").map(|r| r.region.id), Some(1));
}

#[test]
fn insert_replaces_every_overlapped_region() {
    type Case =
        (&'static str, &'static [(u64, &'static str, &'static str)], (u64, &'static str, &'static str), &'static [u64]);
    let cases: &[Case] = &[
        ("split of the left region", THREE, (1, "", "a"), &[1, 2, 3]),
        ("right half of a split, left unknown", THREE, (5, "a", "b"), &[5, 2, 3]),
        ("merge of everything", THREE, (9, "", ""), &[9]),
        ("across two regions", THREE, (9, "a", "c"), &[9, 3]),
        ("ending exactly at a start", THREE, (9, "", "d"), &[9, 3]),
        ("starting exactly at an end", THREE, (9, "d", ""), &[1, 2, 9]),
        ("inside one region", THREE, (9, "b\x00", "c"), &[1, 9, 3]),
        ("in a gap", &[(1, "", "b"), (3, "d", "")], (2, "b", "d"), &[1, 2, 3]),
        ("same id, moved range", &[(1, "", "b"), (3, "d", "")], (1, "c", "d"), &[1, 3]),
        ("same id and range, newer epoch", THREE, (2, "b", "d"), &[1, 2, 3]),
    ];
    for (name, initial, (id, s, e), want) in cases {
        let mut c = cache_of(initial);
        c.insert(route(*id, s, e));
        assert_eq!(ids(&c), *want, "{name}");
        // The id index agrees with the key index.
        for r in c.iter() {
            assert_eq!(c.by_id(r.region.id).map(|x| &x.region), Some(&r.region), "{name}");
        }
        assert_eq!(c.len(), want.len(), "{name}");
    }
    // The moved region is found at its new place only.
    let mut c = cache_of(&[(1, "", "b"), (3, "d", "")]);
    c.insert(route(1, "c", "d"));
    assert!(c.by_key(b"a").is_none());
    assert_eq!(c.by_key(b"c").map(|r| r.region.id), Some(1));
}

#[test]
fn invalidation_drops_one_region() {
    let mut c = cache_of(THREE);
    assert_eq!(c.invalidate(2).map(|r| r.region.id), Some(2));
    assert!(c.by_id(2).is_none());
    assert!(c.by_key(b"c").is_none());
    assert_eq!(c.by_key(b"d").map(|r| r.region.id), Some(3));
    assert!(c.invalidate(2).is_none());
    assert!(c.invalidate(42).is_none());
    assert_eq!(ids(&c), vec![1, 3]);
}

#[test]
fn leader_and_shard_updates() {
    let mut c = cache_of(THREE);
    assert!(c.update_leader(2, peer(22, 2), Some(3)));
    let r = c.by_id(2).unwrap();
    assert_eq!((r.leader.as_ref().map(|l| l.id), r.leader_shard), (Some(22), Some(3)));
    assert_eq!(r.target(), Some((peer(22, 2), true)));

    assert!(c.set_leader_shard(2, 1));
    assert_eq!(c.by_id(2).unwrap().leader_shard, Some(1));
    // No leader: the shard means nothing.
    assert!(!c.set_leader_shard(1, 1));
    assert!(!c.update_leader(42, peer(1, 1), None));

    // Reloading the same region without leader information keeps the known leader...
    c.insert(route(2, "b", "d"));
    assert_eq!(c.by_id(2).unwrap().leader_shard, Some(1));
    // ...unless that peer is gone.
    let mut moved = route(2, "b", "d");
    moved.region.peers.retain(|p| p.id != 22);
    c.insert(moved);
    assert_eq!(c.by_id(2).unwrap().leader, None);
    // A route that names a leader wins; a shard without a leader is dropped.
    let mut named = route(3, "d", "");
    named.leader = Some(peer(33, 3));
    named.leader_shard = Some(2);
    c.insert(named);
    assert_eq!(c.by_id(3).unwrap().leader_shard, Some(2));
    let mut no_leader = route(1, "", "b");
    no_leader.leader_shard = Some(2);
    assert_eq!(c.insert(no_leader).leader_shard, None);
}

#[test]
fn unknown_leader_probes_voters_in_turn() {
    let mut c = cache_of(&[(1, "", "")]);
    let target = |c: &RegionCache| c.by_id(1).unwrap().target().map(|(p, leader)| (p.id, leader));
    assert_eq!(target(&c), Some((11, false)));
    c.update_leader(1, peer(12, 2), Some(0));
    assert_eq!(target(&c), Some((12, true)));
    // Steps: (failed peer, next target, full round done).
    let steps = [(12, 13, false), (13, 11, false), (11, 12, true), (12, 13, false)];
    for (failed, next, round) in steps {
        assert_eq!(c.peer_failed(1, failed), round, "after {failed} failed");
        assert_eq!(target(&c), Some((next, false)), "after {failed} failed");
        assert_eq!(c.by_id(1).unwrap().leader_shard, None);
    }
    assert!(!c.peer_failed(42, 1));

    // Learners are never probed while there are voters.
    let mut r = route(7, "", "");
    r.region.peers[0].role = PeerRole::Learner as i32;
    let mut c = RegionCache::new();
    c.insert(r);
    assert_eq!(c.by_id(7).unwrap().target().map(|(p, _)| p.id), Some(72));
    c.peer_failed(7, 72);
    assert_eq!(c.by_id(7).unwrap().target().map(|(p, _)| p.id), Some(73));
    c.peer_failed(7, 73);
    assert_eq!(c.by_id(7).unwrap().target().map(|(p, _)| p.id), Some(72));
    // No peers: no target.
    let mut empty = route(8, "", "");
    empty.region.peers.clear();
    assert_eq!(CachedRegion::new(empty).target(), None);
}

#[test]
fn store_addresses_by_shard() {
    let store = |addr: &str, shards: &[&str]| Store {
        id: 1,
        address: addr.to_string(),
        shard_addresses: shards.iter().map(|s| s.to_string()).collect(),
        ..Store::default()
    };
    let cases = [
        (store("m:1", &["s:0", "s:1"]), Some(1), Some("s:1")),
        (store("m:1", &["s:0", "s:1"]), None, Some("m:1")),
        (store("m:1", &["s:0", "s:1"]), Some(5), Some("m:1")),
        (store("m:1", &["s:0", ""]), Some(1), Some("m:1")),
        (store("", &["s:0"]), Some(0), Some("s:0")),
        (store("", &[]), Some(0), None),
    ];
    for (i, (s, shard, want)) in cases.iter().enumerate() {
        assert_eq!(store_address(s, *shard), *want, "case {i}");
    }
    let mut sc = StoreCache::default();
    sc.insert(std::rc::Rc::new(store("m:1", &[])));
    assert_eq!(sc.get(1).map(|s| s.address.as_str()), Some("m:1"));
    sc.invalidate(1);
    assert!(sc.get(1).is_none());
}
