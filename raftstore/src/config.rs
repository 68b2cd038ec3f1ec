//! The store's configuration: a TOML file (every field optional, kebab-case) overridden by
//! command-line flags. Every field documents its default; [`Config::validate`] checks bounds
//! and says what is wrong.
//!
//! ```toml
//! addr = "127.0.0.1:20160"
//! data-dir = "./percore-data"
//! [raft]
//! base-tick-ms = 100
//! [split]
//! region-split-size = 100663296
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Raft timing and flow control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct RaftConfig {
    /// The raft logical clock's tick. Default 100 ms.
    pub base_tick_ms: u64,
    /// Ticks without a leader before an election (randomized up to twice this). Default 10.
    pub election_ticks: usize,
    /// Ticks between leader heartbeats. Default 2.
    pub heartbeat_ticks: usize,
    /// Ticks a leader may serve reads locally after a quorum confirmed it; less than
    /// `election-ticks`. Default 9.
    pub lease_ticks: usize,
    /// Largest append message. Default 1 MiB.
    pub max_size_per_msg: u64,
    /// Append messages in flight per follower. Default 256.
    pub max_inflight_msgs: usize,
    /// How often the leader considers compacting the raft log. Default 10 000 ms.
    pub log_gc_interval_ms: u64,
    /// Compact once the log holds more entries than this. Default 72 000 (¾ of a split's worth
    /// of 1 KiB entries).
    pub log_gc_count_limit: u64,
    /// Compact once the log holds more bytes than this. Default 72 MiB (¾ of split size).
    pub log_gc_size_limit: u64,
    /// Keep at least this many entries behind the applied index for slow followers. Default 50.
    pub log_gc_keep: u64,
    /// How often the shard's RocksDB memtables are flushed so that the raft log may be
    /// compacted. Default 2 000 ms.
    pub flush_interval_ms: u64,
    /// Largest chunk of a snapshot on the wire. Default 1 MiB.
    pub snapshot_chunk_size: usize,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            base_tick_ms: 100,
            election_ticks: 10,
            heartbeat_ticks: 2,
            lease_ticks: 9,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            log_gc_interval_ms: 10_000,
            log_gc_count_limit: 72_000,
            log_gc_size_limit: 72 << 20,
            log_gc_keep: 50,
            flush_interval_ms: 2_000,
            snapshot_chunk_size: 1 << 20,
        }
    }
}

/// Region splitting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct SplitConfig {
    /// A region larger than this is split (at its middle). Default 96 MiB.
    pub region_split_size: u64,
    /// A region with more keys than this is split. Default 960 000.
    pub region_split_keys: u64,
    /// How often leaders check their regions' size. Default 10 000 ms.
    pub split_check_interval_ms: u64,
    /// Place the new region of a split on the least-loaded shard of the store. Default true.
    pub balance_shards_on_split: bool,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            region_split_size: 96 << 20,
            region_split_keys: 960_000,
            split_check_interval_ms: 10_000,
            balance_shards_on_split: true,
        }
    }
}

/// MVCC garbage collection of transactional data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct GcConfig {
    /// How often each leader GCs a batch of its region's keys against PD's safe point; 0
    /// turns GC off. Default 10 000 ms.
    pub interval_ms: u64,
    /// Keys a region looks at per pass (the rate bound: `batch-keys` per region per
    /// interval). Default 1024, at least 1.
    pub batch_keys: usize,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig { interval_ms: 10_000, batch_keys: 1024 }
    }
}

/// Storage engines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct StorageConfig {
    /// RocksDB block cache shared by every shard. Default 256 MiB.
    pub block_cache_mb: usize,
    /// RocksDB write buffer (memtable) size per shard. Default 64 MiB.
    pub write_buffer_mb: usize,
    /// Raft log segment size. Default 64 MiB.
    pub log_segment_mb: u64,
    /// Raft log entry cache per shard. Default 64 MiB.
    pub log_cache_mb: usize,
    /// Cache of hot values per shard, in front of RocksDB for point reads (0 disables it).
    /// Default 256 MiB.
    pub value_cache_mb: usize,
    /// Bits per key of RocksDB's whole-key bloom filters (0: none): a point read skips the
    /// SST files that cannot hold its key. Filter and index blocks live in the block cache
    /// (level 0's pinned). Default 0.
    pub bloom_bits_per_key: u32,
    /// RocksDB writes its SST files out every this many KiB while writing them (0: only
    /// when the file is done), so that flushes and compactions do not leave a burst of
    /// dirty pages for the raft log's next fdatasync to wait behind. Default 0.
    pub bytes_per_sync_kb: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            block_cache_mb: 256,
            write_buffer_mb: 64,
            log_segment_mb: 64,
            log_cache_mb: 64,
            value_cache_mb: 256,
            bloom_bits_per_key: 0,
            bytes_per_sync_kb: 0,
        }
    }
}

