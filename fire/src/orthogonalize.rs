//! Orthogonal polar factors of weight matrices: `W = U S V^T  ->  U V^T`.
//!
//! Three ways to compute it, chosen with [`Orthogonalizer`]:
//!
//! * [`Orthogonalizer::NewtonSchulz`] is the paper's reference, exactly: Frobenius
//!   normalisation, then `N` steps of the cubic iteration `X <- 1.5 X - 0.5 X X^T X`.
//! * [`Orthogonalizer::Tolerance`] starts from a spectral normalisation (largest singular
//!   value near 1 instead of near `sqrt(k)` times too small) and iterates until the deviation
//!   from isometry per column, `DfI / k`, is below a tolerance, or a cap is hit.
//! * [`Orthogonalizer::Exact`] takes the SVD and returns `U V^T`.
//!
//! All three work on a batch of same-shaped matrices `[B, m, n]` in one call (conv kernel taps,
//! or all same-shaped layers of a network), on whatever device the tensor lives on.
//! The achieved DfI of every matrix is always reported, because the reference iteration does not
//! converge on large or ill-conditioned matrices and a user must be able to see that.
//!
//! Every input is first divided by a power of two that brings its largest entry near 1
//! (exact in binary floating point, so the published iteration's result is unchanged to the
//! bit): squares of f32 entries overflow above ~1.8e19, and a Frobenius norm of infinity
//! turned such a matrix into zeros. Norms, SFE and DfI are likewise computed without overflow,
//! for every dtype. A matrix with NaN or infinity is refused: its "polar factor" would be
//! noise or a scaled identity.

use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// The reference iteration count for vision, DQN and SAC (FIRE.md section 2).
pub const PAPER_ITERATIONS: usize = 10;

/// How to compute the orthogonal polar factor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Orthogonalizer {
    /// The paper's cubic Newton–Schulz with Frobenius normalisation and a fixed step count.
    NewtonSchulz {
        /// Number of iterations (the paper uses 10; 5 for its language model).
        iters: usize,
    },
    /// Spectrally normalised cubic Newton–Schulz, run until `DfI / k <= tol` for every matrix.
    Tolerance {
        /// Target deviation from isometry per column (`DfI / min(m, n)`).
        tol: f64,
        /// Hard cap on iterations; the achieved DfI is reported when it is reached.
        max_iters: usize,
    },
    /// The polar factor from a singular value decomposition.
    Exact,
}

impl Default for Orthogonalizer {
    fn default() -> Self {
        Orthogonalizer::NewtonSchulz {
            iters: PAPER_ITERATIONS,
        }
    }
}

impl Orthogonalizer {
    /// Tolerance mode with the defaults used by the CLI: `DfI/k <= 1e-6`, at most 100 steps.
    pub fn tolerance() -> Self {
        Orthogonalizer::Tolerance {
            tol: 1e-6,
            max_iters: 100,
        }
    }

    /// Checks the numbers a user can get wrong.
    pub fn validate(&self) -> Result<()> {
        match *self {
            // Zero steps would return the Frobenius-normalised input, not an orthogonal factor.
            Orthogonalizer::NewtonSchulz { iters: 0 } => Err(Error::InvalidConfig {
                what: "Newton–Schulz iteration count",
                reason: "must be at least 1 (Orthogonalizer::Exact gives the exact polar factor)"
                    .into(),
            }),
            Orthogonalizer::NewtonSchulz { .. } | Orthogonalizer::Exact => Ok(()),
            Orthogonalizer::Tolerance { tol, max_iters } => {
                if !(tol.is_finite() && tol > 0.0) {
                    return Err(Error::InvalidConfig {
                        what: "tolerance",
                        reason: format!("must be a positive number, got {tol}"),
                    });
                }
                if max_iters == 0 {
                    return Err(Error::InvalidConfig {
                        what: "iteration cap",
                        reason: "must be at least 1".into(),
                    });
                }
                Ok(())
            }
        }
    }
}

/// The result of orthogonalising a batch of matrices.
#[derive(Debug)]
pub struct Orthogonalized {
    /// The orthogonal factors, same shape, device and dtype (f32) as the input batch.
    pub q: Tensor,
    /// DfI of each factor, `||Q^T Q - I||_F^2` on the smaller side.
    pub dfi: Vec<f64>,
    /// Newton–Schulz iterations run (0 for the exact mode).
    pub iterations: usize,
}

