//! Requests that reached the wrong shard of the right store: forwarded through the mailbox
//! to the shard hosting the region, which serves them with a `shard_hint` naming itself, so
//! the client addresses it next. Neither the request nor the reply is decoded again.

use std::time::Duration;

use net::proto::errorpb::WrongShard;
use net::proto::rpcpb::StatusCode;
use net::server::{status, HandlerResult, Reply};

use super::StoreService;
use crate::msg::ShardMsg;
use crate::request::Request;

impl StoreService {
    /// Forwards `req` to `shard` and waits for its answer.
    pub(super) async fn forward(&self, shard: usize, req: Request) -> HandlerResult {
        let (id, rx) = self.ctx.start_forward();
        let msg = ShardMsg::Forward { from: self.ctx.shard_id, id, request: Box::new(req) };
        if self.ctx.outbox.send(shard, msg).await.is_err() {
            return Err(status(StatusCode::Unavailable, "shard stopped"));
        }
        // The owning shard bounds the request itself; this bound only covers a shard that
        // stopped answering altogether.
        let bound = self.ctx.cfg.request_timeout() + Duration::from_secs(1);
        let Some(reply) = net::client::with_timeout(bound, rx).await else {
            self.ctx.cancel_forward(id);
            return Err(status(StatusCode::Unavailable, format!("shard {shard} did not answer within {bound:?}")));
        };
        reply.map_err(|_| status(StatusCode::Unavailable, "forward lost"))?.map(Reply::Encoded)
    }

    /// Serves a request shard `from` forwarded here and sends it the answer.
    pub fn serve_forwarded(self: &std::rc::Rc<Self>, from: usize, id: u64, req: Request) {
        let svc = self.clone();
        let hint = WrongShard { region_id: req.region_id(), shard: self.ctx.shard_id as u32 };
        glommio::spawn_local(async move {
            let result = svc.serve(req, Some(hint)).await.map(Reply::into_bytes);
            let _ = svc.ctx.outbox.send(from, ShardMsg::ForwardReply { id, result }).await;
        })
        .detach();
    }
}
