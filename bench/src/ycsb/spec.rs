//! Which service a workload runs against, and connecting to it from a client thread.

use std::rc::Rc;

use net::kv::{KvClient, KvConfig};
use pd::{PdClient, PdClientConfig};

use super::percore::PercoreTarget;
use super::redis::RedisTarget;
use super::target::Target;

/// Which service to connect to; cloned into every client thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// A Percore cluster, through its PD.
    Percore {
        /// PD's address.
        pd: String,
    },
    /// A Redis-protocol server.
    Redis {
        /// `HOST:PORT`.
        addr: String,
        /// Keep the sorted-set index that scans need (workloads with scans).
        scan_index: bool,
    },
}

impl TargetSpec {
    /// Connects from the current executor.
    pub async fn connect(&self) -> Result<Rc<dyn Target>, String> {
        match self {
            TargetSpec::Percore { pd } => {
                let client = PdClient::new(PdClientConfig::new(vec![pd.clone()]));
                // Fail fast (and warm the route cache) if PD or the cluster is not there.
                client.get_region(b"").await.map_err(|e| format!("PD at {pd}: {e}"))?;
                let kv = KvClient::new(Rc::new(client), KvConfig::default());
                Ok(Rc::new(PercoreTarget::new(kv)))
            }
            TargetSpec::Redis { addr, scan_index } => {
                let t = RedisTarget::connect(addr, *scan_index).await?;
                Ok(Rc::new(t))
            }
        }
    }
}
