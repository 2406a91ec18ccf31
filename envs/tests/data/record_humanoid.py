#!/usr/bin/env python3
"""Records reference rollouts of the HumanoidBench H1 tasks for envs/tests/humanoid_equivalence.rs.

An independent re-implementation of SPEC.md (shared/reference/humanoid-bench) with only PyPI
``mujoco==3.17.0`` and numpy: gymnasium's MujocoEnv.reset + HumanoidBench's reset_model, the
action -> ctrl mapping with float32 bounds, 10 x mj_step + mj_rnePostConstraint, the observation,
dm_control's tolerance, the rewards and terminations. It writes humanoid_fixture.json beside itself.

    .deps/mujoco-venv/bin/python envs/tests/data/record_humanoid.py   # (setup.sh made the venv)

Actions are not stored: each episode's actions are ``scale * default_rng(action_seed).uniform(-1,
1, size=(steps, 19))``, plus (``hold``) the action that maps to the keyframe's joint angles,
float64 or cast to float32 (``dtype`` ``f32``); the Rust test regenerates them with its own PCG64. Each step stores an FNV-1a 64 hash of the observation's float64
bits (little-endian), the reward's bits and the termination; a few steps store the whole
observation, for diagnostics.
"""

import json
import os
import struct

import mujoco
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ASSETS = os.path.join(HERE, "..", "..", "assets", "humanoid_bench")
TASKS = {
    "h1-walk-v0": "walk",
    "h1-stand-v0": "stand",
    "h1-run-v0": "run",
    "h1-balance_simple-v0": "balance_simple",
}
FRAME_SKIP = 10
MAX_STEPS = 1000
STAND_HEIGHT = 1.65


def tolerance(x, bounds, margin, sigmoid, value_at_margin=0.1):
    """dm_control.utils.rewards.tolerance for the three sigmoids used here."""
    lower, upper = bounds
    in_bounds = np.logical_and(lower <= x, x <= upper)
    if margin == 0:
        value = np.where(in_bounds, 1.0, 0.0)
    else:
        d = np.where(x < lower, lower - x, x - upper) / margin
        if sigmoid == "gaussian":
            scale = np.sqrt(-2 * np.log(value_at_margin))
            s = np.exp(-0.5 * (d * scale) ** 2)
        elif sigmoid == "linear":
            scale = 1 - value_at_margin
            scaled = d * scale
            s = np.where(abs(scaled) < 1, 1 - scaled, 0.0)
        elif sigmoid == "quadratic":
            scale = np.sqrt(1 - value_at_margin)
            scaled = d * scale
            s = np.where(abs(scaled) < 1, 1 - scaled**2, 0.0)
        else:
            raise ValueError(sigmoid)
        value = np.where(in_bounds, 1.0, s)
    return float(value) if np.isscalar(x) else value


class H1:
    def __init__(self, task, randomness=0.01):
        self.task = TASKS[task]
        path = os.path.join(ASSETS, "envs", f"h1_pos_{self.task}.xml")
        self.model = mujoco.MjModel.from_xml_path(path)
        self.data = mujoco.MjData(self.model)
        self.randomness = randomness
        bounds = self.model.actuator_ctrlrange.copy().astype(np.float32)
        self.low, self.high = bounds.T
        self.rng = None
        m = self.model
        self.head = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "head")
        self.torso = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "torso_link")
        sensor = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SENSOR, "pelvis_subtreelinvel")
        self.com_adr = m.sensor_adr[sensor]
        if self.task == "balance_simple":
            self.sphere = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "pivot_sphere_collision")
            self.board = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "stand_board_collision")

    def obs(self):
        return np.concatenate([self.data.qpos, self.data.qvel]).ravel()

    def reset(self, seed):
        # gymnasium: a seed makes a new generator; no seed continues the current one.
        if seed is not None or self.rng is None:
            self.rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        mujoco.mj_resetDataKeyframe(m, d, 0)
        mujoco.mj_forward(m, d)
        r = self.randomness
        qpos = d.qpos.copy() + self.rng.uniform(-r, r, size=m.nq)
        qvel = d.qvel.copy()
        d.qpos[:] = qpos
        d.qvel[:] = qvel
        mujoco.mj_forward(m, d)
        self.steps = 0
        return self.obs()

    def step(self, action):
        m, d = self.model, self.data
        d.ctrl[:] = (action + 1) / 2 * (self.high - self.low) + self.low
        for _ in range(FRAME_SKIP):
            mujoco.mj_step(m, d)
        mujoco.mj_rnePostConstraint(m, d)
        obs = self.obs()
        reward, info = self.reward()
        terminated = self.terminated()
        self.steps += 1
        truncated = self.steps >= MAX_STEPS
        return obs, reward, terminated, truncated, info

    def reward(self):
        d = self.data
        head_height = d.site_xpos[self.head, 2]
        upright_zz = d.xmat[self.torso, 8]
        com_vel = d.sensordata[self.com_adr : self.com_adr + 3]
        height = STAND_HEIGHT + 0.37 if self.task == "balance_simple" else STAND_HEIGHT
        standing = tolerance(head_height, (height, float("inf")), STAND_HEIGHT / 4, "gaussian")
        upright = tolerance(upright_zz, (0.9, float("inf")), 1.9, "linear", 0)
        stand_reward = standing * upright
        small_control = tolerance(d.actuator_force, (0, 0), 10, "quadratic", 0).mean()
        small_control = (4 + small_control) / 5
        info = {"standing": standing, "upright": upright, "stand_reward": stand_reward,
                "small_control": small_control}
        if self.task in ("walk", "run"):
            speed = 1 if self.task == "walk" else 5
            move = tolerance(com_vel[0], (speed, float("inf")), speed, "linear", 0)
            move = (5 * move + 1) / 6
            reward = small_control * stand_reward * move
            info["move"] = move
        else:
            horizontal = com_vel[[0, 1]]
            dont_move = tolerance(horizontal, (0, 0), 2, "gaussian").mean()
            reward = small_control * stand_reward * dont_move
            info["dont_move"] = dont_move
        info = {k: float(v) for k, v in info.items()}
        info["per_timestep_reward"] = float(reward)
        return float(reward), info

    def terminated(self):
        d = self.data
        if self.task != "balance_simple":
            return bool(d.qpos[2] < 0.2)
        if d.qpos[2] < 0.8:
            return True
        for c in d.contact[: d.ncon]:
            pair = (c.geom1, c.geom2)
            if self.sphere in pair and 0 not in pair and self.board not in pair:
                return True
            if 0 in pair and self.sphere not in pair:
                return True
        return False


