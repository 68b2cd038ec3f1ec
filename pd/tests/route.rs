//! PD as the KV client's route source: regions by key, id and range, stores; and the KV
//! client resolving routes through a real PD (the stores themselves are not running, so
//! requests end in the client's deadline error naming the network failure).

mod common;

use std::rc::Rc;
use std::time::Duration;

use net::kv::{KvClient, KvConfig, KvError, RetryCause, RouteSource};
use net::proto::metapb::Peer;
use net::proto::pdpb::RegionHeartbeatRequest;

#[test]
fn pd_answers_route_questions() {
    let dir = tempfile::tempdir().unwrap();
    let pd = common::InProcessPd::start(dir.path());
    let addr = pd.addr.clone();
    common::run(move || async move {
        let c = common::client(&addr);
        let mut store = common::store(1);
        store.address = common::free_addr();
        store.shard_addresses = vec![common::free_addr(), common::free_addr()];
        c.bootstrap(store.clone(), common::region(2, b"", b"", 1, 1, &[1])).await.unwrap();
        let (right_id, _) = c.ask_split(common::region(2, b"", b"", 1, 1, &[1])).await.unwrap();
        let left = common::region(2, b"", b"m", 1, 2, &[1]);
        let right = common::region(right_id, b"m", b"", 1, 2, &[1]);
        c.report_split(left.clone(), right.clone()).await.unwrap();
        let leader = Peer { id: 201, store_id: 1, role: 0 };
        let hb = RegionHeartbeatRequest {
            region: Some(right.clone()),
            leader: Some(leader.clone()),
            leader_shard: 1,
            ..Default::default()
        };
        c.region_heartbeat(hb).await.unwrap();

        let source: Rc<dyn RouteSource> = Rc::new(c.clone());
        let r = source.region_by_key(b"a").await.unwrap();
        assert_eq!(r.region, left);
        let r = source.region_by_key(b"z").await.unwrap();
        assert_eq!((r.region.id, r.leader.clone(), r.leader_shard), (right_id, Some(leader), Some(1)));
        assert_eq!(source.region_by_id(2).await.unwrap().region, left);
        assert!(source.region_by_id(9999).await.is_err());
        let all: Vec<u64> = source.scan_regions(b"", b"", 0).await.unwrap().iter().map(|r| r.region.id).collect();
        assert_eq!(all, vec![2, right_id]);
        let from_m: Vec<u64> = source.scan_regions(b"m", b"", 1).await.unwrap().iter().map(|r| r.region.id).collect();
        assert_eq!(from_m, vec![right_id]);
        assert_eq!(source.store(1).await.unwrap(), store);
        assert!(source.store(7).await.is_err());

        // The KV client routes through PD; the store is down, so it retries then names why.
        let config = KvConfig { deadline: Duration::from_millis(500), ..KvConfig::default() };
        let kv = KvClient::new(source, config);
        match kv.put("z", "v").await {
            Err(KvError::DeadlineExceeded { last_error, .. }) => {
                assert!(last_error.contains("cannot connect"), "{last_error}")
            }
            other => panic!("put to a stopped store: {other:?}"),
        }
        assert!(kv.stats().retries(RetryCause::Network) > 0);
        // With its only voter unreachable, the region is reloaded from PD after every
        // failed round.
        assert!(kv.stats().route_loads >= 2, "{:?}", kv.stats());
    });
    pd.stop();
}

/// Runs `percore-ctl --pd addr args...`, expecting failure; returns stderr.
fn ctl_fails(addr: &str, args: &[&str]) -> String {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_percore-ctl")).args(["--pd", addr]).args(args).output().unwrap();
    assert!(!out.status.success(), "percore-ctl {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn ctl_kv_commands_check_their_arguments_before_any_store() {
    let dir = tempfile::tempdir().unwrap();
    let pd = common::InProcessPd::start(dir.path());
    let addr = pd.addr.clone();
    common::run(move || async move {
        let c = common::client(&addr);
        c.bootstrap(common::store(1), common::region(2, b"", b"", 1, 1, &[1])).await.unwrap();
    });
    let err = ctl_fails(&pd.addr, &["transfer-leader", "--region", "2", "--store", "9"]);
    assert!(err.contains("region 2 has no peer on store 9"), "{err}");
    let err = ctl_fails(&pd.addr, &["remove-peer", "--region", "2", "--store", "9"]);
    assert!(err.contains("region 2 has no peer on store 9"), "{err}");
    let err = ctl_fails(&pd.addr, &["split", ""]);
    assert!(err.contains("cannot split at the empty key"), "{err}");
    let err = ctl_fails(&pd.addr, &["scan", "--start", "b", "--end", "a"]);
    assert!(err.contains("is after end"), "{err}");
    let err = ctl_fails(&pd.addr, &["get", "0xzz"]);
    assert!(err.contains("bad hex key"), "{err}");
    pd.stop();
}
