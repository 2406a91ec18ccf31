//! Shared fixtures: seeded matrices with a chosen spectrum.

use tch::{Device, Kind, Tensor};

/// A seeded `[m, n]` matrix `U diag(s) V^T` with the given singular values (k = min(m, n)).
pub fn with_spectrum(m: i64, n: i64, singular_values: &[f64], seed: i64) -> Tensor {
    tch::manual_seed(seed);
    let k = m.min(n);
    assert_eq!(singular_values.len() as i64, k);
    let opts = (Kind::Double, Device::Cpu);
    let (u, _) = Tensor::linalg_qr(&Tensor::randn([m, k], opts), "reduced");
    let (v, _) = Tensor::linalg_qr(&Tensor::randn([n, k], opts), "reduced");
    let s = Tensor::from_slice(singular_values);
    (u * s.unsqueeze(0)).matmul(&v.tr()).to_kind(Kind::Float)
}

/// Singular values spread geometrically from 1 down to `1 / condition`.
pub fn geometric(k: i64, condition: f64) -> Vec<f64> {
    (0..k)
        .map(|i| condition.powf(-(i as f64) / ((k - 1).max(1) as f64)))
        .collect()
}

/// A seeded standard normal matrix.
pub fn gaussian(shape: &[i64], seed: i64) -> Tensor {
    tch::manual_seed(seed);
    Tensor::randn(shape, (Kind::Float, Device::Cpu))
}

/// `||a - b||_F`.
pub fn distance(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .square()
        .sum(Kind::Double)
        .double_value(&[])
        .sqrt()
}

/// The exact polar factor in f64, for comparisons.
pub fn polar(w: &Tensor) -> Tensor {
    let (u, _, v) = w.to_kind(Kind::Double).svd(true, true);
    u.matmul(&v.tr())
}
