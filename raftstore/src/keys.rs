//! Key layout of a shard's RocksDB (the TiKV layout).
//!
//! | key | value |
//! |---|---|
//! | `0x01 0x02 <region id: u64 BE> 0x01` | `RegionLocalState` |
//! | `0x01 0x02 <region id: u64 BE> 0x03` | `RaftApplyState` |
//! | `z <user key>` | user value |
//!
//! Local keys sort before every data key, so a region's data range never covers them.

/// Prefix of local (metadata) keys.
pub const LOCAL_PREFIX: u8 = 0x01;
/// Prefix of region metadata keys.
pub const REGION_META_PREFIX: &[u8] = &[0x01, 0x02];
/// One past the region metadata keys.
pub const REGION_META_END: &[u8] = &[0x01, 0x03];
/// Prefix of user data keys.
pub const DATA_PREFIX: u8 = b'z';
/// One past every data key.
pub const DATA_END: &[u8] = b"{";

const REGION_STATE_SUFFIX: u8 = 0x01;
const APPLY_STATE_SUFFIX: u8 = 0x03;

fn region_meta_key(region_id: u64, suffix: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(11);
    k.extend_from_slice(REGION_META_PREFIX);
    k.extend_from_slice(&region_id.to_be_bytes());
    k.push(suffix);
    k
}

/// The key of a region's `RegionLocalState`.
pub fn region_state_key(region_id: u64) -> Vec<u8> {
    region_meta_key(region_id, REGION_STATE_SUFFIX)
}

/// The key of a region's `RaftApplyState`.
pub fn apply_state_key(region_id: u64) -> Vec<u8> {
    region_meta_key(region_id, APPLY_STATE_SUFFIX)
}

/// Decodes a region metadata key: `(region id, is the region state)`.
pub fn decode_region_meta_key(key: &[u8]) -> Option<(u64, bool)> {
    if key.len() != 11 || &key[..2] != REGION_META_PREFIX {
        return None;
    }
    let id = u64::from_be_bytes(key[2..10].try_into().ok()?);
    Some((id, key[10] == REGION_STATE_SUFFIX))
}

/// The data key of a user key.
pub fn data_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(DATA_PREFIX);
    k.extend_from_slice(key);
    k
}

/// The data key of a region's end key (empty end = the end of all data).
pub fn data_end_key(end: &[u8]) -> Vec<u8> {
    if end.is_empty() {
        DATA_END.to_vec()
    } else {
        data_key(end)
    }
}

/// The user key of a data key.
pub fn origin_key(data_key: &[u8]) -> &[u8] {
    data_key.get(1..).unwrap_or_default()
}

/// Whether `key` is in `[start, end)` (empty end = +infinity).
pub fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    key >= start && (end.is_empty() || key < end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let k = region_state_key(7);
        assert_eq!(decode_region_meta_key(&k), Some((7, true)));
        assert_eq!(decode_region_meta_key(&apply_state_key(7)), Some((7, false)));
        assert!(k.as_slice() >= REGION_META_PREFIX && k.as_slice() < REGION_META_END);
        assert!(k < data_key(b""));
        assert_eq!(origin_key(&data_key(b"abc")), b"abc");
        assert!(data_key(&[0xff; 8]) < data_end_key(b""));
        assert!(in_range(b"b", b"a", b""));
        assert!(!in_range(b"c", b"a", b"c"));
        assert!(in_range(b"", b"", b"c"));
    }
}
