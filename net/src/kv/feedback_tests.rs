//! Table-driven tests: each region error's effect on the cache and on the retry.

use super::*;
use crate::proto::errorpb::{KeyNotInRegion, RegionNotFound, RequestTimeout, ServerIsBusy, StaleCommand};
use crate::proto::metapb::{PeerRole, RegionEpoch};

fn peer(id: u64, store_id: u64) -> Peer {
    Peer { id, store_id, role: PeerRole::Voter as i32 }
}

fn region(id: u64, start: &str, end: &str, version: u64) -> Region {
    Region {
        id,
        start_key: start.as_bytes().to_vec().into(),
        end_key: end.as_bytes().to_vec().into(),
        region_epoch: Some(RegionEpoch { conf_ver: 1, version }),
        peers: vec![peer(id * 10 + 1, 1), peer(id * 10 + 2, 2), peer(id * 10 + 3, 3)],
    }
}

/// Region 1 ["", "m") led by peer 11 on shard 4; region 2 ["m", "") with no known leader.
fn cache() -> RegionCache {
    let mut c = RegionCache::new();
    c.insert(Route { region: region(1, "", "m", 1), leader: Some(peer(11, 1)), leader_shard: Some(4) });
    c.insert(Route { region: region(2, "m", "", 1), leader: None, leader_shard: None });
    c
}

fn to_leader() -> Sent {
    Sent { region_id: 1, peer: peer(11, 1), to_leader: true, shard: Some(4) }
}

fn guessed() -> Sent {
    Sent { region_id: 2, peer: peer(21, 1), to_leader: false, shard: None }
}

fn err(kind: Kind) -> RegionError {
    RegionError { message: String::new(), kind: Some(kind) }
}

/// What the sent-to region looks like afterwards: `None` = not cached, else
/// (leader id, leader shard, next target id).
type View = Option<(Option<u64>, Option<u32>, u64)>;

fn view(c: &RegionCache, id: u64) -> View {
    c.by_id(id).map(|r| (r.leader.as_ref().map(|l| l.id), r.leader_shard, r.target().map_or(0, |t| t.0.id)))
}

