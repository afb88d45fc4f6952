"""mcubert: BERT on microcontrollers (Yang et al., ICCAD 2024): clustered low-rank embeddings and
MCU-friendly tiled scheduling."""
