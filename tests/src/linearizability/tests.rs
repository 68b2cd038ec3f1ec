//! Hand-made histories: valid ones are accepted, invalid ones rejected with an explanation.

use bytes::Bytes;
use net::kv::CasResult;

use super::*;

fn v(s: &str) -> Value {
    Some(Bytes::from(s.to_string()))
}

fn opt(s: Option<&str>) -> Value {
    s.and_then(v)
}

/// A history builder: times are plain numbers, client ids are not checked.
#[derive(Default)]
struct H(History);

impl H {
    fn put(mut self, key: &str, t: (u64, u64), val: &str) -> H {
        self.0.push(0, key.to_string(), Op::Put(Bytes::from(val.to_string())), t.0, Some(t.1), Outcome::Put);
        self
    }

    fn put_unknown(mut self, key: &str, t0: u64, val: &str) -> H {
        self.0.push(0, key.to_string(), Op::Put(Bytes::from(val.to_string())), t0, None, Outcome::Unknown);
        self
    }

    fn get(mut self, key: &str, t: (u64, u64), seen: Option<&str>) -> H {
        self.0.push(1, key.to_string(), Op::Get, t.0, Some(t.1), Outcome::Get(opt(seen)));
        self
    }

    fn get_failed(mut self, key: &str, t0: u64) -> H {
        self.0.push(1, key.to_string(), Op::Get, t0, None, Outcome::Unknown);
        self
    }

    #[allow(clippy::too_many_arguments)]
    fn cas(mut self, key: &str, t: (u64, u64), exp: Option<&str>, new: &str, ok: bool, found: Option<&str>) -> H {
        let op = Op::Cas { expected: opt(exp), new: v(new) };
        self.0.push(2, key.to_string(), op, t.0, Some(t.1), Outcome::Cas { succeed: ok, previous: opt(found) });
        self
    }

    fn cas_unknown(mut self, key: &str, t0: u64, exp: Option<&str>, new: &str) -> H {
        self.0.push(2, key.to_string(), Op::Cas { expected: opt(exp), new: v(new) }, t0, None, Outcome::Unknown);
        self
    }

    fn report(&self) -> Report {
        check(&self.0, &CheckConfig::default())
    }

    fn ok(self) -> H {
        let r = self.report();
        assert!(r.is_linearizable(), "expected linearizable: {r}");
        self
    }

    fn bad(self) -> Box<Violation> {
        let r = self.report();
        match r.verdict() {
            Verdict::NotLinearizable(v) => v.clone(),
            other => panic!("expected not linearizable, got {other:?}: {r}"),
        }
    }
}

#[test]
fn empty_and_sequential_histories_are_linearizable() {
    H::default().ok();
    H::default().get("k", (0, 1), None).put("k", (2, 3), "a").get("k", (4, 5), Some("a")).ok();
    H::default()
        .put("k", (0, 1), "a")
        .cas("k", (2, 3), Some("a"), "b", true, Some("a"))
        .cas("k", (4, 5), Some("a"), "c", false, Some("b"))
        .get("k", (6, 7), Some("b"))
        .ok();
}

#[test]
fn overlapping_operations_may_take_effect_in_either_order() {
    // A read overlapping a write sees the old or the new value.
    H::default().put("k", (0, 10), "a").get("k", (5, 15), Some("a")).ok();
    H::default().put("k", (0, 10), "a").get("k", (5, 15), None).ok();
    // Two overlapping writes: later reads see either one, then stick to it.
    for last in ["a", "b"] {
        H::default().put("k", (0, 10), "a").put("k", (0, 10), "b").get("k", (20, 30), Some(last)).ok();
    }
    // A read overlapping both writes may see the first, a later one the second.
    H::default()
        .put("k", (0, 10), "a")
        .put("k", (5, 50), "b")
        .get("k", (8, 20), Some("a"))
        .get("k", (60, 70), Some("b"))
        .ok();
    // Touching intervals count as concurrent.
    H::default().put("k", (0, 10), "a").get("k", (10, 20), None).ok();
}