/// Balancing regions across the shards of this store (no PD involved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct BalanceConfig {
    /// How often shard 0 compares the shards' region counts and moves one region from the
    /// fullest shard to the emptiest when they differ by more than one; 0 disables.
    /// Default 2 000 ms.
    pub shard_balance_interval_ms: u64,
}

impl Default for BalanceConfig {
    fn default() -> Self {
        BalanceConfig { shard_balance_interval_ms: 2_000 }
    }
}

/// Bounds on client requests (`docs/raftstore.md`, "Request bounds").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct RequestConfig {
    /// Every KV or admin request the store takes is answered within this: with its result, a
    /// retryable region error, or an explicit timeout (`RequestTimeout`; for a write already
    /// proposed, `UndeterminedResult`). Keep it below the clients' call timeout (10 s), so
    /// that a slow request costs its caller a retry, not a lost connection. Default 4 000 ms.
    pub timeout_ms: u64,
    /// A request pending longer than this is logged once as slow, with its region, kind and
    /// the stage it waits in, and counted. Default 1 000 ms.
    pub slow_ms: u64,
}

impl Default for RequestConfig {
    fn default() -> Self {
        RequestConfig { timeout_ms: 4_000, slow_ms: 1_000 }
    }
}

/// Talking to PD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct PdConfig {
    /// PD's address; none = start an embedded PD in this process. Default none.
    pub endpoints: Vec<String>,
    /// Listen address of the embedded PD. Default 127.0.0.1:2379.
    pub embedded_addr: String,
    /// Store heartbeat interval. Default 10 000 ms.
    pub store_heartbeat_ms: u64,
    /// Region heartbeat interval (leaders also report every change at once). Default 60 000 ms.
    pub region_heartbeat_ms: u64,
}

impl Default for PdConfig {
    fn default() -> Self {
        PdConfig {
            endpoints: Vec::new(),
            embedded_addr: "127.0.0.1:2379".into(),
            store_heartbeat_ms: 10_000,
            region_heartbeat_ms: 60_000,
        }
    }
}

/// The whole store configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// Address of shard 0; shard `i` listens on port + `i` (port 0: each picks a free port).
    /// Default 127.0.0.1:20160.
    pub addr: String,
    /// The store's directory. Default ./percore-data.
    pub data_dir: PathBuf,
    /// Shards (one per core); fixed when the store is created. Default: one per online CPU
    /// (or per `cpus` entry).
    pub shards: Option<usize>,
    /// CPUs for the shards, e.g. "0-3,6". Default: every online CPU.
    pub cpus: Option<String>,
    /// "pack" or "spread". Default spread.
    pub placement: String,
    /// How long an idle shard spins before it sleeps, in µs. Spinning answers the next
    /// request without a wake-up (which costs milliseconds at p99 on VMs); on a CPU that
    /// other busy threads share (several stores on one machine's CPUs) it only takes their
    /// time, so set it to 0 there. Default 200.
    pub spin_before_park_us: u64,
    /// Raft settings.
    pub raft: RaftConfig,
    /// Split settings.
    pub split: SplitConfig,
    /// Storage settings.
    pub storage: StorageConfig,
    /// PD settings.
    pub pd: PdConfig,
    /// Shard balance.
    pub balance: BalanceConfig,
    /// Request bounds.
    pub request: RequestConfig,
    /// MVCC GC.
    pub gc: GcConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: "127.0.0.1:20160".into(),
            data_dir: PathBuf::from("./percore-data"),
            shards: None,
            cpus: None,
            placement: "spread".into(),
            spin_before_park_us: 200,
            raft: RaftConfig::default(),
            split: SplitConfig::default(),
            storage: StorageConfig::default(),
            pd: PdConfig::default(),
            balance: BalanceConfig::default(),
            request: RequestConfig::default(),
            gc: GcConfig::default(),
        }
    }
}

