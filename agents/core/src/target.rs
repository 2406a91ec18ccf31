//! The bootstrapped TD target every agent uses.

use tch::Tensor;

use crate::Result;

/// `rewards + discounts * next_values`, except that where a discount is zero (the transition
/// terminated, or `gamma = 0`) the target is the reward alone, whatever the next value is.
///
/// The mask is a select, not a product: `0 * NaN` is NaN, so a multiplied mask would let one
/// non-finite next value (a network evaluated on a terminal observation that is not finite,
/// or that overflows) turn a terminal target into NaN and the whole update with it.
pub fn td_target(rewards: &Tensor, discounts: &Tensor, next_values: &Tensor) -> Result<Tensor> {
    let bootstrap = discounts
        .f_mul(next_values)?
        .f_where_scalarother(&discounts.f_ne(0.0)?, 0.0)?;
    Ok(rewards.f_add(&bootstrap)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t).unwrap()
    }

    /// A terminal transition whose next value is NaN or infinite: the multiplied mask gives
    /// NaN (`0 * NaN`, `0 * inf`), the select gives the reward.
    #[test]
    fn a_terminal_target_is_finite_whatever_the_next_value() {
        let rewards = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]);
        let discounts = Tensor::from_slice(&[0.0f32, 0.0, 0.99, 0.5]);
        let next = Tensor::from_slice(&[f32::NAN, f32::INFINITY, 10.0, -2.0]);
        let multiplied = values(&(&rewards + &discounts * &next));
        assert!(
            multiplied[0].is_nan() && multiplied[1].is_nan(),
            "{multiplied:?}"
        );
        let selected = values(&td_target(&rewards, &discounts, &next).unwrap());
        assert_eq!(selected, vec![1.0, 2.0, 3.0 + 0.99 * 10.0, 4.0 - 1.0]);
        // Where the discount is not zero the two agree bit for bit.
        assert_eq!(selected[2..], multiplied[2..]);
    }

    /// A non-finite next value where the transition bootstraps stays visible (the loss
    /// diverges and the run says so) rather than being hidden.
    #[test]
    fn a_bootstrapped_nan_is_not_masked() {
        let t = td_target(
            &Tensor::from_slice(&[0.0f32]),
            &Tensor::from_slice(&[0.99f32]),
            &Tensor::from_slice(&[f32::NAN]),
        )
        .unwrap();
        assert!(values(&t)[0].is_nan());
    }
}
