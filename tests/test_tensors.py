import numpy as np
import pytest
import torch

from mlkit import tensors
from mlkit.errors import BackendUnavailable, InputError, NotFittedError


def test_device_choice():
    assert tensors.resolve_device("cpu").type == "cpu"
    assert tensors.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="unknown device"):
        tensors.resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_absent_is_backend_unavailable():
    with pytest.raises(BackendUnavailable, match="CUDA requested but not available"):
        tensors.resolve_device("cuda")


def test_seeding_is_reproducible():
    tensors.seed_everything(123)
    a = (np.random.rand(3), torch.rand(3))
    tensors.seed_everything(123)
    b = (np.random.rand(3), torch.rand(3))
    np.testing.assert_array_equal(a[0], b[0])
    assert torch.equal(a[1], b[1])


def test_runtime_sets_everything():
    old = torch.get_num_threads()
    try:
        dev = tensors.runtime("cpu", seed=5, threads=1)
        assert dev.type == "cpu" and torch.get_num_threads() == 1
        a = torch.rand(2)
        tensors.runtime("cpu", seed=5, threads=1)
        assert torch.equal(a, torch.rand(2))
    finally:
        torch.set_num_threads(old)


def test_threads():
    old = torch.get_num_threads()
    try:
        assert tensors.set_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(old)
    with pytest.raises(InputError):
        tensors.set_threads(-2)


class Tiny(torch.nn.Module):
    def __init__(self, d=4):
        super().__init__()
        self.lin = torch.nn.Linear(d, 2)
        self.norm = torch.nn.LayerNorm(2)


def test_checkpoint_round_trip(tmp_path):
    m = Tiny()
    p = tmp_path / "m.safetensors"
    tensors.save_checkpoint(p, m.state_dict(), method="demo", config={"d": 4})
    state, meta = tensors.load_checkpoint(p, method="demo", max_format_version=1)
    assert meta["method"] == "demo" and meta["config"] == {"d": 4} and "mlkit_version" in meta
    for k, v in m.state_dict().items():
        assert torch.equal(state[k], v)
    m2 = Tiny()
    tensors.load_state_dict_checked(m2, state)
    assert torch.equal(m2.lin.weight, m.lin.weight)
    with pytest.raises(InputError, match="another method"):
        tensors.load_checkpoint(p, method="other")


def test_checkpoint_safetensors_reference(tmp_path):
    from safetensors.torch import load_file

    m = Tiny()
    p = tmp_path / "m.safetensors"
    tensors.save_checkpoint(p, m.state_dict(), method="demo")
    ref = load_file(str(p))
    assert set(ref) == set(m.state_dict())


def test_foreign_safetensors_is_not_fitted(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(NotFittedError, match="not an mlkit checkpoint"):
        tensors.load_checkpoint(tmp_path / "x.safetensors")


def test_state_dict_mismatch_names_keys():
    m = Tiny()
    sd = dict(m.state_dict())
    sd["extra.weight"] = torch.zeros(1)
    del sd["lin.bias"]
    sd["norm.weight"] = torch.zeros(3)
    with pytest.raises(InputError, match=r"1 missing \(lin.bias\).*1 unexpected \(extra.weight\).*wrong shapes"):
        tensors.load_state_dict_checked(Tiny(), sd)
    # a key map renames old-style names (e.g. LayerNorm.gamma -> weight)
    old = {k.replace("norm.weight", "norm.gamma"): v for k, v in m.state_dict().items()}
    tensors.load_state_dict_checked(Tiny(), old, key_map=lambda k: k.replace("gamma", "weight"))


def test_pt_files_weights_only(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pt")
    assert torch.equal(tensors.load_torch_file(tmp_path / "ok.pt")["w"], torch.ones(2))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match="not a loadable weights file"):
        tensors.load_torch_file(tmp_path / "evil.pt")


def test_batches_cover_range():
    assert [(s.start, s.stop) for s in tensors.batches(10, 4)] == [(0, 4), (4, 8), (8, 10)]
    assert list(tensors.batches(0, 4)) == []


def test_checks():
    tensors.check_finite(np.ones(3), "x")
    with pytest.raises(InputError, match=r"x has non-finite values.*first at index \(1, 0\)"):
        tensors.check_finite(np.array([[1.0], [np.nan]]), "x")
    with pytest.raises(InputError, match=r"expected \(N, 3\), got \(4, 2\)"):
        tensors.check_shape(np.zeros((4, 2)), (None, 3), "points")
    tensors.check_shape(torch.zeros(5, 3), (None, 3), "points")
    with pytest.raises(InputError, match="sigma must be > 0"):
        tensors.check_positive(0.0, "sigma")
    with pytest.raises(InputError, match="out of range"):
        tensors.check_range(17, 1, 16, "k-max")
    with pytest.raises(InputError, match="wrong dtype"):
        tensors.check_dtype(np.zeros(2, np.int32), "f", "features")
    with pytest.raises(InputError, match="empty"):
        tensors.check_nonempty([], "labels")


def test_meter_sees_allocation():
    with tensors.Meter() as m:
        x = np.ones(64 * 2**20 // 8)  # 64 MiB
        x[::512] += 1
        del x
    assert m.seconds > 0
    assert m.peak_rss_delta > 32 * 2**20


def test_meter_sees_a_spike_its_sampler_misses():
    """Sampling off (a 10 s interval): the kernel's high-water mark still catches the spike, when it is
    the highest the process has been. Sized above the current mark for that reason."""
    import subprocess
    import sys

    code = ("import numpy as np; from mlkit import tensors\n"
            "extra = (tensors.process_peak_rss() - tensors._rss_bytes()) // 8\n"
            "with tensors.Meter(interval=10.0) as m:\n"
            "    x = np.ones(extra + 8 * 2**20); del x\n"
            "print(m.peak_rss_delta)")
    delta = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert delta > 60 * 2**20


def test_median_time():
    calls = []
    t = tensors.median_time(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and t >= 0


def test_process_peak_rss_keeps_a_freed_spike():
    """In a fresh process (Linux keeps the mark across fork + exec, so the spike is sized to rise
    64 MiB above whatever mark the process starts with): touched, freed, still on the mark."""
    import subprocess
    import sys

    code = ("import numpy as np; from mlkit.tensors import _rss_bytes, process_peak_rss; "
            "b = process_peak_rss(); s = np.ones((b - _rss_bytes()) // 8 + 8 * 2**20); del s; "
            "print(b, process_peak_rss(), _rss_bytes())")
    before, after, now = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                  check=True).stdout.split())
    assert after >= before + 60 * 2**20                   # the freed spike is still on the mark
    assert now < after - 30 * 2**20                       # while the current set has dropped back
