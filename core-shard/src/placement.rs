//! Which CPU each shard runs on.
//!
//! A store runs one shard per CPU it is given. The operator chooses the CPUs with a list
//! (`--cpus 0-3,6`), the number of shards (`--shards N`) and, when the list leaves a choice,
//! a policy (`--placement pack|spread`):
//!
//! * `pack` fills hyper-thread siblings of one core, then the next core, then the next
//!   package: the shards share caches (good for few shards that talk a lot);
//! * `spread` puts consecutive shards on different packages and physical cores first and only
//!   then on siblings: the shards share as little as possible (the default for servers).
//!
//! Resolution is a pure function of the machine's topology ([`CpuInfo`]s read from sysfs) so
//! that it can be tested table-driven. Errors are explicit: 0 shards, an empty or malformed
//! list, a CPU that is not online. More shards than CPUs is allowed — the shards then share
//! CPUs round-robin, which only makes sense for tests and in-process clusters — and
//! [`ShardPlacement::oversubscribed`] says so, so that the caller can warn.

use std::fmt;
use std::str::FromStr;

/// Errors of CPU-list parsing and shard placement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// `--shards 0`.
    #[error("the shard count must be at least 1")]
    ZeroShards,
    /// An empty CPU list (`--cpus ""`).
    #[error("the CPU list is empty")]
    EmptyCpuList,
    /// A list item that is not a number or a range `a-b` with `a <= b`.
    #[error("invalid CPU list item {item:?}: expected a CPU number or a range like 0-3")]
    Malformed {
        /// The offending item.
        item: String,
    },
    /// A CPU that this machine does not have online.
    #[error("CPU {cpu} does not exist or is offline (online CPUs: {online})")]
    NoSuchCpu {
        /// The requested CPU.
        cpu: usize,
        /// The online CPUs, as a list string.
        online: String,
    },
    /// An unknown `--placement` policy.
    #[error("unknown placement policy {0:?}: expected pack or spread")]
    UnknownPolicy(String),
    /// The machine's topology could not be read.
    #[error("cannot read the CPU topology: {0}")]
    Topology(String),
}

/// A list of CPU numbers as written on a command line: `0-3,6`.
///
/// Order is kept (it is the order shards are placed in) and duplicates are removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(Vec<usize>);

impl CpuList {
    /// The CPUs, in list order.
    pub fn cpus(&self) -> &[usize] {
        &self.0
    }

    /// Builds a list from CPU numbers (order kept, duplicates dropped).
    pub fn from_cpus(cpus: impl IntoIterator<Item = usize>) -> Result<Self, PlacementError> {
        let mut out = Vec::new();
        for c in cpus {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        if out.is_empty() {
            return Err(PlacementError::EmptyCpuList);
        }
        Ok(CpuList(out))
    }
}

impl FromStr for CpuList {
    type Err = PlacementError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(PlacementError::EmptyCpuList);
        }
        let mut cpus = Vec::new();
        for item in s.split(',') {
            let item = item.trim();
            let bad = || PlacementError::Malformed { item: item.to_string() };
            let num = |t: &str| t.trim().parse::<usize>().map_err(|_| bad());
            match item.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    if a > b {
                        return Err(bad());
                    }
                    cpus.extend(a..=b);
                }
                None => cpus.push(num(item)?),
            }
        }
        CpuList::from_cpus(cpus)
    }
}

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_cpus(&self.0))
    }
}

/// Formats CPU numbers compactly, collapsing runs: `[0,1,2,3,6]` → `0-3,6`.
pub fn format_cpus(cpus: &[usize]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end + 1 {
            i += 1;
            end = cpus[i];
        }
        out.push(if end > start { format!("{start}-{end}") } else { start.to_string() });
        i += 1;
    }
    out.join(",")
}

/// How shards are laid over the CPUs when the CPU list leaves a choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlacementPolicy {
    /// Siblings of one core first, then the next core (shared caches).
    Pack,
    /// Different packages and cores first, siblings last (least sharing). The default.
    #[default]
    Spread,
}

impl FromStr for PlacementPolicy {
    type Err = PlacementError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pack" => Ok(PlacementPolicy::Pack),
            "spread" => Ok(PlacementPolicy::Spread),
            other => Err(PlacementError::UnknownPolicy(other.to_string())),
        }
    }
}

impl fmt::Display for PlacementPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlacementPolicy::Pack => "pack",
            PlacementPolicy::Spread => "spread",
        })
    }
}

/// One online CPU and where it sits in the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuInfo {
    /// The CPU number the kernel uses.
    pub cpu: usize,
    /// Physical package (socket).
    pub package: usize,
    /// Physical core id within the package; siblings (hyper-threads) share it.
    pub core: usize,
}

/// The result of placement: one CPU per shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPlacement {
    /// `cpus[i]` is the CPU of shard `i`.
    pub cpus: Vec<usize>,
    /// True when there are more shards than CPUs, so that some CPUs run two shards.
    pub oversubscribed: bool,
}

