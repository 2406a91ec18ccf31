//! Statistics summed on the device.

use tch::{Device, Kind, Tensor};

use crate::{Error, Result};

/// Named scalar sums over updates, kept on the device: reading a value back makes the host wait
/// for the device, so an update never does; the loop reads them when it logs (one wait per log
/// line instead of several per update).
#[derive(Debug)]
pub struct DeviceStats {
    names: &'static [&'static str],
    sums: Vec<Tensor>,
    updates: u64,
    device: Device,
}

impl DeviceStats {
    /// Zero sums for `names` (the tags they are logged under) on `device`.
    pub fn new(names: &'static [&'static str], device: Device) -> Self {
        let sums = names
            .iter()
            .map(|_| Tensor::zeros([], (Kind::Double, device)))
            .collect();
        Self {
            names,
            sums,
            updates: 0,
            device,
        }
    }

    /// Adds one update's values (scalar tensors, in the order of the names).
    pub fn add(&mut self, values: &[&Tensor]) -> Result<()> {
        assert_eq!(values.len(), self.sums.len(), "one value per statistic");
        tch::no_grad(|| -> Result<()> {
            for (sum, v) in self.sums.iter_mut().zip(values) {
                let _ = sum.f_add_(&v.f_detach()?.f_to_kind(Kind::Double)?)?;
            }
            Ok(())
        })?;
        self.updates += 1;
        Ok(())
    }

    /// Updates summed since the last [`take_means`](Self::take_means).
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// The sums on the host; an error naming the first that is NaN or infinite.
    pub fn read_sums(&self) -> Result<Vec<f64>> {
        self.names
            .iter()
            .zip(&self.sums)
            .map(|(&what, t)| {
                let value = t.f_double_value(&[])?;
                if value.is_finite() {
                    Ok(value)
                } else {
                    Err(Error::NonFinite { what, value })
                }
            })
            .collect()
    }

    /// The sums and their update count as checkpoint tensors (`stats.<tag>`,
    /// `stats.updates`): a resumed run then logs the same means as one never interrupted.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .names
            .iter()
            .zip(&self.sums)
            .map(|(name, sum)| (format!("stats.{name}"), sum.shallow_clone()))
            .collect();
        out.push((
            "stats.updates".into(),
            Tensor::from(i64::try_from(self.updates).unwrap_or(i64::MAX)),
        ));
        out
    }

    /// Restores what [`state_tensors`](Self::state_tensors) saved; a checkpoint without them
    /// (written before they were saved) starts from zero sums.
    pub fn load_state(&mut self, saved: &[(String, Tensor)]) -> Result<()> {
        let Ok(updates) = crate::state::find(saved, "stats.updates") else {
            *self = Self::new(self.names, self.device);
            return Ok(());
        };
        let updates = updates.f_int64_value(&[])?;
        for (name, sum) in self.names.iter().zip(&mut self.sums) {
            let value = crate::state::find(saved, &format!("stats.{name}"))?;
            *sum = value.f_to_kind(Kind::Double)?.f_to_device(self.device)?;
        }
        self.updates = u64::try_from(updates).unwrap_or(0);
        Ok(())
    }

    /// Means since the last call as `(name, mean)` (empty if there was no update), and fresh
    /// sums. Waits for the device.
    pub fn take_means(&mut self) -> Result<Vec<(&'static str, f64)>> {
        if self.updates == 0 {
            return Ok(Vec::new());
        }
        let sums = self.read_sums()?;
        let n = self.updates as f64;
        *self = Self::new(self.names, self.device);
        Ok(self
            .names
            .iter()
            .copied()
            .zip(sums.into_iter().map(|s| s / n))
            .collect())
    }
}
