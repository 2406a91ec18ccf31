//! Acrobot-v1 (Sutton 1996; Sutton & Barto's "book" dynamics, as in Gymnasium 1.x).

use std::f64::consts::PI;

use super::{numpy_f32, Core};
use crate::mujoco::seeding::Pcg64;
use crate::snapshot::{Reader, Writer};
use crate::vector::{discrete_action, FlatEnv};
use crate::{Env, Error, Info, Result, Space, Step};

const DT: f64 = 0.2;
const LINK_LENGTH_1: f64 = 1.0;
const LINK_MASS_1: f64 = 1.0;
const LINK_MASS_2: f64 = 1.0;
const LINK_COM_POS_1: f64 = 0.5;
const LINK_COM_POS_2: f64 = 0.5;
const LINK_MOI: f64 = 1.0;
const GRAVITY: f64 = 9.8;
const MAX_VEL_1: f64 = 4.0 * PI;
const MAX_VEL_2: f64 = 9.0 * PI;
/// Torques of actions 0, 1 and 2 (Gymnasium's `AVAIL_TORQUE`).
const TORQUES: [f64; 3] = [-1.0, 0.0, 1.0];
/// Gymnasium registers Acrobot-v1 with a 500-step time limit.
pub const MAX_EPISODE_STEPS: u64 = 500;
const TASK: &str = "Acrobot-v1";

/// Swing the tip of a two-link chain above the bar: actions 0, 1, 2 apply torque -1, 0, +1
/// to the joint between the links; observation `[cos t1, sin t1, cos t2, sin t2, dt1, dt2]`
/// (t2 relative to the first link); reward -1 per step and 0 on the step that reaches the
/// goal (`-cos t1 - cos(t1 + t2) > 1`, terminated); truncated at 500 steps (both flags are set
/// if the 500th step also reaches the goal, as Gymnasium's `TimeLimit` does).
///
/// As in Gymnasium, one step integrates the book's equations with the classic Runge-Kutta
/// method over one 0.2 s step in f64, wraps the angles into [-pi, pi] and bounds the
/// velocities to 4 pi and 9 pi. Resets draw the state uniformly from [-0.1, 0.1]^4 with NumPy's
/// `PCG64(SeedSequence(seed))` and cast it to f32 (Gymnasium does), and the first observation
/// is NumPy's float32 `cos`/`sin` of those values, so `reset(Some(s))` returns Gymnasium's
/// `reset(seed=s)` observation bit for bit. An environment never seeded draws as if seeded
/// with 0 (Gymnasium would take a seed from the operating system).
#[derive(Clone, Debug)]
pub struct Acrobot {
    core: Core<4, Pcg64>,
    /// The state is the float32 array Gymnasium's reset leaves (until the first step), which
    /// Gymnasium observes through NumPy's float32 trigonometry.
    float32_state: bool,
}

impl Default for Acrobot {
    fn default() -> Self {
        Self::new()
    }
}

impl Acrobot {
    /// A new environment; call [`Env::reset`] before stepping.
    pub fn new() -> Self {
        Self {
            core: Core::new(Pcg64::from_seed(0)),
            float32_state: false,
        }
    }

    /// Starts an episode from an exact state `[theta1, theta2, dtheta1, dtheta2]`, taken as
    /// Gymnasium's f64 state after a step (observed through f64 `cos`/`sin`).
    pub fn set_state(&mut self, state: [f64; 4]) -> Vec<f32> {
        self.core.start(state);
        self.float32_state = false;
        self.observe()
    }

    /// The exact internal state `[theta1, theta2, dtheta1, dtheta2]`.
    pub fn state(&self) -> [f64; 4] {
        self.core.state
    }

    fn observe(&self) -> Vec<f32> {
        let [t1, t2, v1, v2] = self.core.state;
        if self.float32_state {
            let (t1, t2) = (t1 as f32, t2 as f32);
            vec![
                numpy_f32::cos(t1),
                numpy_f32::sin(t1),
                numpy_f32::cos(t2),
                numpy_f32::sin(t2),
                v1 as f32,
                v2 as f32,
            ]
        } else {
            vec![
                t1.cos() as f32,
                t1.sin() as f32,
                t2.cos() as f32,
                t2.sin() as f32,
                v1 as f32,
                v2 as f32,
            ]
        }
    }
}

/// `x ** 2` of a NumPy float64 scalar: NumPy calls libm's `pow`, which is not always the
/// correctly rounded `x * x` (measured: 254 of 300,000 normal draws differ by an ulp). The
/// opaque exponent keeps the compiler from turning `pow(x, 2)` into `x * x`.
fn pow2(x: f64) -> f64 {
    x.powf(std::hint::black_box(2.0))
}