impl ShardPlacement {
    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.cpus.len()
    }
}

/// Resolves the shard count and CPUs against the given topology.
///
/// * `shards`: `None` means one shard per CPU available (the list, or every online CPU).
/// * `cpus`: `None` means every online CPU, ordered by `policy`; a list is used in its own
///   order (the operator has chosen), after checking that every CPU in it exists.
pub fn resolve(
    topology: &[CpuInfo],
    shards: Option<usize>,
    cpus: Option<&CpuList>,
    policy: PlacementPolicy,
) -> Result<ShardPlacement, PlacementError> {
    if shards == Some(0) {
        return Err(PlacementError::ZeroShards);
    }
    if topology.is_empty() {
        return Err(PlacementError::Topology("no online CPU found".into()));
    }
    let candidates: Vec<usize> = match cpus {
        Some(list) => {
            for &cpu in list.cpus() {
                if !topology.iter().any(|c| c.cpu == cpu) {
                    let online: Vec<usize> = topology.iter().map(|c| c.cpu).collect();
                    return Err(PlacementError::NoSuchCpu { cpu, online: format_cpus(&online) });
                }
            }
            list.cpus().to_vec()
        }
        None => order_by_policy(topology, policy),
    };
    let n = shards.unwrap_or(candidates.len());
    let cpus: Vec<usize> = (0..n).map(|i| candidates[i % candidates.len()]).collect();
    Ok(ShardPlacement { oversubscribed: n > candidates.len(), cpus })
}

/// Orders all CPUs of the topology for the policy.
fn order_by_policy(topology: &[CpuInfo], policy: PlacementPolicy) -> Vec<usize> {
    let mut cpus: Vec<CpuInfo> = topology.to_vec();
    match policy {
        PlacementPolicy::Pack => {
            cpus.sort_by_key(|c| (c.package, c.core, c.cpu));
            cpus.into_iter().map(|c| c.cpu).collect()
        }
        PlacementPolicy::Spread => {
            // Rank each CPU among the siblings of its core (0 = first thread of the core) and
            // each core among the cores of its package; then take thread rank first, core rank
            // next and package last, so consecutive shards land on different packages and
            // cores before any core gets a second shard.
            cpus.sort_by_key(|c| (c.package, c.core, c.cpu));
            let mut keyed = Vec::with_capacity(cpus.len());
            let mut core_rank = 0usize;
            let mut thread_rank = 0usize;
            for (i, c) in cpus.iter().enumerate() {
                if i > 0 {
                    let p = cpus[i - 1];
                    if p.package != c.package {
                        core_rank = 0;
                        thread_rank = 0;
                    } else if p.core != c.core {
                        core_rank += 1;
                        thread_rank = 0;
                    } else {
                        thread_rank += 1;
                    }
                }
                keyed.push(((thread_rank, core_rank, c.package, c.cpu), c.cpu));
            }
            keyed.sort();
            keyed.into_iter().map(|(_, cpu)| cpu).collect()
        }
    }
}

/// Reads the online CPUs and their topology from sysfs.
pub fn online_topology() -> Result<Vec<CpuInfo>, PlacementError> {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map_err(|e| PlacementError::Topology(format!("/sys/devices/system/cpu/online: {e}")))?;
    let list: CpuList = online.trim().parse()?;
    let read_num = |cpu: usize, what: &str| -> usize {
        let path = format!("/sys/devices/system/cpu/cpu{cpu}/topology/{what}");
        // A missing topology file (some VMs) means "its own core on package 0".
        std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(usize::MAX)
    };
    Ok(list
        .cpus()
        .iter()
        .map(|&cpu| {
            let package = read_num(cpu, "physical_package_id");
            let core = read_num(cpu, "core_id");
            CpuInfo {
                cpu,
                package: if package == usize::MAX { 0 } else { package },
                core: if core == usize::MAX { cpu } else { core },
            }
        })
        .collect())
}

