import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import signal

from mlkit.codecs import audio
from mlkit.errors import InputError


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.int16, st.tuples(st.integers(1, 400), st.integers(1, 3))),
       st.sampled_from(["wav", "flac"]), st.sampled_from([8000, 16000, 44100]))
def test_pcm16_round_trip_exact(x, fmt, sr):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"a.{fmt}"
        audio.write(x, sr, p)
        y, sr2 = audio.read(p, dtype="int16")
    assert sr2 == sr
    np.testing.assert_array_equal(y.reshape(x.shape), x)


@settings(max_examples=20, deadline=None)
@given(hnp.arrays(np.float32, st.integers(1, 300), elements=st.floats(-1, 1, width=32)))
def test_float_wav_round_trip_exact(x):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "a.wav"
        audio.write(x, 16000, p)
        y, _ = audio.read(p)
    np.testing.assert_array_equal(y, x)


def test_pcm24_flac_exact(tmp_path):
    x = (np.random.default_rng(0).integers(-2**23, 2**23, (500, 2)) << 8).astype(np.int32)
    audio.write(x, 48000, tmp_path / "a.flac", subtype="PCM_24")
    y, _ = audio.read(tmp_path / "a.flac", dtype="int32")
    np.testing.assert_array_equal(y, x)


def test_mono_mixdown():
    x = np.stack([np.ones(10), -np.ones(10) * 0.5], axis=1).astype(np.float32)
    np.testing.assert_allclose(audio.to_mono(x), 0.25)


@pytest.mark.parametrize("sr_in,sr_out", [(44100, 16000), (16000, 48000), (22050, 16000)])
def test_resampling_against_references(sr_in, sr_out):
    # a band-limited signal (two tones well under both Nyquist limits), 1 s long
    t_in = np.arange(sr_in) / sr_in
    f1, f2 = 440.0, 1870.0
    x = 0.5 * np.sin(2 * np.pi * f1 * t_in) + 0.3 * np.cos(2 * np.pi * f2 * t_in)
    y = audio.resample(x, sr_in, sr_out)
    assert len(y) == int(np.ceil(len(x) * sr_out / sr_in))
    t_out = np.arange(len(y)) / sr_out
    exact = 0.5 * np.sin(2 * np.pi * f1 * t_out) + 0.3 * np.cos(2 * np.pi * f2 * t_out)
    mid = slice(len(y) // 10, -len(y) // 10)  # away from the filter's edge transients
    assert np.max(np.abs(y[mid] - exact[mid])) < 2e-3
    # scipy's FFT resampler (periodic, exact for this whole-period signal) as a second reference
    ref = signal.resample(x, len(y))
    assert np.max(np.abs(y[mid] - ref[mid])) < 2e-3


def test_read_resamples_and_mixes(tmp_path):
    sr = 32000
    t = np.arange(sr) / sr
    x = np.stack([np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 300 * t)], 1).astype(np.float32) * 0.5
    sf.write(tmp_path / "s.wav", x, sr, subtype="FLOAT")
    y, sr2 = audio.read(tmp_path / "s.wav", mono=True, sr=16000)
    assert sr2 == 16000 and y.ndim == 1 and len(y) == 16000


def test_corrupt_audio(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(InputError, match="x.wav: not readable audio"):
        audio.read(tmp_path / "x.wav")
