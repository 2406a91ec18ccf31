"""Records CartPole-v1 and Pendulum-v1 trajectories from Gymnasium for envs/tests/classic.rs.

Made with: python -m venv v && v/bin/pip install gymnasium==1.2.2 numpy==2.4.6 &&
           v/bin/python record_classic.py > classic_gymnasium.json
Each episode stores the initial state (env.unwrapped.state), the actions, and per step the
f32 observation, reward, terminated and truncated flags as Gymnasium returned them, and the
f64 state after the step.
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


print(json.dumps({"gymnasium": gym.__version__, "numpy": np.__version__,
                  "cartpole": cartpole_episodes(), "pendulum": pendulum_episodes()}))