/// Resolves placement against this machine's online CPUs.
pub fn resolve_online(
    shards: Option<usize>,
    cpus: Option<&CpuList>,
    policy: PlacementPolicy,
) -> Result<ShardPlacement, PlacementError> {
    resolve(&online_topology()?, shards, cpus, policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(n: usize) -> Vec<CpuInfo> {
        (0..n).map(|cpu| CpuInfo { cpu, package: 0, core: cpu }).collect()
    }

    /// 2 packages × 2 cores × 2 threads, numbered like Linux does on Intel: the second
    /// thread of every core comes after all first threads.
    fn smt_2x2x2() -> Vec<CpuInfo> {
        let mut v = Vec::new();
        for cpu in 0..8 {
            v.push(CpuInfo { cpu, package: (cpu % 4) / 2, core: cpu % 2 });
        }
        v
    }

    #[test]
    fn parses_cpu_lists() {
        let cases: &[(&str, Result<Vec<usize>, PlacementError>)] = &[
            ("0", Ok(vec![0])),
            ("0-3,6", Ok(vec![0, 1, 2, 3, 6])),
            (" 2 , 0 ", Ok(vec![2, 0])),
            ("1,1,1-2", Ok(vec![1, 2])),
            ("", Err(PlacementError::EmptyCpuList)),
            ("  ", Err(PlacementError::EmptyCpuList)),
            ("a", Err(PlacementError::Malformed { item: "a".into() })),
            ("3-1", Err(PlacementError::Malformed { item: "3-1".into() })),
            ("1,", Err(PlacementError::Malformed { item: "".into() })),
            ("-1", Err(PlacementError::Malformed { item: "-1".into() })),
            ("0-", Err(PlacementError::Malformed { item: "0-".into() })),
        ];
        for (input, want) in cases {
            let got = input.parse::<CpuList>().map(|l| l.cpus().to_vec());
            assert_eq!(&got, want, "input {input:?}");
        }
    }

    #[test]
    fn formats_cpu_lists() {
        assert_eq!(format_cpus(&[0, 1, 2, 3, 6]), "0-3,6");
        assert_eq!(format_cpus(&[5]), "5");
        assert_eq!(format_cpus(&[1, 3, 4]), "1,3-4");
        assert_eq!("0-3,6".parse::<CpuList>().unwrap().to_string(), "0-3,6");
    }

    #[test]
    fn parses_policies() {
        assert_eq!("pack".parse::<PlacementPolicy>(), Ok(PlacementPolicy::Pack));
        assert_eq!("Spread".parse::<PlacementPolicy>(), Ok(PlacementPolicy::Spread));
        assert!(matches!("round".parse::<PlacementPolicy>(), Err(PlacementError::UnknownPolicy(_))));
    }

    #[test]
    fn resolves_placements() {
        use PlacementPolicy::*;
        let list = |s: &str| s.parse::<CpuList>().unwrap();
        struct Case {
            topo: Vec<CpuInfo>,
            shards: Option<usize>,
            cpus: Option<CpuList>,
            policy: PlacementPolicy,
            want: Result<(Vec<usize>, bool), PlacementError>,
        }
        let cases = vec![
            // Default: one shard per online CPU.
            Case { topo: flat(2), shards: None, cpus: None, policy: Spread, want: Ok((vec![0, 1], false)) },
            Case { topo: flat(4), shards: Some(2), cpus: None, policy: Pack, want: Ok((vec![0, 1], false)) },
            // An explicit list is used in its order; the shard count defaults to its length.
            Case {
                topo: flat(8),
                shards: None,
                cpus: Some(list("6,0-1")),
                policy: Pack,
                want: Ok((vec![6, 0, 1], false)),
            },
            Case {
                topo: flat(8),
                shards: Some(2),
                cpus: Some(list("0-3,6")),
                policy: Spread,
                want: Ok((vec![0, 1], false)),
            },
            // More shards than CPUs: round-robin, flagged.
            Case { topo: flat(2), shards: Some(3), cpus: None, policy: Spread, want: Ok((vec![0, 1, 0], true)) },
            // SMT: pack fills core 0's siblings first; spread visits every package and core.
            Case { topo: smt_2x2x2(), shards: Some(4), cpus: None, policy: Pack, want: Ok((vec![0, 4, 1, 5], false)) },
            Case {
                topo: smt_2x2x2(),
                shards: Some(4),
                cpus: None,
                policy: Spread,
                want: Ok((vec![0, 2, 1, 3], false)),
            },
            Case {
                topo: smt_2x2x2(),
                shards: None,
                cpus: None,
                policy: Spread,
                want: Ok((vec![0, 2, 1, 3, 4, 6, 5, 7], false)),
            },
            // Errors.
            Case { topo: flat(2), shards: Some(0), cpus: None, policy: Spread, want: Err(PlacementError::ZeroShards) },
            Case {
                topo: flat(2),
                shards: None,
                cpus: Some(list("0,7")),
                policy: Spread,
                want: Err(PlacementError::NoSuchCpu { cpu: 7, online: "0-1".into() }),
            },
        ];
        for (i, c) in cases.into_iter().enumerate() {
            let got = resolve(&c.topo, c.shards, c.cpus.as_ref(), c.policy).map(|p| (p.cpus, p.oversubscribed));
            assert_eq!(got, c.want, "case {i}");
        }
    }

    #[test]
    fn reads_this_machine() {
        let topo = online_topology().expect("sysfs topology");
        assert!(!topo.is_empty());
        let p = resolve_online(None, None, PlacementPolicy::Spread).unwrap();
        assert_eq!(p.shards(), topo.len());
        let missing = CpuList::from_cpus([100_000]).unwrap();
        assert!(matches!(
            resolve_online(None, Some(&missing), PlacementPolicy::Pack),
            Err(PlacementError::NoSuchCpu { cpu: 100_000, .. })
        ));
    }
}
