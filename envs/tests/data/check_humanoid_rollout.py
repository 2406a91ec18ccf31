#!/usr/bin/env python3
"""Checks `humanoid-env rollout` against record_humanoid.py's Python/mujoco re-implementation:
writes an actions CSV (floats as repr), runs the binary and compares every JSON line exactly
(obs, reward, terminated, truncated, the reset line first).

    cargo build --release -p experiments --bin humanoid-env
    .deps/mujoco-venv/bin/python envs/tests/data/check_humanoid_rollout.py
"""
import json, subprocess, sys, numpy as np
sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from record_humanoid import H1, actions_for
CSV = "/tmp/humanoid_actions.csv"
bad = 0
for task, seed, aseed, scale, hold, r, dtype in [("h1-walk-v0", 11, 1, 0.1, True, 0.01, "f64"), ("h1-stand-v0", 12, 2, 0.05, True, 0.01, "f64"),
        ("h1-run-v0", 13, 3, 0.3, False, 0.01, "f64"), ("h1-balance_simple-v0", 14, 4, 0.02, True, 0.01, "f64"),
        ("h1-walk-v0", 15, 5, 0.1, True, 0.0, "f64"), ("h1-stand-v0", 16, 6, 0.05, True, 0.01, "f32")]:
    env = H1(task, r)
    acts = actions_for(env, aseed, scale, 200, dtype, hold)
    with open(CSV, "w") as f:
        for a in acts: f.write(",".join(repr(float(x)) for x in a) + "\n")
    out = subprocess.run(["target/release/humanoid-env", "rollout", "--task", task, "--seed", str(seed), "--randomness", str(r), "--actions", CSV, "--action-dtype", dtype], capture_output=True, text=True, check=True).stdout.splitlines()
    lines = [json.loads(l) for l in out]
    obs = env.reset(seed)
    ok = lines[0]["t"] == -1 and lines[0]["obs"] == [float(x) for x in obs]
    n = 0
    for t, a in enumerate(acts):
        obs, rew, term, trunc, info = env.step(a)
        l = lines[t + 1]
        n += 1
        ok &= l["t"] == t and l["obs"] == [float(x) for x in obs] and l["reward"] == rew and l["terminated"] == term and l["truncated"] == trunc
        if term or trunc: break
    ok &= len(lines) == n + 1
    print(task, seed, dtype, "steps", n, "OK" if ok else "MISMATCH")
    bad += not ok
sys.exit(bad)
