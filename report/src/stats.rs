//! The statistics of `rliable` (Agarwal et al., "Deep RL at the Edge of the Statistical Precipice",
//! NeurIPS 2021), written to agree with `rliable==1.2.0` (PyPI) on the same scores: point estimates
//! exactly, interval ends up to Monte-Carlo error (`tests/rliable.rs` checks both against
//! `tests/data/rliable_fixture.json`, made by `tests/data/make_rliable_fixture.py`).
//!
//! Scores are given per task as a column of runs (`&[Vec<f64>]`, one `Vec` per task). rliable wants a
//! rectangular `runs x tasks` matrix; columns of different lengths are accepted here and each
//! statistic keeps its rliable definition over the values present.
//!
//! - IQM is `scipy.stats.trim_mean(x, 0.25)` over all runs of all tasks: drop `floor(n / 4)` values
//!   at each end and average the rest (rliable's `aggregate_iqm`).
//! - Mean is the mean over tasks of the per-task mean; median is the median over tasks of the
//!   per-task mean (rliable's `aggregate_mean` and `aggregate_median`).
//! - Optimality gap is `gamma - mean(min(x, gamma))` over all values, `gamma = 1`.
//! - Probability of improvement `P(X > Y)` is the per-task Mann-Whitney U / (n_x n_y) (ties count
//!   one half, identical columns give exactly 0.5), averaged over tasks.
//! - Intervals are percentile intervals of a stratified bootstrap: every task's runs are resampled
//!   with replacement, independently per task (rliable's `StratifiedBootstrap`); for a pair of
//!   methods each method's runs are resampled independently (`StratifiedIndependentBootstrap`).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `numpy.percentile(values, q)` with numpy's default linear interpolation; `q` in percent.
/// `sorted` must be sorted ascending and non-empty.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty(), "percentile of no values");
    let h = (sorted.len() - 1) as f64 * q / 100.0;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// Arithmetic mean (NaN for no values).
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// `numpy.median` (NaN for no values).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let v = sorted(values);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// `scipy.stats.trim_mean(values, 0.25)`: the interquartile mean as rliable computes it.
pub fn iqm(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let v = sorted(values);
    let cut = v.len() / 4; // int(0.25 * n)
    mean(&v[cut..v.len() - cut])
}

fn flat(tasks: &[Vec<f64>]) -> Vec<f64> {
    tasks.iter().flatten().copied().collect()
}

fn task_means(tasks: &[Vec<f64>]) -> Vec<f64> {
    tasks.iter().map(|t| mean(t)).collect()
}

/// One of rliable's aggregate metrics over tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    Iqm,
    Mean,
    Median,
    OptimalityGap,
}

impl Aggregate {
    /// All four, in the order rliable's plots show them.
    pub const ALL: [Aggregate; 4] = [
        Aggregate::Median,
        Aggregate::Iqm,
        Aggregate::Mean,
        Aggregate::OptimalityGap,
    ];

    /// Short name used in tables and `aggregates.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Iqm => "IQM",
            Aggregate::Mean => "mean",
            Aggregate::Median => "median",
            Aggregate::OptimalityGap => "optimality_gap",
        }
    }

    /// The statistic on scores given per task.
    pub fn eval(self, tasks: &[Vec<f64>]) -> f64 {
        match self {
            Aggregate::Iqm => iqm(&flat(tasks)),
            Aggregate::Mean => mean(&task_means(tasks)),
            Aggregate::Median => median(&task_means(tasks)),
            Aggregate::OptimalityGap => optimality_gap(tasks, 1.0),
        }
    }
}

/// rliable's `aggregate_optimality_gap`: `gamma - mean(min(x, gamma))` over all values.
pub fn optimality_gap(tasks: &[Vec<f64>], gamma: f64) -> f64 {
    let v: Vec<f64> = flat(tasks).into_iter().map(|x| x.min(gamma)).collect();
    gamma - mean(&v)
}