/// Orthogonalises one matrix `[m, n]` or a batch `[B, m, n]`.
///
/// The input is converted to f32 (the factor is returned in f32); the DfI is accumulated in f64.
pub fn orthogonalize(w: &Tensor, method: Orthogonalizer) -> Result<Orthogonalized> {
    method.validate()?;
    let (batch, single) = as_batch(w, "orthogonalize")?;
    let batch = finite_unit_max(&batch, "orthogonalize")?;
    let (q, iterations) = tch::no_grad(|| -> Result<(Tensor, usize)> {
        Ok(match method {
            Orthogonalizer::NewtonSchulz { iters } => (newton_schulz_unit(&batch, iters)?, iters),
            Orthogonalizer::Tolerance { tol, max_iters } => {
                newton_schulz_to_tolerance(&batch, tol, max_iters)?
            }
            Orthogonalizer::Exact => (polar_svd(&batch)?, 0),
        })
    })?;
    let dfi = dfi_batch(&q)?;
    let q = if single { q.f_squeeze_dim(0)? } else { q };
    Ok(Orthogonalized { q, dfi, iterations })
}

/// The paper's reference iteration on a batch `[B, m, n]`, exactly as published: wide matrices
/// are transposed, `X / ||X||_F` with no epsilon, then `X <- 1.5 X - 0.5 X (X^T X)`.
///
/// One deliberate difference: an all-zero matrix, where the reference divides by zero and
/// returns NaN, stays zero here (its DfI then reads `k`, which says plainly what happened).
/// The result is f32. Each matrix is first divided by a power of two (see the module docs),
/// which changes no bit of the result unless the reference would have overflowed.
/// A batch holding NaN or infinity is an [`Error::NonFiniteInput`].
pub fn newton_schulz(batch: &Tensor, iters: usize) -> Result<Tensor> {
    let batch = finite_unit_max(batch, "newton_schulz")?;
    tch::no_grad(|| newton_schulz_unit(&batch, iters))
}

/// [`newton_schulz`] on an f32 batch already divided by [`unit_max`].
fn newton_schulz_unit(batch: &Tensor, iters: usize) -> Result<Tensor> {
    let wide = is_wide(batch)?;
    let mut x = if wide {
        batch.f_mt()?
    } else {
        batch.shallow_clone()
    };
    // max(norm, tiny) changes nothing for a non-zero matrix and keeps a zero one finite.
    let norm = x
        .f_square()?
        .f_sum_dim_intlist([-2i64, -1].as_slice(), true, Kind::Float)?
        .f_sqrt()?
        .f_clamp_min(f32::MIN_POSITIVE as f64)?;
    x = x.f_div(&norm)?;
    for _ in 0..iters {
        x = cubic_step(&x)?;
    }
    Ok(if wide { x.f_mt()? } else { x })
}

/// One cubic Newton–Schulz step on tall matrices: `1.5 X - 0.5 X (X^T X)`.
fn cubic_step(x: &Tensor) -> Result<Tensor> {
    let gram = x.f_mt()?.f_matmul(x)?;
    cubic_step_with_gram(x, &gram)
}

fn cubic_step_with_gram(x: &Tensor, gram: &Tensor) -> Result<Tensor> {
    // baddbmm computes beta * x + alpha * (x @ gram) in one kernel.
    Ok(x.f_baddbmm(x, gram, 1.5, -0.5)?)
}

