//! The number generators of YCSB's core workload, ported to match its output distributions:
//! FNV-1a-style 64-bit hashing of ordinals, the Gray et al. zipfian generator (θ = 0.99),
//! YCSB's *scrambled* zipfian (a zipfian over 10¹⁰ items, hashed onto the key space, so that
//! popular keys are spread over the key space instead of clustered at its start), uniform,
//! skewed-latest (zipfian over the distance from the newest acknowledged insert), and the
//! discrete chooser that picks the operation of each request.
//!
//! Every generator takes the random source as an argument: each client thread owns one
//! seeded `StdRng` and its own generators; only the insert counter is shared (see
//! [`super::counter`]).

use rand::Rng;

/// YCSB's zipfian constant θ.
pub const ZIPFIAN_CONSTANT: f64 = 0.99;
/// Items of the zipfian behind the scrambled zipfian (YCSB's `ITEM_COUNT`).
pub const SCRAMBLED_ITEM_COUNT: u64 = 10_000_000_000;
/// ζ(10¹⁰, 0.99), precomputed by YCSB (summing 10¹⁰ terms takes minutes).
pub const SCRAMBLED_ZETAN: f64 = 26.469_028_201_783_02;

const FNV_OFFSET_BASIS_64: i64 = 0xCBF2_9CE4_8422_2325_u64 as i64;
const FNV_PRIME_64: i64 = 1_099_511_628_211;

/// YCSB's `Utils.fnvhash64`: FNV over the 8 little-endian bytes of `val`, absolute value.
///
/// YCSB computes in signed 64-bit arithmetic and returns `Math.abs`; so does this (the one
/// value whose absolute value overflows, `i64::MIN`, is mapped to `i64::MAX`).
pub fn fnv_hash64(val: u64) -> u64 {
    let mut v = val as i64;
    let mut hash = FNV_OFFSET_BASIS_64;
    for _ in 0..8 {
        let octet = v & 0xff;
        v >>= 8;
        hash ^= octet;
        hash = hash.wrapping_mul(FNV_PRIME_64);
    }
    hash.checked_abs().unwrap_or(i64::MAX) as u64
}

/// ζ(n, θ) continued: `sum + Σ_{i=from}^{to-1} 1/(i+1)^θ`.
fn zeta(from: u64, to: u64, theta: f64, sum: f64) -> f64 {
    (from..to).fold(sum, |s, i| s + 1.0 / ((i + 1) as f64).powf(theta))
}

/// Zipfian over `[min, max]` by Gray et al., "Quickly Generating Billion-Record Synthetic
/// Databases" (SIGMOD 1994), as YCSB implements it: item `min` is the most popular, with
/// probability `1/ζ(n, θ)`; item `min + k` has probability ≈ `1/((k+1)^θ ζ(n, θ))`.
#[derive(Debug, Clone)]
pub struct Zipfian {
    base: u64,
    items: u64,
    theta: f64,
    alpha: f64,
    zeta2theta: f64,
    zetan: f64,
    eta: f64,
    count_for_zeta: u64,
}

impl Zipfian {
    /// Zipfian over `[min, max]` with θ = 0.99; computes ζ(n) in O(n).
    pub fn new(min: u64, max: u64) -> Self {
        let items = max - min + 1;
        Self::with_zetan(min, max, ZIPFIAN_CONSTANT, zeta(0, items, ZIPFIAN_CONSTANT, 0.0))
    }

    /// Zipfian over `[min, max]` with a precomputed ζ(max - min + 1, θ).
    pub fn with_zetan(min: u64, max: u64, theta: f64, zetan: f64) -> Self {
        let items = max - min + 1;
        let zeta2theta = zeta(0, 2, theta, 0.0);
        let mut z = Zipfian {
            base: min,
            items,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zeta2theta,
            zetan,
            eta: 0.0,
            count_for_zeta: items,
        };
        z.eta = z.eta_for(items);
        z
    }

    fn eta_for(&self, items: u64) -> f64 {
        (1.0 - (2.0 / items as f64).powf(1.0 - self.theta)) / (1.0 - self.zeta2theta / self.zetan)
    }

    /// ζ(n, θ) of the current item count.
    #[cfg(test)]
    pub fn zetan(&self) -> f64 {
        self.zetan
    }

    /// The next item of `[min, max]`.
    pub fn next(&mut self, rng: &mut impl Rng) -> u64 {
        self.next_of(self.items, rng)
    }

    /// The next item of `[min, min + item_count)`. The item count may grow between calls
    /// (ζ is extended incrementally, as YCSB's latest distribution needs); a smaller count
    /// keeps the larger ζ, as in YCSB, which skews slightly towards the first items.
    pub fn next_of(&mut self, item_count: u64, rng: &mut impl Rng) -> u64 {
        if item_count > self.count_for_zeta {
            self.zetan = zeta(self.count_for_zeta, item_count, self.theta, self.zetan);
            self.count_for_zeta = item_count;
            self.eta = self.eta_for(item_count);
        }
        let u: f64 = rng.gen();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return self.base;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return self.base + 1;
        }
        let k = (item_count as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        self.base + k.min(item_count - 1)
    }
}

