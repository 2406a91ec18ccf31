"""Writes rliable_fixture.json: rliable's statistics on fixed scores, for report/tests/rliable.rs.

Pinned: rliable==1.2.0, with arch 7.2.0, numpy 2.4.6, scipy 1.17.1 and pandas 2.3.3 (arch 7.2.0 fails
to import under pandas 3, hence the `"pandas<3"`).

    python3 -m venv ~/.cache/fire-rl/rliable-venv
    ~/.cache/fire-rl/rliable-venv/bin/pip install rliable==1.2.0 "pandas<3"
    ~/.cache/fire-rl/rliable-venv/bin/python report/tests/data/make_rliable_fixture.py

The scores are made here from a fixed numpy seed and stored in the fixture, so the Rust test uses
exactly the same numbers. Interval ends are Monte-Carlo estimates: the fixture holds them for
several bootstrap seeds, so the test knows rliable's own spread.
"""

import json
import os
import sys

import numpy as np
import rliable
from rliable import library as rly
from rliable import metrics

REPS = 4_000
# scipy's Mann-Whitney U makes rliable's probability of improvement about 7 ms per replicate.
IMPROVEMENT_REPS = 1_000
PROFILE_REPS = 1_000
SEEDS = list(range(6))
TAUS = np.linspace(0.0, 2.0, 21)

rng = np.random.default_rng(20261201)
num_runs, num_tasks = 5, 3
# Normalised-looking scores (runs x tasks), with a few ties and values above 1 so that the
# optimality gap clips something.
scores = {
    "none": np.round(rng.gamma(2.0, 0.25, size=(num_runs, num_tasks)), 3),
    "fire": np.round(rng.gamma(3.0, 0.30, size=(num_runs, num_tasks)), 3),
    "full-reset": np.round(rng.gamma(2.5, 0.30, size=(num_runs, num_tasks)), 3),
}
scores["full-reset"][0, 0] = scores["fire"][1, 0]  # a tie across methods
scores["none"][2, 1] = scores["none"][3, 1]  # a tie within a method


def aggregate(x):
    return np.array(
        [
            metrics.aggregate_median(x),
            metrics.aggregate_iqm(x),
            metrics.aggregate_mean(x),
            metrics.aggregate_optimality_gap(x),
        ]
    )


AGG_NAMES = ["median", "IQM", "mean", "optimality_gap"]
pairs = [("fire", "none"), ("full-reset", "none"), ("fire", "full-reset")]
pair_dict = {f"{x},{y}": [scores[x], scores[y]] for x, y in pairs}

out = {
    "rliable_version": getattr(rliable, "__version__", "1.2.0"),
    "numpy_version": np.__version__,
    "reps": REPS,
    "improvement_reps": IMPROVEMENT_REPS,
    "profile_reps": PROFILE_REPS,
    "seeds": SEEDS,
    "taus": TAUS.tolist(),
    "aggregate_names": AGG_NAMES,
    # per method: scores as a list of runs, each a list of tasks (rliable's layout)
    "scores": {m: s.tolist() for m, s in scores.items()},
    "aggregates": {},
    "improvement": {},
    "profiles": {},
}

for seed in SEEDS:
    np.random.seed(seed)  # rliable's bootstraps draw from numpy's global generator
    points, cis = rly.get_interval_estimates(scores, aggregate, reps=REPS)
    for m in scores:
        d = out["aggregates"].setdefault(m, {"point": points[m].tolist(), "lo": [], "hi": []})
        d["lo"].append(cis[m][0].tolist())
        d["hi"].append(cis[m][1].tolist())
    np.random.seed(seed)
    points, cis = rly.get_interval_estimates(
        pair_dict, metrics.probability_of_improvement, reps=IMPROVEMENT_REPS
    )
    for k in pair_dict:
        d = out["improvement"].setdefault(k, {"point": float(points[k]), "lo": [], "hi": []})
        d["lo"].append(float(np.ravel(cis[k])[0]))
        d["hi"].append(float(np.ravel(cis[k])[1]))
    np.random.seed(seed)
    profiles, pcis = rly.create_performance_profile(scores, TAUS, reps=PROFILE_REPS)
    for m in scores:
        d = out["profiles"].setdefault(m, {"point": profiles[m].tolist(), "lo": [], "hi": []})
        d["lo"].append(pcis[m][0].tolist())
        d["hi"].append(pcis[m][1].tolist())
    print(f"seed {seed} done", file=sys.stderr, flush=True)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rliable_fixture.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print(f"wrote {path}")
