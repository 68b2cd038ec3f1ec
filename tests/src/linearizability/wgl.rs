//! The search for one key: Wing & Gong's algorithm with Lowe's memoization.
//!
//! Every operation contributes a *call* and a *return* entry to a doubly linked list sorted by
//! time (calls before returns at equal times, so that touching intervals count as
//! concurrent); an unknown operation's return is at infinity. The search walks the list from
//! its head: at a call, it tries to linearize the operation next — the model must allow it in
//! the current state and the configuration (set of linearized operations, state) must be new
//! — and if so lifts the call and its return out of the list and starts again from the head.
//! At a return, the operation it belongs to should have been linearized already: the search
//! backtracks, undoing the last linearization and going on past it. The history is
//! linearizable once no finite return is left (unknown operations still in the list are
//! simply never linearized), and not linearizable when it must backtrack with nothing to undo.

use std::collections::HashSet;

use super::model::{KeyOp, State, NONE};

const NIL: usize = usize::MAX;

/// Why the search failed: the deepest point it reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// [`KeyOp::id`]s of the longest linearizable prefix, in linearization order.
    pub(crate) prefix: Vec<usize>,
    /// The register after that prefix.
    pub(crate) state: State,
    /// The [`KeyOp::id`] of the operation that had to be linearized next but could not be.
    pub(crate) blocked: usize,
    /// [`KeyOp::id`]s of the operations that could have gone next (the blocked one among them).
    pub(crate) candidates: Vec<usize>,
}

/// The result of searching one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Search {
    /// A linearization exists.
    Linearizable,
    /// None exists.
    Illegal(Failure),
    /// The step budget ran out first.
    TooBig,
}

/// The entry list: `next`/`prev` links, entry 0 is the head sentinel.
struct Entries {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// The operation of each entry (unused for the head).
    op: Vec<usize>,
    is_call: Vec<bool>,
    /// The return entry of each operation.
    ret: Vec<usize>,
}

impl Entries {
    fn new(ops: &[KeyOp]) -> Entries {
        // (time, 0 = call / 1 = return, op)
        let mut ev: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * ops.len());
        for (i, o) in ops.iter().enumerate() {
            ev.push((o.invoke, 0, i));
            ev.push((o.complete.unwrap_or(u64::MAX), 1, i));
        }
        ev.sort_unstable();
        let n = ev.len() + 1;
        let mut e = Entries {
            next: (1..=n).map(|i| if i == n { NIL } else { i }).collect(),
            prev: (0..n).map(|i| if i == 0 { NIL } else { i - 1 }).collect(),
            op: vec![NIL; n],
            is_call: vec![false; n],
            ret: vec![NIL; ops.len()],
        };
        for (i, &(_, kind, op)) in ev.iter().enumerate() {
            e.op[i + 1] = op;
            e.is_call[i + 1] = kind == 0;
            if kind == 1 {
                e.ret[op] = i + 1;
            }
        }
        e
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        if n != NIL {
            self.prev[n] = e;
        }
    }

    /// Removes call entry `e` and its return.
    fn lift(&mut self, e: usize) {
        let r = self.ret[self.op[e]];
        self.unlink(e);
        self.unlink(r);
    }

    /// Undoes [`Entries::lift`] (in reverse order, as dancing links require).
    fn unlift(&mut self, e: usize) {
        let r = self.ret[self.op[e]];
        self.relink(r);
        self.relink(e);
    }
}

/// The set of linearized operations (indices in invocation order), kept so that a compact,
/// exact key of it can be built: `low` is the first known-outcome operation not linearized,
/// so every known operation below it is linearized; the key lists the unknown ones below it
/// that are not, and every linearized operation above it.
struct Linearized {
    bits: Vec<u64>,
    known: Vec<bool>,
    /// Indices of the unknown operations, ascending.
    unknown: Vec<u32>,
    low: usize,
    /// `high` before each linearization (a stack, as linearizations are undone in LIFO order).
    highs: Vec<usize>,
    high: usize,
}

