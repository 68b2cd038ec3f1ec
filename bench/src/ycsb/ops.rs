//! Operations: their kinds, and the per-thread generator that decides the next one (kind,
//! key, scan length, value) the way YCSB's `CoreWorkload.doTransaction` does.

use std::sync::Arc;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::counter::AcknowledgedCounter;
use super::generator::{Discrete, KeyChooser, Length, ScrambledZipfian, SkewedLatest, Uniform, Zipfian};
use super::keys::{key_name, Values};
use super::workload::{InsertOrder, LengthDistribution, RequestDistribution, Workload};

/// The kinds of operation, in the order of [`Workload::op_weights`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// Read one record.
    Read,
    /// Overwrite one record.
    Update,
    /// Write a new record.
    Insert,
    /// Read up to N records from a key on.
    Scan,
    /// Read a record, then overwrite it.
    ReadModifyWrite,
}

impl OpKind {
    /// Every kind, in index order.
    pub const ALL: [OpKind; 5] = [OpKind::Read, OpKind::Update, OpKind::Insert, OpKind::Scan, OpKind::ReadModifyWrite];

    /// YCSB's name of the kind.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "READ",
            OpKind::Update => "UPDATE",
            OpKind::Insert => "INSERT",
            OpKind::Scan => "SCAN",
            OpKind::ReadModifyWrite => "READ-MODIFY-WRITE",
        }
    }

    /// The kind named `name` (case-insensitive; `RMW` too).
    pub fn from_name(name: &str) -> Option<Self> {
        let upper = name.to_ascii_uppercase();
        if upper == "RMW" {
            return Some(OpKind::ReadModifyWrite);
        }
        OpKind::ALL.into_iter().find(|k| k.name() == upper)
    }

    /// Index into per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One operation to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Read `key`.
    Read {
        /// The record's key.
        key: Bytes,
    },
    /// Overwrite `key` with `value`.
    Update {
        /// The record's key.
        key: Bytes,
        /// The new record.
        value: Bytes,
    },
    /// Insert record `ordinal`.
    Insert {
        /// Its ordinal (acknowledged once the insert completes).
        ordinal: u64,
        /// Its key.
        key: Bytes,
        /// The record.
        value: Bytes,
    },
    /// Read up to `len` records from `key` on.
    Scan {
        /// The first key.
        key: Bytes,
        /// Records to read.
        len: usize,
    },
    /// Read `key`, then write `value` to it.
    ReadModifyWrite {
        /// The record's key.
        key: Bytes,
        /// The new record.
        value: Bytes,
    },
}

impl Op {
    /// The kind.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Read { .. } => OpKind::Read,
            Op::Update { .. } => OpKind::Update,
            Op::Insert { .. } => OpKind::Insert,
            Op::Scan { .. } => OpKind::Scan,
            Op::ReadModifyWrite { .. } => OpKind::ReadModifyWrite,
        }
    }
}

/// Decides operations for one client thread.
pub struct OpGenerator {
    rng: StdRng,
    kinds: Discrete,
    keys: KeyChooser,
    scan_len: Length,
    field_len: Length,
    fieldcount: u64,
    zeropadding: u64,
    order: InsertOrder,
    values: Values,
    inserts: Arc<AcknowledgedCounter>,
}

impl OpGenerator {
    /// A generator for `w` seeded with `seed`; run-phase inserts take ordinals from
    /// `inserts`, shared by every thread.
    pub fn new(w: &Workload, inserts: Arc<AcknowledgedCounter>, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let (start, count) = (w.insertstart, w.insertcount);
        let keys = match w.requestdistribution {
            RequestDistribution::Uniform => KeyChooser::Uniform(Uniform::new(start, start + count - 1)),
            RequestDistribution::Zipfian => {
                // As YCSB: leave room for the keys the run will insert (twice the expected
                // number), so that popular keys do not move as the key space grows.
                let expected = (w.operationcount as f64 * w.insertproportion * 2.0) as u64;
                KeyChooser::Zipfian(ScrambledZipfian::new(start, start + count + expected))
            }
            RequestDistribution::Latest => KeyChooser::Latest(SkewedLatest::new(inserts.last())),
        };
        let scan_len = match w.scanlengthdistribution {
            LengthDistribution::Zipfian => Length::Zipfian(Zipfian::new(w.minscanlength, w.maxscanlength)),
            _ => Length::Uniform(Uniform::new(w.minscanlength, w.maxscanlength)),
        };
        let field_len = match w.fieldlengthdistribution {
            LengthDistribution::Constant => Length::Constant(w.fieldlength),
            LengthDistribution::Uniform => Length::Uniform(Uniform::new(w.minfieldlength, w.fieldlength)),
            LengthDistribution::Zipfian => Length::Zipfian(Zipfian::new(w.minfieldlength, w.fieldlength)),
        };
        let values = Values::new(&mut rng);
        OpGenerator {
            rng,
            kinds: Discrete::new(&w.op_weights()),
            keys,
            scan_len,
            field_len,
            fieldcount: w.fieldcount,
            zeropadding: w.zeropadding,
            order: w.insertorder,
            values,
            inserts,
        }
    }