/// Mann-Whitney U of `x` over `y` divided by `n_x n_y`: the probability that a run of `x` beats a
/// run of `y` (ties count one half).
pub fn prob_greater(x: &[f64], y: &[f64]) -> f64 {
    if x == y {
        return 0.5; // rliable's special case for identical columns
    }
    let mut u = 0.0;
    for &a in x {
        for &b in y {
            if a > b {
                u += 1.0;
            } else if a == b {
                u += 0.5;
            }
        }
    }
    u / (x.len() * y.len()) as f64
}

/// rliable's `probability_of_improvement(scores_x, scores_y)`: the mean over tasks of
/// [`prob_greater`]. `x` and `y` hold the same tasks in the same order.
pub fn probability_of_improvement(x: &[Vec<f64>], y: &[Vec<f64>]) -> f64 {
    assert_eq!(x.len(), y.len(), "the two methods must have the same tasks");
    let p: Vec<f64> = x.iter().zip(y).map(|(a, b)| prob_greater(a, b)).collect();
    mean(&p)
}

/// rliable's run-score distribution at each threshold: the fraction of all runs (of all tasks)
/// whose score is strictly above `tau`.
pub fn score_distribution(tasks: &[Vec<f64>], taus: &[f64]) -> Vec<f64> {
    let v = flat(tasks);
    taus.iter()
        .map(|&tau| v.iter().filter(|&&x| x > tau).count() as f64 / v.len() as f64)
        .collect()
}

/// A point estimate with a percentile bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub point: f64,
    pub lo: f64,
    pub hi: f64,
    /// Monte-Carlo standard error of the interval ends (the larger of the two), estimated from the
    /// order statistics of the bootstrap sample: the spread between the ranks `n q +- 1.96
    /// sqrt(n q (1 - q))` divided by `2 x 1.96`.
    pub mc_se: f64,
}

/// How the bootstrap is run.
#[derive(Clone, Copy, Debug)]
pub struct Bootstrap {
    /// Number of bootstrap replicates (rliable's default is 50,000 for aggregates).
    pub reps: usize,
    /// Confidence level of the percentile interval (0.95).
    pub level: f64,
    /// Seed of the resampling generator; the same seed gives the same intervals.
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Self {
            reps: 50_000,
            level: 0.95,
            seed: 0,
        }
    }
}

fn resample_into(src: &[Vec<f64>], idx: &[Vec<usize>], dst: &mut [Vec<f64>]) {
    for ((s, i), d) in src.iter().zip(idx).zip(dst.iter_mut()) {
        d.clear();
        d.extend(i.iter().map(|&k| s[k]));
    }
}

fn draw_indices(rng: &mut ChaCha8Rng, tasks: &[Vec<f64>], idx: &mut [Vec<usize>]) {
    for (t, i) in tasks.iter().zip(idx.iter_mut()) {
        i.clear();
        let n = t.len();
        i.extend((0..n).map(|_| rng.random_range(0..n)));
    }
}

/// Interval ends and their Monte-Carlo error from bootstrap replicates (sorted in place).
fn interval(reps: &mut [f64], level: f64) -> (f64, f64, f64) {
    reps.sort_by(f64::total_cmp);
    let alpha = 100.0 * (1.0 - level) / 2.0;
    let lo = percentile_sorted(reps, alpha);
    let hi = percentile_sorted(reps, 100.0 - alpha);
    let n = reps.len() as f64;
    let se = |q: f64| {
        let half = 1.96 * (n * q * (1.0 - q)).sqrt();
        let a = percentile_sorted(reps, 100.0 * ((n * q - half) / n).clamp(0.0, 1.0));
        let b = percentile_sorted(reps, 100.0 * ((n * q + half) / n).clamp(0.0, 1.0));
        (b - a) / (2.0 * 1.96)
    };
    let q = alpha / 100.0;
    (lo, hi, se(q).max(se(1.0 - q)))
}

