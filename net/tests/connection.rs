//! Server and client over real loopback TCP: out-of-order responses on one connection, and
//! bad input (garbage, truncated frames, oversized length prefixes, garbage after a valid
//! frame) closing only the offending connection while the server keeps serving others.

use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use net::conn::ConnConfig;
use net::frame;
use net::proto::rpcpb::{Envelope, Method, StatusCode};
use net::server::{serve, status, HandlerResult, LocalBoxFuture, ServerStats, Service};
use net::{Client, NetError};
use rand::{Rng, SeedableRng};

/// Echoes the payload after sleeping as many microseconds as its first byte says × 10.
struct Echo;

impl Service for Echo {
    fn call(&self, method: Method, payload: Bytes) -> LocalBoxFuture<HandlerResult> {
        Box::pin(async move {
            if method != Method::PdTso {
                return Err(status(StatusCode::Unimplemented, "echo only serves PdTso"));
            }
            let delay = payload.first().copied().unwrap_or(0) as u64 * 10;
            glommio::timer::sleep(Duration::from_micros(delay)).await;
            Ok(payload.into())
        })
    }
}

fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
    glommio::LocalExecutorBuilder::default().spawn(f).unwrap().join().unwrap();
}

fn start_server(config: ConnConfig) -> (String, Rc<ServerStats>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stats = Rc::new(ServerStats::default());
    glommio::spawn_local(serve(listener, Rc::new(Echo), config, stats.clone())).detach();
    (addr, stats)
}

#[test]
fn many_calls_in_flight_complete_out_of_order() {
    run(|| async {
        let (addr, _) = start_server(ConnConfig::default());
        let client = Client::connect(&addr, ConnConfig::default()).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..500u32 {
            let c = client.clone();
            tasks.push(glommio::spawn_local(async move {
                // Early requests sleep longest, so responses come back out of order.
                let payload = Bytes::from(vec![(250 - (i % 250)) as u8, i as u8, (i >> 8) as u8]);
                let got = c.call(Method::PdTso, payload.clone(), None).await.unwrap();
                assert_eq!(got, payload);
            }));
        }
        for t in tasks {
            t.await;
        }
        let (frames, writes) = client.counters();
        assert_eq!(frames, 500);
        assert!(writes < frames, "requests of one loop turn must share writes ({writes} writes)");
        match client.call(Method::RawGet, Bytes::new(), None).await {
            Err(NetError::Status { code: StatusCode::Unimplemented, .. }) => {}
            other => panic!("expected Unimplemented, got {other:?}"),
        }
    });
}

async fn send_raw_and_expect_close(addr: &str, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    // The server must close the connection: read until EOF (any response first is fine).
    let mut buf = vec![0u8; 4096];
    loop {
        let read = net::client::with_timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        match read {
            Some(Ok(0)) | Some(Err(_)) => return,
            Some(Ok(_)) => continue,
            None => panic!("server kept a connection with bad input open: {:?}", &bytes[..bytes.len().min(16)]),
        }
    }
}

#[test]
fn bad_input_closes_only_that_connection() {
    run(|| async {
        let config = ConnConfig { max_frame: 64 << 10, ..ConnConfig::default() };
        let (addr, stats) = start_server(config.clone());
        let good = Client::connect(&addr, config.clone()).await.unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut valid = BytesMut::new();
        frame::encode(
            &Envelope {
                request_id: 1,
                method: Method::PdTso as i32,
                payload: Bytes::from_static(b"\0ok"),
                ..Default::default()
            },
            &mut valid,
        );
        let mut cases: Vec<Vec<u8>> = vec![
            // Oversized length prefix.
            vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3],
            (1u32 << 20).to_be_bytes().to_vec(),
            // Garbage after a valid frame.
            [&valid[..], &[0x00, 0x00, 0x00, 0x03, 0xff, 0xff, 0xff][..]].concat(),
        ];
        for _ in 0..30 {
            // Random bytes with a plausible small length, so the body is decoded and fails.
            let len = rng.gen_range(1..64u32);
            let mut v = len.to_be_bytes().to_vec();
            v.extend((0..len).map(|_| rng.gen::<u8>() | 0x80));
            cases.push(v);
        }
        for (i, case) in cases.iter().enumerate() {
            send_raw_and_expect_close(&addr, case).await;
            // The good connection keeps working between bad ones.
            let got = good.call(Method::PdTso, Bytes::from(vec![0, i as u8]), None).await.unwrap();
            assert_eq!(got[1], i as u8);
        }
        assert!(stats.bad_frames.get() as usize >= cases.len() - 5, "bad frames: {}", stats.bad_frames.get());
        // A truncated frame followed by the client hanging up is just a closed connection.
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(&valid[..valid.len() - 1]).await.unwrap();
        drop(s);
        assert_eq!(
            good.call(Method::PdTso, Bytes::from_static(b"\0x"), None).await.unwrap(),
            Bytes::from_static(b"\0x")
        );
    });
}

#[test]
fn calls_fail_cleanly_when_the_server_is_gone() {
    run(|| async {
        let err = Client::connect("127.0.0.1:1", ConnConfig::default()).await.err().unwrap();
        assert!(matches!(err, NetError::Connect { .. }), "{err}");
        assert!(err.is_retryable());
    });
}

#[test]
fn a_call_that_times_out_fails_alone_and_its_late_reply_is_dropped() {
    run(|| async {
        let (addr, stats) = start_server(ConnConfig::default());
        let client = Client::connect(&addr, ConnConfig::default()).await.unwrap();
        // The slow call (2.5 ms at the server) gives up after 1 ms, while 20 others share the
        // connection.
        let slow = {
            let c = client.clone();
            glommio::spawn_local(async move {
                c.call(Method::PdTso, Bytes::from_static(&[250, 0]), Some(Duration::from_millis(1))).await
            })
        };
        let others: Vec<_> = (0..20u8)
            .map(|i| {
                let c = client.clone();
                glommio::spawn_local(async move { c.call(Method::PdTso, Bytes::from(vec![100, i]), None).await })
            })
            .collect();
        assert!(matches!(slow.await, Err(NetError::Timeout(_))));
        for (i, t) in others.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), Bytes::from(vec![100, i as u8]));
        }
        // The late reply arrives on the open connection and matches no call.
        glommio::timer::sleep(Duration::from_millis(20)).await;
        assert_eq!(client.closed(), None, "a timeout must not close the connection");
        for i in 0..5u8 {
            assert_eq!(
                client.call(Method::PdTso, Bytes::from(vec![0, i]), None).await.unwrap(),
                Bytes::from(vec![0, i])
            );
        }
        assert_eq!(stats.accepted.get(), 1, "one connection throughout");
    });
}