/// Accuracy-controlled Newton–Schulz: spectral start, stop when every matrix has
/// `DfI / k <= tol` (or after `max_iters`). Returns the factors and the iterations run.
///
/// The Gram matrix the iteration needs is also what DfI is computed from, so checking
/// convergence costs one reduction per step, not an extra matrix product.
fn newton_schulz_to_tolerance(
    batch: &Tensor,
    tol: f64,
    max_iters: usize,
) -> Result<(Tensor, usize)> {
    let wide = is_wide(batch)?;
    let tall = if wide {
        batch.f_mt()?
    } else {
        batch.shallow_clone()
    };
    let k = tall.size()[2];
    let eye = Tensor::f_eye(k, (Kind::Float, tall.device()))?;

    // Cubic Newton–Schulz converges for singular values in (0, sqrt(3)). Dividing by an
    // estimate of the largest singular value puts the top of the spectrum near 1, where the
    // Frobenius start leaves it near 1/sqrt(k); the 1.1 margin covers the power iteration's
    // underestimate. If the start was still too bold (DfI blows up), fall back to Frobenius.
    let sigma = largest_singular_value(&tall)?.f_mul_scalar(1.1)?;
    let fro = tall
        .f_square()?
        .f_sum_dim_intlist([-2i64, -1].as_slice(), true, Kind::Float)?
        .f_sqrt()?;
    let scale = sigma
        .f_minimum(&fro)?
        .f_clamp_min(f32::MIN_POSITIVE as f64)?;
    let mut x = tall.f_div(&scale)?;

    let mut iterations = 0;
    let mut best_seen = f64::INFINITY;
    loop {
        let gram = x.f_mt()?.f_matmul(&x)?;
        let per_matrix = gram
            .f_sub(&eye)?
            .f_square()?
            .f_sum_dim_intlist([-2i64, -1].as_slice(), false, Kind::Double)?
            .f_div_scalar(k as f64)?;
        let worst = per_matrix.f_max()?.f_double_value(&[])?;
        if !worst.is_finite() || worst > 1e3 * best_seen.max(1.0) {
            // Diverged from a bad spectral estimate: restart from the reference start.
            let x = newton_schulz_unit(&tall, max_iters)?;
            return Ok((if wide { x.f_mt()? } else { x }, max_iters));
        }
        best_seen = best_seen.min(worst);
        if worst <= tol || iterations >= max_iters {
            break;
        }
        x = cubic_step_with_gram(&x, &gram)?;
        iterations += 1;
    }
    Ok((if wide { x.f_mt()? } else { x }, iterations))
}

/// Largest singular value of each tall matrix in `[B, m, n]`, by power iteration on `X^T X`,
/// shaped `[B, 1, 1]`. Slightly underestimates (the Rayleigh quotient approaches from below).
fn largest_singular_value(tall: &Tensor) -> Result<Tensor> {
    let gram = tall.f_mt()?.f_matmul(tall)?;
    // Start from the row sums of the Gram matrix: deterministic and, for real weights,
    // never orthogonal to the top eigenvector in practice.
    let mut v = gram.f_sum_dim_intlist([-1i64].as_slice(), true, Kind::Float)?;
    let mut rayleigh = Tensor::f_zeros([1], (Kind::Float, tall.device()))?;
    for _ in 0..12 {
        let norm = v
            .f_square()?
            .f_sum_dim_intlist([-2i64].as_slice(), true, Kind::Float)?
            .f_sqrt()?
            .f_clamp_min(f32::MIN_POSITIVE as f64)?;
        v = v.f_div(&norm)?;
        let gv = gram.f_matmul(&v)?;
        rayleigh = v.f_mt()?.f_matmul(&gv)?; // [B, 1, 1]
        v = gv;
    }
    Ok(rayleigh.f_clamp_min(0.0)?.f_sqrt()?)
}

/// The exact polar factor `U V^T` from a thin SVD.
fn polar_svd(batch: &Tensor) -> Result<Tensor> {
    // `Tensor::svd` returns V (not V^T); libtch's linalg_svd wrapper always passes a driver
    // string, which CPU tensors reject.
    let (u, _s, v) = batch.f_svd(true, true)?;
    Ok(u.f_matmul(&v.f_mt()?)?)
}

/// DfI of one matrix `[m, n]`: `||W^T W - I||_F^2` (or `||W W^T - I||_F^2` when wide).
pub fn dfi(w: &Tensor) -> Result<f64> {
    let (batch, _) = as_batch(w, "dfi")?;
    Ok(dfi_batch(&batch)?.iter().sum())
}

/// DfI of each matrix of a batch `[B, m, n]` of any floating dtype; the Gram matrix is
/// computed in f32 on the matrix divided by a power of two near its largest entry, scaled back and
/// compared with the identity in f64, so that neither overflows. A matrix with NaN or
/// infinity reads NaN.
pub fn dfi_batch(batch: &Tensor) -> Result<Vec<f64>> {
    dfi_batch_divided(batch, 1.0)
}

