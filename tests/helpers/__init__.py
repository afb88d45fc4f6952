"""Tiny datasets in real on-disk layouts for the tests."""

from pathlib import Path

import numpy as np


def write_label_video_frames(folder: Path, n: int = 6, h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    """A DAVIS-like label sequence: moving rectangles with ids 0..k, as PNG masks."""
    from mlkit.codecs import masks

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    frames = np.zeros((n, h, w), dtype=np.uint8)
    for t in range(n):
        for obj in range(1, 4):
            y, x = (obj * 5 + t) % (h - 6), (obj * 7 + 2 * t) % (w - 6)
            frames[t, y:y + 6, x:x + 6] = obj
        frames[t] ^= (rng.random((h, w)) < 0.02).astype(np.uint8) * 7  # some speckle ids
        masks.write(frames[t], folder / f"{t:05d}.png")
    return frames
