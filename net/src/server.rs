//! The server side: an accept loop (usable on every shard) and per-connection tasks.
//!
//! Each request runs in its own task, so a slow request never holds up the connection and
//! responses leave in completion order. A bad frame closes that connection with a logged
//! reason; the accept loop and the other connections go on.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};

use core_shard::notify::Notify;

use bytes::Bytes;
use glommio::net::TcpListener;
use prost::Message;

use crate::conn::{read_frames, split, ConnConfig, Outgoing};
use crate::frame::Body;
use crate::proto::rpcpb::{Envelope, Method, Status, StatusCode};

/// A boxed, shard-local future.
pub type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// A handler's response: already encoded, or a message the connection encodes in place
/// (copied once, into the connection's buffer).
pub enum Reply {
    /// Encoded bytes.
    Encoded(Bytes),
    /// A message to encode.
    Message(Box<dyn Body>),
}

impl Reply {
    /// A message, encoded when it is sent.
    pub fn message<M: Message + 'static>(m: M) -> Reply {
        Reply::Message(Box::new(m))
    }

    /// The encoded response.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Reply::Encoded(b) => b,
            Reply::Message(m) => {
                let mut out = bytes::BytesMut::with_capacity(m.body_len());
                m.encode_body(&mut out);
                out.freeze()
            }
        }
    }
}

impl From<Bytes> for Reply {
    fn from(b: Bytes) -> Self {
        Reply::Encoded(b)
    }
}

impl From<Vec<u8>> for Reply {
    fn from(v: Vec<u8>) -> Self {
        Reply::Encoded(v.into())
    }
}

/// The result of a handler: a response, or a status explaining its absence.
pub type HandlerResult = Result<Reply, Status>;

/// A service: handles one decoded request.
pub trait Service: 'static {
    /// Handles `payload` of `method`.
    fn call(&self, method: Method, payload: Bytes) -> LocalBoxFuture<HandlerResult>;
}

/// Decodes `payload` as `Req`, runs `f`, encodes its `Resp`: the body of most handlers.
pub async fn typed<Req, Resp, F, Fut>(payload: Bytes, f: F) -> HandlerResult
where
    Req: Message + Default,
    Resp: Message,
    F: FnOnce(Req) -> Fut,
    Fut: Future<Output = Resp>,
{
    let req = Req::decode(payload).map_err(|e| status(StatusCode::BadRequest, format!("bad request: {e}")))?;
    Ok(Reply::Encoded(f(req).await.encode_to_vec().into()))
}

/// A status with a message.
pub fn status(code: StatusCode, message: impl Into<String>) -> Status {
    Status { code: code as i32, message: message.into() }
}

/// Counters of a server, for tests and metrics.
#[derive(Default, Debug)]
pub struct ServerStats {
    /// Connections accepted.
    pub accepted: Cell<u64>,
    /// Connections closed because of a bad frame.
    pub bad_frames: Cell<u64>,
    /// Requests handled.
    pub requests: Cell<u64>,
}

/// Accepts connections and serves each with `service`, forever.
pub async fn serve(listener: TcpListener, service: Rc<dyn Service>, config: ConnConfig, stats: Rc<ServerStats>) {
    serve_until(listener, service, config, stats, std::future::pending()).await
}

/// Like [`serve`] until `stop` completes; then closes every connection and returns once
/// they are all gone (so nothing keeps the service alive).
pub async fn serve_until(
    listener: TcpListener,
    service: Rc<dyn Service>,
    config: ConnConfig,
    stats: Rc<ServerStats>,
    stop: impl Future<Output = ()>,
) {
    let live: Rc<RefCell<Vec<Weak<Outgoing>>>> = Rc::default();
    let gone = Notify::new();
    let accept = async {
        loop {
            let stream = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            stats.accepted.set(stats.accepted.get() + 1);
            let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".into());
            let (reader, writer) = match split(stream) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "cannot set up connection");
                    continue;
                }
            };
            let out = Outgoing::new(&config);
            live.borrow_mut().retain(|w| w.strong_count() > 0);
            live.borrow_mut().push(Rc::downgrade(&out));
            let (service, config, stats, gone) = (service.clone(), config.clone(), stats.clone(), gone.clone());
            glommio::spawn_local(async move {
                serve_connection(reader, writer, out, peer, service, config, stats).await;
                gone.notify_all();
            })
            .detach();
        }
    };
    futures_lite::future::or(accept, stop).await;
    drop(listener);
    // Close every connection and wait for their tasks — but not forever: a request handler
    // still waiting on work that will never finish (another shard already stopped) keeps its
    // connection's state alive, and must not keep the server from stopping.
    let deadline = std::time::Instant::now() + SHUTDOWN_GRACE;
    loop {
        let notified = gone.notified();
        let open: Vec<Rc<Outgoing>> = live.borrow().iter().filter_map(|w| w.upgrade()).collect();
        if open.is_empty() {
            break;
        }
        for out in &open {
            out.close("server shutting down");
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            tracing::warn!(open = open.len(), "stopping with requests still in flight");
            break;
        }
        drop(open);
        futures_lite::future::or(notified, glommio::timer::sleep(left)).await;
    }
}

/// How long a stopping server waits for its connections' tasks to end.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

async fn serve_connection(
    reader: glommio::net::TcpStream,
    writer: glommio::net::TcpStream,
    out: Rc<Outgoing>,
    peer: String,
    service: Rc<dyn Service>,
    config: ConnConfig,
    stats: Rc<ServerStats>,
) {
    let writer_task = glommio::spawn_local(out.clone().run_writer(writer));
    let reason = read_frames(reader, config.max_frame, &out, |env| {
        stats.requests.set(stats.requests.get() + 1);
        let service = service.clone();
        let out = out.clone();
        glommio::spawn_local(async move {
            // A closed connection drops the response: the client sees the close.
            let _ = handle(&*service, env, &out).await;
        })
        .detach();
    })
    .await;
    if reason.starts_with("bad frame") {
        stats.bad_frames.set(stats.bad_frames.get() + 1);
        tracing::warn!(%peer, %reason, "closing connection");
    } else {
        tracing::debug!(%peer, %reason, "connection closed");
    }
    out.close(reason);
    writer_task.await;
}

async fn handle(service: &dyn Service, env: Envelope, out: &Outgoing) -> Result<(), crate::NetError> {
    let mut resp = Envelope { request_id: env.request_id, method: env.method, is_response: true, ..Default::default() };
    let result = match Method::from_i32(env.method) {
        Some(m) if !env.is_response => service.call(m, env.payload).await,
        Some(_) => Err(status(StatusCode::BadRequest, "a response sent to a server")),
        None => Err(status(StatusCode::Unimplemented, format!("unknown method {}", env.method))),
    };
    match result {
        Ok(Reply::Message(body)) => return out.send_response(env.request_id, env.method, &*body).await,
        Ok(Reply::Encoded(payload)) => {
            resp.payload = payload;
            resp.status = Some(status(StatusCode::Ok, ""));
        }
        Err(s) => resp.status = Some(s),
    }
    out.send(&resp).await
}