impl Bootstrap {
    /// Stratified bootstrap interval of `stat` on scores given per task.
    pub fn estimate(&self, tasks: &[Vec<f64>], stat: impl Fn(&[Vec<f64>]) -> f64) -> Estimate {
        self.estimate_many(tasks, 1, |t| vec![stat(t)])[0]
    }

    /// Stratified bootstrap intervals of a vector-valued statistic (a performance profile) that
    /// returns `len` values.
    pub fn estimate_many(
        &self,
        tasks: &[Vec<f64>],
        len: usize,
        stat: impl Fn(&[Vec<f64>]) -> Vec<f64>,
    ) -> Vec<Estimate> {
        let point = stat(tasks);
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut idx: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
        let mut buf: Vec<Vec<f64>> = vec![Vec::new(); tasks.len()];
        let mut reps: Vec<Vec<f64>> = vec![Vec::with_capacity(self.reps); len];
        for _ in 0..self.reps {
            draw_indices(&mut rng, tasks, &mut idx);
            resample_into(tasks, &idx, &mut buf);
            for (r, v) in reps.iter_mut().zip(stat(&buf)) {
                r.push(v);
            }
        }
        finish(point, reps, self.level)
    }

    /// Bootstrap interval of a statistic of two methods' scores on the same tasks (probability
    /// of improvement): each method's runs are resampled independently within each task, as
    /// rliable's `StratifiedIndependentBootstrap` (what `get_interval_estimates` uses for pairs).
    pub fn estimate_pair(
        &self,
        x: &[Vec<f64>],
        y: &[Vec<f64>],
        stat: impl Fn(&[Vec<f64>], &[Vec<f64>]) -> f64,
    ) -> Estimate {
        let point = stat(x, y);
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let (mut ix, mut iy) = (vec![Vec::new(); x.len()], vec![Vec::new(); y.len()]);
        let (mut bx, mut by) = (vec![Vec::new(); x.len()], vec![Vec::new(); y.len()]);
        let mut reps = Vec::with_capacity(self.reps);
        for _ in 0..self.reps {
            draw_indices(&mut rng, x, &mut ix);
            draw_indices(&mut rng, y, &mut iy);
            resample_into(x, &ix, &mut bx);
            resample_into(y, &iy, &mut by);
            reps.push(stat(&bx, &by));
        }
        finish(vec![point], vec![reps], self.level)[0]
    }
}

