//! Distribution tests of the generators. Seeded, so they are deterministic; the tolerances
//! are several standard deviations wide for the sample sizes used.

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;

fn rng() -> StdRng {
    StdRng::seed_from_u64(0x5eed)
}

/// The theoretical zipfian probability of rank `k` (0-based) among `n` items.
fn zipf_p(k: u64, n: u64) -> f64 {
    1.0 / (((k + 1) as f64).powf(ZIPFIAN_CONSTANT) * zeta(0, n, ZIPFIAN_CONSTANT, 0.0))
}

#[test]
fn fnv_matches_ycsb() {
    // Computed with YCSB's Java arithmetic (signed 64-bit, Math.abs).
    let cases = [
        (0u64, 6_284_781_860_667_377_211u64),
        (1, 8_517_097_267_634_966_620),
        (2, 1_820_151_046_732_198_393),
        (42, 55_488_592_825_689_361),
        (1000, 5_952_875_239_596_136_740),
        (123_456_789, 2_350_796_791_908_741_607),
    ];
    for (v, want) in cases {
        assert_eq!(fnv_hash64(v), want, "fnv_hash64({v})");
    }
}

#[test]
fn zipfian_top_ranks_match_the_theoretical_distribution() {
    const N: u64 = 1000;
    const SAMPLES: usize = 2_000_000;
    let mut z = Zipfian::new(0, N - 1);
    let mut rng = rng();
    let mut counts = vec![0u64; N as usize];
    for _ in 0..SAMPLES {
        counts[z.next(&mut rng) as usize] += 1;
    }
    let freq = |k: usize| counts[k] as f64 / SAMPLES as f64;
    // Gray et al.'s method is exact for the first two ranks.
    for k in 0..2 {
        let (got, want) = (freq(k), zipf_p(k as u64, N));
        assert!((got / want - 1.0).abs() < 0.02, "rank {}: {got:.5} vs {want:.5}", k + 1);
    }
    // Ranks 3..10 follow its continuous approximation, which overestimates them by at most
    // 17 % (rank 3) down to 1.5 % (rank 10) for n = 1000; YCSB has the same shape.
    for k in 2..10 {
        let (got, want) = (freq(k), zipf_p(k as u64, N));
        assert!((got / want - 1.0).abs() < 0.20, "rank {}: {got:.5} vs {want:.5}", k + 1);
        assert!(freq(k) < freq(k - 1), "rank {} is not less popular than rank {}", k + 1, k);
    }
    // The mass of each decade of ranks is within 5 % of the theory.
    for (lo, hi) in [(0usize, 10usize), (10, 100), (100, 1000)] {
        let got: f64 = (lo..hi).map(freq).sum();
        let want: f64 = (lo..hi).map(|k| zipf_p(k as u64, N)).sum();
        assert!((got / want - 1.0).abs() < 0.05, "ranks {}..{}: {got:.4} vs {want:.4}", lo + 1, hi);
    }
}

#[test]
fn zipfian_extends_zeta_incrementally() {
    let mut z = Zipfian::new(0, 99);
    let mut rng = rng();
    assert!((z.zetan() - zeta(0, 100, ZIPFIAN_CONSTANT, 0.0)).abs() < 1e-9);
    for _ in 0..1000 {
        assert!(z.next_of(250, &mut rng) < 250);
    }
    assert!((z.zetan() - zeta(0, 250, ZIPFIAN_CONSTANT, 0.0)).abs() < 1e-9);
}