#[test]
fn region_errors_fix_the_cache_and_choose_the_retry() {
    let not_leader = |leader: Option<Peer>, shard: Option<u32>| {
        err(Kind::NotLeader(NotLeader {
            region_id: 1,
            leader,
            leader_shard: shard.unwrap_or(0),
            has_leader_shard: shard.is_some(),
        }))
    };
    let split = err(Kind::EpochNotMatch(EpochNotMatch {
        current_regions: vec![region(1, "", "f", 2), region(3, "f", "m", 2)],
    }));
    let busy = err(Kind::ServerIsBusy(ServerIsBusy { reason: "compaction".into(), backoff_ms: 250 }));
    type Case = (&'static str, Sent, RegionError, RetryCause, bool, u64, View);
    let cases: Vec<Case> = vec![
        (
            "not leader, names it",
            to_leader(),
            not_leader(Some(peer(12, 2)), Some(1)),
            RetryCause::NotLeader,
            true,
            0,
            Some((Some(12), Some(1), 12)),
        ),
        (
            "not leader, no shard",
            to_leader(),
            not_leader(Some(peer(12, 2)), None),
            RetryCause::NotLeader,
            true,
            0,
            Some((Some(12), None, 12)),
        ),
        (
            "not leader, unknown",
            to_leader(),
            not_leader(None, None),
            RetryCause::NotLeader,
            false,
            0,
            Some((None, None, 12)),
        ),
        (
            "not leader, names itself",
            to_leader(),
            not_leader(Some(peer(11, 1)), None),
            RetryCause::NotLeader,
            false,
            0,
            Some((None, None, 12)),
        ),
        ("not leader, guessed peer", guessed(), not_leader(None, None), RetryCause::NotLeader, false, 0, None),
        ("epoch, split", to_leader(), split.clone(), RetryCause::EpochNotMatch, true, 0, Some((Some(11), None, 11))),
        (
            "epoch, no regions",
            to_leader(),
            err(Kind::EpochNotMatch(EpochNotMatch::default())),
            RetryCause::EpochNotMatch,
            true,
            0,
            None,
        ),
        (
            "region not found at leader",
            to_leader(),
            err(Kind::RegionNotFound(RegionNotFound { region_id: 1 })),
            RetryCause::RegionNotFound,
            true,
            0,
            None,
        ),
        (
            "region not found at guess",
            guessed(),
            err(Kind::RegionNotFound(RegionNotFound { region_id: 2 })),
            RetryCause::RegionNotFound,
            true,
            0,
            None,
        ),
        (
            "key not in region",
            to_leader(),
            err(Kind::KeyNotInRegion(KeyNotInRegion::default())),
            RetryCause::KeyNotInRegion,
            true,
            0,
            None,
        ),
        ("busy", to_leader(), busy, RetryCause::ServerBusy, false, 250, Some((Some(11), Some(4), 11))),
        (
            "timed out at the store",
            to_leader(),
            err(Kind::RequestTimeout(RequestTimeout { stage: "waiting read index".into(), elapsed_ms: 4000 })),
            RetryCause::Timeout,
            false,
            0,
            Some((Some(11), Some(4), 11)),
        ),
        (
            "stale command",
            to_leader(),
            err(Kind::StaleCommand(StaleCommand {})),
            RetryCause::StaleCommand,
            false,
            0,
            Some((Some(11), Some(4), 11)),
        ),
        (
            "wrong shard",
            to_leader(),
            err(Kind::WrongShard(WrongShard { region_id: 1, shard: 2 })),
            RetryCause::WrongShard,
            true,
            0,
            Some((Some(11), Some(2), 11)),
        ),
        (
            "wrong shard, same shard",
            to_leader(),
            err(Kind::WrongShard(WrongShard { region_id: 1, shard: 4 })),
            RetryCause::WrongShard,
            false,
            0,
            Some((Some(11), Some(4), 11)),
        ),
        (
            "wrong shard, guessed",
            guessed(),
            err(Kind::WrongShard(WrongShard { region_id: 2, shard: 3 })),
            RetryCause::WrongShard,
            true,
            0,
            None,
        ),
        (
            "unknown kind",
            to_leader(),
            RegionError { message: "??".into(), kind: None },
            RetryCause::OtherRegionError,
            false,
            0,
            None,
        ),
    ];
    for (name, sent, e, cause, immediate, min_ms, want) in cases {
        let mut c = cache();
        let r = on_region_error(&mut c, &sent, e);
        assert_eq!((r.cause, r.immediate, r.min_delay), (cause, immediate, Duration::from_millis(min_ms)), "{name}");
        assert!(r.reason.contains(&format!("region {}", sent.region_id)), "{name}: {}", r.reason);
        if sent.region_id == 1 {
            assert_eq!(view(&c, 1), want, "{name}");
        }
    }
}

#[test]
fn guessed_peers_are_walked_then_the_region_reloaded() {
    let cases: [(&str, RegionError, View); 3] = [
        ("region not found", err(Kind::RegionNotFound(RegionNotFound { region_id: 2 })), Some((None, None, 22))),
        ("no leader", err(Kind::NotLeader(NotLeader { region_id: 2, ..NotLeader::default() })), Some((None, None, 22))),
        ("wrong shard", err(Kind::WrongShard(WrongShard { region_id: 2, shard: 3 })), Some((Some(21), Some(3), 21))),
    ];
    for (name, e, want) in cases {
        let mut c = cache();
        on_region_error(&mut c, &guessed(), e.clone());
        assert_eq!(view(&c, 2), want, "{name}");
    }
    // Three voters fail in turn: the third failure drops the region so it is reloaded.
    let mut c = cache();
    for (i, id) in [21, 22, 23].into_iter().enumerate() {
        let sent = Sent { region_id: 2, peer: peer(id, id - 20), to_leader: false, shard: None };
        on_region_error(&mut c, &sent, err(Kind::RegionNotFound(RegionNotFound { region_id: 2 })));
        assert_eq!(c.by_id(2).is_some(), i < 2, "after peer {id}");
    }
}

#[test]
fn epoch_not_match_installs_the_current_regions() {
    let mut c = cache();
    let m = EpochNotMatch { current_regions: vec![region(1, "", "f", 2), region(3, "f", "m", 2)] };
    on_region_error(&mut c, &to_leader(), err(Kind::EpochNotMatch(m)));
    let got: Vec<(u64, Option<u64>)> = c.iter().map(|r| (r.region.id, r.leader.as_ref().map(|l| l.id))).collect();
    // The new regions' leaders are guessed on the store that answered.
    assert_eq!(got, vec![(1, Some(11)), (3, Some(31)), (2, None)]);
    assert_eq!(c.by_key(b"g").map(|r| r.region.region_epoch.clone().unwrap_or_default().version), Some(2));
}

#[test]
fn success_confirms_guesses_and_applies_hints() {
    let hint = |region_id, shard| WrongShard { region_id, shard };
    type Case = (&'static str, Sent, Option<WrongShard>, bool, u64, View);
    let cases: Vec<Case> = vec![
        ("leader, no hint", to_leader(), None, false, 1, Some((Some(11), Some(4), 11))),
        ("leader, hint", to_leader(), Some(hint(1, 6)), true, 1, Some((Some(11), Some(6), 11))),
        ("leader, hint for another region", to_leader(), Some(hint(9, 6)), false, 1, Some((Some(11), Some(4), 11))),
        ("guess, no hint", guessed(), None, false, 2, Some((Some(21), None, 21))),
        ("guess, hint", guessed(), Some(hint(2, 1)), true, 2, Some((Some(21), Some(1), 21))),
    ];
    for (name, sent, h, applied, id, want) in cases {
        let mut c = cache();
        assert_eq!(on_success(&mut c, &sent, h.as_ref()), applied, "{name}");
        assert_eq!(view(&c, id), want, "{name}");
    }
    // A hint with a region error counts only from the leader.
    let mut c = cache();
    assert!(!on_shard_hint(&mut c, &guessed(), &hint(2, 1)));
    assert!(on_shard_hint(&mut c, &to_leader(), &hint(1, 7)));
    assert_eq!(view(&c, 1), Some((Some(11), Some(7), 11)));
}

#[test]
fn network_errors_make_the_leader_unknown() {
    let mut c = cache();
    let e = NetError::Closed("reset".into());
    let r = on_network_error(&mut c, &to_leader(), &e);
    assert_eq!((r.cause, r.immediate), (RetryCause::Network, false));
    assert!(r.reason.contains("reset"), "{}", r.reason);
    assert_eq!(view(&c, 1), Some((None, None, 12)));
}