#[test]
fn unknown_writes_may_or_may_not_take_effect() {
    // Took effect.
    H::default().put_unknown("k", 0, "a").get("k", (10, 20), Some("a")).ok();
    // Did not.
    H::default().put_unknown("k", 0, "a").get("k", (10, 20), None).get("k", (30, 40), None).ok();
    // Took effect late, long after the client gave up.
    H::default().put_unknown("k", 0, "a").get("k", (10, 20), None).get("k", (100, 110), Some("a")).ok();
    // A compare-and-swap without answer that did swap.
    H::default().put("k", (0, 10), "a").cas_unknown("k", 20, Some("a"), "b").get("k", (30, 40), Some("b")).ok();
    // … or did not.
    H::default().put("k", (0, 10), "a").cas_unknown("k", 20, Some("a"), "b").get("k", (30, 40), Some("a")).ok();
    // Failed reads say nothing.
    H::default().put("k", (0, 10), "a").get_failed("k", 20).get("k", (30, 40), Some("a")).ok();
}

#[test]
fn a_stale_read_after_a_completed_write_is_rejected() {
    let v = H::default().put("k", (0, 10), "a").get("k", (20, 30), None).bad();
    assert_eq!(v.key, Bytes::from("k"));
    assert_eq!(v.blocked.op, Op::Get, "{v}");
    assert_eq!(v.prefix.len(), 1, "the put alone is linearizable: {v}");
    let text = v.to_string();
    assert!(text.contains("\"k\"") && text.contains("put(\"a\")") && text.contains("get = None"), "{text}");
}

#[test]
fn a_read_of_a_value_never_written_is_rejected() {
    H::default().get("k", (0, 10), Some("x")).bad();
    H::default().put("k", (0, 10), "a").get("k", (5, 15), Some("x")).bad();
    // An unknown write invoked after the read cannot explain it.
    H::default().get("k", (0, 10), Some("a")).put_unknown("k", 20, "a").bad();
}

#[test]
fn two_successful_swaps_from_the_same_value_are_rejected() {
    H::default()
        .put("k", (0, 10), "a")
        .cas("k", (20, 30), Some("a"), "b", true, Some("a"))
        .cas("k", (20, 30), Some("a"), "c", true, Some("a"))
        .bad();
    // One of them failing is fine, whichever.
    H::default()
        .put("k", (0, 10), "a")
        .cas("k", (20, 30), Some("a"), "b", true, Some("a"))
        .cas("k", (20, 30), Some("a"), "c", false, Some("b"))
        .ok();
    // A failed swap that found what it expected is inconsistent.
    H::default().put("k", (0, 10), "a").cas("k", (20, 30), Some("a"), "b", false, Some("a")).bad();
    // An unknown swap from a value the register never held cannot have written.
    H::default().put("k", (0, 10), "a").cas_unknown("k", 20, Some("x"), "b").get("k", (30, 40), Some("b")).bad();
}

#[test]
fn a_read_going_back_in_time_is_rejected() {
    let ok = || H::default().put("k", (0, 10), "a").put("k", (20, 100), "b").get("k", (30, 40), Some("a"));
    ok().get("k", (50, 60), Some("b")).ok();
    ok().get("k", (50, 60), Some("b")).get("k", (70, 80), Some("a")).bad();
    H::default()
        .put("k", (0, 10), "a")
        .put("k", (20, 100), "b")
        .get("k", (30, 40), Some("b"))
        .get("k", (50, 60), Some("a"))
        .bad();
    // Same with an unknown write that took effect: once seen, it stays.
    H::default().put_unknown("k", 0, "a").get("k", (10, 20), Some("a")).get("k", (30, 40), None).bad();
}

#[test]
fn a_lost_acknowledged_write_is_rejected() {
    H::default().put("k", (0, 10), "a").put("k", (20, 30), "b").get("k", (40, 50), Some("a")).bad();
    H::default()
        .put("k", (0, 10), "a")
        .cas("k", (20, 30), Some("a"), "b", true, Some("a"))
        .get("k", (40, 50), Some("a"))
        .bad();
}

#[test]
fn keys_are_checked_independently() {
    // As one register this would be a stale read; as two it is fine.
    let h = H::default().put("k1", (0, 10), "a").get("k2", (20, 30), None).ok();
    assert_eq!(h.report().keys.len(), 2);
    // One bad key among good ones is named.
    let h = H::default()
        .put("k1", (0, 10), "a")
        .get("k1", (20, 30), Some("a"))
        .put("k2", (0, 10), "b")
        .get("k2", (20, 30), None)
        .put("k3", (0, 10), "c");
    let r = h.report();
    let verdicts: Vec<bool> = r.keys.iter().map(|k| k.verdict == Verdict::Linearizable).collect();
    assert_eq!(verdicts, [true, false, true]);
    match r.verdict() {
        Verdict::NotLinearizable(v) => assert_eq!(v.key, Bytes::from("k2")),
        other => panic!("{other:?}"),
    }
}

