//! The running mean/variance observation normaliser of the SimBa agent.

use tch::{Device, Kind, Tensor};

use crate::{Error, Result};

/// Running mean and variance of observations (the parallel update of Chan et al., as
/// Gymnasium's `RunningMeanStd`): the count starts at `1e-4`, the mean at 0 and the variance
/// at 1; an observation `x` becomes `(x - mean) / sqrt(var + 1e-8)`. Statistics are kept in
/// f64 on the host; a float copy on the agent's device is refreshed when they change.
#[derive(Debug)]
pub struct RunningNorm {
    mean: Vec<f64>,
    var: Vec<f64>,
    count: f64,
    /// `mean` and `1 / sqrt(var + eps)` as f32 on the device, `None` when stale.
    device_copy: Option<(Tensor, Tensor)>,
    device: Device,
}

/// Added to the variance before the square root.
const EPSILON: f64 = 1e-8;
/// The count before any observation (a prior of one tiny pseudo-observation at mean 0, var 1).
const INITIAL_COUNT: f64 = 1e-4;

impl RunningNorm {
    /// Fresh statistics for observations of `dim` values.
    pub fn new(dim: usize, device: Device) -> Self {
        Self {
            mean: vec![0.0; dim],
            var: vec![1.0; dim],
            count: INITIAL_COUNT,
            device_copy: None,
            device,
        }
    }

    /// Observation length.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The running mean.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The running (population) variance.
    pub fn var(&self) -> &[f64] {
        &self.var
    }

    /// Observations counted (plus the initial `1e-4`).
    pub fn count(&self) -> f64 {
        self.count
    }

    /// Adds a batch of observations `[n, dim]` (flat).
    pub fn update(&mut self, obs: &[f32]) -> Result<()> {
        let d = self.dim();
        if d == 0 || !obs.len().is_multiple_of(d) {
            return Err(Error::Config {
                field: "observations",
                reason: format!("{} values are not rows of {d}", obs.len()),
            });
        }
        let n = (obs.len() / d) as f64;
        if n == 0.0 {
            return Ok(());
        }
        let total = self.count + n;
        for j in 0..d {
            let column = obs.iter().skip(j).step_by(d).map(|&x| f64::from(x));
            let batch_mean = column.clone().sum::<f64>() / n;
            let batch_var = column.map(|x| (x - batch_mean).powi(2)).sum::<f64>() / n;
            let delta = batch_mean - self.mean[j];
            let m2 =
                self.var[j] * self.count + batch_var * n + delta * delta * self.count * n / total;
            self.mean[j] += delta * n / total;
            self.var[j] = m2 / total;
        }
        self.count = total;
        self.device_copy = None;
        Ok(())
    }

    /// `(obs - mean) / sqrt(var + 1e-8)` for a float tensor `[n, dim]` on the device.
    pub fn normalize(&mut self, obs: &Tensor) -> Result<Tensor> {
        let (mean, inv_std) = match self.device_copy.take() {
            Some(copy) => copy,
            None => self.device_tensors()?,
        };
        let out = obs.f_sub(&mean)?.f_mul(&inv_std)?;
        self.device_copy = Some((mean, inv_std));
        Ok(out)
    }

    /// [`normalize`](Self::normalize) without the cached device copy (for `&self` callers).
    pub fn normalize_uncached(&self, obs: &Tensor) -> Result<Tensor> {
        let (mean, inv_std) = self.device_tensors()?;
        Ok(obs.f_sub(&mean)?.f_mul(&inv_std)?)
    }

    fn device_tensors(&self) -> Result<(Tensor, Tensor)> {
        let mean = Tensor::from_slice(&self.mean)
            .f_to_kind(Kind::Float)?
            .f_to_device(self.device)?;
        let inv_std: Vec<f64> = self
            .var
            .iter()
            .map(|v| 1.0 / (v + EPSILON).sqrt())
            .collect();
        let inv_std = Tensor::from_slice(&inv_std)
            .f_to_kind(Kind::Float)?
            .f_to_device(self.device)?;
        Ok((mean, inv_std))
    }

    /// The statistics as named f64 tensors (`<prefix>mean`, `<prefix>var`, `<prefix>count`).
    pub fn state_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        vec![
            (format!("{prefix}mean"), Tensor::from_slice(&self.mean)),
            (format!("{prefix}var"), Tensor::from_slice(&self.var)),
            (format!("{prefix}count"), Tensor::from_slice(&[self.count])),
        ]
    }

    /// Restores what [`state_tensors`](Self::state_tensors) wrote.
    pub fn load_state(&mut self, prefix: &str, tensors: &[(String, Tensor)]) -> Result<()> {
        let read = |name: &str| -> Result<Vec<f64>> {
            let key = format!("{prefix}{name}");
            let t = agent::state::find(tensors, &key)?;
            Ok(Vec::<f64>::try_from(
                &t.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?,
            )?)
        };
        let (mean, var, count) = (read("mean")?, read("var")?, read("count")?);
        if mean.len() != self.dim() || var.len() != self.dim() || count.len() != 1 {
            return Err(Error::Checkpoint(format!(
                "observation normaliser has {} values, the agent {}",
                mean.len(),
                self.dim()
            )));
        }
        self.mean = mean;
        self.var = var;
        self.count = count[0];
        self.device_copy = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two batches give the statistics of all rows at once (with the 1e-4 prior worked out by
    /// hand: mean = sum / (n + 1e-4), and the prior's unit variance weighted by 1e-4).
    #[test]
    fn batches_combine_like_one_pass() {
        let mut norm = RunningNorm::new(2, Device::Cpu);
        norm.update(&[1.0, 10.0, 3.0, 20.0]).unwrap();
        norm.update(&[5.0, 30.0]).unwrap();
        let n = 3.0 + 1e-4;
        // Column 0: values 1, 3, 5 and a prior pseudo-row at 0 of weight 1e-4 with variance 1.
        let mean0 = 9.0 / n;
        let m2 = 1e-4 * 1.0
            + 1e-4 * mean0 * mean0
            + [1.0f64, 3.0, 5.0]
                .iter()
                .map(|x| (x - mean0).powi(2))
                .sum::<f64>();
        assert!((norm.mean()[0] - mean0).abs() < 1e-12);
        assert!((norm.var()[0] - m2 / n).abs() < 1e-9, "{}", norm.var()[0]);
        assert!((norm.count() - n).abs() < 1e-12);
        let x = Tensor::from_slice(&[3.0f32, 20.0]).view([1, 2]);
        let y = Vec::<f32>::try_from(norm.normalize(&x).unwrap().view([-1])).unwrap();
        let want = (3.0 - mean0) / (m2 / n + 1e-8).sqrt();
        assert!((f64::from(y[0]) - want).abs() < 1e-5);
    }

    #[test]
    fn state_round_trips() {
        let mut norm = RunningNorm::new(3, Device::Cpu);
        norm.update(&[1.0, 2.0, 3.0, -4.0, 5.0, 0.5]).unwrap();
        let saved = norm.state_tensors("normalizer.");
        let mut other = RunningNorm::new(3, Device::Cpu);
        other.load_state("normalizer.", &saved).unwrap();
        assert_eq!(other.mean(), norm.mean());
        assert_eq!(other.var(), norm.var());
        assert_eq!(other.count(), norm.count());
        assert!(RunningNorm::new(2, Device::Cpu)
            .load_state("normalizer.", &saved)
            .is_err());
    }
}
