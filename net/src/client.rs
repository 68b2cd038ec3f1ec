//! The client side of a connection: many calls in flight, matched by request id.

use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use core_shard::notify::Notify;
use core_shard::oneshot;
use glommio::net::TcpStream;
use prost::Message;

use crate::conn::{read_frames, split, ConnConfig, Outgoing};
use crate::error::NetError;
use crate::proto::rpcpb::{Envelope, Method, StatusCode};

type Reply = Result<Envelope, NetError>;

/// A call waiting for its response.
struct Pending {
    tx: oneshot::Sender<Reply>,
    deadline: Instant,
    timeout: Duration,
}

struct Inner {
    addr: String,
    out: Rc<Outgoing>,
    pending: RefCell<FxHashMap<u64, Pending>>,
    next_id: Cell<u64>,
    config: ConnConfig,
    /// When the deadline task will next look (`None`: it waits for a call).
    armed: Cell<Option<Instant>>,
    rearm: Notify,
}

impl Inner {
    /// Fails the calls whose deadline passed; returns the next deadline.
    fn expire(&self, now: Instant) -> Option<Instant> {
        let mut pending = self.pending.borrow_mut();
        let due: Vec<u64> = pending.iter().filter(|(_, p)| p.deadline <= now).map(|(id, _)| *id).collect();
        for id in due {
            if let Some(p) = pending.remove(&id) {
                p.tx.send(Err(NetError::Timeout(p.timeout)));
            }
        }
        pending.values().map(|p| p.deadline).min()
    }
}

/// Keeps the calls' timeouts for a connection: one timer at the earliest deadline, not one
/// per call. Ends when the connection is gone.
async fn deadlines(inner: std::rc::Weak<Inner>) {
    loop {
        let Some(i) = inner.upgrade() else { return };
        let rearm = i.rearm.notified();
        let next = i.expire(Instant::now());
        i.armed.set(next);
        let closed = i.out.closed().is_some();
        drop(i);
        if closed {
            return;
        }
        match next {
            Some(at) => {
                let wait = at.saturating_duration_since(Instant::now());
                futures_lite::future::or(glommio::timer::sleep(wait), rearm).await;
            }
            None => rearm.await,
        }
    }
}

/// A client connection. Cheap to clone; every clone shares the connection.
#[derive(Clone)]
pub struct Client {
    inner: Rc<Inner>,
}

impl Client {
    /// Connects to `addr` (within the configured connect timeout) and starts the
    /// connection's tasks on the current executor.
    pub async fn connect(addr: &str, config: ConnConfig) -> Result<Client, NetError> {
        let err = |reason: String| NetError::Connect { addr: addr.to_string(), reason };
        let connect = TcpStream::connect(addr.to_string());
        let stream = match with_timeout(config.connect_timeout, connect).await {
            Some(Ok(s)) => s,
            Some(Err(e)) => return Err(err(e.to_string())),
            None => return Err(err(format!("no answer within {:?}", config.connect_timeout))),
        };
        let (reader, writer) = split(stream).map_err(|e| err(e.to_string()))?;
        let out = Outgoing::new(&config);
        let inner = Rc::new(Inner {
            addr: addr.to_string(),
            out: out.clone(),
            pending: RefCell::new(FxHashMap::default()),
            next_id: Cell::new(1),
            config,
            armed: Cell::new(None),
            rearm: Notify::new(),
        });
        glommio::spawn_local(deadlines(Rc::downgrade(&inner))).detach();
        glommio::spawn_local(out.clone().run_writer(writer)).detach();
        let weak = Rc::downgrade(&inner);
        let max_frame = inner.config.max_frame;
        glommio::spawn_local(async move {
            let reason = read_frames(reader, max_frame, &out, |env| {
                if let Some(inner) = weak.upgrade() {
                    let p = inner.pending.borrow_mut().remove(&env.request_id);
                    if let Some(p) = p {
                        p.tx.send(Ok(env));
                    }
                }
            })
            .await;
            out.close(reason.clone());
            if let Some(inner) = weak.upgrade() {
                tracing::debug!(addr = %inner.addr, %reason, "client connection closed");
                for (_, p) in inner.pending.borrow_mut().drain() {
                    p.tx.send(Err(NetError::Closed(reason.clone())));
                }
                inner.rearm.notify_all();
            }
        })
        .detach();
        Ok(Client { inner })
    }

