"""Records MinAtar trajectories from the `minatar` package itself, and NumPy's legacy
RandomState draws, for envs/tests/minatar.rs and experiments/tests/minatar_env.rs.

Made with (versions pinned; the venv lives outside the repository):

    python3 -m venv /tmp/minatar-venv
    /tmp/minatar-venv/bin/pip install minatar==1.0.15 numpy==2.4.6
    /tmp/minatar-venv/bin/python envs/tests/data/record_minatar.py \
        > envs/tests/data/minatar_1.0.15_trajectories.json

(about 5 minutes on this project's 2-core machine; `minatar` pulls in matplotlib and seaborn,
which it imports for rendering only.)

Protocol of each record (the Rust test and `minatar-env rollout` replay exactly this):
`env = Environment(game, sticky_action_prob=p, difficulty_ramping=b)`, `env.seed(seed)`,
`env.reset()`, then for each action `r, t = env.act(a)`, record `r`, `t` and `env.state()`, and
`env.reset()` (no reseeding) when `t`. Records cover every game x 2 seeds x sticky 0.1 (the
default), 0.0 and 0.3 x ramping on and off.

The actions come from a policy that only has to make long and varied episodes (the replay
does not depend on how they were chosen): episodes alternate between a lookahead player (for
each action, a deep copy of the environment, its generator included, plays a few steps; the
action with the best reward that does not end the episode wins; 10 % random) that lives long
enough to ramp the difficulty, and a uniformly random one that ends episodes quickly (in
breakout the long episodes come from a paddle that follows the ball instead, so that all the
bricks get broken and come back). One more seaquest record (seed 3, the defaults) plays
1,000 steps with a lookahead that hunts divers, to surface with 6 of them (at steps 261, 655
and 856; the package's diver count goes to -1 there). The policies' own generator is Python's
`random.Random`, apart from the environment's.

Format: `records[i]` has `game`, `seed`, `sticky`, `ramping`, `actions` (one digit per step),
`rewards` (`[step, reward]` for each nonzero reward), `terminals` (the steps whose `t` is true),
`digests` (per step, 16 hex digits: FNV-1a 64 of `np.packbits(env.state().reshape(-1))`, the
state in (y, x, channel) order, most significant bit first, zero-padded to whole bytes),
`states` (the same packed bytes in hex, for the first FULL_STATES steps), `max_ramp` (the
largest `env.env.difficulty_ramp()` seen; null for breakout and freeway) and `episodes`.
`rng` lists, per seed, calls on a fresh `RandomState(seed)` with their results and the
generator's position (`get_state()[2]`) after each, so the number of 32-bit outputs every
call consumes is checked too; `u32` calls are `randint(0, 2**32, dtype=np.uint32)`, one raw
MT19937 output each.
"""
import copy
import json
import random
import sys

import numpy as np
from minatar import Environment

GAMES = ["asterix", "breakout", "freeway", "seaquest", "space_invaders"]
SEEDS = {
    "asterix": [0, 2024],
    "breakout": [1, 4294967295],
    "freeway": [7, 31337],
    "seaquest": [3, 123456789],
    "space_invaders": [11, 65536],
}
STICKY = [0.1, 0.0, 0.3]
RAMPING = [True, False]
# Steps per record: long enough for several episodes and difficulty ramps; freeway's episodes
# last 2,500 steps, so one of its seeds runs past the first end.
STEPS = {
    "asterix": 1200,
    "breakout": 1000,
    "freeway": [2600, 500],
    "seaquest": 1500,
    "space_invaders": 1200,
}
FULL_STATES = 40
LOOKAHEAD_DEPTH = 8
MASK = (1 << 64) - 1


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & MASK
    return h


def packed(state):
    return np.packbits(state.reshape(-1).astype(np.uint8)).tobytes()


def lookahead_action(env, rng):
    scores = []
    for a in range(6):
        sim = copy.deepcopy(env)
        score, (r, t) = 0.0, sim.act(a)
        score += r
        for d in range(LOOKAHEAD_DEPTH):
            if t:
                break
            b = a if rng.random() < 0.5 else rng.randrange(6)
            r, t = sim.act(b)
            score += r * 0.9 ** (d + 1)
        if t:
            score -= 100.0
        scores.append(score + rng.random() * 1e-3)
    return int(np.argmax(scores))


def breakout_tracker(env, rng):
    """Moves the paddle under the ball's next column (3 % random, to leave loops)."""
    g = env.env
    if rng.random() < 0.03:
        return rng.randrange(6)
    target = g.ball_x + (1 if g.ball_dir in (1, 2) else -1)
    return 0 if g.pos == target else (1 if g.pos > target else 3)


