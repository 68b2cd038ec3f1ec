//! Connections: a TCP stream split into a reader task and a writer task.
//!
//! The stream's file descriptor is duplicated, so the two halves are independent glommio
//! streams — no lock between reading and writing. Frames queued during one loop turn are
//! written with one `write` by the writer task (queued behind the turn's runnable tasks).
//! Many requests are in flight per connection; responses are matched by request id.

use std::cell::{Cell, RefCell};
use std::os::unix::io::{AsRawFd, FromRawFd};
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use core_shard::notify::Notify;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::error::NetError;
use crate::frame::{self, FrameError, DEFAULT_MAX_FRAME};
use crate::proto::rpcpb::Envelope;

/// Connection settings shared by clients and servers.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// Largest frame accepted or sent. Default 16 MiB.
    pub max_frame: usize,
    /// Bytes queued for writing before senders wait. Default 8 MiB.
    pub max_pending_write: usize,
    /// Connect timeout. Default 3 s.
    pub connect_timeout: Duration,
    /// Per-call timeout of clients when none is given. Default 10 s.
    pub call_timeout: Duration,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            max_frame: DEFAULT_MAX_FRAME,
            max_pending_write: 8 << 20,
            connect_timeout: Duration::from_secs(3),
            call_timeout: Duration::from_secs(10),
        }
    }
}

/// Splits a stream into a reading and a writing stream over duplicated descriptors.
pub fn split(stream: TcpStream) -> std::io::Result<(TcpStream, TcpStream)> {
    stream.set_nodelay(true).ok();
    // SAFETY: `dup` returns a new descriptor we own; on failure it returns -1.
    let fd = unsafe { libc::dup(stream.as_raw_fd()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh, owned descriptor of a connected TCP socket.
    let writer = unsafe { TcpStream::from_raw_fd(fd) };
    Ok((stream, writer))
}

/// The sending side of a connection: frames are encoded into a buffer that the writer task
/// flushes.
pub struct Outgoing {
    buf: RefCell<BytesMut>,
    wake_writer: Notify,
    drained: Notify,
    closed: RefCell<Option<String>>,
    max_frame: usize,
    max_pending: usize,
    frames_out: Cell<u64>,
    writes: Cell<u64>,
}

impl Outgoing {
    /// A queue with the given limits.
    pub fn new(config: &ConnConfig) -> Rc<Self> {
        Rc::new(Outgoing {
            buf: RefCell::new(BytesMut::with_capacity(64 << 10)),
            wake_writer: Notify::new(),
            drained: Notify::new(),
            closed: RefCell::new(None),
            max_frame: config.max_frame,
            max_pending: config.max_pending_write,
            frames_out: Cell::new(0),
            writes: Cell::new(0),
        })
    }

    /// Why the connection is closed, if it is.
    pub fn closed(&self) -> Option<String> {
        self.closed.borrow().clone()
    }

    /// Marks the connection closed (the writer stops, pending sends fail).
    pub fn close(&self, reason: impl Into<String>) {
        let mut c = self.closed.borrow_mut();
        if c.is_none() {
            *c = Some(reason.into());
        }
        drop(c);
        self.wake_writer.notify_all();
        self.drained.notify_all();
    }

    /// Queues a frame, waiting while too much is queued.
    pub async fn send(&self, env: &Envelope) -> Result<(), NetError> {
        let len = prost::Message::encoded_len(env);
        self.queue(len, |buf| frame::encode(env, buf)).await
    }

    /// Queues the frame of a successful response whose payload `body` is encoded in place
    /// ([`frame::encode_response`]).
    pub async fn send_response(&self, request_id: u64, method: i32, body: &dyn frame::Body) -> Result<(), NetError> {
        // The envelope adds a few bytes to the body; `max_frame` bounds the body here.
        self.queue(body.body_len(), |buf| frame::encode_response(request_id, method, body, buf)).await
    }

    async fn queue(&self, len: usize, encode: impl FnOnce(&mut BytesMut)) -> Result<(), NetError> {
        if len > self.max_frame {
            return Err(NetError::Frame(FrameError::TooLarge { len, max: self.max_frame }));
        }
        loop {
            let drained = self.drained.notified();
            if let Some(reason) = self.closed() {
                return Err(NetError::Closed(reason));
            }
            if self.buf.borrow().len() < self.max_pending {
                break;
            }
            drained.await;
        }
        encode(&mut self.buf.borrow_mut());
        self.frames_out.set(self.frames_out.get() + 1);
        self.wake_writer.notify_all();
        Ok(())
    }

    /// Frames queued so far and `write` calls made: frames per write shows the batching.
    pub fn counters(&self) -> (u64, u64) {
        (self.frames_out.get(), self.writes.get())
    }

    /// The writer task: writes whatever is queued, one `write_all` per wake-up.
    pub async fn run_writer(self: Rc<Self>, mut stream: TcpStream) {
        let mut spare = BytesMut::with_capacity(64 << 10);
        loop {
            let notified = self.wake_writer.notified();
            let closed = self.closed().is_some();
            if self.buf.borrow().is_empty() {
                if closed {
                    break;
                }
                notified.await;
                continue;
            }
            std::mem::swap(&mut *self.buf.borrow_mut(), &mut spare);
            self.drained.notify_all();
            self.writes.set(self.writes.get() + 1);
            if let Err(e) = stream.write_all(&spare).await {
                self.close(format!("write failed: {e}"));
                break;
            }
            spare.clear();
            if closed {
                continue;
            }
        }
        // Shut both directions down so that the reader half, blocked in `read`, wakes up.
        let _ = stream.shutdown(std::net::Shutdown::Both).await;
        let _ = stream.close().await;
    }
}

/// Reads frames from `stream` and hands each to `on_frame` until the peer closes, the
/// connection is closed locally, or a frame is bad. Returns why it stopped.
pub async fn read_frames(
    mut stream: TcpStream,
    max_frame: usize,
    out: &Outgoing,
    mut on_frame: impl FnMut(Envelope),
) -> String {
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        loop {
            match frame::parse(&mut buf, max_frame) {
                Ok(env) => on_frame(env),
                Err(FrameError::Incomplete) => break,
                Err(e) => return format!("bad frame: {e}"),
            }
        }
        if let Some(reason) = out.closed() {
            return reason;
        }
        match stream.read(&mut chunk).await {
            Ok(0) => {
                return if buf.is_empty() { "closed by peer".into() } else { "closed by peer mid-frame".into() };
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return format!("read failed: {e}"),
        }
    }
}