    /// The next run-phase operation.
    pub fn next_op(&mut self) -> Op {
        let kind = OpKind::ALL[self.kinds.next(&mut self.rng)];
        match kind {
            OpKind::Read => Op::Read { key: self.existing_key() },
            OpKind::Update => Op::Update { key: self.existing_key(), value: self.record() },
            OpKind::Insert => self.insert(self.inserts.next()),
            OpKind::Scan => {
                let key = self.existing_key();
                Op::Scan { key, len: self.scan_len.next(&mut self.rng) as usize }
            }
            OpKind::ReadModifyWrite => Op::ReadModifyWrite { key: self.existing_key(), value: self.record() },
        }
    }

    /// The insert of record `ordinal` (load phase, or a run-phase insert).
    pub fn insert(&mut self, ordinal: u64) -> Op {
        Op::Insert { ordinal, key: key_name(ordinal, self.zeropadding, self.order), value: self.record() }
    }

    /// Acknowledges a run-phase insert (whether it succeeded or not, as YCSB does).
    pub fn acknowledge(&self, ordinal: u64) {
        self.inserts.acknowledge(ordinal);
    }

    fn existing_key(&mut self) -> Bytes {
        let ordinal = self.keys.next(self.inserts.last(), &mut self.rng);
        key_name(ordinal, self.zeropadding, self.order)
    }

    fn record(&mut self) -> Bytes {
        let len: u64 = (0..self.fieldcount).map(|_| self.field_len.next(&mut self.rng)).sum();
        self.values.value(len as usize, &mut self.rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator(letter: &str, records: u64) -> OpGenerator {
        let w =
            Workload::load(letter, &[super::super::properties::Property::new("recordcount", records, "test")]).unwrap();
        OpGenerator::new(&w, Arc::new(AcknowledgedCounter::new(w.recordcount)), 7)
    }

    #[test]
    fn operation_proportions_are_within_one_percent_over_100k_operations() {
        for letter in ["a", "b", "c", "d", "e", "f"] {
            let w = Workload::load(letter, &[]).unwrap();
            let mut g = generator(letter, 1000);
            let mut counts = [0u64; 5];
            const N: u64 = 100_000;
            for _ in 0..N {
                let op = g.next_op();
                if let Op::Insert { ordinal, .. } = op {
                    g.acknowledge(ordinal);
                }
                counts[op.kind().index()] += 1;
            }
            for (kind, want) in OpKind::ALL.into_iter().zip(w.op_weights()) {
                let got = counts[kind.index()] as f64 / N as f64;
                assert!((got - want).abs() < 0.01, "workload {letter}: {} {got:.4} vs {want}", kind.name());
            }
        }
    }

    #[test]
    fn reads_only_pick_acknowledged_records_and_inserts_are_consecutive() {
        let mut g = generator("d", 100);
        let loaded: std::collections::HashSet<Bytes> = (0..100).map(|i| key_name(i, 1, InsertOrder::Hashed)).collect();
        let mut inserted = loaded.clone();
        let mut next = 100;
        for _ in 0..20_000 {
            match g.next_op() {
                Op::Read { key } => assert!(inserted.contains(&key), "read of a record not inserted"),
                Op::Insert { ordinal, key, value } => {
                    assert_eq!((ordinal, value.len()), (next, 1000));
                    next += 1;
                    inserted.insert(key);
                    g.acknowledge(ordinal);
                }
                op => panic!("workload D does not {op:?}"),
            }
        }
        assert!(next > 100 + 500, "about 5 % inserts");
    }

    #[test]
    fn scans_have_lengths_in_range() {
        let mut g = generator("e", 1000);
        for _ in 0..10_000 {
            if let Op::Scan { len, .. } = g.next_op() {
                assert!((1..=100).contains(&len));
            }
        }
    }

    #[test]
    fn kinds_have_ycsb_names() {
        for k in OpKind::ALL {
            assert_eq!(OpKind::from_name(k.name()), Some(k));
        }
        assert_eq!(OpKind::from_name("rmw"), Some(OpKind::ReadModifyWrite));
        assert_eq!(OpKind::from_name("read"), Some(OpKind::Read));
        assert_eq!(OpKind::from_name("delete"), None);
    }
}
