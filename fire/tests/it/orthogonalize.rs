//! The three orthogonalisers against the exact polar factor.

use fire::orthogonalize::{dfi_batch, newton_schulz};
use fire::{dfi, orthogonalize, sfe, Orthogonalizer};
use proptest::prelude::*;
use tch::{Kind, Tensor};

use crate::util::{distance, gaussian, geometric, polar, with_spectrum};

#[test]
fn reference_ns_converges_to_the_polar_factor_when_well_conditioned() {
    // Singular values in [0.5, 1]: after Frobenius normalisation they sit near 1/sqrt(32),
    // and ten cubic steps bring them to 1 within f32 precision.
    for (m, n, seed) in [(64, 32, 1), (32, 64, 2), (48, 48, 3)] {
        let w = with_spectrum(m, n, &geometric(m.min(n), 2.0), seed);
        let out = orthogonalize(&w, Orthogonalizer::NewtonSchulz { iters: 10 }).unwrap();
        let gap = distance(&out.q, &polar(&w));
        assert!(gap < 1e-3, "{m}x{n}: ||Q_ns - UV^T|| = {gap}");
        assert!(out.dfi[0] / (m.min(n) as f64) < 1e-5, "dfi {}", out.dfi[0]);
        assert_eq!(out.iterations, 10);
    }
}

#[test]
fn reference_ns_is_far_from_isometry_on_large_matrices() {
    // FIRE.md section 2: 5 steps leave a 768x768 Gaussian matrix far from orthogonal.
    let w = gaussian(&[768, 768], 4);
    let out = orthogonalize(&w, Orthogonalizer::NewtonSchulz { iters: 5 }).unwrap();
    let per_column = out.dfi[0] / 768.0;
    assert!(per_column > 0.5, "DfI/k = {per_column}");
}

#[test]
fn tolerance_and_exact_modes_reach_the_tolerance_where_reference_does_not() {
    let ill = with_spectrum(256, 128, &geometric(128, 1e4), 5);
    let big = gaussian(&[1024, 1024], 6);
    for (name, w) in [
        ("ill-conditioned 256x128", &ill),
        ("gaussian 1024x1024", &big),
    ] {
        let k = w.size().into_iter().min().unwrap() as f64;
        let reference = orthogonalize(w, Orthogonalizer::default()).unwrap();
        assert!(
            reference.dfi[0] / k > 1e-2,
            "{name}: reference unexpectedly converged"
        );

        let tol = orthogonalize(
            w,
            Orthogonalizer::Tolerance {
                tol: 1e-6,
                max_iters: 100,
            },
        )
        .unwrap();
        assert!(
            tol.dfi[0] / k <= 1e-6,
            "{name}: tolerance mode DfI/k = {}",
            tol.dfi[0] / k
        );
        assert!(tol.iterations < 100, "{name}: hit the cap");

        let exact = orthogonalize(w, Orthogonalizer::Exact).unwrap();
        assert!(
            exact.dfi[0] / k <= 1e-6,
            "{name}: exact DfI/k = {}",
            exact.dfi[0] / k
        );
        // Both are the same matrix: the polar factor.
        assert!(distance(&tol.q, &exact.q) / k.sqrt() < 1e-3, "{name}");
    }
}

#[test]
fn tolerance_mode_stops_early_on_an_orthogonal_input() {
    let q = polar(&gaussian(&[40, 20], 7)).to_kind(Kind::Float);
    let out = orthogonalize(
        &q,
        Orthogonalizer::Tolerance {
            tol: 1e-6,
            max_iters: 50,
        },
    )
    .unwrap();
    assert!(out.iterations <= 3, "took {} steps", out.iterations);
    // DfI/k <= tol bounds each singular value's error by about sqrt(tol).
    assert!(distance(&out.q, &q) <= (20.0f64 * 1e-6).sqrt());
}

#[test]
fn tolerance_mode_reports_the_dfi_it_reached_at_the_cap() {
    let w = with_spectrum(128, 128, &geometric(128, 1e6), 8);
    let out = orthogonalize(
        &w,
        Orthogonalizer::Tolerance {
            tol: 1e-12,
            max_iters: 3,
        },
    )
    .unwrap();
    assert_eq!(out.iterations, 3);
    let measured = dfi(&out.q).unwrap();
    assert!((measured - out.dfi[0]).abs() <= 1e-9 * measured.max(1.0));
    assert!(out.dfi[0] > 1e-12);
}

#[test]
fn batched_call_equals_one_call_per_matrix() {
    let batch = gaussian(&[5, 30, 20], 9);
    let together = newton_schulz(&batch, 10).unwrap();
    for i in 0..5 {
        let alone = newton_schulz(&batch.get(i).unsqueeze(0), 10)
            .unwrap()
            .squeeze_dim(0);
        assert!(distance(&together.get(i), &alone) < 1e-5, "matrix {i}");
    }
    let per = dfi_batch(&together).unwrap();
    assert_eq!(per.len(), 5);
    let single = dfi(&together.get(2)).unwrap();
    assert!((per[2] - single).abs() < 1e-9 * single.max(1.0));
}

