"""Environment steps per second of the `minatar` 1.0.15 package, per game, to compare with
`minatar-env bench` (docs/BENCHMARKS.md, "MinAtar environments").

    python3 -m venv /tmp/minatar-venv
    /tmp/minatar-venv/bin/pip install minatar==1.0.15 numpy==2.4.6
    /tmp/minatar-venv/bin/python benchmarks/minatar_env.py --steps 100000
    /tmp/minatar-venv/bin/python benchmarks/minatar_env.py --steps 100000 --with-state

What is timed is what `minatar-env bench` times: `Environment(game)` with the package's
defaults (sticky actions 0.1, ramping on), `seed(0)`, `reset()`, then `act(a)` with uniform
random actions drawn beforehand (so drawing them costs nothing in the loop) and `reset()`
whenever an episode ends; with `--with-state` also `state()` after every step, as a training
loop reads the observation. One thread; prints one line per game, `<game> <steps/s> steps/s`.
"""
import argparse
import time

import numpy as np
from minatar import Environment

GAMES = ["asterix", "breakout", "freeway", "seaquest", "space_invaders"]


def bench(game, steps, with_state):
    env = Environment(game)
    env.seed(0)
    env.reset()
    actions = np.random.RandomState(1).randint(6, size=steps).tolist()
    start = time.perf_counter()
    for a in actions:
        _, terminal = env.act(a)
        if with_state:
            env.state()
        if terminal:
            env.reset()
    return steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--with-state", action="store_true")
    parser.add_argument("--games", default=",".join(GAMES))
    args = parser.parse_args()
    for game in args.games.split(","):
        print(f"{game} {bench(game, args.steps, args.with_state):.0f} steps/s", flush=True)


if __name__ == "__main__":
    main()
