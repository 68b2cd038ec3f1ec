//! The checker against brute force: on small random histories with arbitrary answers (and
//! values that repeat), WGL's verdict equals that of trying every order of every subset of
//! the unknown operations.

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// The register after `o` from `s`, or `None` if `o` cannot happen in `s`. An unknown
/// operation that is placed takes effect if it can (a swap that does not match changes
/// nothing).
fn apply(o: &Operation, s: &Value) -> Option<Value> {
    match (&o.op, &o.outcome) {
        (Op::Get, Outcome::Get(v)) => (v == s).then(|| s.clone()),
        (Op::Put(v), _) => Some(Some(v.clone())),
        (Op::Cas { expected, new }, Outcome::Unknown) => Some(if expected == s { new.clone() } else { s.clone() }),
        (Op::Cas { expected, new }, Outcome::Cas { succeed, previous }) => {
            if previous != s || *succeed != (expected == s) {
                None
            } else if *succeed {
                Some(new.clone())
            } else {
                Some(s.clone())
            }
        }
        _ => None,
    }
}

/// Whether some order of all known operations and any subset of the unknown ones, respecting
/// real time, explains every answer.
fn brute(ops: &[&Operation], placed: &mut Vec<bool>, s: &Value) -> bool {
    if ops.iter().zip(placed.iter()).all(|(o, &p)| p || o.is_unknown()) {
        return true;
    }
    for i in 0..ops.len() {
        if placed[i] {
            continue;
        }
        // Every known operation that completed before this one was invoked goes first.
        let ready = ops.iter().zip(placed.iter()).all(|(y, &p)| p || y.complete.is_none_or(|c| c >= ops[i].invoke));
        if !ready {
            continue;
        }
        if let Some(next) = apply(ops[i], s) {
            placed[i] = true;
            let found = brute(ops, placed, &next);
            placed[i] = false;
            if found {
                return true;
            }
        }
    }
    false
}

fn random_value(rng: &mut StdRng) -> Value {
    ["a", "b", "c"].get(rng.gen_range(0..4)).map(|s| Bytes::from(*s))
}

fn random_history(rng: &mut StdRng, n: usize) -> History {
    let mut h = History::new();
    for _ in 0..n {
        let invoke = rng.gen_range(0..20);
        let complete = (!rng.gen_bool(0.25)).then(|| invoke + rng.gen_range(0..8));
        let (op, outcome) = match rng.gen_range(0..3) {
            0 => (Op::Get, Outcome::Get(random_value(rng))),
            1 => (Op::Put(random_value(rng).unwrap_or_default()), Outcome::Put),
            _ => {
                let op = Op::Cas { expected: random_value(rng), new: random_value(rng) };
                (op, Outcome::Cas { succeed: rng.gen_bool(0.5), previous: random_value(rng) })
            }
        };
        h.push(0, "k", op, invoke, complete, outcome);
    }
    h
}

#[test]
fn the_checker_agrees_with_brute_force_on_small_random_histories() {
    let (mut yes, mut no) = (0, 0);
    for seed in 0..4000u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = rng.gen_range(1..=7);
        let h = random_history(&mut rng, n);
        let ops: Vec<&Operation> = h.ops.iter().filter(|o| !(o.op == Op::Get && o.is_unknown())).collect();
        let expected = brute(&ops, &mut vec![false; ops.len()], &None);
        let r = check(&h, &CheckConfig::default());
        assert!(!matches!(r.verdict(), Verdict::Unknown { .. }));
        assert_eq!(r.is_linearizable(), expected, "seed {seed}: {:#?}\n{r}", h.ops);
        if expected {
            yes += 1;
        } else {
            no += 1;
        }
    }
    // Both verdicts are well represented.
    assert!(yes > 500 && no > 500, "{yes} linearizable, {no} not");
}
