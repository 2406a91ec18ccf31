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
    let batch = batch.to_kind(Kind::Float);
    let (q, iterations) = tch::no_grad(|| -> Result<(Tensor, usize)> {
        Ok(match method {
            Orthogonalizer::NewtonSchulz { iters } => (newton_schulz(&batch, iters)?, iters),
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
pub fn newton_schulz(batch: &Tensor, iters: usize) -> Result<Tensor> {
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
            let x = newton_schulz(&tall, max_iters)?;
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

/// DfI of each matrix of a batch `[B, m, n]`, computed in f32 and summed in f64.
pub fn dfi_batch(batch: &Tensor) -> Result<Vec<f64>> {
    tch::no_grad(|| {
        let batch = batch.to_kind(Kind::Float);
        let wide = is_wide(&batch)?;
        let gram = if wide {
            batch.f_matmul(&batch.f_mt()?)?
        } else {
            batch.f_mt()?.f_matmul(&batch)?
        };
        let k = gram.size()[2];
        let eye = Tensor::f_eye(k, (Kind::Float, batch.device()))?;
        let per = gram.f_sub(&eye)?.f_square()?.f_sum_dim_intlist(
            [-2i64, -1].as_slice(),
            false,
            Kind::Double,
        )?;
        Ok(Vec::<f64>::try_from(&per.f_to_device(tch::Device::Cpu)?)?)
    })
}

/// Squared Frobenius error `||a - b||_F^2`, summed in f64.
pub fn sfe(a: &Tensor, b: &Tensor) -> Result<f64> {
    tch::no_grad(|| {
        Ok(a.to_kind(Kind::Float)
            .f_sub(&b.to_kind(Kind::Float))?
            .f_square()?
            .f_sum(Kind::Double)?
            .f_double_value(&[])?)
    })
}

/// Squared Frobenius norm `||a||_F^2`, summed in f64.
pub fn squared_norm(a: &Tensor) -> Result<f64> {
    tch::no_grad(|| {
        Ok(a.to_kind(Kind::Float)
            .f_square()?
            .f_sum(Kind::Double)?
            .f_double_value(&[])?)
    })
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
    }
}