def diver_hunter(env, rng):
    """Seaquest: lookahead that values rescued divers and stays below until the oxygen runs
    low, so that it surfaces with 6 divers now and then (the package's diver count then goes
    to -1)."""
    g = env.env
    scores = []
    for a in range(6):
        best = -1e9
        for _ in range(2):
            sim = copy.deepcopy(env)
            score, (r, t) = 0.0, sim.act(a)
            score += r
            for _ in range(10):
                if t:
                    break
                sg = sim.env
                if sg.diver_count >= 6 or (sg.oxygen < 2 * sg.sub_y + 12 and sg.diver_count > 0):
                    b = 2
                elif rng.random() < 0.5:
                    b = a
                else:
                    b = rng.randrange(6)
                r, t = sim.act(b)
                score += r
            sg = sim.env
            if t:
                score -= 100
            elif sg.diver_count < 0 <= g.diver_count:
                score += 30  # surfaced with 6 divers: the package pays for the oxygen left
            else:
                score += 3 * sg.diver_count
            if sg.diver_count < 6 and sg.sub_y == 0 and not t and g.oxygen > 25:
                score -= 20
            best = max(best, score)
        scores.append(best + rng.random() * 1e-3)
    return max(range(6), key=lambda i: scores[i])


def record(game, seed, sticky, ramping, steps, rng, policy=None):
    env = Environment(game, sticky_action_prob=sticky, difficulty_ramping=ramping)
    env.seed(seed)
    env.reset()
    actions, rewards, terminals, digests, states = [], [], [], [], []
    max_ramp, episodes, min_divers = None, 0, 0
    for k in range(steps):
        if policy is not None:
            a = policy(env, rng)
        elif episodes % 2 == 0 and game == "breakout":
            a = breakout_tracker(env, rng)
        elif episodes % 2 == 0 and rng.random() >= 0.1:
            a = lookahead_action(env, rng)
        else:
            a = rng.randrange(6)
        r, t = env.act(a)
        state = packed(env.state())
        actions.append(str(a))
        if r != 0:
            rewards.append([k, int(r)])
        if t:
            terminals.append(k)
        digests.append("%016x" % fnv1a64(state))
        if k < FULL_STATES:
            states.append(state.hex())
        if game == "seaquest":
            min_divers = min(min_divers, env.env.diver_count)
        ramp = env.env.difficulty_ramp()
        if ramp is not None:
            max_ramp = ramp if max_ramp is None else max(max_ramp, ramp)
        if t:
            episodes += 1
            env.reset()
    return {
        "game": game,
        "seed": seed,
        "sticky": sticky,
        "ramping": ramping,
        "actions": "".join(actions),
        "rewards": rewards,
        "terminals": terminals,
        "digests": "".join(digests),
        "states": states,
        "max_ramp": max_ramp,
        "episodes": episodes,
        "min_divers": min_divers,
    }


def rng_calls(seed):
    r = np.random.RandomState(seed)
    calls = []

    def note(op, low, high, values):
        calls.append(
            {"op": op, "low": low, "high": high, "values": values, "position": int(r.get_state()[2])}
        )

    for _ in range(3):
        note("u32", 0, 2**32, [int(r.randint(0, 2**32, dtype=np.uint32))])
    for _ in range(3):
        note("rand", 0, 1, [float(r.rand())])
    for low, high in [(0, 1), (0, 2), (0, 3), (0, 5), (0, 8), (0, 7), (1, 9), (1, 9), (0, 1)]:
        note("randint", low, high, [int(r.randint(low, high))])
    note("randint", 1, 6, [int(v) for v in r.randint(1, 6, 8)])
    note("rand", 0, 1, [float(v) for v in r.rand(8)])
    # Across the regeneration of the 624 words, twice.
    note("u32", 0, 2**32, [int(v) for v in r.randint(0, 2**32, size=1300, dtype=np.uint32)])
    return {"seed": seed, "calls": calls}


def main():
    rng = random.Random(0)
    records = []
    for game in GAMES:
        for i, seed in enumerate(SEEDS[game]):
            steps = STEPS[game][i] if isinstance(STEPS[game], list) else STEPS[game]
            for sticky in STICKY:
                for ramping in RAMPING:
                    rec = record(game, seed, sticky, ramping, steps, rng)
                    print(
                        f"{game} seed {seed} sticky {sticky} ramping {ramping}: "
                        f"{steps} steps, {rec['episodes']} episodes, max ramp {rec['max_ramp']}, "
                        f"reward {sum(r for _, r in rec['rewards'])}, "
                        f"fewest divers {rec.pop('min_divers')}",
                        file=sys.stderr,
                    )
                    records.append(rec)
    # One seaquest record that surfaces with 6 divers (first at step 261, checked below).
    rec = record("seaquest", 3, 0.1, True, 1000, random.Random(0), policy=diver_hunter)
    min_divers = rec.pop("min_divers")
    print(f"seaquest diver hunter: fewest divers {min_divers}", file=sys.stderr)
    assert min_divers < 0, "the diver hunter never surfaced with 6 divers"
    records.append(rec)
    out = {
        "package": "minatar 1.0.15",
        "numpy": np.__version__,
        "full_states": FULL_STATES,
        "rng": [rng_calls(s) for s in [0, 1, 5489, 12345, 4294967295]],
        "records": records,
    }
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