#[test]
fn dfi_uses_the_smaller_gram_matrix() {
    // A 2x3 matrix with orthonormal rows is an isometry on its row space: DfI 0, not 1.
    let w = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0]).reshape([2, 3]);
    assert_eq!(dfi(&w).unwrap(), 0.0);
    assert_eq!(dfi(&w.tr()).unwrap(), 0.0);
    // Doubling it: W^T W = 4 I on 2x2, so DfI = 2 * 9 = 18.
    assert_eq!(dfi(&(&w * 2.0)).unwrap(), 18.0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// FIRE's factor is the closest semi-orthogonal matrix: no other candidate has smaller SFE.
    #[test]
    fn polar_factor_minimises_sfe_among_semi_orthogonal_matrices(
        m in 2i64..24, n in 2i64..24, seed in 0i64..10_000, angle in 0.01f64..1.0,
    ) {
        let w = gaussian(&[m, n], seed);
        let fire_q = orthogonalize(&w, Orthogonalizer::Exact).unwrap().q;
        let best = sfe(&w, &fire_q).unwrap();
        let k = m.min(n);
        let opts = (Kind::Float, tch::Device::Cpu);
        // Candidate 1: the Q of a QR decomposition of W (orthonormal, but not the nearest).
        let (qr_q, _) = if m >= n { Tensor::linalg_qr(&w, "reduced") } else {
            let (q, r) = Tensor::linalg_qr(&w.tr(), "reduced"); (q.tr(), r)
        };
        // Candidate 2: the polar factor rotated by exp of a random skew matrix times `angle`.
        let a = Tensor::randn([k, k], opts);
        let skew = (&a - a.tr()) * (angle / 2.0);
        let rotation = skew.matrix_exp();
        let rotated = if m >= n { fire_q.matmul(&rotation) } else { rotation.matmul(&fire_q) };
        // Candidate 3: a random semi-orthogonal matrix.
        let random = polar(&Tensor::randn([m, n], opts)).to_kind(Kind::Float);
        for (name, candidate) in [("qr", qr_q), ("rotated", rotated), ("random", random)] {
            let other = sfe(&w, &candidate).unwrap();
            prop_assert!(best <= other + 1e-4 * other.max(1.0), "{name}: {best} > {other}");
        }
    }
}

/// The published iteration, verbatim: `X / ||X||_F` in f32, then `X <- 1.5 X - 0.5 X X^T X`.
fn published_newton_schulz(batch: &Tensor, iters: usize) -> Tensor {
    let norm = batch
        .square()
        .sum_dim_intlist([-2i64, -1].as_slice(), true, Kind::Float)
        .sqrt();
    let mut x = batch / norm;
    for _ in 0..iters {
        let gram = x.mt().matmul(&x);
        x = x.baddbmm(&x, &gram, 1.5, -0.5);
    }
    x
}

#[test]
fn newton_schulz_is_the_published_iteration_to_the_bit_and_does_not_overflow() {
    // Entries well below 1, so the power-of-two prescale is not 1 and is exercised.
    let w = gaussian(&[4, 48, 24], 11) * 0.03;
    let ours = newton_schulz(&w, 10).unwrap();
    assert!(ours.equal(&published_newton_schulz(&w, 10)));
    // Scaling by powers of two is exact: the same factor, bit for bit, near both ends of
    // f32's range. The published iteration gives zeros at the top (||X||_F = inf).
    for power in [100, -100] {
        let scaled = &w * 2f64.powi(power);
        assert!(
            newton_schulz(&scaled, 10).unwrap().equal(&ours),
            "2^{power}"
        );
    }
    let huge = &w * 2f64.powi(100);
    assert_eq!(
        published_newton_schulz(&huge, 10)
            .abs()
            .max()
            .double_value(&[]),
        0.0
    );

    // N(0, 1) x 1e18, the probe's matrix: the same factor as the unscaled one, for every
    // method, up to the rounding of the multiplied entries.
    let w = gaussian(&[48, 24], 12);
    let big = &w * 1e18;
    for method in [
        Orthogonalizer::default(),
        Orthogonalizer::tolerance(),
        Orthogonalizer::Exact,
    ] {
        let want = orthogonalize(&w, method).unwrap();
        let got = orthogonalize(&big, method).unwrap();
        let gap = distance(&got.q, &want.q);
        assert!(gap < 1e-4, "{method:?}: ||Q(1e18 W) - Q(W)|| = {gap}");
        assert!((got.dfi[0] - want.dfi[0]).abs() < 1e-4, "{method:?}");
    }
    // In f64, beyond f32's range.
    let beyond = w.to_kind(Kind::Double) * 1e300;
    let got = orthogonalize(&beyond, Orthogonalizer::Exact).unwrap();
    let want = orthogonalize(&w, Orthogonalizer::Exact).unwrap();
    assert!(distance(&got.q, &want.q) < 1e-4);
}
