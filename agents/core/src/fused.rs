//! libtorch's fused Adam/AdamW step (`at::_fused_adam_`, `at::_fused_adamw_`) through the C
//! shim `torch_shim.cpp`: one call updates every parameter, its moments and nothing else (no
//! temporaries), on the CPU (a vectorised kernel over each tensor, threaded by libtorch) and on
//! CUDA (multi-tensor kernels, a handful of launches for the whole network).

use std::ffi::{c_char, c_int, c_void, CStr};

use tch::Tensor;

use crate::{Error, Result};

extern "C" {
    fn fire_fused_adam(
        params: *const *const c_void,
        grads: *const *const c_void,
        exp_avgs: *const *const c_void,
        exp_avg_sqs: *const *const c_void,
        step: *const c_void,
        n: usize,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        decoupled: c_int,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
}

extern "C" {
    fn fire_clear_grads(
        tensors: *const *const c_void,
        n: usize,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
}

/// Drops the gradients of `params` (`grad = None`), so that the next backward pass stores its
/// gradients instead of adding them to zeroed buffers.
pub(crate) fn clear_grads(params: &[(String, Tensor)]) -> Result<()> {
    let ptrs: Vec<*const c_void> = params
        .iter()
        .map(|(_, t)| t.as_ptr() as *const c_void)
        .collect();
    check("clearing gradients", |err, len| {
        // SAFETY: every pointer is a live `at::Tensor*` borrowed for the call; the shim only
        // resets each one's gradient handle and catches every C++ exception.
        unsafe { fire_clear_grads(ptrs.as_ptr(), ptrs.len(), err, len) }
    })
}

/// Runs a shim call that reports failure through a message buffer.
pub(crate) fn check(what: &str, call: impl FnOnce(*mut c_char, usize) -> c_int) -> Result<()> {
    let mut buf = [0 as c_char; 1024];
    if call(buf.as_mut_ptr(), buf.len()) == 0 {
        return Ok(());
    }
    // SAFETY: the shim wrote a NUL-terminated message into `buf` (it always terminates).
    let message = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy();
    Err(Error::Torch(tch::TchError::Torch(format!(
        "{what}: {message}"
    ))))
}

/// The hyperparameters of one fused step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FusedStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// AdamW's decoupled decay (`p *= 1 - lr * weight_decay`) rather than Adam's L2 term.
    pub decoupled: bool,
}

/// One Adam step over `params` in place, with their gradients and moments at the same index.
/// `step` is a float32 scalar on the parameters' device holding the step count after this
/// step. Every tensor must be on one device with one floating dtype, which the kernel checks.
pub(crate) fn fused_adam(
    params: &[Tensor],
    grads: &[Tensor],
    exp_avgs: &[&Tensor],
    exp_avg_sqs: &[&Tensor],
    step: &Tensor,
    h: FusedStep,
) -> Result<()> {
    let n = params.len();
    assert!(
        grads.len() == n && exp_avgs.len() == n && exp_avg_sqs.len() == n,
        "one gradient and two moments per parameter"
    );
    if n == 0 {
        return Ok(());
    }
    let ptrs = |ts: &mut dyn Iterator<Item = &Tensor>| -> Vec<*const c_void> {
        ts.map(|t| t.as_ptr() as *const c_void).collect()
    };
    let p = ptrs(&mut params.iter());
    let g = ptrs(&mut grads.iter());
    let m = ptrs(&mut exp_avgs.iter().copied());
    let v = ptrs(&mut exp_avg_sqs.iter().copied());
    check("fused Adam step", |err, len| {
        // SAFETY: every pointer is a live `at::Tensor*` (tch's `as_ptr`) borrowed for the call;
        // the shim copies the handles, updates the tensors' storage in place, and catches every
        // C++ exception.
        unsafe {
            fire_fused_adam(
                p.as_ptr(),
                g.as_ptr(),
                m.as_ptr(),
                v.as_ptr(),
                step.as_ptr() as *const c_void,
                n,
                h.lr,
                h.beta1,
                h.beta2,
                h.weight_decay,
                h.eps,
                c_int::from(h.decoupled),
                err,
                len,
            )
        }
    })
}
