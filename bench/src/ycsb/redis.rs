//! A minimal pipelining Redis client over glommio TCP, and the workload's Redis target.
//!
//! One connection per client thread carries every task's commands: a command is encoded into
//! the connection's output buffer and its reply slot queued; a writer task flushes whatever
//! accumulated in one loop turn with one `write`, and a reader task hands replies to the
//! queued slots in order (Redis answers in order). The socket is split over duplicated
//! descriptors (`net::conn::split`) so that reading and writing never wait for each other.
//! No timer per command: a watchdog task closes the connection (failing every command on
//! it) when commands wait and no reply came for [`CALL_TIMEOUT`] — replies come in order,
//! so a missing one cannot be skipped anyway.
//!
//! Records are plain strings (`GET`/`SET` of the whole record). Scans need an order Redis
//! does not keep for plain keys, so when the workload scans, every insert also adds its key
//! to one sorted set with score 0 ([`INDEX_KEY`]), and a scan is `ZRANGEBYLEX [start + LIMIT
//! 0 n` followed by `MGET` of those keys: two round trips, which is what Redis offers.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use core_shard::notify::Notify;
use core_shard::oneshot;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::resp::{self, ParseError, Reply};
use super::target::{OpFuture, Target};

/// The sorted set of every record key, kept when the workload scans.
pub const INDEX_KEY: &[u8] = b"percore-bench:ycsb:index";

/// Connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for the next reply while commands wait.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the watchdog looks.
const WATCHDOG_PERIOD: Duration = Duration::from_millis(500);

type ReplySlot = oneshot::Sender<Result<Reply, String>>;

struct Inner {
    out: RefCell<BytesMut>,
    waiting: RefCell<VecDeque<ReplySlot>>,
    wake_writer: Notify,
    closed: RefCell<Option<String>>,
    /// Replies received so far (the watchdog's sign of life).
    replies: std::cell::Cell<u64>,
}

impl Inner {
    fn close(&self, reason: &str) {
        if self.closed.borrow().is_none() {
            *self.closed.borrow_mut() = Some(reason.to_string());
        }
        for slot in self.waiting.borrow_mut().drain(..) {
            slot.send(Err(format!("connection closed: {reason}")));
        }
        self.wake_writer.notify_all();
    }
}

/// A pipelined connection to a Redis-protocol server.
pub struct RedisConn {
    inner: Rc<Inner>,
}

impl RedisConn {
    /// Connects to `addr` and starts the reader and writer tasks.
    pub async fn connect(addr: &str) -> Result<Self, String> {
        let stream = TcpStream::connect_timeout(addr, CONNECT_TIMEOUT)
            .await
            .map_err(|e| format!("cannot connect to Redis at {addr}: {e}"))?;
        let (reader, writer) = net::conn::split(stream).map_err(|e| format!("Redis at {addr}: {e}"))?;
        let inner = Rc::new(Inner {
            out: RefCell::new(BytesMut::with_capacity(64 << 10)),
            waiting: RefCell::new(VecDeque::new()),
            wake_writer: Notify::new(),
            closed: RefCell::new(None),
            replies: std::cell::Cell::new(0),
        });
        glommio::spawn_local(run_writer(inner.clone(), writer)).detach();
        glommio::spawn_local(run_reader(inner.clone(), reader)).detach();
        glommio::spawn_local(run_watchdog(inner.clone())).detach();
        Ok(RedisConn { inner })
    }

    /// Sends `cmds` back to back and waits for their replies, in order. A server error
    /// reply is `Ok(Reply::Error)`; a connection failure or timeout is `Err`.
    pub async fn pipeline(&self, cmds: &[&[&[u8]]]) -> Result<Vec<Reply>, String> {
        if let Some(reason) = self.inner.closed.borrow().clone() {
            return Err(format!("connection closed: {reason}"));
        }
        let mut replies = Vec::with_capacity(cmds.len());
        {
            let mut out = self.inner.out.borrow_mut();
            let mut waiting = self.inner.waiting.borrow_mut();
            for args in cmds {
                resp::encode(&mut out, args);
                let (tx, rx) = oneshot::channel();
                waiting.push_back(tx);
                replies.push(rx);
            }
        }
        self.inner.wake_writer.notify_all();
        let mut out = Vec::with_capacity(cmds.len());
        for rx in replies {
            out.push(rx.await.map_err(|e| e.to_string())??);
        }
        Ok(out)
    }

    /// One command.
    pub async fn call(&self, args: &[&[u8]]) -> Result<Reply, String> {
        if let Some(reason) = self.inner.closed.borrow().clone() {
            return Err(format!("connection closed: {reason}"));
        }
        let rx = {
            resp::encode(&mut self.inner.out.borrow_mut(), args);
            let (tx, rx) = oneshot::channel();
            self.inner.waiting.borrow_mut().push_back(tx);
            rx
        };
        self.inner.wake_writer.notify_all();
        rx.await.map_err(|e| e.to_string())?
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.inner.close("closed by the client");
    }
}

impl Drop for RedisConn {
    fn drop(&mut self) {
        self.close();
    }
}