fn finish(point: Vec<f64>, mut reps: Vec<Vec<f64>>, level: f64) -> Vec<Estimate> {
    point
        .into_iter()
        .zip(reps.iter_mut())
        .map(|(point, r)| {
            let (lo, hi, mc_se) = interval(r, level);
            Estimate {
                point,
                lo,
                hi,
                mc_se,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + b.abs())
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], [0, 25, 50, 97.5, 100]) = 1, 1.75, 2.5, 3.925, 4
        let v = [1.0, 2.0, 3.0, 4.0];
        for (q, want) in [
            (0.0, 1.0),
            (25.0, 1.75),
            (50.0, 2.5),
            (97.5, 3.925),
            (100.0, 4.0),
        ] {
            assert!(close(percentile_sorted(&v, q), want), "q {q}");
        }
    }

    #[test]
    fn iqm_is_scipy_trim_mean() {
        // 8 values: drop 2 at each end -> mean(3, 4, 5, 6) = 4.5
        assert!(close(iqm(&[8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0]), 4.5));
        // 5 values: floor(1.25) = 1 dropped at each end -> mean(2, 3, 100) (not interpolated)
        assert!(close(iqm(&[1.0, 2.0, 3.0, 100.0, 1000.0]), 35.0));
        // 3 values: nothing dropped
        assert!(close(iqm(&[1.0, 2.0, 6.0]), 3.0));
    }

    #[test]
    fn aggregates_by_hand() {
        // two tasks, means 2 and 10, third task mean 4
        let t = vec![vec![1.0, 3.0], vec![9.0, 11.0], vec![4.0, 4.0]];
        assert!(close(Aggregate::Mean.eval(&t), 16.0 / 3.0));
        assert!(close(Aggregate::Median.eval(&t), 4.0));
        // six values 1 3 4 4 9 11: drop 1 each end -> mean(3, 4, 4, 9) = 5
        assert!(close(Aggregate::Iqm.eval(&t), 5.0));
        let g = vec![vec![0.5, 2.0], vec![0.0, 1.5]];
        // min(x, 1) = 0.5, 1, 0, 1 -> mean 0.625 -> gap 0.375
        assert!(close(Aggregate::OptimalityGap.eval(&g), 0.375));
    }

    #[test]
    fn probability_of_improvement_by_hand() {
        // x = [1, 3], y = [2, 3]: pairs (1,2)=0 (1,3)=0 (3,2)=1 (3,3)=0.5 -> 1.5 / 4
        assert!(close(prob_greater(&[1.0, 3.0], &[2.0, 3.0]), 0.375));
        assert!(close(prob_greater(&[1.0, 1.0], &[1.0, 1.0]), 0.5));
        let x = vec![vec![1.0, 3.0], vec![5.0, 6.0]];
        let y = vec![vec![2.0, 3.0], vec![0.0, 1.0]];
        assert!(close(
            probability_of_improvement(&x, &y),
            (0.375 + 1.0) / 2.0
        ));
        assert!(close(
            probability_of_improvement(&y, &x),
            1.0 - (0.375 + 1.0) / 2.0
        ));
    }

    #[test]
    fn score_distribution_counts_strictly_above() {
        let t = vec![vec![0.0, 0.5], vec![1.0, 2.0]];
        assert_eq!(
            score_distribution(&t, &[0.0, 0.5, 1.5, 2.0]),
            vec![0.75, 0.5, 0.25, 0.0]
        );
    }

    #[test]
    fn bootstrap_interval_covers_point_and_is_reproducible() {
        let t = vec![
            vec![1.0, 2.0, 3.0, 4.0, 5.0],
            vec![2.0, 2.5, 3.0, 10.0, 0.0],
        ];
        let b = Bootstrap {
            reps: 2000,
            ..Default::default()
        };
        let e = b.estimate(&t, |t| Aggregate::Mean.eval(t));
        assert!(e.lo < e.point && e.point < e.hi, "{e:?}");
        assert_eq!(e, b.estimate(&t, |t| Aggregate::Mean.eval(t)));
        // A constant sample has a degenerate interval with no Monte-Carlo error.
        let c = vec![vec![3.0; 4]];
        let e = b.estimate(&c, |t| Aggregate::Iqm.eval(t));
        assert_eq!((e.point, e.lo, e.hi, e.mc_se), (3.0, 3.0, 3.0, 0.0));
    }

    #[test]
    fn bootstrap_of_the_mean_matches_its_normal_approximation() {
        // 40 runs of one task: the percentile interval of the mean is close to
        // mean +- 1.96 sd / sqrt(n) (with the bootstrap's sd, which divides by n).
        let v: Vec<f64> = (0..40).map(|i| ((i * 37) % 40) as f64).collect();
        let m = mean(&v);
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 40.0).sqrt();
        let half = 1.96 * sd / 40f64.sqrt();
        let e = Bootstrap::default().estimate(&[v], |t| Aggregate::Mean.eval(t));
        assert!(
            (e.lo - (m - half)).abs() < 0.05 * half,
            "{e:?} vs {}",
            m - half
        );
        assert!(
            (e.hi - (m + half)).abs() < 0.05 * half,
            "{e:?} vs {}",
            m + half
        );
        assert!(e.mc_se > 0.0 && e.mc_se < 0.02 * half, "{e:?}");
    }
}
