//! The replay-ratio rate limiter, the one place the ratio becomes a number of updates.
//!
//! The synchronous loop runs exactly [`RateLimiter::due`] updates after each vector step; the
//! threaded loop's learner does the same after each message, and its actors wait while
//! [`RateLimiter::may_act`] says they are too far ahead of the updates done. Both read the
//! warm-up from the same place, so the two modes count the ratio identically.

use agent::ActMode;

use super::LoopState;

/// Updates allowed per step, counted from the end of the warm-up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct RateLimiter {
    /// Gradient updates per decision (`replay_ratio`).
    ratio: f64,
    /// Loop steps per decision (the setup's `steps_per_decision`).
    steps_per_decision: u64,
    /// Steps before which actions are random and nothing is learned.
    warmup_until: u64,
    /// Updates done when that warm-up began: the count starts there.
    updates_before_warmup: u64,
}

impl RateLimiter {
    /// The limiter of a run in `state` with `replay_ratio` `ratio` and `steps_per_decision`.
    pub(super) fn new(ratio: f64, steps_per_decision: u64, state: &LoopState) -> Self {
        Self {
            ratio,
            steps_per_decision,
            warmup_until: state.warmup_until,
            updates_before_warmup: state.updates_before_warmup,
        }
    }

    /// Updates the replay ratio allows once `step` steps are done. Decisions are counted
    /// first (an integer division), so a ratio per decision never meets a rounded ratio per
    /// environment step (2 updates per decision at action repeat 3 is not 0.666... per step).
    pub(super) fn due(&self, step: u64) -> u64 {
        let decisions = step.saturating_sub(self.warmup_until) / self.steps_per_decision;
        self.updates_before_warmup + (decisions as f64 * self.ratio) as u64
    }

    /// How the agent acts at `step`: at random during the warm-up, then training.
    pub(super) fn mode(&self, step: u64) -> ActMode {
        if step < self.warmup_until {
            ActMode::Warmup
        } else {
            ActMode::Train { step }
        }
    }

    /// Whether an actor may step again when `sent` steps have been sent and `updates` updates
    /// done: always during the warm-up, then while the updates due for what was sent are at
    /// most `max_lead` ahead of the updates done.
    pub(super) fn may_act(&self, sent: u64, updates: u64, max_lead: u64) -> bool {
        sent < self.warmup_until || self.due(sent) <= updates + max_lead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(ratio: f64, warmup_until: u64, updates_before_warmup: u64) -> RateLimiter {
        RateLimiter {
            ratio,
            steps_per_decision: 1,
            warmup_until,
            updates_before_warmup,
        }
    }

    #[test]
    fn updates_are_counted_from_the_end_of_the_warm_up_and_rounded_down() {
        let r = limiter(0.25, 1_000, 0);
        assert_eq!(r.due(0), 0);
        assert_eq!(r.due(1_000), 0);
        assert_eq!(r.due(1_003), 0);
        assert_eq!(r.due(1_004), 1);
        assert_eq!(r.due(2_000), 250);
        // After a resume without a saved replay: the updates already done, then the ratio
        // again from the end of the refill.
        let r = limiter(2.0, 5_000, 700);
        assert_eq!(r.due(4_000), 700);
        assert_eq!(r.due(5_010), 720);
    }

    #[test]
    fn a_ratio_per_decision_counts_decisions_when_a_decision_is_several_steps() {
        // Action repeat 3, two updates per decision: 3 steps are one decision, 2 updates.
        let r = RateLimiter {
            steps_per_decision: 3,
            ..limiter(2.0, 300, 0)
        };
        assert_eq!(r.due(300), 0);
        assert_eq!(r.due(302), 0, "not yet a whole decision");
        assert_eq!(r.due(303), 2);
        assert_eq!(r.due(300 + 3 * 1_000_000), 2_000_000);
    }

    #[test]
    fn actors_act_at_random_in_the_warm_up_and_wait_when_too_far_ahead() {
        let r = limiter(1.0, 100, 0);
        assert_eq!(r.mode(99), ActMode::Warmup);
        assert_eq!(r.mode(100), ActMode::Train { step: 100 });
        // In the warm-up nothing is learned, so nothing holds the actors back.
        assert!(r.may_act(99, 0, 0));
        // Past it: 110 steps sent are 10 updates due.
        assert!(r.may_act(110, 10, 0));
        assert!(!r.may_act(110, 9, 0));
        assert!(r.may_act(110, 2, 8));
        assert!(!r.may_act(110, 1, 8));
    }

    #[test]
    fn the_state_gives_the_limiter_its_warm_up() {
        let state: LoopState = serde_json::from_value(serde_json::json!({
            "step": 3_000, "updates": 40, "episodes": 0,
            "scheduler": fire::schedule::SchedulerState::default(), "rng": [],
            "warmup_until": 2_500, "updates_before_warmup": 40,
        }))
        .unwrap();
        let r = RateLimiter::new(0.5, 1, &state);
        assert_eq!(r, limiter(0.5, 2_500, 40));
        assert_eq!(r.due(state.step), 290);
    }
}
