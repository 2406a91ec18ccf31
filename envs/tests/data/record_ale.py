"""Records raw ALE trajectories from ale-py 0.12.1 itself for envs/tests/ale_fixture.rs.

Made with (the version is pinned; the venv lives in the cache, outside the repository):

    python3 -m venv ~/.cache/fire-rl/ale-py-0.12.1-venv
    ~/.cache/fire-rl/ale-py-0.12.1-venv/bin/pip install ale-py==0.12.1 numpy
    ~/.cache/fire-rl/ale-py-0.12.1-venv/bin/python envs/tests/data/record_ale.py \
        > envs/tests/data/ale_0.12.1_trajectories.json

Protocol (the Rust test replays exactly this): per game, an emulator with sticky actions off
(repeat_action_probability 0), random_seed 0, frame_skip 1 and no episode cap, loaded from
ale-py's own ROM, then reset_game(). Each agent step takes the next action of a deterministic
sequence over the game's minimal action set (a 64-bit LCG, below), holds it for 4 frames
summing the rewards, and stops holding early when the game is over. After each step it
records the summed reward, lives(), game_over() and the CRC-32 of the screen as palette
indices, then ALE's grayscale, then RGB (one CRC over the three, concatenated); at game over it
calls reset_game(). The CRC of the screen after the first reset comes first.
"""
import json
import sys
import zlib

import ale_py
from ale_py import ALEInterface, LoggerMode, roms

GAMES = ["Breakout", "Pong", "Asterix", "BeamRider", "DemonAttack"]
STEPS = 3000
FRAME_SKIP = 4
MASK = (1 << 64) - 1


def rom_name(game):
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(game))


def screen_crc(ale):
    crc = zlib.crc32(ale.getScreen().tobytes())
    crc = zlib.crc32(ale.getScreenGrayscale().tobytes(), crc)
    return zlib.crc32(ale.getScreenRGB().tobytes(), crc)


def record(game):
    ale = ALEInterface()
    ale.setInt("random_seed", 0)
    ale.setFloat("repeat_action_probability", 0.0)
    ale.setInt("frame_skip", 1)
    ale.setInt("max_num_frames_per_episode", 0)
    ale.loadROM(roms.get_rom_path(rom_name(game)))
    ale.reset_game()
    actions = list(ale.getMinimalActionSet())
    x = 0x9E3779B97F4A7C15
    rewards, lives, game_overs, crcs = [], [], [], [screen_crc(ale)]
    for t in range(STEPS):
        x = (x * 6364136223846793005 + 1442695040888963407) & MASK
        action = actions[(x >> 33) % len(actions)]
        reward = 0
        for _ in range(FRAME_SKIP):
            reward += ale.act(action)
            if ale.game_over():
                break
        over = ale.game_over()
        rewards.append(int(reward))
        lives.append(int(ale.lives()))
        crcs.append(screen_crc(ale))
        if over:
            game_overs.append(t)
            ale.reset_game()
    return {
        "rom": rom_name(game),
        "actions": [a.value for a in actions],
        "reward": rewards,
        "lives": lives,
        "game_over_steps": game_overs,
        "screen_crc32": "".join(f"{c:08x}" for c in crcs),
    }


def main():
    ALEInterface.setLoggerMode(LoggerMode.Error)
    assert ale_py.__version__ == "0.12.1", ale_py.__version__
    out = {
        "ale_py": ale_py.__version__,
        "steps": STEPS,
        "frame_skip": FRAME_SKIP,
        "games": {game: record(game) for game in GAMES},
    }
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
