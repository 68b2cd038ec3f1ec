//! Batch operations: keys grouped by region, one request per region, sent concurrently.
//!
//! A batch runs in rounds. A round sorts the pending items, groups consecutive items of one
//! region, sends every group at once, and collects the items of failed groups; those are
//! regrouped next round (a split may have spread them over several regions), after one wait
//! covering every failure of the round. A batch is not atomic across regions: on a
//! non-retryable error some regions may have applied their part.

use bytes::Bytes;

use std::rc::Rc;

use super::cache::{contains, CachedRegion};
use super::client::{KvClient, Outcome};
use super::error::Result;
use super::feedback::Retry;
use super::rpc::RegionRpc;
use crate::proto::kvrpcpb::{KvPair, RawBatchDeleteRequest, RawBatchGetRequest, RawBatchPutRequest};

/// Items of one region, and the region.
type Group<I> = (Rc<CachedRegion>, Vec<I>);

impl KvClient {
    /// The values of those `keys` that exist, in key order.
    pub async fn batch_get(&self, keys: Vec<Bytes>) -> Result<Vec<(Bytes, Bytes)>> {
        let build = |keys: Vec<Bytes>| RawBatchGetRequest { context: None, keys };
        let resps = self.run_batch(keys, |k| k, build).await?;
        let mut out: Vec<(Bytes, Bytes)> = resps.into_iter().flat_map(|r| r.pairs).map(|p| (p.key, p.value)).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Sets every key to its value.
    pub async fn batch_put(&self, pairs: Vec<(Bytes, Bytes)>) -> Result<()> {
        let pairs: Vec<KvPair> = pairs.into_iter().map(|(key, value)| KvPair { key, value }).collect();
        let build = |pairs: Vec<KvPair>| RawBatchPutRequest { context: None, pairs };
        self.run_batch(pairs, |p| &p.key, build).await.map(|_| ())
    }

    /// Deletes every key.
    pub async fn batch_delete(&self, keys: Vec<Bytes>) -> Result<()> {
        let build = |keys: Vec<Bytes>| RawBatchDeleteRequest { context: None, keys };
        self.run_batch(keys, |k| k, build).await.map(|_| ())
    }

    /// Sends `items` grouped by region as `build(group)` until every group succeeded.
    async fn run_batch<I, R>(
        &self,
        items: Vec<I>,
        key: fn(&I) -> &Bytes,
        build: fn(Vec<I>) -> R,
    ) -> Result<Vec<R::Resp>>
    where
        I: Clone + 'static,
        R: RegionRpc,
    {
        let answered = self.run_groups(items, key, build).await?;
        Ok(answered.into_iter().map(|(_, resp)| resp).collect())
    }

    /// `run_batch`, answering each group's items with its response (the
    /// transactional client looks at what each region refused).
    pub(super) async fn run_groups<I, R>(
        &self,
        items: Vec<I>,
        key: fn(&I) -> &Bytes,
        build: impl Fn(Vec<I>) -> R,
    ) -> Result<Vec<(Vec<I>, R::Resp)>>
    where
        I: Clone + 'static,
        R: RegionRpc,
    {
        let mut bo = self.backoffer();
        let mut out = Vec::new();
        let mut pending = items;
        while !pending.is_empty() {
            pending.sort_by(|a, b| key(a).cmp(key(b)));
            let (groups, mut unrouted, mut retries) = self.group(pending, key).await;
            let timeout = self.call_timeout(&bo);
            let mut failed = None;
            for (items, outcome) in self.send_groups(groups, &build, timeout).await {
                match outcome {
                    Outcome::Done(resp) => out.push((items, resp)),
                    Outcome::Retry(r) => {
                        unrouted.extend(items);
                        retries.push(r);
                    }
                    Outcome::Fail(e) => failed = failed.or(Some(e)),
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
            pending = unrouted;
            if !retries.is_empty() {
                self.wait(&mut bo, retries).await?;
            }
        }
        Ok(out)
    }

    /// Groups sorted `items` by region. After the first lookup that fails, the rest stay
    /// unrouted this round (with that failure to retry).
    async fn group<I>(&self, items: Vec<I>, key: fn(&I) -> &Bytes) -> (Vec<Group<I>>, Vec<I>, Vec<Retry>) {
        let mut groups: Vec<Group<I>> = Vec::new();
        let mut unrouted = Vec::new();
        let mut retries = Vec::new();
        for item in items {
            if !retries.is_empty() {
                unrouted.push(item);
                continue;
            }
            if let Some((loc, group)) = groups.last_mut() {
                if contains(&loc.region, key(&item)) {
                    group.push(item);
                    continue;
                }
            }
            match self.locate_key(key(&item)).await {
                Ok(loc) => groups.push((loc, vec![item])),
                Err(r) => {
                    unrouted.push(item);
                    retries.push(r);
                }
            }
        }
        (groups, unrouted, retries)
    }

    /// Sends one request per group, concurrently; returns each group's items and outcome.
    async fn send_groups<I, R>(
        &self,
        groups: Vec<Group<I>>,
        build: &impl Fn(Vec<I>) -> R,
        timeout: std::time::Duration,
    ) -> Vec<(Vec<I>, Outcome<R::Resp>)>
    where
        I: Clone + 'static,
        R: RegionRpc,
    {
        if groups.len() <= 1 {
            let mut out = Vec::new();
            for (loc, items) in groups {
                let outcome = self.attempt(&loc, build(items.clone()), timeout).await;
                out.push((items, outcome));
            }
            return out;
        }
        let tasks: Vec<_> = groups
            .into_iter()
            .map(|(loc, items)| {
                let client = self.clone();
                let req = build(items.clone());
                glommio::spawn_local(async move { (items, client.attempt(&loc, req, timeout).await) })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await);
        }
        out
    }
}