/// A configuration problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Reads a TOML file.
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    /// Checks bounds and relations between fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let r = &self.raft;
        let bad = |m: String| Err(ConfigError(m));
        if r.base_tick_ms == 0 {
            return bad("raft.base-tick-ms must be positive".into());
        }
        if self.spin_before_park_us > 10_000 {
            return bad(format!("spin-before-park-us must be at most 10000, not {}", self.spin_before_park_us));
        }
        if r.heartbeat_ticks == 0 || r.heartbeat_ticks >= r.election_ticks {
            return bad(format!(
                "raft.heartbeat-ticks ({}) must be at least 1 and below raft.election-ticks ({})",
                r.heartbeat_ticks, r.election_ticks
            ));
        }
        if r.lease_ticks == 0 || r.lease_ticks >= r.election_ticks {
            return bad(format!(
                "raft.lease-ticks ({}) must be at least 1 and below raft.election-ticks ({}): a lease that outlives an election allows stale reads",
                r.lease_ticks, r.election_ticks
            ));
        }
        if r.max_size_per_msg == 0 || r.max_inflight_msgs == 0 || r.snapshot_chunk_size < 1024 {
            return bad("raft.max-size-per-msg, raft.max-inflight-msgs must be positive and raft.snapshot-chunk-size at least 1024".into());
        }
        if self.gc.batch_keys == 0 {
            return bad("gc.batch-keys must be at least 1".into());
        }
        if self.split.region_split_size == 0 || self.split.region_split_keys == 0 {
            return bad("split.region-split-size and split.region-split-keys must be positive".into());
        }
        if self.storage.log_segment_mb == 0 || self.storage.log_segment_mb > 1024 {
            return bad("storage.log-segment-mb must be between 1 and 1024".into());
        }
        if self.request.timeout_ms == 0 || self.request.slow_ms == 0 {
            return bad("request.timeout-ms and request.slow-ms must be positive".into());
        }
        if self.request.timeout_ms < 2 * r.base_tick_ms {
            return bad(format!(
                "request.timeout-ms ({}) must be at least two raft ticks ({} ms): a request must outlive a heartbeat round",
                self.request.timeout_ms,
                2 * r.base_tick_ms
            ));
        }
        if self.shards == Some(0) {
            return bad("shards must be at least 1".into());
        }
        if self.placement != "pack" && self.placement != "spread" {
            return bad(format!("placement {:?} must be pack or spread", self.placement));
        }
        if self.addr.parse::<std::net::SocketAddr>().is_err() {
            return bad(format!("addr {:?} is not a host:port socket address", self.addr));
        }
        Ok(())
    }

    /// The raft base tick.
    pub fn base_tick(&self) -> Duration {
        Duration::from_millis(self.raft.base_tick_ms)
    }

    /// The bound on every request's wait.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request.timeout_ms)
    }

    /// A configuration for tests: fast ticks and heartbeats, small logs.
    pub fn for_tests() -> Config {
        let mut c = Config::default();
        c.raft.base_tick_ms = 20;
        c.raft.log_gc_interval_ms = 200;
        c.raft.flush_interval_ms = 200;
        c.split.split_check_interval_ms = 100;
        c.pd.store_heartbeat_ms = 200;
        c.pd.region_heartbeat_ms = 500;
        c.storage.block_cache_mb = 16;
        c.storage.write_buffer_mb = 8;
        c.storage.log_segment_mb = 4;
        c.storage.log_cache_mb = 16;
        c.storage.value_cache_mb = 4;
        // Not the defaults, so that the tests go through the filtered and synced-as-written
        // SST paths too (the bench and `make run` go through the defaults).
        c.storage.bloom_bits_per_key = 10;
        c.storage.bytes_per_sync_kb = 256;
        c.balance.shard_balance_interval_ms = 300;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_files_parse() {
        Config::default().validate().unwrap();
        Config::for_tests().validate().unwrap();
        let c: Config = toml::from_str("addr = \"127.0.0.1:1\"\n[raft]\nbase-tick-ms = 50\n").unwrap();
        assert_eq!(c.raft.base_tick_ms, 50);
        assert_eq!(c.raft.election_ticks, 10);
        assert!(toml::from_str::<Config>("no-such-field = 1").is_err());
        let c: Config =
            toml::from_str("spin-before-park-us = 0\n[storage]\nbloom-bits-per-key = 10\nbytes-per-sync-kb = 1024\n")
                .unwrap();
        assert_eq!((c.spin_before_park_us, c.storage.bloom_bits_per_key, c.storage.bytes_per_sync_kb), (0, 10, 1024));
        c.validate().unwrap();
    }

    #[test]
    fn bad_values_are_named() {
        type Case = (fn(&mut Config), &'static str);
        let cases: Vec<Case> = vec![
            (|c| c.raft.lease_ticks = 10, "lease-ticks"),
            (|c| c.raft.heartbeat_ticks = 0, "heartbeat-ticks"),
            (|c| c.raft.base_tick_ms = 0, "base-tick-ms"),
            (|c| c.shards = Some(0), "shards"),
            (|c| c.placement = "round".into(), "placement"),
            (|c| c.addr = "nowhere".into(), "addr"),
            (|c| c.request.timeout_ms = 0, "request.timeout-ms"),
            (|c| c.request.timeout_ms = 150, "two raft ticks"),
            (|c| c.spin_before_park_us = 60_000, "spin-before-park-us"),
        ];
        for (f, want) in cases {
            let mut c = Config::default();
            f(&mut c);
            let e = c.validate().unwrap_err();
            assert!(e.0.contains(want), "{e} should mention {want}");
        }
    }
}