    /// The address connected to.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// Why the connection is closed, if it is.
    pub fn closed(&self) -> Option<String> {
        self.inner.out.closed()
    }

    /// Closes the connection; calls in flight fail with `Closed`.
    pub fn close(&self) {
        self.inner.out.close("closed by the client");
    }

    /// Sends a request and waits for its response payload (default timeout from the config).
    /// A call that times out fails alone: its late response is dropped, the connection and
    /// the other calls on it go on.
    pub async fn call(&self, method: Method, payload: Bytes, timeout: Option<Duration>) -> Result<Bytes, NetError> {
        let inner = &self.inner;
        let id = inner.next_id.get();
        inner.next_id.set(id + 1);
        let (tx, rx) = oneshot::channel();
        let timeout = timeout.unwrap_or(inner.config.call_timeout);
        let deadline = Instant::now() + timeout;
        inner.pending.borrow_mut().insert(id, Pending { tx, deadline, timeout });
        if inner.armed.get().is_none_or(|at| deadline < at) {
            inner.armed.set(Some(deadline));
            inner.rearm.notify_all();
        }
        let env = Envelope { request_id: id, method: method as i32, payload, status: None, is_response: false };
        if let Err(e) = inner.out.send(&env).await {
            inner.pending.borrow_mut().remove(&id);
            return Err(e);
        }
        let reply = match rx.await {
            Ok(r) => r?,
            Err(_) => return Err(NetError::Closed("connection dropped".into())),
        };
        match reply.status {
            Some(s) if s.code != StatusCode::Ok as i32 => Err(NetError::Status {
                code: StatusCode::from_i32(s.code).unwrap_or(StatusCode::Internal),
                message: s.message,
            }),
            _ => Ok(reply.payload),
        }
    }

    /// [`Client::call`] with typed request and response.
    pub async fn call_msg<Req: Message, Resp: Message + Default>(
        &self,
        method: Method,
        req: &Req,
        timeout: Option<Duration>,
    ) -> Result<Resp, NetError> {
        let payload = self.call(method, req.encode_to_vec().into(), timeout).await?;
        Resp::decode(payload)
            .map_err(|e| NetError::Decode { what: std::any::type_name::<Resp>(), reason: e.to_string() })
    }

    /// Frames sent and write calls made by this connection.
    pub fn counters(&self) -> (u64, u64) {
        self.inner.out.counters()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.out.close("client dropped");
        // The deadline task ends.
        self.rearm.notify_all();
    }
}

/// Runs `fut` for at most `d`; `None` on timeout.
pub async fn with_timeout<T>(d: Duration, fut: impl std::future::Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        glommio::timer::sleep(d).await;
        None
    })
    .await
}

/// Shard-local connections, one per address, reconnected when closed.
#[derive(Default)]
pub struct ClientPool {
    clients: RefCell<FxHashMap<String, Client>>,
    config: ConnConfig,
}

impl ClientPool {
    /// A pool whose connections use `config`.
    pub fn new(config: ConnConfig) -> Self {
        ClientPool { clients: RefCell::new(FxHashMap::default()), config }
    }

    /// The open connection to `addr`, connecting if there is none.
    pub async fn get(&self, addr: &str) -> Result<Client, NetError> {
        if let Some(c) = self.clients.borrow().get(addr) {
            if c.closed().is_none() {
                return Ok(c.clone());
            }
        }
        let c = Client::connect(addr, self.config.clone()).await?;
        // Another task may have connected meanwhile: keep one, close the other.
        let mut clients = self.clients.borrow_mut();
        if let Some(existing) = clients.get(addr).filter(|e| e.closed().is_none()) {
            let existing = existing.clone();
            c.close();
            return Ok(existing);
        }
        clients.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// Drops the connection to `addr` (after an error), so the next `get` reconnects.
    pub fn evict(&self, addr: &str) {
        if let Some(c) = self.clients.borrow_mut().remove(addr) {
            c.close();
        }
    }
}
