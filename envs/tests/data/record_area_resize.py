"""Records OpenCV's INTER_AREA resize of max-pooled Atari screens for envs/src/atari/downsample.rs.

Made with: python -m venv v && v/bin/pip install ale-py==0.11.2 gymnasium==1.2.2 numpy==2.2.6 \
               opencv-python-headless==4.14.0.94 && v/bin/python record_area_resize.py
(OpenCV 5.0.0 writes the same bytes.)
It writes area_resize_opencv.bin: for each case, in order, the older screen (210x160 bytes),
the newer screen (210x160) and cv2.resize(max(older, newer), (84, 84), INTER_AREA) (84x84),
all row-major uint8, nothing else. Cases: Breakout and SpaceInvaders (which flickers, so the
two screens differ) after 300 random steps with ALE's grayscale, then uniform noise (every
pixel an edge: the worst case for rounding).
"""
import pathlib

import ale_py
import cv2
import numpy as np

SIZE = 84


def game_screens(game, seed):
    ale = ale_py.ALEInterface()
    ale.setInt("random_seed", seed)
    ale.setFloat("repeat_action_probability", 0.0)
    ale.loadROM(ale_py.roms.get_rom_path(game))
    actions = ale.getMinimalActionSet()
    rng = np.random.default_rng(seed)
    for _ in range(300):
        ale.act(actions[rng.integers(len(actions))])
        if ale.game_over():
            ale.reset_game()
    older = ale.getScreenGrayscale()
    ale.act(actions[0])
    newer = ale.getScreenGrayscale()
    return older, newer


def noise_screens(seed):
    rng = np.random.default_rng(seed)
    return tuple(rng.integers(0, 256, (210, 160), dtype=np.uint8) for _ in range(2))


def main():
    cases = [game_screens("breakout", 1), game_screens("space_invaders", 2), noise_screens(3)]
    out = bytearray()
    for older, newer in cases:
        pooled = np.maximum(older, newer)
        resized = cv2.resize(pooled, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        assert resized.shape == (SIZE, SIZE) and resized.dtype == np.uint8
        out += older.tobytes() + newer.tobytes() + resized.tobytes()
    path = pathlib.Path(__file__).with_name("area_resize_opencv.bin")
    path.write_bytes(bytes(out))
    print(f"wrote {path} ({len(out)} bytes, OpenCV {cv2.__version__})")


if __name__ == "__main__":
    main()
