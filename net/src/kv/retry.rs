//! The retry loop every operation runs through.
//!
//! One operation = one [`Backoffer`] (one deadline). Each attempt locates the region (cache,
//! else the route source), sends to its leader (or a probed voter), and ends in
//! [`Outcome::Done`], [`Outcome::Fail`] or [`Outcome::Retry`]; retries wait per their kind.
//! Batches (`batch`) run in rounds: every round sends one request per region concurrently,
//! then waits once for everything that must be retried.

use std::rc::Rc;

use super::backoff::Backoffer;
use super::cache::CachedRegion;
use super::client::{KvClient, Outcome};
use super::error::Result;
use super::locate::Locate;
use super::rpc::RegionRpc;

impl KvClient {
    /// Locates the region `at` names and sends it `build(region)` until the store answers,
    /// a non-retryable error occurs, or the deadline passes. Returns the region the answer
    /// came from with the answer.
    pub(crate) async fn run<R: RegionRpc>(
        &self,
        bo: &mut Backoffer,
        at: Locate<'_>,
        build: impl Fn(&CachedRegion) -> R,
    ) -> Result<(Rc<CachedRegion>, R::Resp)> {
        loop {
            let outcome = match self.locate(&at).await {
                Ok(loc) => {
                    let req = build(&loc);
                    match self.attempt(&loc, req, self.call_timeout(bo)).await {
                        Outcome::Done(resp) => Outcome::Done((loc, resp)),
                        Outcome::Retry(r) => Outcome::Retry(r),
                        Outcome::Fail(e) => Outcome::Fail(e),
                    }
                }
                Err(r) => Outcome::Retry(r),
            };
            match outcome {
                Outcome::Done(done) => return Ok(done),
                Outcome::Fail(e) => return Err(e),
                Outcome::Retry(r) => self.wait(bo, vec![r]).await?,
            }
        }
    }
}
