//! The arithmetic precision of the networks' forward and backward passes: `fp32` (the default)
//! or `bf16`, autocast-style: inside [`autocast`] libtorch computes convolutions and matrix
//! products in bfloat16 from fp32 weights (cast per region, cached), while the master
//! weights, their gradients, the optimiser state, the losses and everything outside the region
//! (FIRE's Newton-Schulz, the diagnostics) stay fp32.

use std::ffi::c_int;

use serde::{Deserialize, Serialize};
use tch::Device;

use crate::fused::check;
use crate::Result;

extern "C" {
    fn fire_autocast_enter(
        device: c_int,
        prev_enabled: *mut c_int,
        prev_dtype: *mut c_int,
        err: *mut std::ffi::c_char,
        err_len: usize,
    ) -> c_int;
    fn fire_autocast_exit(
        device: c_int,
        prev_enabled: c_int,
        prev_dtype: c_int,
        err: *mut std::ffi::c_char,
        err_len: usize,
    ) -> c_int;
}

/// Precision of the networks' compute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in float32.
    #[default]
    Fp32,
    /// Convolutions and matrix products in bfloat16 under autocast; fp32 master weights,
    /// gradients, optimiser state and losses.
    Bf16,
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(format!("unknown precision `{other}` (fp32 or bf16)")),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        })
    }
}

/// Runs `f` with autocast to bfloat16 on `device` when `precision` is [`Precision::Bf16`]
/// (as `torch.autocast(device, torch.bfloat16)`), plainly otherwise. Outputs of autocast ops
/// are bfloat16: cast what a loss reads back to float inside or after the region.
pub fn autocast<T>(
    precision: Precision,
    device: Device,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    if precision == Precision::Fp32 {
        return f();
    }
    let device = c_int::from(device.is_cuda());
    let (mut enabled, mut dtype) = (0, 0);
    check("entering autocast", |err, len| {
        // SAFETY: the shim writes two ints through the pointers and catches every exception.
        unsafe { fire_autocast_enter(device, &mut enabled, &mut dtype, err, len) }
    })?;
    let out = f();
    check("leaving autocast", |err, len| {
        // SAFETY: as above; restores what `fire_autocast_enter` saved.
        unsafe { fire_autocast_exit(device, enabled, dtype, err, len) }
    })?;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    /// Inside the region a matrix product comes out in bfloat16 (and its value is the fp32
    /// product to bfloat16 accuracy); outside, and with fp32, it stays float32; gradients reach
    /// the fp32 weight in fp32.
    #[test]
    fn bf16_regions_compute_matmuls_in_bf16_with_fp32_gradients() {
        let w = Tensor::randn([8, 8], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let x = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
        let exact = x.matmul(&w);
        let y = autocast(Precision::Bf16, Device::Cpu, || Ok(x.matmul(&w))).unwrap();
        assert_eq!(y.kind(), Kind::BFloat16);
        let err = (y.to_kind(Kind::Float) - &exact)
            .abs()
            .max()
            .double_value(&[]);
        let scale = exact.abs().max().double_value(&[]);
        assert!(
            err <= scale * 1e-2,
            "bf16 product off by {err} (scale {scale})"
        );
        assert!(err > 0.0, "a bf16 product of random floats is not exact");
        y.to_kind(Kind::Float).sum(Kind::Float).backward();
        assert_eq!(w.grad().kind(), Kind::Float);
        let after = x.matmul(&w);
        assert_eq!(after.kind(), Kind::Float, "the region ended");
        let plain = autocast(Precision::Fp32, Device::Cpu, || Ok(x.matmul(&w))).unwrap();
        assert_eq!(plain.kind(), Kind::Float);
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert_eq!(Precision::default().to_string(), "fp32");
        assert!("fp16".parse::<Precision>().is_err());
    }
}