def fnv1a64(values):
    h = 0xCBF29CE484222325
    for byte in struct.pack(f"<{len(values)}d", *values):
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def bits(x):
    return f"{struct.unpack('<Q', struct.pack('<d', x))[0]:016x}"


def actions_for(env, action_seed, scale, steps, dtype, hold):
    noise = np.random.default_rng(action_seed).uniform(-1, 1, size=(steps, 19))
    if hold:
        # The action that maps to the keyframe's joint angles, plus noise.
        low, high = env.low.astype(np.float64), env.high.astype(np.float64)
        key = env.model.key_qpos[0, 7:26]
        center = 2 * (key - low) / (high - low) - 1
        actions = center + scale * noise
    else:
        actions = scale * noise
    return actions.astype(np.float32) if dtype == "f32" else actions


def record_episode(env, seed, action_seed, scale, steps, dtype, hold, full_every=100):
    actions = actions_for(env, action_seed, scale, steps, dtype, hold)
    obs = env.reset(seed)
    episode = {"seed": seed, "action_seed": action_seed, "scale": scale, "hold": hold,
               "dtype": dtype, "reset_obs": [float(x) for x in obs], "steps": []}
    for t in range(steps):
        obs, reward, terminated, truncated, info = env.step(actions[t])
        step = {"obs_hash": fnv1a64(obs), "reward_bits": bits(reward), "reward": reward,
                "terminated": terminated, "truncated": truncated, "info": info}
        if t % full_every == 0 or terminated or truncated:
            step["obs"] = [float(x) for x in obs]
        episode["steps"].append(step)
        if terminated or truncated:
            break
    return episode


def record_run(task, first_seed, action_seed, scale, min_steps, dtype="f64", randomness=0.01):
    """Episodes on one env until min_steps steps: the first reset is seeded, the later ones
    alternate between continuing the generator (seed None) and a new seed; the policy
    alternates between noise around the keyframe pose and noise around the middle."""
    env = H1(task, randomness)
    run = {"task": task, "randomness": randomness, "episodes": []}
    total, k = 0, 0
    while total < min_steps:
        seed = first_seed + k if k % 2 == 0 else None
        hold = k % 2 == 0
        episode = record_episode(env, seed, action_seed + k, scale if hold else 3 * scale,
                                 min_steps - total, dtype, hold)
        run["episodes"].append(episode)
        total += len(episode["steps"])
        k += 1
    return run


def main():
    runs = [
        record_run("h1-walk-v0", 0, 100, 0.1, 300),
        record_run("h1-walk-v0", 7, 200, 0.1, 150, dtype="f32"),
        record_run("h1-stand-v0", 1, 300, 0.05, 300),
        record_run("h1-stand-v0", 5, 400, 0.05, 100, randomness=0.0),
        record_run("h1-run-v0", 2, 500, 0.1, 300),
        record_run("h1-balance_simple-v0", 3, 600, 0.02, 300),
    ]
    meta = {"mujoco": mujoco.__version__, "numpy": np.__version__, "runs": runs}
    with open(os.path.join(HERE, "humanoid_fixture.json"), "w") as f:
        json.dump(meta, f, indent=None, separators=(",", ":"))
        f.write("\n")
    for r in runs:
        for e in r["episodes"]:
            print(r["task"], e["seed"], e["dtype"], "hold" if e["hold"] else "noise",
                  "steps", len(e["steps"]), "terminated", e["steps"][-1]["terminated"],
                  "return", sum(s["reward"] for s in e["steps"]))


if __name__ == "__main__":
    main()