#[test]
fn scrambled_zipfian_keeps_the_top_probabilities_on_hashed_keys() {
    const N: u64 = 10_000;
    const SAMPLES: usize = 2_000_000;
    let mut z = ScrambledZipfian::new(0, N - 1);
    let mut rng = rng();
    let mut counts = vec![0u64; N as usize];
    for _ in 0..SAMPLES {
        let k = z.next(&mut rng);
        assert!(k < N);
        counts[k as usize] += 1;
    }
    // Rank r of the 10^10-item zipfian lands on key fnv(r) % N; other ranks that hash to
    // the same key add about (1 - top mass) / N on average. (Ranks 1 and 2 are exact in
    // Gray et al.'s method; see the test above for the approximation of later ranks.)
    let background = 1.0 / N as f64;
    for r in 0..2u64 {
        let key = (fnv_hash64(r) % N) as usize;
        let got = counts[key] as f64 / SAMPLES as f64;
        let want = 1.0 / (((r + 1) as f64).powf(ZIPFIAN_CONSTANT) * SCRAMBLED_ZETAN);
        assert!(got > want * 0.97 && got < want * 1.03 + 3.0 * background, "rank {}: {got:.5} vs {want:.5}", r + 1);
    }
    // Popular keys are spread, not clustered at the start of the key space.
    let mut top: Vec<usize> = (0..N as usize).collect();
    top.sort_by_key(|&k| std::cmp::Reverse(counts[k]));
    assert!(top[..10].iter().any(|&k| k > N as usize / 2), "top keys {:?}", &top[..10]);
}

#[test]
fn uniform_passes_a_chi_square_test() {
    const BUCKETS: u64 = 100;
    const SAMPLES: u64 = 1_000_000;
    let u = Uniform::new(1000, 1000 + BUCKETS - 1);
    let mut rng = rng();
    let mut counts = vec![0u64; BUCKETS as usize];
    for _ in 0..SAMPLES {
        counts[(u.next(&mut rng) - 1000) as usize] += 1;
    }
    let expected = SAMPLES as f64 / BUCKETS as f64;
    let chi2: f64 = counts.iter().map(|&c| (c as f64 - expected).powi(2) / expected).sum();
    // 99 degrees of freedom: P(χ² > 148.2) = 0.001.
    assert!(chi2 < 148.2, "chi-square {chi2:.1} with 99 degrees of freedom");
    // And it is not suspiciously perfect either: P(χ² < 62.4) = 0.001.
    assert!(chi2 > 62.4, "chi-square {chi2:.1} is too small");
}

#[test]
fn skewed_latest_favours_the_newest_records() {
    let mut g = SkewedLatest::new(999);
    let mut rng = rng();
    let mut counts = vec![0u64; 1001];
    for _ in 0..200_000 {
        let k = g.next(999, &mut rng);
        assert!(k > 0 && k <= 999, "{k}");
        counts[k as usize] += 1;
    }
    assert!(counts[999] > counts[998] && counts[998] > counts[990] && counts[990] > counts[500]);
    // The newest record grows as inserts are acknowledged.
    for _ in 0..1000 {
        let k = g.next(1000, &mut rng);
        assert!(k > 0 && k <= 1000);
    }
}

#[test]
fn key_chooser_never_picks_unacknowledged_records() {
    let mut rng = rng();
    let mut choosers = [
        KeyChooser::Uniform(Uniform::new(0, 99)),
        KeyChooser::Zipfian(ScrambledZipfian::new(0, 199)),
        KeyChooser::Latest(SkewedLatest::new(99)),
    ];
    for c in &mut choosers {
        for _ in 0..10_000 {
            assert!(c.next(99, &mut rng) <= 99);
        }
    }
}

#[test]
fn discrete_skips_zero_weights() {
    let d = Discrete::new(&[0.0, 0.3, 0.0, 0.7, 0.0]);
    let mut rng = rng();
    let mut counts = [0u64; 5];
    for _ in 0..100_000 {
        counts[d.next(&mut rng)] += 1;
    }
    assert_eq!((counts[0], counts[2], counts[4]), (0, 0, 0));
    assert!((counts[1] as f64 / 100_000.0 - 0.3).abs() < 0.01);
}

#[test]
fn lengths_stay_in_bounds() {
    let mut rng = rng();
    let mut lens = [Length::Constant(7), Length::Uniform(Uniform::new(1, 100)), Length::Zipfian(Zipfian::new(1, 100))];
    for l in &mut lens {
        for _ in 0..10_000 {
            let n = l.next(&mut rng);
            assert!((1..=100).contains(&n));
        }
    }
}