/// Gymnasium's `_dsdt` for the book's equations: the derivative of `[t1, t2, dt1, dt2, a]`,
/// each expression in Gymnasium's order of operations.
fn dsdt(s: [f64; 5]) -> [f64; 5] {
    let (m1, m2, l1) = (LINK_MASS_1, LINK_MASS_2, LINK_LENGTH_1);
    let (lc1, lc2) = (LINK_COM_POS_1, LINK_COM_POS_2);
    let (i1, i2, g) = (LINK_MOI, LINK_MOI, GRAVITY);
    let [theta1, theta2, dtheta1, dtheta2, a] = s;
    // lc1**2 and friends are Python floats whose squares are exact.
    let d1 =
        m1 * (lc1 * lc1) + m2 * (l1 * l1 + lc2 * lc2 + 2.0 * l1 * lc2 * theta2.cos()) + i1 + i2;
    let d2 = m2 * (lc2 * lc2 + l1 * lc2 * theta2.cos()) + i2;
    let phi2 = m2 * lc2 * g * (theta1 + theta2 - PI / 2.0).cos();
    let phi1 = -m2 * l1 * lc2 * pow2(dtheta2) * theta2.sin()
        - 2.0 * m2 * l1 * lc2 * dtheta2 * dtheta1 * theta2.sin()
        + (m1 * lc1 + m2 * l1) * g * (theta1 - PI / 2.0).cos()
        + phi2;
    let ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * pow2(dtheta1) * theta2.sin() - phi2)
        / (m2 * (lc2 * lc2) + i2 - pow2(d2) / d1);
    let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    [dtheta1, dtheta2, ddtheta1, ddtheta2, 0.0]
}

/// `y + h * k`, element by element.
fn axpy(y: [f64; 5], h: f64, k: [f64; 5]) -> [f64; 5] {
    std::array::from_fn(|i| y[i] + h * k[i])
}

/// Gymnasium's `rk4(derivs, y0, [0, dt])`: one classic Runge-Kutta step, with its
/// `y0 + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)`.
fn rk4(y0: [f64; 5]) -> [f64; 5] {
    let dt = DT - 0.0; // t[1] - t[0]
    let dt2 = dt / 2.0;
    let k1 = dsdt(y0);
    let k2 = dsdt(axpy(y0, dt2, k1));
    let k3 = dsdt(axpy(y0, dt2, k2));
    let k4 = dsdt(axpy(y0, dt, k3));
    std::array::from_fn(|i| y0[i] + dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

/// Gymnasium's `wrap(x, -pi, pi)`: subtracts or adds 2 pi until `x` is in [-pi, pi]. Past
/// |x| = 1e6 (only reachable through [`Acrobot::set_state`]), where Gymnasium's loop would run
/// for ages or forever, it takes the remainder in one go instead; NaN and infinities are kept.
fn wrap(mut x: f64) -> f64 {
    let diff = PI - -PI;
    if x.abs() > 1e6 {
        return if x.is_finite() {
            (x + PI).rem_euclid(diff) - PI
        } else {
            x
        };
    }
    while x > PI {
        x -= diff;
    }
    while x < -PI {
        x += diff;
    }
    x
}

impl Env for Acrobot {
    type Obs = Vec<f32>;
    type Action = usize;

    fn observation_space(&self) -> Space {
        let high = [1.0, 1.0, 1.0, 1.0, MAX_VEL_1 as f32, MAX_VEL_2 as f32];
        Space::Box {
            low: high.iter().map(|h| -h).collect(),
            high: high.to_vec(),
        }
    }

    fn action_space(&self) -> Space {
        Space::Discrete(3)
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info)> {
        if let Some(seed) = seed {
            self.core.rng = Pcg64::from_seed(seed);
        }
        // np_random.uniform(low=-0.1, high=0.1, size=(4,)).astype(np.float32)
        let mut draws = [0.0; 4];
        self.core.rng.uniform_into(-0.1, 0.1, &mut draws);
        self.core.start(draws.map(|v| f64::from(v as f32)));
        self.float32_state = true;
        Ok((self.observe(), Info::default()))
    }

    fn step(&mut self, action: &usize) -> Result<Step<Vec<f32>>> {
        self.core.check_running()?;
        let torque = *TORQUES.get(*action).ok_or_else(|| Error::InvalidAction {
            action: action.to_string(),
            reason: "Acrobot actions are 0 (torque -1), 1 (none) and 2 (torque +1)".into(),
        })?;
        let [t1, t2, v1, v2] = self.core.state;
        let [t1, t2, v1, v2, _] = rk4([t1, t2, v1, v2, torque]);
        let (t1, t2) = (wrap(t1), wrap(t2));
        let v1 = v1.clamp(-MAX_VEL_1, MAX_VEL_1);
        let v2 = v2.clamp(-MAX_VEL_2, MAX_VEL_2);
        self.core.state = [t1, t2, v1, v2];
        self.float32_state = false;
        let terminated = -t1.cos() - (t2 + t1).cos() > 1.0;
        let reward = if terminated { 0.0 } else { -1.0 };
        let (truncated, episode) = self.core.finish_step(reward, terminated, MAX_EPISODE_STEPS);
        Ok(Step {
            obs: self.observe(),
            reward,
            terminated,
            truncated,
            info: Info {
                episode,
                ..Info::default()
            },
        })
    }
}

impl FlatEnv for Acrobot {
    flat_env_via_env!(|action| discrete_action(action, 3)?);

    fn save_state(&mut self) -> Option<Vec<u8>> {
        let mut w = Writer::new(TASK);
        self.core.write(&mut w);
        Some(w.u64(u64::from(self.float32_state)).finish())
    }

    fn load_state(&mut self, state: &[u8], obs: &mut [f32]) -> Result<()> {
        let mut r = Reader::new(TASK, state)?;
        let core = Core::read(&mut r)?;
        let float32_state = match r.u64()? {
            0 => false,
            1 => true,
            other => return Err(Error::Snapshot(format!("float32 flag {other}"))),
        };
        r.finish()?;
        (self.core, self.float32_state) = (core, float32_state);
        obs.copy_from_slice(&self.observe());
        Ok(())
    }
}
