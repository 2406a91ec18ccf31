"""How much the FIRE reference's frame pipeline differs from ours, pixel by pixel.

The reference (isaac7778/FIRE rl/dqn/cleanrl/dqn_atari.py) max-pools the last two RGB frames
of a step per channel (SB3 MaxAndSkipEnv), area-resizes the RGB frame to 84x84 (Gymnasium
ResizeObservation: cv2.resize INTER_AREA) and then converts to gray (GrayScaleObservation:
cv2.cvtColor RGB2GRAY). Ours converts each frame to ALE's grayscale, max-pools the two gray
frames and area-resizes the result (envs/src/atari/downsample.rs).

OpenCV is not installed here, so both OpenCV operations are written out from their
definitions: INTER_AREA when shrinking by a non-integer factor is the mean of the source
pixels weighted by how much of each the destination cell covers, rounded to nearest (ties to
even, as cvRound); RGB2GRAY on uint8 is (4899 R + 9617 G + 1868 B + 8192) >> 14.

Input: files written by `atari-env record` (per record: two RGB screens 210x160x3, the same
two screens in ALE's grayscale 210x160, our 84x84 frame). Usage:
    python measure_resize_order.py /tmp/Asterix.frames [...]
"""

import sys

import numpy as np

H, W, OUT = 210, 160, 84
RGB, GRAY, FRAME = H * W * 3, H * W, OUT * OUT
RECORD = 2 * RGB + 2 * GRAY + FRAME


def area_weights(src: int, dst: int) -> np.ndarray:
    """[dst, src]: the share of each source pixel in each destination cell (rows sum to 1)."""
    scale = src / dst
    w = np.zeros((dst, src))
    for i in range(dst):
        lo, hi = i * scale, (i + 1) * scale
        for s in range(int(np.floor(lo)), min(int(np.ceil(hi)), src)):
            w[i, s] = max(0.0, min(hi, s + 1) - max(lo, s))
    return w / scale


WY, WX = area_weights(H, OUT), area_weights(W, OUT)


def inter_area(img: np.ndarray) -> np.ndarray:
    """cv2.resize(img, (84, 84), interpolation=cv2.INTER_AREA) for uint8 [H, W] or [H, W, C]."""
    x = img.astype(np.float64)
    if x.ndim == 2:
        out = WY @ x @ WX.T
    else:
        out = np.stack([WY @ x[..., c] @ WX.T for c in range(x.shape[2])], axis=-1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def rgb2gray(img: np.ndarray) -> np.ndarray:
    """cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) for uint8."""
    x = img.astype(np.int64)
    return ((4899 * x[..., 0] + 9617 * x[..., 1] + 1868 * x[..., 2] + 8192) >> 14).astype(np.uint8)


def stats(a: np.ndarray, b: np.ndarray) -> str:
    d = np.abs(a.astype(np.int64) - b.astype(np.int64))
    return (
        f"mean |diff| {d.mean():.3f}, pixels differing {100 * (d > 0).mean():.2f} %, "
        f"by more than 2: {100 * (d > 2).mean():.3f} %, max {d.max()}"
    )


def main() -> None:
    for path in sys.argv[1:]:
        raw = np.fromfile(path, dtype=np.uint8)
        n = raw.size // RECORD
        recs = raw[: n * RECORD].reshape(n, RECORD)
        at = 0
        rgb0 = recs[:, at : at + RGB].reshape(n, H, W, 3); at += RGB
        rgb1 = recs[:, at : at + RGB].reshape(n, H, W, 3); at += RGB
        g0 = recs[:, at : at + GRAY].reshape(n, H, W); at += GRAY
        g1 = recs[:, at : at + GRAY].reshape(n, H, W); at += GRAY
        ours = recs[:, at : at + FRAME].reshape(n, OUT, OUT)

        reference = np.stack([rgb2gray(inter_area(np.maximum(a, b))) for a, b in zip(rgb0, rgb1)])
        # Our pipeline redone here (checks this script's INTER_AREA against the Rust code).
        ours_again = np.stack([inter_area(np.maximum(a, b)) for a, b in zip(g0, g1)])
        # One change at a time, starting from ours.
        cv_gray_then = np.stack(
            [inter_area(np.maximum(rgb2gray(a), rgb2gray(b))) for a, b in zip(rgb0, rgb1)]
        )
        pool_rgb_gray_then = np.stack(
            [inter_area(rgb2gray(np.maximum(a, b))) for a, b in zip(rgb0, rgb1)]
        )
        print(f"{path}: {n} frames")
        print(f"  this script's INTER_AREA vs ours (Rust):        {stats(ours_again, ours)}")
        print(f"  ALE gray vs cv2 gray, full screens:              {stats(g1, rgb2gray(rgb1))}")
        print(f"  ours vs ours with cv2's gray formula:            {stats(ours, cv_gray_then)}")
        print(f"  + max-pool in RGB (per channel) before gray:     {stats(cv_gray_then, pool_rgb_gray_then)}")
        print(f"  + resize before gray (the reference's order):    {stats(pool_rgb_gray_then, reference)}")
        print(f"  ours vs the reference, all differences at once:  {stats(ours, reference)}")


if __name__ == "__main__":
    main()
