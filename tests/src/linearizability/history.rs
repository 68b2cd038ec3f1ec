//! What the clients did: operations on single-key registers with their invoke and completion
//! times, and the [`Recorder`] concurrent clients share to write them down.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use net::kv::CasResult;

/// A register's content: `None` while the key does not exist.
pub type Value = Option<Bytes>;

/// What a client asked of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Read the value.
    Get,
    /// Write the value.
    Put(Bytes),
    /// Write `new` if the value is `expected`.
    Cas {
        /// The value the register must hold.
        expected: Value,
        /// The value to write (`None` deletes).
        new: Value,
    },
}

/// What the client was told. [`Outcome::Unknown`] means the operation failed or timed out on
/// the client's side: it may or may not have taken effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No answer: the operation may have taken effect, at any time after its invocation, or not.
    Unknown,
    /// The value read.
    Get(Value),
    /// The write was acknowledged.
    Put,
    /// The compare-and-swap's answer.
    Cas {
        /// Whether it wrote.
        succeed: bool,
        /// The value it found.
        previous: Value,
    },
}

/// One operation of a history. Times are nanoseconds since the recorder started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Index in [`History::ops`].
    pub id: usize,
    /// The client that ran it (for explanations only; the checker ignores it).
    pub client: usize,
    /// The key (the register) it is about.
    pub key: Bytes,
    /// The request.
    pub op: Op,
    /// When the client sent it.
    pub invoke: u64,
    /// When the client got the answer; `None` (infinity) when the outcome is unknown.
    pub complete: Option<u64>,
    /// The answer.
    pub outcome: Outcome,
    /// Free text for explanations (e.g. the client's retries); the checker ignores it.
    pub note: String,
}

impl Operation {
    /// Whether the outcome is unknown (the operation may or may not have taken effect).
    pub fn is_unknown(&self) -> bool {
        self.outcome == Outcome::Unknown
    }
}

/// A history: every operation of a run, in invocation order as recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// The operations (`ops[i].id == i`).
    pub ops: Vec<Operation>,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// Appends an operation (its `id` is set); `complete: None` records an unknown outcome,
    /// whatever `outcome` says. Returns the id.
    pub fn push(
        &mut self,
        client: usize,
        key: impl Into<Bytes>,
        op: Op,
        invoke: u64,
        complete: Option<u64>,
        outcome: Outcome,
    ) -> usize {
        let id = self.ops.len();
        let outcome = if complete.is_some() { outcome } else { Outcome::Unknown };
        let complete = if outcome == Outcome::Unknown { None } else { complete };
        self.ops.push(Operation { id, client, key: key.into(), op, invoke, complete, outcome, note: String::new() });
        id
    }

    /// Records that operation `id` may have taken effect once more, at any time after its
    /// invocation: a client that retries after an ambiguous failure (a timeout, a lost
    /// connection) may apply a write twice. Adds an unknown copy of the operation, invoked
    /// when it was; returns the copy's id. Call once per ambiguous failure. (Only writes
    /// need this: a read has no effect.)
    pub fn possible_duplicate(&mut self, id: usize) -> Option<usize> {
        let o = self.ops.get(id)?.clone();
        let copy = self.push(o.client, o.key, o.op, o.invoke, None, Outcome::Unknown);
        self.ops[copy].note = format!("possible extra application of #{id}");
        Some(copy)
    }

    /// Number of operations whose outcome is unknown.
    pub fn unknown(&self) -> usize {
        self.ops.iter().filter(|o| o.is_unknown()).count()
    }

    /// Number of distinct keys.
    pub fn keys(&self) -> usize {
        let mut keys: Vec<&Bytes> = self.ops.iter().map(|o| &o.key).collect();
        keys.sort();
        keys.dedup();
        keys.len()
    }
}

