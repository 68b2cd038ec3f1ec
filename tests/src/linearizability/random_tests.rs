//! Randomized: histories made from a sequential execution with random overlapping intervals
//! around each operation's instant are accepted; the same with one read changed to a value it
//! provably cannot have seen are rejected.

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// Spacing of the operations' instants; intervals reach up to `SPREAD` either side, so about
/// `2 * SPREAD / GAP` operations overlap at any time.
const GAP: u64 = 10;
const SPREAD: u64 = 45;

/// A history of `n` operations on `keys` keys: each takes effect at instant `i * GAP` in a
/// sequential execution of registers, and its interval is drawn around that instant. Some
/// writes get an unknown outcome (half of those never take effect), some reads fail.
fn generate(rng: &mut StdRng, keys: usize, n: usize) -> History {
    let mut state: Vec<Value> = vec![None; keys];
    let mut written: Vec<Vec<Value>> = vec![vec![None]; keys];
    let mut h = History::new();
    for i in 0..n {
        let at = SPREAD + i as u64 * GAP;
        let invoke = at - rng.gen_range(0..=SPREAD);
        let complete = at + rng.gen_range(0..=SPREAD);
        let k = rng.gen_range(0..keys);
        let key = format!("k{k}");
        let client = rng.gen_range(0..8);
        let new: Value = Some(Bytes::from(format!("v{i}")));
        let unknown = rng.gen_bool(0.15);
        let applies = !unknown || rng.gen_bool(0.5);
        match rng.gen_range(0..10) {
            0..=3 => {
                if rng.gen_bool(0.05) {
                    h.push(client, key, Op::Get, invoke, None, Outcome::Unknown);
                } else {
                    h.push(client, key, Op::Get, invoke, Some(complete), Outcome::Get(state[k].clone()));
                }
            }
            4..=6 => {
                let v = new.clone().unwrap_or_default();
                h.push(client, key, Op::Put(v), invoke, (!unknown).then_some(complete), Outcome::Put);
                if applies {
                    state[k] = new.clone();
                    written[k].push(new);
                }
            }
            _ => {
                let expected = if rng.gen_bool(0.6) {
                    state[k].clone()
                } else {
                    written[k][rng.gen_range(0..written[k].len())].clone()
                };
                let succeed = expected == state[k];
                let outcome = Outcome::Cas { succeed, previous: state[k].clone() };
                let op = Op::Cas { expected, new: new.clone() };
                h.push(client, key, op, invoke, (!unknown).then_some(complete), outcome);
                if succeed && applies {
                    state[k] = new.clone();
                    written[k].push(new);
                }
            }
        }
    }
    h
}

/// A write that certainly took effect: acknowledged put or successful swap.
fn effective_write(o: &Operation) -> Option<&Bytes> {
    match (&o.op, &o.outcome) {
        (Op::Put(v), Outcome::Put) => Some(v),
        (Op::Cas { new: Some(v), .. }, Outcome::Cas { succeed: true, .. }) => Some(v),
        _ => None,
    }
}

/// Stale values the read `r` provably cannot have seen: a value written by an effective write
/// W (values are unique) when W completed before another effective write X was invoked and X
/// completed before `r` was invoked; `None` once any effective write completed before `r`
/// (nothing writes `None`).
fn stale_values(h: &History, r: &Operation) -> Vec<Value> {
    let same_key: Vec<&Operation> = h.ops.iter().filter(|o| o.key == r.key).collect();
    let done_before = |o: &Operation, t: u64| o.complete.is_some_and(|c| c < t);
    let mut out = Vec::new();
    for x in same_key.iter().filter(|x| effective_write(x).is_some() && done_before(x, r.invoke)) {
        out.push(None);
        for w in &same_key {
            if let Some(v) = effective_write(w) {
                if w.id != x.id && done_before(w, x.invoke) {
                    out.push(Some(v.clone()));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn random_valid_histories_are_accepted_and_one_impossible_read_gets_them_rejected() {
    let mut rejected_stale = 0;
    for seed in 0..300u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let keys = rng.gen_range(1..=4);
        let n = rng.gen_range(20..=400);
        let mut h = generate(&mut rng, keys, n);
        let r = check(&h, &CheckConfig::default());
        assert!(r.is_linearizable(), "seed {seed}: a valid history was not accepted: {r}");
        // Change one read to an impossible value.
        let reads: Vec<usize> = h.ops.iter().filter(|o| matches!(o.outcome, Outcome::Get(_))).map(|o| o.id).collect();
        if reads.is_empty() {
            continue;
        }
        let id = reads[rng.gen_range(0..reads.len())];
        let stale = stale_values(&h, &h.ops[id]);
        let value = if stale.is_empty() {
            Some(Bytes::from("never-written"))
        } else {
            rejected_stale += 1;
            stale[rng.gen_range(0..stale.len())].clone()
        };
        h.ops[id].outcome = Outcome::Get(value.clone());
        let r = check(&h, &CheckConfig::default());
        match r.verdict() {
            Verdict::NotLinearizable(v) => assert_eq!(v.key, h.ops[id].key, "seed {seed}"),
            other => panic!("seed {seed}: read #{id} changed to {value:?} was accepted: {other:?}\n{r}"),
        }
    }
    assert!(rejected_stale > 100, "too few stale-read mutations: {rejected_stale}");
}

#[test]
fn a_large_random_history_checks_within_the_budget() {
    // 20 000 operations on 5 keys with ~9 overlapping at any time: far bigger than the
    // integration test's, well within the default budget.
    let mut rng = StdRng::seed_from_u64(7);
    let h = generate(&mut rng, 5, 20_000);
    let r = check(&h, &CheckConfig::default());
    assert!(r.is_linearizable(), "{r}");
    assert!(r.steps() < 2_000_000, "{} steps", r.steps());
}
