// A C interface to the two pieces of libtorch that tch 0.24 does not bind, for agents/core:
// the fused Adam/AdamW step (`at::_fused_adam_`, `at::_fused_adamw_`; tch's generator skips
// every `_fused_adam*` and `_foreach*` operator), used by `src/fused.rs`, and autocast on any
// device type (tch's `autocast` switches CUDA's only), used by `src/precision.rs`.
//
// Tensors arrive as `at::Tensor*`, which is what tch's `Tensor::as_ptr` hands out (torch-sys's
// `tensor` type). Every function catches every C++ exception and reports it through `err` (a
// NUL-terminated message, truncated to `err_len`) and a nonzero return value.

#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/_fused_adam.h>
#include <ATen/ops/_fused_adamw.h>

#include <cstddef>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

void write_message(const std::string& message, char* out, size_t out_len) {
  if (out == nullptr || out_len == 0) return;
  size_t n = message.size() < out_len - 1 ? message.size() : out_len - 1;
  std::memcpy(out, message.data(), n);
  out[n] = '\0';
}

std::vector<at::Tensor> list(at::Tensor* const* tensors, size_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; i++) out.push_back(*tensors[i]);
  return out;
}

}  // namespace

extern "C" {

// One Adam (`decoupled == 0`, L2 weight decay added to the gradient, as torch.optim.Adam) or
// AdamW (`decoupled != 0`, `p *= 1 - lr * weight_decay`) step over `n` parameters, in place:
// `params[i]`, `exp_avgs[i]` and `exp_avg_sqs[i]` are updated from `grads[i]`. `step` is a
// float32 scalar on the parameters' device holding the step count after this step (1 on the
// first); it is shared by every parameter. No AMSGrad, no gradient scaling.
int fire_fused_adam(at::Tensor* const* params, at::Tensor* const* grads,
                    at::Tensor* const* exp_avgs, at::Tensor* const* exp_avg_sqs,
                    const at::Tensor* step, size_t n, double lr, double beta1, double beta2,
                    double weight_decay, double eps, int decoupled, char* err, size_t err_len) {
  try {
    std::vector<at::Tensor> p = list(params, n), g = list(grads, n), m = list(exp_avgs, n),
                            v = list(exp_avg_sqs, n), steps(n, *step), none;
    if (decoupled) {
      at::_fused_adamw_(p, g, m, v, none, steps, lr, beta1, beta2, weight_decay, eps,
                        /*amsgrad=*/false, /*maximize=*/false);
    } else {
      at::_fused_adam_(p, g, m, v, none, steps, lr, beta1, beta2, weight_decay, eps,
                       /*amsgrad=*/false, /*maximize=*/false);
    }
    return 0;
  } catch (const std::exception& e) {
    write_message(e.what(), err, err_len);
  } catch (...) {
    write_message("unknown C++ exception in fused Adam", err, err_len);
  }
  return -1;
}

// Drops the gradient of each of the `n` tensors (`param.grad = None`, torch.optim's default
// `zero_grad(set_to_none=True)`): the next backward pass then hands its gradient buffer to the
// parameter instead of adding it to a zeroed one, which saves a memset and a pass of adds.
int fire_clear_grads(at::Tensor* const* tensors, size_t n, char* err, size_t err_len) {
  try {
    for (size_t i = 0; i < n; i++) tensors[i]->mutable_grad().reset();
    return 0;
  } catch (const std::exception& e) {
    write_message(e.what(), err, err_len);
  } catch (...) {
    write_message("unknown C++ exception clearing gradients", err, err_len);
  }
  return -1;
}

// Enters an autocast region on `device` (0 CPU, 1 CUDA) computing in bfloat16, as Python's
// `torch.autocast(device, torch.bfloat16)` does on entry. Writes the previous enabled flag and
// dtype to `prev_enabled` and `prev_dtype` (a c10::ScalarType) for `fire_autocast_exit`.
int fire_autocast_enter(int device, int* prev_enabled, int* prev_dtype, char* err,
                        size_t err_len) {
  try {
    at::DeviceType type = device == 1 ? at::kCUDA : at::kCPU;
    *prev_enabled = at::autocast::is_autocast_enabled(type) ? 1 : 0;
    *prev_dtype = static_cast<int>(at::autocast::get_autocast_dtype(type));
    at::autocast::set_autocast_enabled(type, true);
    at::autocast::set_autocast_dtype(type, at::kBFloat16);
    at::autocast::increment_nesting();
    return 0;
  } catch (const std::exception& e) {
    write_message(e.what(), err, err_len);
  } catch (...) {
    write_message("unknown C++ exception entering autocast", err, err_len);
  }
  return -1;
}

// Leaves the region `fire_autocast_enter` entered: restores the flag and dtype, and clears the
// cache of casted weights when the outermost region ends (as Python's `__exit__`).
int fire_autocast_exit(int device, int prev_enabled, int prev_dtype, char* err, size_t err_len) {
  try {
    at::DeviceType type = device == 1 ? at::kCUDA : at::kCPU;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(type, prev_enabled != 0);
    at::autocast::set_autocast_dtype(type, static_cast<at::ScalarType>(prev_dtype));
    return 0;
  } catch (const std::exception& e) {
    write_message(e.what(), err, err_len);
  } catch (...) {
    write_message("unknown C++ exception leaving autocast", err, err_len);
  }
  return -1;
}

}  // extern "C"
