//! dm_control's `rewards.tolerance` for the three sigmoids the H1 tasks use, and numpy's
//! summation order, so rewards match HumanoidBench's arithmetic.

/// `sqrt(-2 ln 0.1)`: the gaussian scale for `value_at_margin = 0.1` (numpy's value).
pub const GAUSSIAN_SCALE_01: f64 = 2.145966026289347;

/// `tolerance(x, bounds=(lo, hi), margin, sigmoid='gaussian', value_at_margin=0.1)`.
pub fn tolerance_gaussian(x: f64, lo: f64, hi: f64, margin: f64) -> f64 {
    if lo <= x && x <= hi {
        return 1.0;
    }
    let d = distance(x, lo, hi, margin);
    let scaled = d * GAUSSIAN_SCALE_01;
    (-0.5 * (scaled * scaled)).exp()
}

/// `tolerance(x, bounds=(lo, hi), margin, sigmoid='linear', value_at_margin=0)`.
pub fn tolerance_linear(x: f64, lo: f64, hi: f64, margin: f64) -> f64 {
    if lo <= x && x <= hi {
        return 1.0;
    }
    // scale = 1 - 0 = 1, so d * scale = d.
    let d = distance(x, lo, hi, margin);
    if d.abs() < 1.0 {
        1.0 - d
    } else {
        0.0
    }
}

/// `tolerance(x, bounds=(lo, hi), margin, sigmoid='quadratic', value_at_margin=0)`.
pub fn tolerance_quadratic(x: f64, lo: f64, hi: f64, margin: f64) -> f64 {
    if lo <= x && x <= hi {
        return 1.0;
    }
    let d = distance(x, lo, hi, margin);
    if d.abs() < 1.0 {
        1.0 - d * d
    } else {
        0.0
    }
}

/// Distance outside the bounds in margins, as dm_control computes it (margin > 0).
fn distance(x: f64, lo: f64, hi: f64, margin: f64) -> f64 {
    if x < lo {
        (lo - x) / margin
    } else {
        (x - hi) / margin
    }
}

/// `np.mean` of 19 values: numpy's pairwise summation (8 interleaved partial sums, then the
/// remaining three in order), then one division.
pub fn mean19(x: &[f64; 19]) -> f64 {
    let r: [f64; 8] = std::array::from_fn(|j| x[j] + x[8 + j]);
    let mut s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    s += x[16];
    s += x[17];
    s += x[18];
    s / 19.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_scale_is_numpys() {
        assert!(((-2.0 * 0.1f64.ln()).sqrt() - GAUSSIAN_SCALE_01).abs() <= f64::EPSILON * 4.0);
        // At one margin outside the bounds the gaussian gives value_at_margin.
        assert!((tolerance_gaussian(0.0, 1.0, f64::INFINITY, 1.0) - 0.1).abs() < 1e-15);
    }

    #[test]
    fn sigmoids_at_known_points() {
        assert_eq!(tolerance_linear(0.9, 0.9, f64::INFINITY, 1.9), 1.0);
        assert_eq!(tolerance_linear(-1.0, 0.9, f64::INFINITY, 1.9), 0.0);
        assert_eq!(
            tolerance_linear(-0.95, 0.9, f64::INFINITY, 1.9),
            1.0 - 1.85 / 1.9
        );
        assert_eq!(tolerance_quadratic(5.0, 0.0, 0.0, 10.0), 1.0 - 0.25);
        assert_eq!(tolerance_quadratic(-10.0, 0.0, 0.0, 10.0), 0.0);
        assert_eq!(tolerance_quadratic(0.0, 0.0, 0.0, 10.0), 1.0);
    }

    #[test]
    fn mean19_uses_pairwise_order() {
        let x: [f64; 19] = std::array::from_fn(|i| 0.1 * (i as f64 + 1.0).sqrt());
        let r: Vec<f64> = (0..8).map(|j| x[j] + x[8 + j]).collect();
        let s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        assert_eq!(mean19(&x), (((s + x[16]) + x[17]) + x[18]) / 19.0);
    }
}
