#!/usr/bin/env python3
"""Steps per second of a Python loop over PyPI mujoco==3.17.0 doing what `humanoid-env bench`
does, on one thread: uniform random actions, resets when an episode ends.

    .deps/mujoco-venv/bin/python envs/tests/data/bench_humanoid.py [--task h1-walk-v0] [--steps 3000] [--raw]

Without --raw: record_humanoid.py's H1 (action -> ctrl, 10 x mj_step, mj_rnePostConstraint,
observation, reward with numpy/dm_control-style tolerance, termination); with --raw: only
ctrl and 10 x mj_step.
"""
import argparse
import os
import sys
import time

import mujoco
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from record_humanoid import FRAME_SKIP, H1  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="h1-walk-v0")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--raw", action="store_true")
    args = p.parse_args()
    env = H1(args.task)
    rng = np.random.default_rng(0)
    env.reset(0)
    m, d = env.model, env.data
    start = time.perf_counter()
    for _ in range(args.steps):
        a = rng.uniform(-1, 1, size=19).astype(np.float32)
        if args.raw:
            d.ctrl[:] = (a + 1) / 2 * (env.high - env.low) + env.low
            for _ in range(FRAME_SKIP):
                mujoco.mj_step(m, d)
            if d.qpos[2] < 0.2:
                mujoco.mj_resetDataKeyframe(m, d, 0)
        else:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset(None)
    seconds = time.perf_counter() - start
    load1 = os.getloadavg()[0]
    print(f"task={args.task} mode={'python-raw-mj_step-x10' if args.raw else 'python-env'} "
          f"steps={args.steps} seconds={seconds:.2f} sps={args.steps / seconds:.1f} load1={load1:.2f}")


if __name__ == "__main__":
    main()
