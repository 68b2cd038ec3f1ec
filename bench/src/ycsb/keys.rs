//! Record keys and values.
//!
//! Keys follow YCSB's `buildKeyName`: `user` + the ordinal's FNV hash in decimal (or the
//! ordinal itself with `insertorder=ordered`), zero-padded to `zeropadding` digits. So
//! hashed keys are spread over the key space and scans walk them in hash order, as in YCSB.
//!
//! Values are random printable bytes, like YCSB's `RandomByteIterator`: one record is the
//! concatenation of its fields. To keep the client cheap, values are slices at random
//! offsets of one random pool per thread (zero-copy `Bytes`), which is as incompressible
//! as fresh random bytes for the store.

use bytes::{Bytes, BytesMut};
use rand::Rng;

use super::generator::fnv_hash64;
use super::workload::InsertOrder;

/// Size of the per-thread random pool values are cut from.
const POOL_BYTES: usize = 1 << 20;

/// The key of record `ordinal`.
pub fn key_name(ordinal: u64, zeropadding: u64, order: InsertOrder) -> Bytes {
    let n = match order {
        InsertOrder::Hashed => fnv_hash64(ordinal),
        InsertOrder::Ordered => ordinal,
    };
    Bytes::from(format!("user{n:0>width$}", width = zeropadding as usize))
}

/// Random record values.
#[derive(Debug, Clone)]
pub struct Values {
    pool: Bytes,
}

impl Values {
    /// A pool of random printable ASCII bytes.
    pub fn new(rng: &mut impl Rng) -> Self {
        // YCSB's RandomByteIterator draws from ' ' (32) to '~' (126) (space … tilde).
        let pool: Vec<u8> = (0..POOL_BYTES).map(|_| rng.gen_range(b' '..=b'~')).collect();
        Values { pool: Bytes::from(pool) }
    }

    /// A value of `len` bytes.
    pub fn value(&self, len: usize, rng: &mut impl Rng) -> Bytes {
        if len <= self.pool.len() {
            let start = rng.gen_range(0..=self.pool.len() - len);
            return self.pool.slice(start..start + len);
        }
        let mut out = BytesMut::with_capacity(len);
        while out.len() < len {
            let take = (len - out.len()).min(self.pool.len());
            let start = rng.gen_range(0..=self.pool.len() - take);
            out.extend_from_slice(&self.pool[start..start + take]);
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn keys_follow_ycsb_naming() {
        assert_eq!(key_name(0, 1, InsertOrder::Hashed), Bytes::from("user6284781860667377211"));
        assert_eq!(key_name(42, 1, InsertOrder::Hashed), Bytes::from("user55488592825689361"));
        assert_eq!(key_name(42, 20, InsertOrder::Hashed), Bytes::from("user00055488592825689361"));
        assert_eq!(key_name(7, 1, InsertOrder::Ordered), Bytes::from("user7"));
        assert_eq!(key_name(7, 5, InsertOrder::Ordered), Bytes::from("user00007"));
    }

    #[test]
    fn values_have_the_length_asked_and_printable_bytes() {
        let mut rng = StdRng::seed_from_u64(1);
        let v = Values::new(&mut rng);
        for len in [0, 1, 1000, POOL_BYTES, POOL_BYTES + 3] {
            let x = v.value(len, &mut rng);
            assert_eq!(x.len(), len);
            assert!(x.iter().all(|b| (b' '..=b'~').contains(b)));
        }
        assert_ne!(v.value(1000, &mut rng), v.value(1000, &mut rng));
    }
}
