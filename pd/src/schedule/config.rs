//! The scheduling configuration: every knob with its default, settable at run time
//! (`percore-ctl scheduler config key=value`) and persisted by PD.

use std::collections::BTreeMap;

/// Scheduling settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleConfig {
    /// Replicas every region should have. Default 3.
    pub max_replicas: usize,
    /// A store without a heartbeat for this long is down: its replicas are replaced
    /// elsewhere. Default 30 min.
    pub max_store_down_time_ms: u64,
    /// A store without a heartbeat for this long is disconnected: no new replicas or leaders
    /// go to it. Default 20 s.
    pub store_disconnect_ms: u64,
    /// How often schedulers and the replica checker run. Default 1 000 ms.
    pub schedule_interval_ms: u64,
    /// An operator not finished after this long is abandoned. Default 60 000 ms.
    pub operator_timeout_ms: u64,
    /// Operators involving one store at once. Default 4.
    pub store_limit: usize,
    /// Operators adding a replica (a snapshot) to one store at once. Default 2.
    pub max_snapshots_per_store: usize,
    /// Leader counts may differ from the mean by this fraction before balance-leader acts
    /// (at least one leader). Default 0.05.
    pub leader_tolerance: f64,
    /// Region counts may differ from the mean by this fraction before balance-region acts
    /// (at least one region). Default 0.05.
    pub region_tolerance: f64,
    /// A store whose available space is below this fraction of its capacity takes no new
    /// replicas. Default 0.2.
    pub low_space_ratio: f64,
    /// Operators a scheduler may create per run. Default 4.
    pub batch: usize,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            max_replicas: 3,
            max_store_down_time_ms: 30 * 60 * 1000,
            store_disconnect_ms: 20_000,
            schedule_interval_ms: 1_000,
            operator_timeout_ms: 60_000,
            store_limit: 4,
            max_snapshots_per_store: 2,
            leader_tolerance: 0.05,
            region_tolerance: 0.05,
            low_space_ratio: 0.2,
            batch: 4,
        }
    }
}

impl ScheduleConfig {
    /// Every setting as `key → value`.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_string(), v);
        };
        put("max-replicas", self.max_replicas.to_string());
        put("max-store-down-time-ms", self.max_store_down_time_ms.to_string());
        put("store-disconnect-ms", self.store_disconnect_ms.to_string());
        put("schedule-interval-ms", self.schedule_interval_ms.to_string());
        put("operator-timeout-ms", self.operator_timeout_ms.to_string());
        put("store-limit", self.store_limit.to_string());
        put("max-snapshots-per-store", self.max_snapshots_per_store.to_string());
        put("leader-tolerance", self.leader_tolerance.to_string());
        put("region-tolerance", self.region_tolerance.to_string());
        put("low-space-ratio", self.low_space_ratio.to_string());
        put("batch", self.batch.to_string());
        m
    }

    /// Sets one setting; errors name the key and the accepted values.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let bad = |what: &str| format!("{key} = {value:?}: {what}");
        let int = |lo: u64| {
            value
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|v| *v >= lo)
                .ok_or_else(|| bad(&format!("expected an integer >= {lo}")))
        };
        let frac = || {
            value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| (0.0..1.0).contains(v))
                .ok_or_else(|| bad("expected a number in [0, 1)"))
        };
        match key {
            "max-replicas" => self.max_replicas = int(1)? as usize,
            "max-store-down-time-ms" => self.max_store_down_time_ms = int(100)?,
            "store-disconnect-ms" => self.store_disconnect_ms = int(100)?,
            "schedule-interval-ms" => self.schedule_interval_ms = int(10)?,
            "operator-timeout-ms" => self.operator_timeout_ms = int(100)?,
            "store-limit" => self.store_limit = int(1)? as usize,
            "max-snapshots-per-store" => self.max_snapshots_per_store = int(1)? as usize,
            "leader-tolerance" => self.leader_tolerance = frac()?,
            "region-tolerance" => self.region_tolerance = frac()?,
            "low-space-ratio" => self.low_space_ratio = frac()?,
            "batch" => self.batch = int(1)? as usize,
            _ => {
                return Err(format!(
                    "unknown schedule setting {key:?}; known: {}",
                    self.to_map().keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            }
        }
        Ok(())
    }

    /// Encodes for storage (`key=value` lines).
    pub fn encode(&self) -> Vec<u8> {
        self.to_map().iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>().into_bytes()
    }

    /// Decodes from storage; unknown or bad lines are reported.
    pub fn decode(data: &[u8]) -> Result<Self, String> {
        let mut c = ScheduleConfig::default();
        for line in String::from_utf8_lossy(data).lines() {
            if let Some((k, v)) = line.split_once('=') {
                c.set(k.trim(), v.trim())?;
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_bad_values_are_named() {
        let mut c = ScheduleConfig::default();
        c.set("max-replicas", "5").unwrap();
        c.set("leader-tolerance", "0.1").unwrap();
        let d = ScheduleConfig::decode(&c.encode()).unwrap();
        assert_eq!(d, c);
        for (k, v) in [("max-replicas", "0"), ("leader-tolerance", "2"), ("nope", "1"), ("store-limit", "x")] {
            let e = c.set(k, v).unwrap_err();
            assert!(e.contains(k), "{e}");
        }
    }
}
