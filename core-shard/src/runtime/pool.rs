//! Starting, stopping and joining the shard executors.

use std::future::Future;
use std::time::Duration;

use glommio::{CpuSet, LocalExecutorBuilder, Placement, PoolPlacement};

use super::queues::TaskQueues;
use super::shutdown::{shutdown_pair, ShutdownHandle, ShutdownSignal};
use crate::mailbox::{mailboxes, Inbox, InboxSender, MailboxConfig, Outbox};
use crate::placement::{format_cpus, PlacementError, ShardPlacement};
use crate::tick::TickService;

/// Errors of the shard runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The placement is invalid.
    #[error(transparent)]
    Placement(#[from] PlacementError),
    /// glommio could not create an executor (bad CPU, io_uring unavailable, memlock, ...).
    #[error("cannot start shard {shard} on cpu {cpu}: {reason}")]
    Start {
        /// The shard.
        shard: usize,
        /// Its CPU.
        cpu: usize,
        /// glommio's error.
        reason: String,
    },
    /// A shard's thread panicked or its executor failed while running.
    #[error("shard {shard} failed: {reason}")]
    Shard {
        /// The shard.
        shard: usize,
        /// What happened.
        reason: String,
    },
}

/// How to start a pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Thread name prefix (`<name>-<shard>`).
    pub name: String,
    /// One CPU per shard.
    pub placement: ShardPlacement,
    /// CPUs of every shard's blocking thread pool — and of its io_uring kernel workers
    /// (glommio patch 4). `None`: the other CPUs of the placement; when the placement has only
    /// the shard's CPU, the other CPUs this process may run on; on a one-CPU machine, the
    /// shard's own.
    pub blocking_cpus: Option<Vec<usize>>,
    /// Memory glommio registers with io_uring per shard. Default 1 MiB: memlock is 8 MiB for
    /// non-root users, and registration failure only costs performance.
    pub io_memory: usize,
    /// How long an idle executor spins before it sleeps. Default 200 µs: cross-core
    /// wake-ups of a sleeping executor cost milliseconds at p99 on VMs.
    pub spin_before_park: Duration,
    /// The tick service's base interval. Default 100 ms.
    pub tick_interval: Duration,
    /// Mailbox bounds.
    pub mailbox: MailboxConfig,
}

impl PoolConfig {
    /// A configuration with the defaults above for the given placement.
    pub fn new(name: &str, placement: ShardPlacement) -> Self {
        PoolConfig {
            name: name.to_string(),
            placement,
            blocking_cpus: None,
            io_memory: 1 << 20,
            spin_before_park: Duration::from_micros(200),
            tick_interval: Duration::from_millis(100),
            mailbox: MailboxConfig::default(),
        }
    }

    fn blocking_cpus_for(&self, shard_cpu: usize) -> Vec<usize> {
        if let Some(cpus) = &self.blocking_cpus {
            return cpus.clone();
        }
        let mut others: Vec<usize> = self.placement.cpus.iter().copied().filter(|&c| c != shard_cpu).collect();
        if others.is_empty() {
            // A one-shard placement: the blocking pool and the kernel's io_uring workers still
            // belong off the reactor's core, where a spinning executor would make them wait
            // (an fdatasync took 300 µs instead of 90 µs there).
            others = allowed_cpus().into_iter().filter(|&c| c != shard_cpu).collect();
        }
        others.sort_unstable();
        others.dedup();
        if others.is_empty() {
            vec![shard_cpu]
        } else {
            others
        }
    }
}

/// The CPUs this process may run on (its affinity mask; empty if it cannot be read).
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set, filled in by the kernel.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// What a shard's future receives: its identity and its share of the runtime.
pub struct Shard<M: Send + 'static> {
    /// Shard index, `0..shards`.
    pub id: usize,
    /// The CPU it is pinned to.
    pub cpu: usize,
    /// How many shards the pool has.
    pub shards: usize,
    /// Sends to any shard (itself included).
    pub outbox: Outbox<M>,
    /// This shard's mailbox.
    pub inbox: Inbox<M>,
    /// The shard's single tick timer.
    pub ticks: TickService,
    /// The shard's task queues.
    pub queues: TaskQueues,
    /// Fires when the pool shuts down.
    pub shutdown: ShutdownSignal,
}