/// DfI of each matrix of `batch / divisor`, without forming `batch / divisor` (which can
/// overflow in f32 when the divisor is small, as FIRE's conv scale is).
pub(crate) fn dfi_batch_divided(batch: &Tensor, divisor: f64) -> Result<Vec<f64>> {
    tch::no_grad(|| {
        let (scaled, divisors) = unit_max(batch)?;
        let wide = is_wide(&scaled)?;
        let gram = if wide {
            scaled.f_matmul(&scaled.f_mt()?)?
        } else {
            scaled.f_mt()?.f_matmul(&scaled)?
        };
        let (b, k) = (gram.size()[0], gram.size()[2]);
        let device = scaled.device();
        // The Gram matrix of batch / divisor is (d / divisor)^2 times that of the scaled one.
        let factors: Vec<f64> = divisors.iter().map(|d| (d / divisor).powi(2)).collect();
        let factors = Tensor::from_slice(&factors)
            .f_reshape([b, 1, 1])?
            .f_to_device(device)?;
        let eye = Tensor::f_eye(k, (Kind::Double, device))?;
        let per = gram
            .f_to_kind(Kind::Double)?
            .f_mul(&factors)?
            .f_sub(&eye)?
            .f_square()?
            .f_sum_dim_intlist([-2i64, -1].as_slice(), false, Kind::Double)?;
        Ok(Vec::<f64>::try_from(&per.f_to_device(tch::Device::Cpu)?)?)
    })
}

/// Squared Frobenius error `||a - b||_F^2` of tensors of any floating dtype, in f64 (inf only
/// when the result itself is beyond f64).
pub fn sfe(a: &Tensor, b: &Tensor) -> Result<f64> {
    let diff = tch::no_grad(|| {
        a.f_to_kind(Kind::Double)?
            .f_sub(&b.f_to_kind(Kind::Double)?)
    })?;
    Ok(frobenius_norm(&diff)?.powi(2))
}

/// Squared Frobenius norm `||a||_F^2`, in f64 (see [`frobenius_norm`]).
pub fn squared_norm(a: &Tensor) -> Result<f64> {
    Ok(frobenius_norm(a)?.powi(2))
}

/// Frobenius (L2) norm `||a||_F` of a tensor of any dtype, in f64, without overflow or
/// underflow: the entries are divided by a power of two near the largest |entry| before they
/// are squared (f64 squares overflow above ~1.3e154). NaN or infinity give NaN or infinity.
pub fn frobenius_norm(a: &Tensor) -> Result<f64> {
    tch::no_grad(|| {
        let a = a.f_to_kind(Kind::Double)?;
        if a.numel() == 0 {
            return Ok(0.0);
        }
        // max propagates NaN.
        let amax = a.f_abs()?.f_max()?.f_double_value(&[])?;
        if !(amax.is_finite() && amax > 0.0) {
            return Ok(amax);
        }
        let d = power_of_two_below(amax, f64::MIN_EXP - 1, f64::MAX_EXP - 1);
        let sum = a
            .f_div_scalar(d)?
            .f_square()?
            .f_sum(Kind::Double)?
            .f_double_value(&[])?;
        Ok(sum.sqrt() * d)
    })
}

/// [`unit_max`], refusing a batch with NaN or infinity.
fn finite_unit_max(batch: &Tensor, op: &'static str) -> Result<Tensor> {
    let (scaled, divisors) = unit_max(batch)?;
    match divisors.iter().position(|d| d.is_nan()) {
        Some(index) => Err(Error::NonFiniteInput { op, index }),
        None => Ok(scaled),
    }
}