/// `n` concurrent puts of distinct values, then a read of a value none of them wrote: to reject
/// it the search must try every order of the puts.
fn hard(n: usize) -> History {
    let mut h = H::default();
    for i in 0..n {
        h = h.put("k", (0, 100), &format!("v{i}"));
    }
    h.get("k", (200, 210), Some("nobody")).0
}

#[test]
fn an_exhausted_budget_gives_unknown_not_a_verdict() {
    let h = hard(12);
    let r = check(&h, &CheckConfig { max_steps: 1000 });
    assert!(matches!(r.verdict(), Verdict::Unknown { .. }), "{r}");
    assert!(!r.is_linearizable());
    let r = check(&h, &CheckConfig::default());
    assert!(matches!(r.verdict(), Verdict::NotLinearizable(_)), "{r}");
    assert!(r.steps() > 1000);
    // A valid history that needs more steps than allowed is undecided, not rejected.
    let mut h = hard(12);
    h.ops.pop();
    h.push(1, "k", Op::Get, 200, Some(210), Outcome::Get(v("v3")));
    assert!(matches!(check(&h, &CheckConfig { max_steps: 5 }).verdict(), Verdict::Unknown { .. }));
    assert!(check(&h, &CheckConfig::default()).is_linearizable());
}

#[test]
fn a_retried_swap_that_finds_its_own_write_counts_as_a_success() {
    let (exp, new) = (v("a"), v("c1-7"));
    let own = CasResult { succeed: false, previous: new.clone() };
    assert_eq!(cas_outcome(&exp, &new, &own), Outcome::Cas { succeed: true, previous: exp.clone() });
    let other = CasResult { succeed: false, previous: v("b") };
    assert_eq!(cas_outcome(&exp, &new, &other), Outcome::Cas { succeed: false, previous: v("b") });
    // A delete cannot be told from a failure on a missing key.
    let gone = CasResult { succeed: false, previous: None };
    assert_eq!(cas_outcome(&exp, &None, &gone), Outcome::Cas { succeed: false, previous: None });
}

#[test]
fn the_recorder_keeps_times_and_leaves_unanswered_operations_unknown() {
    let r = Recorder::new();
    let a = r.invoke(0, "k", Op::Put("a".into()));
    let b = r.invoke(1, "k", Op::Get);
    r.complete(a, Outcome::Put);
    let c = r.invoke(2, "k", Op::Get);
    r.complete(c, Outcome::Unknown);
    let h = r.history();
    assert_eq!(h.ops.len(), 3);
    assert_eq!(h.unknown(), 2);
    assert!(h.ops[a].complete.is_some_and(|t| t >= h.ops[a].invoke));
    assert!(h.ops[b].complete.is_none() && h.ops[c].complete.is_none());
    assert!(h.ops[b].invoke <= h.ops[c].invoke);
    assert_eq!(h.keys(), 1);
}

#[test]
fn a_write_that_may_have_been_applied_twice_explains_a_value_coming_back() {
    // A put whose first attempt was applied, then overwritten, then applied again by the
    // client's retry: a, b, a.
    let mut h = H::default()
        .put("k", (0, 100), "a")
        .get("k", (10, 20), Some("a"))
        .put("k", (25, 30), "b")
        .get("k", (40, 50), Some("b"))
        .get("k", (60, 70), Some("a"));
    assert!(!h.report().is_linearizable());
    // The same, knowing that the put may have been applied once more.
    h.0.ops[0].note = "retried: Network x1".into();
    assert_eq!(h.0.possible_duplicate(0), Some(5));
    assert_eq!(h.0.possible_duplicate(9), None);
    assert_eq!((h.0.ops[5].invoke, h.0.ops[5].complete), (0, None));
    assert!(h.0.ops[5].to_string().contains("possible extra application of #0"), "{}", h.0.ops[5]);
    assert!(h.0.ops[0].to_string().contains("(retried: Network x1)"), "{}", h.0.ops[0]);
    h.ok();
}
