//! A shard's context: what the parts of one shard share — its identity, configuration,
//! engines (RocksDB and raft log), PD client, mailboxes to the other shards, task queues,
//! transport, the store-wide state, the region directory, the request tracker, and the event
//! queue of its raft loop. Shard-local: `Rc`, never sent to another thread.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use core_shard::log::LogEngine;
use core_shard::mailbox::Outbox;
use core_shard::notify::Notify;
use core_shard::oneshot;
use core_shard::runtime::TaskQueues;
use net::proto::rpcpb::Status;
use pd::PdClient;

use crate::config::Config;
use crate::directory::Directory;
use crate::engine::KvEngine;
use crate::msg::{Event, ShardMsg};
use crate::shared::StoreShared;
use crate::tracker::{RequestTracker, Stage, Ticket};
use crate::transport::Transport;

/// What a shard is made of, to build its [`ShardCtx`].
pub struct ShardParts {
    /// This shard.
    pub shard_id: usize,
    /// Shards of the store.
    pub shards: usize,
    /// Configuration.
    pub cfg: Rc<Config>,
    /// State machine.
    pub engine: KvEngine,
    /// Raft log.
    pub log: LogEngine,
    /// PD.
    pub pd: PdClient,
    /// Mailboxes to the other shards.
    pub outbox: Outbox<ShardMsg>,
    /// Task queues.
    pub queues: TaskQueues,
    /// Raft messages to other stores.
    pub transport: Rc<Transport>,
    /// Store-wide state.
    pub shared: Arc<StoreShared>,
}

/// A forwarded request's reply: the encoded response, or a status.
pub type ForwardReply = Result<Bytes, Status>;

/// A shard's context.
pub struct ShardCtx {
    /// This shard.
    pub shard_id: usize,
    /// Shards of the store.
    pub shards: usize,
    /// Store id.
    pub store_id: Cell<u64>,
    /// Configuration.
    pub cfg: Rc<Config>,
    /// State machine.
    pub engine: KvEngine,
    /// Raft log.
    pub log: LogEngine,
    /// PD.
    pub pd: PdClient,
    /// Other shards.
    pub outbox: Outbox<ShardMsg>,
    /// Task queues.
    pub queues: TaskQueues,
    /// Raft messages to other stores.
    pub transport: Rc<Transport>,
    /// Store-wide state.
    pub shared: Arc<StoreShared>,
    /// Where the store's regions live.
    pub directory: Directory,
    /// Client requests in flight on this shard, their stages and the bound on their wait.
    pub requests: RefCell<RequestTracker>,
    events: RefCell<VecDeque<Event>>,
    wake: Notify,
    forwards: RefCell<HashMap<u64, oneshot::Sender<ForwardReply>>>,
    next_forward: Cell<u64>,
}

impl ShardCtx {
    /// A context; the raft loop starts separately.
    pub fn new(p: ShardParts) -> Self {
        let slow_after = Duration::from_millis(p.cfg.request.slow_ms);
        ShardCtx {
            shard_id: p.shard_id,
            shards: p.shards,
            store_id: Cell::new(0),
            cfg: p.cfg,
            engine: p.engine,
            log: p.log,
            pd: p.pd,
            outbox: p.outbox,
            queues: p.queues,
            transport: p.transport,
            shared: p.shared,
            directory: Directory::default(),
            requests: RefCell::new(RequestTracker::new(slow_after)),
            events: RefCell::new(VecDeque::new()),
            wake: Notify::new(),
            forwards: RefCell::new(HashMap::new()),
            next_forward: Cell::new(1),
        }
    }

    /// Records the stage a tracked request reached (no-op without a ticket).
    pub fn set_stage(&self, ticket: Option<Ticket>, stage: Stage) {
        if let Some(t) = ticket {
            self.requests.borrow_mut().set_stage(t, stage);
        }
    }

    /// Queues an event for the raft loop.
    pub fn push(&self, ev: Event) {
        self.events.borrow_mut().push_back(ev);
        self.wake.notify_all();
    }

    /// Takes every queued event, waiting for one if there is none.
    pub async fn next_events(&self, out: &mut Vec<Event>) {
        loop {
            let notified = self.wake.notified();
            {
                let mut q = self.events.borrow_mut();
                if !q.is_empty() {
                    out.extend(q.drain(..));
                    return;
                }
            }
            notified.await;
        }
    }

    /// The shard hosting `region`, if the store has it.
    pub fn shard_of(&self, region_id: u64) -> Option<usize> {
        self.directory.shard_of(region_id)
    }

    /// Records where a region lives, here and on every other shard.
    pub fn announce(&self, region_id: u64, shard: Option<usize>) {
        self.directory.set_shard(region_id, shard);
        for to in 0..self.shards {
            if to != self.shard_id {
                let _ = self.outbox.try_send(to, ShardMsg::Directory { region_id, shard });
            }
        }
    }

    /// Tells the coordinator an initialized region's key range (`None`: it left the store).
    pub fn report_range(&self, region_id: u64, region: Option<&net::proto::metapb::Region>) {
        let range =
            region.map(|r| (r.start_key.clone(), r.end_key.clone(), r.region_epoch.as_ref().map_or(0, |e| e.version)));
        if self.shard_id == 0 {
            self.directory.set_range(region_id, range);
        } else {
            let outbox = self.outbox.clone();
            let msg = ShardMsg::Range { region_id, range };
            if let Err(core_shard::mailbox::TrySendError::Full(msg)) = outbox.try_send(0, msg) {
                glommio::spawn_local(async move {
                    let _ = outbox.send(0, msg).await;
                })
                .detach();
            }
        }
    }

    /// Registers a forwarded request; returns its id and the receiver of its reply.
    pub fn start_forward(&self) -> (u64, oneshot::Receiver<ForwardReply>) {
        let id = self.next_forward.get();
        self.next_forward.set(id + 1);
        let (tx, rx) = oneshot::channel();
        self.forwards.borrow_mut().insert(id, tx);
        (id, rx)
    }

    /// Completes a forwarded request.
    pub fn finish_forward(&self, id: u64, result: ForwardReply) {
        if let Some(tx) = self.forwards.borrow_mut().remove(&id) {
            tx.send(result);
        }
    }

    /// Forgets a forwarded request whose caller gave up (a late reply is dropped).
    pub fn cancel_forward(&self, id: u64) {
        self.forwards.borrow_mut().remove(&id);
    }

    /// Abandons every forwarded request (the store is stopping: the other shard may never
    /// answer); their callers get an `Unavailable` error.
    pub fn drop_forwards(&self) {
        self.forwards.borrow_mut().clear();
    }

    /// Adjusts this shard's region count.
    pub fn count_region(&self, delta: i32) {
        let c = &self.shared.region_counts[self.shard_id];
        if delta >= 0 {
            c.fetch_add(delta as u32, Ordering::Relaxed);
        } else {
            c.fetch_sub((-delta) as u32, Ordering::Relaxed);
        }
    }

    /// Adjusts this shard's leader count.
    pub fn count_leader(&self, delta: i32) {
        let c = &self.shared.leader_counts[self.shard_id];
        if delta >= 0 {
            c.fetch_add(delta as u32, Ordering::Relaxed);
        } else {
            c.fetch_sub((-delta) as u32, Ordering::Relaxed);
        }
    }
}
