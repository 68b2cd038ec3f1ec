//! A single store with an embedded PD serves raw puts and gets over TCP.

use std::time::Duration;

use bytes::Bytes;
use net::proto::kvrpcpb::{Context, RawGetRequest, RawGetResponse, RawPutRequest, RawPutResponse};
use net::{Client, ConnConfig, Method};

#[test]
fn single_store_put_get() {
    let dir = tempfile::tempdir().unwrap();
    let one = core_shard::placement::resolve_online(Some(1), None, Default::default()).unwrap();
    let pd = pd::PdServer::start(dir.path().join("pd"), "127.0.0.1:0", one).unwrap();
    let mut cfg = raftstore::Config::for_tests();
    cfg.addr = "127.0.0.1:0".into();
    cfg.data_dir = dir.path().join("store");
    cfg.shards = Some(2);
    let store = raftstore::start_store(cfg, vec![pd.addr().to_string()]).unwrap();
    let addr = store.addrs()[0].clone();
    let pd_addr = pd.addr().to_string();
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let pdc = pd::PdClient::new(pd::PdClientConfig::new(vec![pd_addr]));
            let route = pdc.get_region(b"k").await.unwrap();
            let ctx =
                Context { region_id: route.region.id, region_epoch: route.region.region_epoch.clone(), peer: None };
            let c = Client::connect(&addr, ConnConfig::default()).await.unwrap();
            // Wait for the single peer to win its election.
            let mut ok = false;
            for _ in 0..200 {
                let req = RawPutRequest {
                    context: Some(ctx.clone()),
                    key: Bytes::from_static(b"k"),
                    value: Bytes::from_static(b"v"),
                };
                let r: RawPutResponse = c.call_msg(Method::RawPut, &req, None).await.unwrap();
                if r.region_error.is_none() && r.error.is_empty() {
                    ok = true;
                    break;
                }
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
            assert!(ok, "put never succeeded");
            let r: RawGetResponse = c
                .call_msg(
                    Method::RawGet,
                    &RawGetRequest { context: Some(ctx.clone()), key: Bytes::from_static(b"k") },
                    None,
                )
                .await
                .unwrap();
            assert_eq!(r.value, Bytes::from_static(b"v"), "{r:?}");
            let r: RawGetResponse = c
                .call_msg(Method::RawGet, &RawGetRequest { context: Some(ctx), key: Bytes::from_static(b"nope") }, None)
                .await
                .unwrap();
            assert!(r.not_found);
        })
        .unwrap()
        .join()
        .unwrap();
    store.stop().unwrap();
    pd.stop();
}
