//! MVCC key encoding: user keys in a memcomparable form, versions newest first.
//!
//! A user key is encoded in groups of 8 bytes, each followed by a marker byte
//! `0xFF - padding` (the last group zero-padded), as TiKV's `encode_bytes` does. The encoding
//! keeps the order of user keys and is prefix-free, so a version suffix can follow it: a
//! versioned key is `encode(key) ++ !ts` (big-endian), and the versions of one key sort newest
//! first, all before the next user key.

use super::error::TxnError;

const GROUP: usize = 8;
const MARKER: u8 = 0xFF;

/// Encodes a user key (order-preserving, prefix-free).
pub fn encode_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity((key.len() / GROUP + 1) * (GROUP + 1) + 8);
    let mut pos = 0;
    loop {
        let rest = &key[pos..];
        if rest.len() >= GROUP {
            out.extend_from_slice(&rest[..GROUP]);
            out.push(MARKER);
            pos += GROUP;
            continue;
        }
        // The last group, possibly empty, zero-padded.
        let pad = GROUP - rest.len();
        out.extend_from_slice(rest);
        out.resize(out.len() + pad, 0);
        out.push(MARKER - pad as u8);
        return out;
    }
}

/// Decodes an encoded user key at the start of `data`: the key and the bytes it took.
pub fn decode_key(data: &[u8]) -> Result<(Vec<u8>, usize), TxnError> {
    let mut key = Vec::with_capacity(data.len());
    let mut pos = 0;
    loop {
        let group = data.get(pos..pos + GROUP + 1).ok_or_else(|| TxnError::corrupt("encoded key is truncated"))?;
        let marker = group[GROUP];
        let pad = usize::from(MARKER - marker);
        if pad == 0 {
            key.extend_from_slice(&group[..GROUP]);
            pos += GROUP + 1;
            continue;
        }
        if pad > GROUP {
            return Err(TxnError::corrupt(format!("encoded key has marker {marker:#x}")));
        }
        let used = GROUP - pad;
        if group[used..GROUP].iter().any(|&b| b != 0) {
            return Err(TxnError::corrupt("encoded key has non-zero padding"));
        }
        key.extend_from_slice(&group[..used]);
        return Ok((key, pos + GROUP + 1));
    }
}

/// The key of a version: `encoded ++ !ts`, so that newer versions sort first.
pub fn versioned(encoded: &[u8], ts: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(encoded.len() + 8);
    k.extend_from_slice(encoded);
    k.extend_from_slice(&(!ts).to_be_bytes());
    k
}

/// Splits a versioned key into the encoded user key and the timestamp.
pub fn split_version(key: &[u8]) -> Result<(&[u8], u64), TxnError> {
    if key.len() < 8 {
        return Err(TxnError::corrupt("versioned key shorter than its timestamp"));
    }
    let (enc, ts) = key.split_at(key.len() - 8);
    let ts: [u8; 8] = ts.try_into().map_err(|_| TxnError::corrupt("timestamp"))?;
    Ok((enc, !u64::from_be_bytes(ts)))
}

/// The user key of a key of family `cf`: the lock family's keys are encoded user keys, the
/// others' are versioned.
pub fn user_key_of(cf: super::types::Cf, key: &[u8]) -> Result<Vec<u8>, TxnError> {
    let enc = match cf {
        super::types::Cf::Lock => key,
        _ => split_version(key)?.0,
    };
    let (user, n) = decode_key(enc)?;
    if n != enc.len() {
        return Err(TxnError::corrupt("bytes after the encoded key"));
    }
    Ok(user)
}

/// The smallest key greater than every key that starts with `prefix` (`None`: no such key,
/// the prefix is all 0xFF).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Appends `v` as a LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A bounds-checked reader of stored records: every read of data from a disk is checked.
pub struct Decoder<'a> {
    data: &'a [u8],
    what: &'static str,
}

