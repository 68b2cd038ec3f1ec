//! Range operations: `delete_range` and `scan`, region by region.
//!
//! `[start, end)` (empty `end` = +∞) is clipped to each region's range. Forward walks start
//! at the region containing `start` and move to each region's end; reverse scans start at
//! the last region overlapping the range and move down to each region's start. A scan asks
//! a region for at most [`KvConfig::scan_batch`](super::KvConfig) pairs per request and pages
//! within the region while pages come back full, so `limit` is honoured overall and no
//! response grows without bound. A region error mid-walk retries from where the walk is,
//! so regions that split or merged meanwhile are neither skipped nor read twice.

use bytes::Bytes;

use super::cache::CachedRegion;
use super::client::KvClient;
use super::error::{KvError, Result};
use super::locate::Locate;
use crate::proto::kvrpcpb::{RawDeleteRangeRequest, RawScanRequest};
use crate::proto::metapb::Region;

/// `Ok(false)` if `[start, end)` is empty, an error if `start > end`.
fn check_range(start: &[u8], end: &[u8]) -> Result<bool> {
    if end.is_empty() || start < end {
        Ok(true)
    } else if start == end {
        Ok(false)
    } else {
        Err(KvError::InvalidArgument {
            reason: format!("start \"{}\" is after end \"{}\"", start.escape_ascii(), end.escape_ascii()),
        })
    }
}

/// The end of `[.., end)` clipped to `region` (empty = +∞ only if both are unbounded).
pub(super) fn clip_end(region: &Region, end: &Bytes) -> Bytes {
    if end.is_empty() || (!region.end_key.is_empty() && region.end_key < *end) {
        region.end_key.clone()
    } else {
        end.clone()
    }
}

/// The start of `[start, ..)` clipped to `region`.
fn clip_start(region: &Region, start: &Bytes) -> Bytes {
    if region.start_key > *start {
        region.start_key.clone()
    } else {
        start.clone()
    }
}

/// Where a forward walk to `end` continues after `region`; `None` when it is done.
pub(super) fn next_start(region: &Region, end: &[u8]) -> Option<Bytes> {
    let done = region.end_key.is_empty() || (!end.is_empty() && &region.end_key[..] >= end);
    (!done).then(|| region.end_key.clone())
}

/// Where a backward walk down to `start` continues after `region`; `None` when it is done.
fn next_end(region: &Region, start: &[u8]) -> Option<Bytes> {
    let done = region.start_key.is_empty() || &region.start_key[..] <= start;
    (!done).then(|| region.start_key.clone())
}

/// The smallest key after `key`.
fn successor(key: &[u8]) -> Bytes {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.extend_from_slice(key);
    k.push(0);
    k.into()
}

/// Pairs to ask for next: at most `batch`, and no more than `limit` (0 = none) needs.
fn page(limit: u32, got: usize, batch: u32) -> u32 {
    if limit == 0 {
        batch
    } else {
        (limit as usize).saturating_sub(got).min(batch as usize) as u32
    }
}

impl KvClient {
    /// Deletes every key in `[start, end)` (empty `end` = to the end of the key space).
    pub async fn delete_range(&self, start: impl Into<Bytes>, end: impl Into<Bytes>) -> Result<()> {
        let (start, end) = (start.into(), end.into());
        if !check_range(&start, &end)? {
            return Ok(());
        }
        let mut bo = self.backoffer();
        let mut from = start;
        loop {
            let build = |loc: &CachedRegion| RawDeleteRangeRequest {
                context: None,
                start_key: from.clone(),
                end_key: clip_end(&loc.region, &end),
            };
            let (loc, _) = self.run(&mut bo, Locate::Forward { from: &from, end: &end }, build).await?;
            match next_start(&loc.region, &end) {
                Some(next) => from = next,
                None => return Ok(()),
            }
        }
    }

    /// Pairs with keys in `[start, end)` (empty `end` = no bound), at most `limit` of them
    /// (0 = no limit), in ascending key order — or, with `reverse`, in descending order
    /// starting below `end`. With `key_only` the values are empty.
    pub async fn scan(
        &self,
        start: impl Into<Bytes>,
        end: impl Into<Bytes>,
        limit: u32,
        reverse: bool,
        key_only: bool,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        let (start, end) = (start.into(), end.into());
        if !check_range(&start, &end)? {
            return Ok(Vec::new());
        }
        if reverse {
            self.scan_backward(start, end, limit, key_only).await
        } else {
            self.scan_forward(start, end, limit, key_only).await
        }
    }