impl Linearized {
    fn new(ops: &[KeyOp]) -> Linearized {
        let known: Vec<bool> = ops.iter().map(|o| o.complete.is_some()).collect();
        let unknown = (0..ops.len()).filter(|&i| !known[i]).map(|i| i as u32).collect();
        let mut l =
            Linearized { bits: vec![0; ops.len().div_ceil(64)], known, unknown, low: 0, highs: Vec::new(), high: 0 };
        l.advance();
        l
    }

    fn has(&self, i: usize) -> bool {
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    fn advance(&mut self) {
        while self.low < self.known.len() && (!self.known[self.low] || self.has(self.low)) {
            self.low += 1;
        }
    }

    fn insert(&mut self, i: usize) {
        self.bits[i / 64] |= 1 << (i % 64);
        self.highs.push(self.high);
        self.high = self.high.max(i);
        self.advance();
    }

    fn remove(&mut self, i: usize) {
        self.bits[i / 64] &= !(1 << (i % 64));
        self.high = self.highs.pop().unwrap_or(0);
        if self.known[i] && i < self.low {
            self.low = i;
        }
    }

    /// The exact key of the set with `i` added (not changing the set).
    fn key_with(&mut self, i: usize, state: State) -> (u32, Box<[u32]>, State) {
        self.insert(i);
        let mut listed: Vec<u32> = Vec::new();
        for &u in &self.unknown {
            if u as usize >= self.low {
                break;
            }
            if !self.has(u as usize) {
                listed.push(u);
            }
        }
        // Separates the unknown ones below `low` from the linearized ones above it.
        listed.push(u32::MAX);
        for j in self.low + 1..=self.high {
            if self.has(j) {
                listed.push(j as u32);
            }
        }
        let key = (self.low as u32, listed.into_boxed_slice(), state);
        self.remove(i);
        key
    }
}

/// Searches for a linearization of `ops` (sorted by invocation) from the empty register,
/// within `max_steps` steps; returns the verdict and the steps taken.
pub(crate) fn search(ops: &[KeyOp], max_steps: u64) -> (Search, u64) {
    let mut list = Entries::new(ops);
    let mut lin = Linearized::new(ops);
    let mut seen: HashSet<(u32, Box<[u32]>, State)> = HashSet::new();
    // (call entry, state before it)
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state = NONE;
    let mut best: Option<Failure> = None;
    let mut entry = list.next[0];
    let mut steps = 0;
    while entry != NIL {
        steps += 1;
        if steps > max_steps {
            return (Search::TooBig, steps);
        }
        let op = list.op[entry];
        if list.is_call[entry] {
            if let Some(next) = ops[op].step.apply(state) {
                if seen.insert(lin.key_with(op, next)) {
                    lin.insert(op);
                    stack.push((entry, state));
                    state = next;
                    list.lift(entry);
                    entry = list.next[0];
                    continue;
                }
            }
            entry = list.next[entry];
            continue;
        }
        if ops[op].complete.is_none() {
            // Only unknown operations are left to return: they need not be linearized.
            break;
        }
        if best.as_ref().is_none_or(|b| stack.len() > b.prefix.len()) {
            best = Some(failure(&list, ops, &stack, state, entry));
        }
        let Some((call, before)) = stack.pop() else {
            let f = best.unwrap_or_else(|| failure(&list, ops, &stack, state, entry));
            return (Search::Illegal(f), steps);
        };
        state = before;
        lin.remove(list.op[call]);
        list.unlift(call);
        entry = list.next[call];
    }
    (Search::Linearizable, steps)
}

fn failure(list: &Entries, ops: &[KeyOp], stack: &[(usize, State)], state: State, blocked: usize) -> Failure {
    let mut candidates = Vec::new();
    let mut e = list.next[0];
    while e != NIL && e != blocked {
        if list.is_call[e] {
            candidates.push(ops[list.op[e]].id);
        }
        e = list.next[e];
    }
    Failure {
        prefix: stack.iter().map(|&(c, _)| ops[list.op[c]].id).collect(),
        state,
        blocked: ops[list.op[blocked]].id,
        candidates,
    }
}