async fn run_writer(inner: Rc<Inner>, mut stream: TcpStream) {
    let mut spare = BytesMut::with_capacity(64 << 10);
    loop {
        let notified = inner.wake_writer.notified();
        if inner.closed.borrow().is_some() {
            break;
        }
        if inner.out.borrow().is_empty() {
            notified.await;
            continue;
        }
        std::mem::swap(&mut *inner.out.borrow_mut(), &mut spare);
        if let Err(e) = stream.write_all(&spare).await {
            inner.close(&format!("write failed: {e}"));
            break;
        }
        spare.clear();
    }
    // Wakes the reader, blocked in `read`.
    let _ = stream.shutdown(std::net::Shutdown::Both).await;
}

async fn run_reader(inner: Rc<Inner>, mut stream: TcpStream) {
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut chunk = vec![0u8; 64 << 10];
    let reason = 'read: loop {
        loop {
            match resp::parse(&mut buf) {
                Ok(reply) => match inner.waiting.borrow_mut().pop_front() {
                    Some(slot) => {
                        inner.replies.set(inner.replies.get() + 1);
                        slot.send(Ok(reply))
                    }
                    None => break 'read format!("unexpected reply {reply:?}"),
                },
                Err(ParseError::Incomplete) => break,
                Err(ParseError::Invalid(e)) => break 'read format!("protocol error: {e}"),
            }
        }
        if inner.closed.borrow().is_some() {
            break String::new();
        }
        match stream.read(&mut chunk).await {
            Ok(0) => break "closed by the server".to_string(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => break format!("read failed: {e}"),
        }
    };
    inner.close(&reason);
}

/// Closes the connection when commands have waited [`CALL_TIMEOUT`] without any reply.
async fn run_watchdog(inner: Rc<Inner>) {
    let (mut seen, mut quiet) = (inner.replies.get(), Duration::ZERO);
    while inner.closed.borrow().is_none() {
        glommio::timer::sleep(WATCHDOG_PERIOD).await;
        let now = inner.replies.get();
        quiet =
            if now == seen && !inner.waiting.borrow().is_empty() { quiet + WATCHDOG_PERIOD } else { Duration::ZERO };
        seen = now;
        if quiet >= CALL_TIMEOUT {
            inner.close(&format!("no reply within {CALL_TIMEOUT:?}"));
        }
    }
}

/// The workload over Redis.
pub struct RedisTarget {
    conn: RedisConn,
    scan_index: bool,
}

impl RedisTarget {
    /// Connects; with `scan_index`, inserts maintain [`INDEX_KEY`] for scans.
    pub async fn connect(addr: &str, scan_index: bool) -> Result<Self, String> {
        let conn = RedisConn::connect(addr).await?;
        match conn.call(&[b"PING"]).await? {
            Reply::Simple(s) if s == "PONG" => Ok(RedisTarget { conn, scan_index }),
            other => Err(format!("Redis at {addr} answered PING with {other:?}")),
        }
    }
}

/// `+OK` or the error.
fn expect_ok(r: Reply) -> Result<(), String> {
    match r {
        Reply::Simple(_) | Reply::Integer(_) => Ok(()),
        Reply::Error(e) => Err(e),
        other => Err(format!("unexpected reply {other:?}")),
    }
}

impl Target for RedisTarget {
    fn read(&self, key: Bytes) -> OpFuture<'_, Option<Bytes>> {
        Box::pin(async move {
            match self.conn.call(&[b"GET", &key]).await? {
                Reply::Bulk(v) => Ok(v),
                Reply::Error(e) => Err(e),
                other => Err(format!("unexpected reply {other:?}")),
            }
        })
    }

    fn insert(&self, key: Bytes, value: Bytes) -> OpFuture<'_, ()> {
        if !self.scan_index {
            return self.update(key, value);
        }
        Box::pin(async move {
            let replies = self.conn.pipeline(&[&[b"SET", &key, &value], &[b"ZADD", INDEX_KEY, b"0", &key]]).await?;
            replies.into_iter().try_for_each(expect_ok)
        })
    }

    fn update(&self, key: Bytes, value: Bytes) -> OpFuture<'_, ()> {
        Box::pin(async move { expect_ok(self.conn.call(&[b"SET", &key, &value]).await?) })
    }

    fn scan(&self, start: Bytes, len: usize) -> OpFuture<'_, usize> {
        Box::pin(async move {
            if !self.scan_index {
                return Err("scans on Redis need the key index, which only workloads with scans keep".into());
            }
            let mut from = Vec::with_capacity(start.len() + 1);
            from.push(b'[');
            from.extend_from_slice(&start);
            let count = len.to_string();
            let keys = match self
                .conn
                .call(&[b"ZRANGEBYLEX", INDEX_KEY, &from, b"+", b"LIMIT", b"0", count.as_bytes()])
                .await?
            {
                Reply::Array(Some(keys)) => keys,
                Reply::Error(e) => return Err(e),
                other => return Err(format!("unexpected reply {other:?}")),
            };
            let keys: Vec<Bytes> =
                keys.into_iter().filter_map(|k| if let Reply::Bulk(Some(k)) = k { Some(k) } else { None }).collect();
            if keys.is_empty() {
                return Ok(0);
            }
            let mut args: Vec<&[u8]> = vec![b"MGET"];
            args.extend(keys.iter().map(|k| &k[..]));
            match self.conn.call(&args).await? {
                Reply::Array(Some(values)) => Ok(values.iter().filter(|v| matches!(v, Reply::Bulk(Some(_)))).count()),
                Reply::Error(e) => Err(e),
                other => Err(format!("unexpected reply {other:?}")),
            }
        })
    }

    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + '_>> {
        Box::pin(async move { self.conn.close() })
    }
}
