"""mcubert: BERT on microcontrollers (Yang et al., ICCAD 2024): clustered low-rank embeddings and
MCU-friendly tiled scheduling."""

from .demo import run_bench, run_demo

__all__ = ["run_bench", "run_demo"]