/// YCSB's scrambled zipfian over `[min, max]`: a θ = 0.99 zipfian over 10¹⁰ items, each
/// hashed onto the key space. The most popular keys keep the zipfian's top probabilities but
/// sit at pseudo-random places instead of at the start of the key space.
#[derive(Debug, Clone)]
pub struct ScrambledZipfian {
    min: u64,
    item_count: u64,
    gen: Zipfian,
}

impl ScrambledZipfian {
    /// Over `[min, max]`.
    pub fn new(min: u64, max: u64) -> Self {
        ScrambledZipfian {
            min,
            item_count: max - min + 1,
            gen: Zipfian::with_zetan(0, SCRAMBLED_ITEM_COUNT, ZIPFIAN_CONSTANT, SCRAMBLED_ZETAN),
        }
    }

    /// The next key ordinal.
    pub fn next(&mut self, rng: &mut impl Rng) -> u64 {
        self.min + fnv_hash64(self.gen.next(rng)) % self.item_count
    }
}

/// Uniform over `[min, max]`.
#[derive(Debug, Clone, Copy)]
pub struct Uniform {
    min: u64,
    max: u64,
}

impl Uniform {
    /// Over `[min, max]`.
    pub fn new(min: u64, max: u64) -> Self {
        Uniform { min, max }
    }

    /// The next value.
    pub fn next(&self, rng: &mut impl Rng) -> u64 {
        rng.gen_range(self.min..=self.max)
    }
}

/// YCSB's skewed-latest: the newest acknowledged record is the most popular, then the one
/// before it, and so on (a zipfian over the distance from the newest).
#[derive(Debug, Clone)]
pub struct SkewedLatest {
    gen: Zipfian,
}

impl SkewedLatest {
    /// For a key space whose newest record is currently `last`.
    pub fn new(last: u64) -> Self {
        SkewedLatest { gen: Zipfian::new(0, last.max(1) - 1) }
    }

    /// The next key ordinal, given the newest acknowledged ordinal `last`; in `(0, last]`
    /// (YCSB never picks ordinal 0 here either).
    pub fn next(&mut self, last: u64, rng: &mut impl Rng) -> u64 {
        let max = last.max(1);
        max - self.gen.next_of(max, rng)
    }
}

/// How keys are picked for reads, updates, scans and read-modify-writes.
#[derive(Debug, Clone)]
pub enum KeyChooser {
    /// Every loaded record equally likely.
    Uniform(Uniform),
    /// Scrambled zipfian.
    Zipfian(ScrambledZipfian),
    /// Skewed towards the newest inserts.
    Latest(SkewedLatest),
}

impl KeyChooser {
    /// A key ordinal not above `last` (the newest acknowledged insert): like YCSB's
    /// `nextKeynum`, draws again when the generator picks a key not inserted yet.
    pub fn next(&mut self, last: u64, rng: &mut impl Rng) -> u64 {
        loop {
            let k = match self {
                KeyChooser::Uniform(g) => g.next(rng),
                KeyChooser::Zipfian(g) => g.next(rng),
                KeyChooser::Latest(g) => g.next(last, rng),
            };
            if k <= last {
                return k;
            }
        }
    }
}

/// Picks an index with probability proportional to its weight (YCSB's `DiscreteGenerator`).
#[derive(Debug, Clone)]
pub struct Discrete {
    cumulative: Vec<f64>,
}

impl Discrete {
    /// Weights of indexes `0..weights.len()`; their sum must be positive.
    pub fn new(weights: &[f64]) -> Self {
        let mut sum = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                sum += w.max(0.0);
                sum
            })
            .collect();
        Discrete { cumulative }
    }

    /// The next index.
    pub fn next(&self, rng: &mut impl Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let u = rng.gen::<f64>() * total;
        // The first index whose cumulative weight exceeds u; zero weights are never chosen.
        self.cumulative.iter().position(|&c| u < c).unwrap_or_else(|| {
            // u == total only by rounding: the last index with a positive weight.
            self.cumulative.windows(2).rposition(|w| w[1] > w[0]).map_or(0, |i| i + 1)
        })
    }
}

/// A length generator for scan lengths and field lengths.
#[derive(Debug, Clone)]
pub enum Length {
    /// Always this length.
    Constant(u64),
    /// Uniform over `[min, max]`.
    Uniform(Uniform),
    /// Zipfian over `[min, max]`: short lengths are the most likely.
    Zipfian(Zipfian),
}

impl Length {
    /// The next length.
    pub fn next(&mut self, rng: &mut impl Rng) -> u64 {
        match self {
            Length::Constant(n) => *n,
            Length::Uniform(g) => g.next(rng),
            Length::Zipfian(g) => g.next(rng),
        }
    }
}

#[cfg(test)]
#[path = "generator_tests.rs"]
mod tests;
