//! Which CPUs the client threads and an embedded cluster's shards get.
//!
//! Client and server are kept apart when the machine allows: by default the client threads
//! take the last `threads` online CPUs and the server the others; when that would leave the
//! server nothing (e.g. 1 CPU, or as many threads as CPUs), both use every CPU and the
//! report says they share. Explicit `--cpus` (server) and `--client-cpus` lists are used as
//! given. Against an external server (`--pd`, `--redis`) only the client side is placed,
//! on the last CPUs (away from a server started on CPU 0).

use core_shard::placement::format_cpus;

/// The CPUs of each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuPlan {
    /// Server shards (and the embedded PD); empty for an external server.
    pub server: Vec<usize>,
    /// Client threads, cycled if fewer than the threads.
    pub client: Vec<usize>,
    /// Whether the two sides share a CPU.
    pub shared: bool,
}

impl CpuPlan {
    /// Places `threads` client threads and, when `embedded`, the server, over `online` CPUs.
    pub fn new(
        online: &[usize],
        threads: usize,
        embedded: bool,
        server: Option<&[usize]>,
        client: Option<&[usize]>,
    ) -> CpuPlan {
        let last = |n: usize, from: &[usize]| from[from.len().saturating_sub(n)..].to_vec();
        let without = |cpus: &[usize]| online.iter().copied().filter(|c| !cpus.contains(c)).collect::<Vec<_>>();
        let (server, client) = match (embedded, server, client) {
            (false, _, Some(c)) => (Vec::new(), c.to_vec()),
            (false, _, None) => (Vec::new(), last(threads, online)),
            (true, Some(s), Some(c)) => (s.to_vec(), c.to_vec()),
            (true, Some(s), None) => {
                let rest = without(s);
                (s.to_vec(), if rest.is_empty() { s.to_vec() } else { last(threads, &rest) })
            }
            (true, None, Some(c)) => {
                let rest = without(c);
                (if rest.is_empty() { online.to_vec() } else { rest }, c.to_vec())
            }
            (true, None, None) if online.len() > threads => {
                (online[..online.len() - threads].to_vec(), last(threads, online))
            }
            (true, None, None) => (online.to_vec(), online.to_vec()),
        };
        let shared = server.iter().any(|c| client.contains(c));
        CpuPlan { server, client, shared }
    }

    /// The arrangement in words, for the report.
    pub fn describe(&self, threads: usize) -> String {
        let client = format!("{threads} client thread(s) on cpu(s) {}", format_cpus(&self.client));
        if self.server.is_empty() {
            return format!("{client}; the server is external");
        }
        let server = format!("server shards and PD on cpu(s) {}", format_cpus(&self.server));
        if self.shared {
            format!("{server}; {client} (shared with the server: not enough CPUs to keep them apart)")
        } else {
            format!("{server}; {client} (separate)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_client_and_server_apart_when_cpus_allow() {
        let two = [0, 1];
        let p = CpuPlan::new(&two, 1, true, None, None);
        assert_eq!((p.server, p.client, p.shared), (vec![0], vec![1], false));
        let p = CpuPlan::new(&[0, 1, 2, 3], 2, true, None, None);
        assert_eq!((p.server, p.client, p.shared), (vec![0, 1], vec![2, 3], false));
        // As many threads as CPUs: they share.
        let p = CpuPlan::new(&two, 2, true, None, None);
        assert_eq!((p.server.clone(), p.client.clone(), p.shared), (vec![0, 1], vec![0, 1], true));
        assert!(p.describe(2).contains("shared with the server"), "{}", p.describe(2));
        let p = CpuPlan::new(&[0], 1, true, None, None);
        assert_eq!((p.server, p.client, p.shared), (vec![0], vec![0], true));
    }

    #[test]
    fn explicit_lists_win() {
        let online = [0, 1, 2, 3];
        let p = CpuPlan::new(&online, 1, true, Some(&[1, 2]), None);
        assert_eq!((p.server, p.client), (vec![1, 2], vec![3]));
        let p = CpuPlan::new(&online, 1, true, None, Some(&[0]));
        assert_eq!((p.server, p.client), (vec![1, 2, 3], vec![0]));
        let p = CpuPlan::new(&online, 1, true, Some(&[0]), Some(&[0]));
        assert!(p.shared);
        let p = CpuPlan::new(&[0, 1], 1, true, Some(&[0, 1]), None);
        assert_eq!((p.client, p.shared), (vec![0, 1], true));
    }

    #[test]
    fn external_servers_place_only_the_client() {
        let p = CpuPlan::new(&[0, 1, 2, 3], 2, false, None, None);
        assert_eq!((p.server.is_empty(), p.client.clone(), p.shared), (true, vec![2, 3], false));
        assert!(p.describe(2).ends_with("the server is external"));
    }
}