/// Divides each matrix of a batch `[B, m, n]` by a power of two that brings its largest
/// |entry| into [1, 2), and returns the result in f32 with the divisors.
///
/// Why: Frobenius norms and Gram matrices square the entries, and f32 squares overflow above
/// |x| ~ 1.8e19 (a matrix of N(0,1) x 1e18 has an infinite norm, and `X / inf` is all zeros)
/// and lose precision below ~1e-19. Dividing by a power of two is exact in binary floating
/// point, and so are the squares, sums and square roots of the divided entries, scaled back:
/// for every matrix that was safe before, what is computed from the divided matrix is the
/// same to the bit. An f64 batch is divided in f64 before it is rounded to f32, so values
/// beyond f32's range are safe too. A matrix holding NaN or infinity gets the divisor NaN.
fn unit_max(batch: &Tensor) -> Result<(Tensor, Vec<f64>)> {
    tch::no_grad(|| {
        let wide = match batch.kind() {
            Kind::Double => batch.shallow_clone(),
            _ => batch.f_to_kind(Kind::Float)?,
        };
        let b = wide.size()[0];
        if wide.numel() == 0 {
            return Ok((wide.f_to_kind(Kind::Float)?, vec![1.0; b as usize]));
        }
        let amax = wide
            .f_abs()?
            .f_amax([-2i64, -1].as_slice(), false)?
            .f_to_kind(Kind::Double)?
            .f_to_device(tch::Device::Cpu)?;
        let (low, high) = if wide.kind() == Kind::Double {
            (f64::MIN_EXP - 1, f64::MAX_EXP - 1)
        } else {
            (f32::MIN_EXP - 1, f32::MAX_EXP - 1)
        };
        let divisors: Vec<f64> = Vec::<f64>::try_from(&amax)?
            .into_iter()
            .map(|m| power_of_two_below(m, low, high))
            .collect();
        let d = Tensor::from_slice(&divisors)
            .f_to_kind(wide.kind())?
            .f_reshape([b, 1, 1])?
            .f_to_device(wide.device())?;
        Ok((wide.f_div(&d)?.f_to_kind(Kind::Float)?, divisors))
    })
}

/// The power of two `2^e <= m` with the largest `e` in `[low, high]`: 1 for 0, NaN for NaN or
/// infinity.
fn power_of_two_below(m: f64, low: i32, high: i32) -> f64 {
    if !m.is_finite() {
        return f64::NAN;
    }
    if m == 0.0 {
        return 1.0;
    }
    let e = (m.log2().floor() as i32).clamp(low, high);
    2f64.powi(e)
}

/// Views a 2-D tensor as a batch of one; passes a 3-D batch through.
fn as_batch(w: &Tensor, op: &'static str) -> Result<(Tensor, bool)> {
    match w.dim() {
        2 => Ok((w.f_unsqueeze(0)?, true)),
        3 => Ok((w.shallow_clone(), false)),
        _ => Err(Error::Shape {
            op,
            expected: "2-D matrix or 3-D batch of matrices",
            shape: w.size(),
        }),
    }
}