/// A running pool of shards whose futures produce `T`.
pub struct ShardPool<M: Send + 'static, T: Send + 'static> {
    handles: Vec<(usize, glommio::ExecutorJoinHandle<T>)>,
    inboxes: Vec<InboxSender<M>>,
    shutdown: ShutdownHandle,
    cpus: Vec<usize>,
}

impl<M: Send + 'static, T: Send + 'static> ShardPool<M, T> {
    /// Starts one executor per shard and runs `shard_main` on each. Call it before the
    /// process starts other threads (glommio 0.9 stalls otherwise).
    pub fn start<F, Fut>(config: PoolConfig, shard_main: F) -> Result<Self, RuntimeError>
    where
        F: Fn(Shard<M>) -> Fut + Send + Clone + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let n = config.placement.shards();
        if n == 0 {
            return Err(PlacementError::ZeroShards.into());
        }
        if config.placement.oversubscribed {
            tracing::warn!(
                cpus = %format_cpus(&config.placement.cpus),
                shards = n,
                "more shards than CPUs: some CPUs run several shards"
            );
        }
        let online = CpuSet::online().map_err(|e| PlacementError::Topology(e.to_string()))?;
        for &cpu in &config.placement.cpus {
            if !online.iter().any(|l| l.cpu == cpu) {
                let mut all: Vec<usize> = online.iter().map(|l| l.cpu).collect();
                all.sort_unstable();
                return Err(PlacementError::NoSuchCpu { cpu, online: format_cpus(&all) }.into());
            }
        }
        let (senders, inboxes) = mailboxes::<M>(n, config.mailbox);
        let (shutdown, signal) = shutdown_pair();
        let mut pool = ShardPool {
            handles: Vec::with_capacity(n),
            inboxes: senders.clone(),
            shutdown,
            cpus: config.placement.cpus.clone(),
        };
        for (id, inbox) in inboxes.into_iter().enumerate() {
            let cpu = config.placement.cpus[id];
            let blocking = config.blocking_cpus_for(cpu);
            let blocking_set = CpuSet::online()
                .map_err(|e| RuntimeError::Start { shard: id, cpu, reason: e.to_string() })?
                .filter(|l| blocking.contains(&l.cpu));
            if blocking_set.is_empty() {
                pool.shutdown.fire();
                return Err(PlacementError::NoSuchCpu {
                    cpu: blocking[0],
                    online: "see /sys/devices/system/cpu/online".into(),
                }
                .into());
            }
            let builder = LocalExecutorBuilder::new(Placement::Fixed(cpu))
                .name(&format!("{}-{id}", config.name))
                .io_memory(config.io_memory)
                .spin_before_park(config.spin_before_park)
                .blocking_thread_pool_placement(PoolPlacement::Custom(vec![blocking_set]));
            let senders = senders.clone();
            let signal = signal.clone();
            let mailbox = config.mailbox;
            let tick_interval = config.tick_interval;
            let main = shard_main.clone();
            let spawned = builder.spawn(move || async move {
                let queues = TaskQueues::create();
                // Both fail only outside an executor or with a foreign queue: not possible here.
                let outbox = Outbox::new(senders, mailbox, queues.latency).expect("outbox on own executor");
                let ticks = TickService::start(tick_interval, queues.latency).expect("ticks on own executor");
                let shard = Shard { id, cpu, shards: n, outbox, inbox, ticks: ticks.clone(), queues, shutdown: signal };
                let out = main(shard).await;
                ticks.stop();
                out
            });
            match spawned {
                Ok(h) => pool.handles.push((id, h)),
                Err(e) => {
                    pool.shutdown.fire();
                    return Err(RuntimeError::Start { shard: id, cpu, reason: e.to_string() });
                }
            }
        }
        Ok(pool)
    }

    /// A sender into shard `id`'s inbox, usable from any thread.
    pub fn inbox(&self, id: usize) -> Option<InboxSender<M>> {
        self.inboxes.get(id).cloned()
    }

    /// The CPU of every shard.
    pub fn cpus(&self) -> &[usize] {
        &self.cpus
    }

    /// A handle that fires shutdown, for another thread (a signal handler, a test).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Asks every shard to stop.
    pub fn shutdown(&self) {
        self.shutdown.fire();
    }

    /// Waits for every shard's future to return; results in shard order.
    pub fn join(self) -> Vec<Result<T, RuntimeError>> {
        drop(self.inboxes);
        self.handles
            .into_iter()
            .map(|(shard, h)| h.join().map_err(|e| RuntimeError::Shard { shard, reason: e.to_string() }))
            .collect()
    }
}
