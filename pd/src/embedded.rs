//! Running PD on its own one-shard pool: `percore-pd`, a store without `--pd`, and tests.

use std::path::PathBuf;

use core_shard::placement::ShardPlacement;
use core_shard::runtime::{PoolConfig, ShardPool};

/// A PD serving on its own executor thread.
pub struct PdServer {
    addr: String,
    pool: Option<ShardPool<(), ()>>,
}

impl PdServer {
    /// Opens PD's state in `dir`, listens on `addr` (port 0: any free port) and returns once
    /// it serves.
    pub fn start(dir: PathBuf, addr: &str, placement: ShardPlacement) -> Result<PdServer, String> {
        let (ready_tx, ready_rx) = flume::bounded::<Result<String, String>>(1);
        let addr = addr.to_string();
        let pool =
            ShardPool::<(), ()>::start(PoolConfig::new("pd", placement), move |shard| {
                let (addr, dir, ready) = (addr.clone(), dir.clone(), ready_tx.clone());
                async move {
                    let pd = match crate::Pd::open(&dir) {
                        Ok(pd) => pd,
                        Err(e) => return drop(ready.send(Err(e.to_string()))),
                    };
                    let listener = match glommio::net::TcpListener::bind(addr.as_str()) {
                        Ok(l) => l,
                        Err(e) => return drop(ready.send(Err(format!("cannot listen on {addr}: {e}")))),
                    };
                    let local = listener.local_addr().map(|a| a.to_string()).unwrap_or(addr);
                    let stop = shard.shutdown.clone();
                    let server = crate::server::spawn_server(pd, listener, net::ConnConfig::default(), async move {
                        stop.wait().await
                    });
                    let _ = ready.send(Ok(local));
                    server.await;
                }
            })
            .map_err(|e| e.to_string())?;
        let mut server = PdServer { addr: String::new(), pool: Some(pool) };
        match ready_rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(Ok(a)) => {
                server.addr = a;
                Ok(server)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err("PD did not start within 60 s".into()),
        }
    }

    /// The address PD listens on.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Stops PD and waits for it.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.shutdown();
            let _ = pool.join();
        }
    }
}

impl Drop for PdServer {
    fn drop(&mut self) {
        self.stop_inner();
    }
}
