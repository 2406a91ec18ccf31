"""Records CartPole-v1, Pendulum-v1, Acrobot-v1 and MountainCar-v0 trajectories from Gymnasium
for envs/tests/classic.rs.

Made with: python -m venv v && v/bin/pip install gymnasium==1.2.2 numpy==2.4.6 &&
           v/bin/python record_classic.py > classic_gymnasium.json
Each episode stores the seed, the initial state (env.unwrapped.state right after
reset(seed=seed)), the actions, and per step the f32 observation, reward, terminated and
truncated flags as Gymnasium returned them, and the f64 state after the step. Acrobot and
MountainCar episodes also store the observation reset returned (`reset_obs`): their Rust
versions draw the initial state from numpy's PCG64 as Gymnasium does, so the test replays them
from reset(Some(seed)). `resets` holds, per task, reset(seed=s) followed by two reset() calls
(observations and states), to check that the generator carries on as Gymnasium's does, and
`spaces` their observation bounds and number of actions.
The tests read whatever episodes this file holds: other seeds and actions can be recorded.
Acrobot and MountainCar are compared exactly, so record them on x86-64 with AVX2/FMA or
aarch64 (NumPy's float32 sin/cos then take the fused-multiply-add path the Rust code
reproduces) with glibc's libm (float64 cos, sin and pow, which NumPy's scalars call).
"""
import json

import gymnasium as gym
import numpy as np


def cartpole_episodes():
    out = []
    rng = np.random.default_rng(0)
    for seed in range(4):
        env = gym.make("CartPole-v1")
        env.reset(seed=seed)
        state = [float(v) for v in env.unwrapped.state]
        balance = seed == 3  # a hand-made controller that survives to the 500-step limit
        steps, actions = [], []
        while True:
            if balance:
                x, xd, th, thd = env.unwrapped.state
                a = int(th + 0.5 * thd + 0.05 * x + 0.1 * xd > 0)
            else:
                a = int(rng.integers(2))
            obs, r, term, trunc, _ = env.step(a)
            actions.append(a)
            steps.append({"obs": [float(v) for v in obs], "reward": float(r),
                          "terminated": bool(term), "truncated": bool(trunc),
                          "state": [float(v) for v in env.unwrapped.state]})
            if term or trunc:
                break
        out.append({"seed": seed, "state": state, "actions": actions, "steps": steps})
    return out


def pendulum_episodes():
    out = []
    rng = np.random.default_rng(1)
    for seed in range(2):
        env = gym.make("Pendulum-v1")
        env.reset(seed=seed)
        state = [float(v) for v in env.unwrapped.state]
        steps, actions = [], []
        while True:
            # Torques beyond +-2 check the clipping.
            a = np.array([rng.uniform(-3.0, 3.0)], dtype=np.float32)
            obs, r, term, trunc, _ = env.step(a)
            actions.append(float(a[0]))
            steps.append({"obs": [float(v) for v in obs], "reward": float(r),
                          "terminated": bool(term), "truncated": bool(trunc),
                          "state": [float(v) for v in env.unwrapped.state]})
            if term or trunc:
                break
        out.append({"seed": seed, "state": state, "actions": actions, "steps": steps})
    return out


def floats(values):
    return [float(v) for v in values]


def record(name, seed, policy):
    """One episode of `name` from reset(seed=seed); policy(unwrapped_env, t) gives the action."""
    env = gym.make(name)
    obs, _ = env.reset(seed=seed)
    state = floats(env.unwrapped.state)
    steps, actions = [], []
    while True:
        a = int(policy(env.unwrapped, len(actions)))
        obs_next, r, term, trunc, _ = env.step(a)
        actions.append(a)
        steps.append({"obs": floats(obs_next), "reward": float(r),
                      "terminated": bool(term), "truncated": bool(trunc),
                      "state": floats(env.unwrapped.state)})
        if term or trunc:
            break
    return {"seed": seed, "state": state, "reset_obs": floats(obs), "actions": actions,
            "steps": steps}


def acrobot_episodes():
    rng = np.random.default_rng(2)
    out = [record("Acrobot-v1", seed, lambda env, t: rng.integers(3)) for seed in range(3)]
    # Energy pumping (torque along the actuated joint's velocity) swings the tip above the line.
    pump = record("Acrobot-v1", 3, lambda env, t: 2 if env.state[3] > 0 else 0)
    assert pump["steps"][-1]["terminated"] and len(pump["steps"]) < 500, "pump terminates"
    # Mostly no torque: the links barely move and the episode runs into the 500-step limit.
    lazy = record("Acrobot-v1", 4, lambda env, t: rng.integers(3) if t % 10 == 0 else 1)
    last = lazy["steps"][-1]
    assert last["truncated"] and not last["terminated"] and len(lazy["steps"]) == 500
    return out + [pump, lazy]


def mountaincar_episodes():
    rng = np.random.default_rng(3)
    out = [record("MountainCar-v0", seed, lambda env, t: rng.integers(3)) for seed in range(3)]
    # Pushing along the velocity pumps energy until the car reaches the flag.
    goal = record("MountainCar-v0", 3, lambda env, t: 2 if env.state[1] >= 0 else 0)
    assert goal["steps"][-1]["terminated"] and len(goal["steps"]) < 200, "the car reaches the flag"
    # Pump on the left side only (push right only left of -0.2): the swings grow until the car
    # hits the left wall (where its velocity is reset to 0), and it never reaches the flag.
    wall = record("MountainCar-v0", 4,
                  lambda env, t: 2 if env.state[1] >= 0 and env.state[0] < -0.2 else 0)
    last = wall["steps"][-1]
    assert last["truncated"] and not last["terminated"] and len(wall["steps"]) == 200
    assert any(s["state"] == [-1.2, 0.0] for s in wall["steps"]), "the left wall stops the car"
    return out + [goal, wall]


def consecutive_resets(name, seeds):
    out = []
    for seed in seeds:
        env = gym.make(name)
        obs, states = [], []
        for s in [seed, None, None]:
            o, _ = env.reset(seed=s)
            obs.append(floats(o))
            states.append(floats(env.unwrapped.state))
        out.append({"seed": seed, "obs": obs, "states": states})
    return out


def spaces(name):
    env = gym.make(name)
    return {"obs_low": floats(env.observation_space.low),
            "obs_high": floats(env.observation_space.high), "actions": int(env.action_space.n)}


RESET_SEEDS = [0, 7, 123, 2**32 + 5, 2**64 - 1]  # one- and two-word SeedSequence entropy

print(json.dumps({"gymnasium": gym.__version__, "numpy": np.__version__,
                  "cartpole": cartpole_episodes(), "pendulum": pendulum_episodes(),
                  "acrobot": acrobot_episodes(), "mountaincar": mountaincar_episodes(),
                  "resets": {"acrobot": consecutive_resets("Acrobot-v1", RESET_SEEDS),
                             "mountaincar": consecutive_resets("MountainCar-v0", RESET_SEEDS)},
                  "spaces": {"acrobot": spaces("Acrobot-v1"),
                             "mountaincar": spaces("MountainCar-v0")}}))
