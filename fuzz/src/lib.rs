//! Shared pieces of Percore's fuzz targets: an input reader, the request table of the RPC
//! methods, and a builder of valid raft-log segments with the engine's own encoder.
//!
//! The targets live in `fuzz_targets/`; `seeds.rs` writes the seed corpora with the same
//! helpers. See the "Fuzzing" section of the README and `docs/testing.md`.

pub mod requests;
pub mod segment;

/// Reads fields off the front of fuzzer input; past the end it yields zeros, so every input
/// decodes to something.
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    /// The next `n` bytes, or fewer at the end.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }

    /// The next byte.
    pub fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    /// The next little-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        let mut a = [0u8; 2];
        let b = self.take(2);
        a[..b.len()].copy_from_slice(b);
        u16::from_le_bytes(a)
    }

    /// The next little-endian `u32`.
    pub fn u32(&mut self) -> u32 {
        let mut a = [0u8; 4];
        let b = self.take(4);
        a[..b.len()].copy_from_slice(b);
        u32::from_le_bytes(a)
    }

    /// The next little-endian `u64`.
    pub fn u64(&mut self) -> u64 {
        let mut a = [0u8; 8];
        let b = self.take(8);
        a[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(a)
    }

    /// What is left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.0.len())
    }
}

/// Writes fields in the order [`Input`] reads them (for the seed generator).
#[derive(Default)]
pub struct Output(pub Vec<u8>);

impl Output {
    /// Appends a byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    /// Appends a little-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Appends a little-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Appends a little-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Appends raw bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
}