fn is_wide(batch: &Tensor) -> Result<bool> {
    let size = batch.size();
    match size.as_slice() {
        [_, m, n] => Ok(m < n),
        _ => Err(Error::Shape {
            op: "newton_schulz",
            expected: "3-D batch of matrices",
            shape: size,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: &[&[f32]]) -> Tensor {
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_slice(&flat).reshape([rows.len() as i64, rows[0].len() as i64])
    }

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(&t.flatten(0, -1)).unwrap()
    }

    #[test]
    fn reference_one_step_matches_hand_computation() {
        // W = diag(3, 4): ||W||_F = 5, X0 = diag(0.6, 0.8).
        // One step: 1.5 x - 0.5 x^3 -> 0.9 - 0.108 = 0.792 and 1.2 - 0.256 = 0.944.
        let w = matrix(&[&[3.0, 0.0], &[0.0, 4.0]]);
        let q = newton_schulz(&w.unsqueeze(0), 1).unwrap().squeeze_dim(0);
        let got = values(&q);
        let want = [0.792, 0.0, 0.0, 0.944];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn wide_matrix_is_handled_through_its_transpose() {
        // A 1x2 row [3, 4]: normalised to [0.6, 0.8], already orthonormal, a fixed point.
        let w = matrix(&[&[3.0, 4.0]]);
        let out = orthogonalize(&w, Orthogonalizer::NewtonSchulz { iters: 5 }).unwrap();
        let got = values(&out.q);
        assert!(
            (got[0] - 0.6).abs() < 1e-6 && (got[1] - 0.8).abs() < 1e-6,
            "{got:?}"
        );
        assert!(out.dfi[0] < 1e-10);
    }

    #[test]
    fn zero_matrix_stays_zero_and_reports_full_deviation() {
        let w = Tensor::zeros([3, 2], (Kind::Float, tch::Device::Cpu));
        let out = orthogonalize(&w, Orthogonalizer::default()).unwrap();
        assert_eq!(values(&out.q), vec![0.0; 6]);
        assert!((out.dfi[0] - 2.0).abs() < 1e-12);
    }

    #[test]
    fn rejects_vectors_and_bad_tolerances() {
        let v = Tensor::ones([4], (Kind::Float, tch::Device::Cpu));
        assert!(matches!(
            orthogonalize(&v, Orthogonalizer::default()),
            Err(Error::Shape { .. })
        ));
        let w = Tensor::ones([2, 2], (Kind::Float, tch::Device::Cpu));
        let bad = Orthogonalizer::Tolerance {
            tol: -1.0,
            max_iters: 10,
        };
        assert!(matches!(
            orthogonalize(&w, bad),
            Err(Error::InvalidConfig { .. })
        ));
        let none = Orthogonalizer::NewtonSchulz { iters: 0 };
        assert!(matches!(
            orthogonalize(&w, none),
            Err(Error::InvalidConfig { .. })
        ));
    }

    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() <= 1e-6 * want.abs()
    }

    #[test]
    fn norms_sfe_and_dfi_do_not_overflow_or_underflow_in_any_dtype() {
        // 3-4-5 near both ends of f32's range: the f32 squares overflow (or flush to zero).
        for scale in [1e30f32, 1e-30] {
            let t = Tensor::from_slice(&[3.0 * scale, 4.0 * scale]);
            let want = 5.0 * scale as f64;
            assert!(close(frobenius_norm(&t).unwrap(), want), "{scale}");
            assert!(close(squared_norm(&t).unwrap(), want * want), "{scale}");
            assert!(
                close(sfe(&t, &t.neg()).unwrap(), 4.0 * want * want),
                "{scale}"
            );
        }
        // ... and of f64's, and in the half-precision types, against the stored values.
        let t = Tensor::from_slice(&[3e300f64, -4e300]);
        assert!(close(frobenius_norm(&t).unwrap(), 5e300));
        for (kind, v) in [(Kind::BFloat16, 1e30), (Kind::Half, 3e4)] {
            let t = Tensor::from_slice(&[v, v, -v]).to_kind(kind);
            let stored = Vec::<f64>::try_from(&t.to_kind(Kind::Double)).unwrap();
            let want = stored.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!(close(frobenius_norm(&t).unwrap(), want), "{kind:?}");
        }
        // DfI of 1e18 I (3x3): 3 (1e36 - 1)^2; the f32 Gram matrix overflowed to NaN.
        let big = Tensor::eye(3, (Kind::Float, tch::Device::Cpu)) * 1e18;
        assert!(close(dfi(&big).unwrap(), 3e72), "{}", dfi(&big).unwrap());
        let tiny = Tensor::eye(3, (Kind::Float, tch::Device::Cpu)) * 1e-30;
        assert!(close(dfi(&tiny).unwrap(), 3.0));
        // Nothing, and a diverged matrix, read as what they are.
        let empty = Tensor::zeros([0], (Kind::Float, tch::Device::Cpu));
        assert_eq!(frobenius_norm(&empty).unwrap(), 0.0);
        let nan = Tensor::from_slice(&[1.0f32, f32::NAN, 0.0, 1.0]).reshape([2, 2]);
        assert!(frobenius_norm(&nan).unwrap().is_nan());
        assert!(dfi(&nan).unwrap().is_nan());
    }

    #[test]
    fn every_method_refuses_nan_and_infinity() {
        let batch = Tensor::randn([3, 4, 2], (Kind::Float, tch::Device::Cpu));
        // Poisoned one after another; the first poisoned matrix is named.
        let steps = [
            (f64::NAN, 1, 1),
            (f64::INFINITY, 2, 1),
            (f64::NEG_INFINITY, 0, 0),
        ];
        for (bad, index, first) in steps {
            let _ = batch.get(index).get(3).get(1).fill_(bad);
            for method in [
                Orthogonalizer::default(),
                Orthogonalizer::tolerance(),
                Orthogonalizer::Exact,
            ] {
                match orthogonalize(&batch, method) {
                    Err(Error::NonFiniteInput { index: i, .. }) => assert_eq!(i, first),
                    other => panic!("{method:?} on {bad}: {other:?}"),
                }
            }
        }
        let one = Tensor::from_slice(&[1.0f32, f32::NAN]).reshape([1, 2]);
        let err = orthogonalize(&one, Orthogonalizer::Exact).unwrap_err();
        assert_eq!(
            err.to_string(),
            "orthogonalize: matrix 0 of the input contains NaN or infinity"
        );
    }
}