impl<'a> Decoder<'a> {
    /// Reads `data`, naming it `what` in errors.
    pub fn new(data: &'a [u8], what: &'static str) -> Self {
        Decoder { data, what }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// One byte.
    pub fn byte(&mut self) -> Result<u8, TxnError> {
        let (&b, rest) = self.data.split_first().ok_or_else(|| self.short())?;
        self.data = rest;
        Ok(b)
    }

    /// A LEB128 varint.
    pub fn varint(&mut self) -> Result<u64, TxnError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(TxnError::corrupt(format!("{}: varint too long", self.what)))
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<Vec<u8>, TxnError> {
        let n = usize::try_from(self.varint()?).map_err(|_| self.short())?;
        if n > self.data.len() {
            return Err(self.short());
        }
        let (b, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(b.to_vec())
    }

    fn short(&self) -> TxnError {
        TxnError::corrupt(format!("{} is truncated", self.what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_keep_their_order() {
        let mut keys: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0, 0],
            b"a".to_vec(),
            b"a\x00".to_vec(),
            b"abcdefg".to_vec(),
            b"abcdefgh".to_vec(),
            b"abcdefgh\x00".to_vec(),
            b"abcdefghi".to_vec(),
            vec![0xFF; 8],
            vec![0xFF; 9],
            b"b".to_vec(),
        ];
        keys.sort();
        let enc: Vec<Vec<u8>> = keys.iter().map(|k| encode_key(k)).collect();
        for (k, e) in keys.iter().zip(&enc) {
            assert_eq!(e.len() % (GROUP + 1), 0);
            let (d, n) = decode_key(e).unwrap();
            assert_eq!((&d, n), (k, e.len()));
        }
        for w in enc.windows(2) {
            assert!(w[0] < w[1], "{:?} !< {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn versions_sort_newest_first_and_before_the_next_key() {
        let a = encode_key(b"a");
        let a0 = encode_key(b"a\x00");
        let newest = versioned(&a, 100);
        let older = versioned(&a, 5);
        assert!(newest < older);
        assert!(older < versioned(&a0, u64::MAX));
        assert_eq!(split_version(&older).unwrap(), (&a[..], 5));
    }

    #[test]
    fn bad_encodings_are_errors() {
        assert!(decode_key(&[1, 2, 3]).is_err());
        assert!(decode_key(&[0, 0, 0, 0, 0, 0, 0, 0, 0xF0]).is_err());
        assert!(decode_key(&[1, 0, 0, 0, 0, 0, 0, 9, 0xF8]).is_err());
        assert!(split_version(&[1, 2]).is_err());
    }

    #[test]
    fn varints_and_byte_strings_round_trip_and_truncation_is_an_error() {
        let mut out = Vec::new();
        for v in [0, 1, 127, 128, 300, u64::MAX] {
            put_varint(&mut out, v);
        }
        put_bytes(&mut out, b"xyz");
        let mut d = Decoder::new(&out, "test");
        for v in [0, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(d.varint().unwrap(), v);
        }
        assert_eq!(d.bytes().unwrap(), b"xyz");
        assert!(d.is_empty());
        assert!(d.byte().is_err());
        assert!(Decoder::new(&[5, 1, 2], "test").bytes().is_err());
        assert!(Decoder::new(&[0xFF; 11], "test").varint().is_err());
    }

    #[test]
    fn the_user_key_of_each_family() {
        use crate::txn::types::Cf;
        let enc = encode_key(b"user");
        assert_eq!(user_key_of(Cf::Lock, &enc).unwrap(), b"user");
        assert_eq!(user_key_of(Cf::Write, &versioned(&enc, 9)).unwrap(), b"user");
        assert!(user_key_of(Cf::Lock, &versioned(&enc, 9)).is_err());
        assert!(user_key_of(Cf::Default, &enc[..4]).is_err());
    }

    #[test]
    fn prefix_end_carries() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
    }
}