    async fn scan_forward(&self, start: Bytes, end: Bytes, limit: u32, key_only: bool) -> Result<Vec<(Bytes, Bytes)>> {
        let mut bo = self.backoffer();
        let mut out = Vec::new();
        let mut from = start;
        loop {
            let want = page(limit, out.len(), self.inner.config.scan_batch);
            if want == 0 {
                return Ok(out);
            }
            let build = |loc: &CachedRegion| RawScanRequest {
                context: None,
                start_key: from.clone(),
                end_key: clip_end(&loc.region, &end),
                limit: want,
                key_only,
                reverse: false,
            };
            let (loc, resp) = self.run(&mut bo, Locate::Forward { from: &from, end: &end }, build).await?;
            let full = resp.pairs.len() >= want as usize;
            let last = resp.pairs.last().map(|p| p.key.clone());
            out.extend(resp.pairs.into_iter().take(want as usize).map(|p| (p.key, p.value)));
            let next = match last {
                Some(last) if full => {
                    if last < from {
                        return Err(malformed_scan(loc.region.id));
                    }
                    Some(successor(&last))
                }
                _ => next_start(&loc.region, &end),
            };
            match next {
                Some(n) => from = n,
                None => return Ok(out),
            }
        }
    }

    async fn scan_backward(&self, start: Bytes, end: Bytes, limit: u32, key_only: bool) -> Result<Vec<(Bytes, Bytes)>> {
        let mut bo = self.backoffer();
        let mut out = Vec::new();
        let mut to = end;
        loop {
            let want = page(limit, out.len(), self.inner.config.scan_batch);
            if want == 0 {
                return Ok(out);
            }
            let build = |loc: &CachedRegion| RawScanRequest {
                context: None,
                start_key: clip_start(&loc.region, &start),
                end_key: to.clone(),
                limit: want,
                key_only,
                reverse: true,
            };
            let (loc, resp) = self.run(&mut bo, Locate::Backward { start: &start, to: &to }, build).await?;
            let full = resp.pairs.len() >= want as usize;
            let last = resp.pairs.last().map(|p| p.key.clone());
            out.extend(resp.pairs.into_iter().take(want as usize).map(|p| (p.key, p.value)));
            let next = match last {
                Some(last) if full => {
                    if !to.is_empty() && last >= to {
                        return Err(malformed_scan(loc.region.id));
                    }
                    Some(last)
                }
                _ => next_end(&loc.region, &start),
            };
            match next {
                Some(n) => to = n,
                None => return Ok(out),
            }
        }
    }
}

fn malformed_scan(region_id: u64) -> KvError {
    KvError::Malformed { what: format!("scan of region {region_id} returned keys out of order") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(start: &str, end: &str) -> Region {
        Region {
            start_key: start.as_bytes().to_vec().into(),
            end_key: end.as_bytes().to_vec().into(),
            ..Region::default()
        }
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn ranges_clip_to_regions_and_walks_end() {
        // (region, start, end, clipped start, clipped end, next forward, next backward)
        type Case = (
            (&'static str, &'static str),
            &'static str,
            &'static str,
            &'static str,
            &'static str,
            Option<&'static str>,
            Option<&'static str>,
        );
        let cases: [Case; 7] = [
            (("", ""), "", "", "", "", None, None),
            (("", ""), "a", "c", "a", "c", None, None),
            (("b", "d"), "a", "", "b", "d", Some("d"), Some("b")),
            (("b", "d"), "a", "c", "b", "c", None, Some("b")),
            (("b", "d"), "c", "d", "c", "d", None, None),
            (("b", "d"), "b", "z", "b", "d", Some("d"), None),
            (("b", ""), "a", "z", "b", "z", None, Some("b")),
        ];
        for (i, ((rs, re), s, e, cs, ce, nf, nb)) in cases.into_iter().enumerate() {
            let r = region(rs, re);
            assert_eq!(clip_start(&r, &b(s)), b(cs), "case {i}");
            assert_eq!(clip_end(&r, &b(e)), b(ce), "case {i}");
            assert_eq!(next_start(&r, e.as_bytes()), nf.map(b), "case {i}");
            assert_eq!(next_end(&r, s.as_bytes()), nb.map(b), "case {i}");
        }
    }

    #[test]
    fn range_checks_pages_and_successors() {
        assert!(check_range(b"a", b"").unwrap());
        assert!(check_range(b"", b"").unwrap());
        assert!(check_range(b"a", b"b").unwrap());
        assert!(!check_range(b"b", b"b").unwrap());
        assert!(matches!(check_range(b"c", b"b"), Err(KvError::InvalidArgument { .. })));
        assert_eq!(page(0, 5000, 1024), 1024);
        assert_eq!(page(10, 3, 1024), 7);
        assert_eq!(page(5000, 100, 1024), 1024);
        assert_eq!(page(10, 10, 1024), 0);
        assert_eq!(successor(b"ab"), b("ab\0"));
        assert_eq!(successor(b""), b("\0"));
    }
}
