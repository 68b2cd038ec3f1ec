//! The sequential model — one register per key — and how one key's operations are prepared
//! for the search: values interned to small integers, failed reads dropped, and unknown
//! writes nobody observed dropped.

use std::collections::{HashMap, HashSet};

use super::history::{Op, Operation, Outcome, Value};

/// An interned value; [`NONE`] is the absent key (the register's initial state).
pub(crate) type State = u32;

/// The interned `None`.
pub(crate) const NONE: State = 0;

/// What an operation requires of the register and what it leaves there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// A read that saw the value.
    Read(State),
    /// A blind write (a put).
    Write(State),
    /// A compare-and-swap that answered: it found `found`, and wrote `new` if `succeed`.
    Cas { expected: State, new: State, succeed: bool, found: State },
    /// A compare-and-swap with no answer; when linearized it must have swapped (one that did
    /// not swap changed nothing and is the same as one never linearized).
    CasMaybe { expected: State, new: State },
}

impl Step {
    /// The state after this step from `s`, or `None` if the step cannot happen in state `s`.
    pub(crate) fn apply(self, s: State) -> Option<State> {
        match self {
            Step::Read(v) => (s == v).then_some(s),
            Step::Write(v) => Some(v),
            Step::Cas { expected, new, succeed, found } => {
                if s != found {
                    None
                } else if succeed {
                    (s == expected).then_some(new)
                } else {
                    (s != expected).then_some(s)
                }
            }
            Step::CasMaybe { expected, new } => (s == expected).then_some(new),
        }
    }

    /// The value the step needs to find, if it needs one.
    fn observes(self) -> Option<State> {
        match self {
            Step::Read(v) => Some(v),
            Step::Write(_) => None,
            Step::Cas { found, .. } => Some(found),
            Step::CasMaybe { expected, .. } => Some(expected),
        }
    }

    /// The value the step writes, if it writes.
    fn writes(self) -> Option<State> {
        match self {
            Step::Read(_) => None,
            Step::Write(v) | Step::CasMaybe { new: v, .. } => Some(v),
            Step::Cas { new, succeed, .. } => succeed.then_some(new),
        }
    }
}

/// One operation of one key, ready for the search.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyOp {
    /// Its position in the key's operations given to [`prepare`].
    pub(crate) id: usize,
    /// What it does to the register.
    pub(crate) step: Step,
    /// Invocation time.
    pub(crate) invoke: u64,
    /// Completion time; `None` = unknown outcome (an optional operation).
    pub(crate) complete: Option<u64>,
}

/// One key's operations, prepared.
pub(crate) struct Prepared {
    /// The operations the search must explain, sorted by invocation time.
    pub(crate) ops: Vec<KeyOp>,
    /// Interned values: `values[s]` is state `s`.
    pub(crate) values: Vec<Value>,
    /// Operations left out: reads without an answer, unknown writes of values nobody saw.
    pub(crate) dropped: usize,
}

/// Prepares one key's operations (all of `ops` must be on the same key).
///
/// Leaving out an unknown write whose value no remaining operation needs changes no verdict:
/// an unknown operation may always be left unlinearized, and in any linearization that
/// includes it, the operations after it up to the next write cannot observe its value, so
/// it can be removed from that linearization too.
pub(crate) fn prepare(ops: &[&Operation]) -> Prepared {
    let mut values: Vec<Value> = vec![None];
    let mut index: HashMap<Value, State> = HashMap::from([(None, NONE)]);
    let mut intern = |v: &Value| -> State {
        *index.entry(v.clone()).or_insert_with(|| {
            values.push(v.clone());
            (values.len() - 1) as State
        })
    };
    let mut out = Vec::with_capacity(ops.len());
    for (i, o) in ops.iter().enumerate() {
        let step = match (&o.op, &o.outcome) {
            (Op::Get, Outcome::Get(v)) => Step::Read(intern(v)),
            (Op::Get, _) => continue,
            (Op::Put(v), Outcome::Unknown | Outcome::Put) => Step::Write(intern(&Some(v.clone()))),
            (Op::Cas { expected, new }, Outcome::Unknown) => {
                Step::CasMaybe { expected: intern(expected), new: intern(new) }
            }
            (Op::Cas { expected, new }, Outcome::Cas { succeed, previous }) => {
                Step::Cas { expected: intern(expected), new: intern(new), succeed: *succeed, found: intern(previous) }
            }
            // An answer that does not fit the request: a read of something nobody wrote, which
            // no linearization explains.
            (_, _) => Step::Read(intern(&Some(format!("<answer {:?} to {:?}>", o.outcome, o.op).into()))),
        };
        out.push(KeyOp { id: i, step, invoke: o.invoke, complete: o.complete });
    }
    let before = out.len();
    loop {
        let observed: HashSet<State> = out.iter().filter_map(|o| o.step.observes()).collect();
        let n = out.len();
        out.retain(|o| o.complete.is_some() || o.step.writes().is_some_and(|v| observed.contains(&v)));
        if out.len() == n {
            break;
        }
    }
    out.sort_by_key(|o| (o.invoke, o.id));
    let dropped = ops.len() - before + (before - out.len());
    Prepared { ops: out, values, dropped }
}