/// The outcome of a compare-and-swap the client answered with `r`.
///
/// The client retries after a lost response, and a retry of a swap that was applied finds its
/// own write: `succeed: false` with `previous == new`. With values unique to each write, that
/// can only mean the swap was applied, so it is recorded as a success that found `expected`.
/// (A delete, `new == None`, cannot be told apart from a failure this way.)
pub fn cas_outcome(expected: &Value, new: &Value, r: &CasResult) -> Outcome {
    if !r.succeed && new.is_some() && r.previous == *new {
        return Outcome::Cas { succeed: true, previous: expected.clone() };
    }
    Outcome::Cas { succeed: r.succeed, previous: r.previous.clone() }
}

/// Records a history as concurrent clients run: [`Recorder::invoke`] before sending,
/// [`Recorder::complete`] on the answer. An operation never completed (the client gave up,
/// or its future was dropped) stays unknown. Cheap to clone; clones share the history.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    history: Arc<Mutex<History>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty recorder; times count from now.
    pub fn new() -> Recorder {
        Recorder { start: Instant::now(), history: Arc::new(Mutex::new(History::new())) }
    }

    fn lock(&self) -> MutexGuard<'_, History> {
        // A panicking client cannot leave the history half-written: every change is one push
        // or one assignment.
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Client `client` is about to send `op` on `key`; returns the operation's id.
    pub fn invoke(&self, client: usize, key: impl Into<Bytes>, op: Op) -> usize {
        let key = key.into();
        let mut h = self.lock();
        let invoke = self.now();
        h.push(client, key, op, invoke, None, Outcome::Unknown)
    }

    /// Operation `id` got `outcome` (an [`Outcome::Unknown`] leaves it unknown).
    pub fn complete(&self, id: usize, outcome: Outcome) {
        let now = self.now();
        let mut h = self.lock();
        if let Some(o) = h.ops.get_mut(id) {
            if outcome != Outcome::Unknown {
                o.complete = Some(now);
                o.outcome = outcome;
            }
        }
    }

    /// Attaches `note` to operation `id` (shown in explanations).
    pub fn note(&self, id: usize, note: impl Into<String>) {
        if let Some(o) = self.lock().ops.get_mut(id) {
            o.note = note.into();
        }
    }

    /// See [`History::possible_duplicate`].
    pub fn possible_duplicate(&self, id: usize) -> Option<usize> {
        self.lock().possible_duplicate(id)
    }

    /// A copy of the history so far.
    pub fn history(&self) -> History {
        self.lock().clone()
    }
}

/// Bytes as text when printable, else as `{:?}`.
pub(crate) fn show(v: &Value) -> String {
    match v {
        None => "None".to_string(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => format!("{s:?}"),
            Err(_) => format!("{b:?}"),
        },
    }
}

fn ms(t: u64) -> String {
    format!("{}.{:03} ms", t / 1_000_000, (t / 1_000) % 1_000)
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} client {} {}: ", self.id, self.client, show(&Some(self.key.clone())))?;
        match &self.op {
            Op::Get => write!(f, "get")?,
            Op::Put(v) => write!(f, "put({})", show(&Some(v.clone())))?,
            Op::Cas { expected, new } => write!(f, "cas({} -> {})", show(expected), show(new))?,
        }
        match &self.outcome {
            Outcome::Unknown => write!(f, " = unknown")?,
            Outcome::Get(v) => write!(f, " = {}", show(v))?,
            Outcome::Put => write!(f, " = ok")?,
            Outcome::Cas { succeed, previous } => {
                write!(f, " = {} (found {})", if *succeed { "swapped" } else { "failed" }, show(previous))?
            }
        }
        match self.complete {
            Some(c) => write!(f, " [{}, {}]", ms(self.invoke), ms(c))?,
            None => write!(f, " [{}, ∞)", ms(self.invoke))?,
        }
        if !self.note.is_empty() {
            write!(f, " ({})", self.note)?;
        }
        Ok(())
    }
}
