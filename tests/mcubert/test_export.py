"""C export of an int8 BERT (mlkit.mcubert.export): the arrays parsed back from model_data.c equal
what the int8 simulation computes (its own memoised weights, biases, tables and every multiplier
it asked for), an integer forward written here on the parsed arrays alone matches ``simulate`` bit
for bit, the header's arena and offsets match the plan, the files compile with
``-Wall -Wextra -Werror`` and a C program reads them back, a compressed embedding exports its
clusters, and the export is deterministic, all-or-nothing and refuses bad input."""

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

import mlkit.mcubert.simulate as simulate_mod
from mlkit.errors import InputError, OutputError
from mlkit.mcubert.compress import compress_embedding
from mlkit.mcubert.config import BertConfig, expected_shapes
from mlkit.mcubert.embedding import ClusteredLowRank
from mlkit.mcubert.export import FILES, export_c, render_c, with_dense_embedding
from mlkit.mcubert.fixedpoint import (
    isqrt,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_64,
    rounding_divide_by_pot,
)
from mlkit.mcubert.model import BertModel
from mlkit.mcubert.report import tensor_bytes
from mlkit.mcubert.schedule import baseline_schedule, plan, tiled_schedule
from mlkit.mcubert.simulate import calibrate, simulate

CFG = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                 max_position_embeddings=32)
L = 12
CTYPES = {"int8_t": np.int8, "int16_t": np.int16, "int32_t": np.int32, "int64_t": np.int64, "uint16_t": np.uint16,
          "uint32_t": np.uint32, "float": np.float32}
I32 = (-(1 << 31), (1 << 31) - 1)


def random_state(cfg: BertConfig, seed: int) -> dict:
    """Random weights; LayerNorm and biases moved away from their 1/0 initial values."""
    torch.manual_seed(seed)
    sd = BertModel(cfg).state_dict()
    g = torch.Generator().manual_seed(seed + 1)
    return {k: v + 0.2 * torch.randn(v.shape, generator=g) if ("LayerNorm" in k or k.endswith("bias")) else v
            for k, v in sd.items()}


@cache
def setup(act: str = "gelu", per_channel: bool = True, compressed: bool = False):
    cfg = replace(CFG, hidden_act=act)
    sd = random_state(cfg, 3)
    if compressed:       # 4 clusters; the last one cut to rank 0 (its tokens embed to zero vectors)
        cfg, sd, _, _ = compress_embedding(cfg, sd, method="cluster-svd", ratio=3.0, clusters=4, seed=0)
        n = cfg.embedding_factors[-1][0]
        cfg = replace(cfg, embedding_factors=(*cfg.embedding_factors[:-1], (n, 0)))
        sd = {**sd, "embeddings.word_embeddings.tables.3": torch.zeros(n, 0),
              "embeddings.word_embeddings.projections.3": torch.zeros(0, cfg.hidden_size)}
    rng = np.random.default_rng(11)
    calib = [rng.integers(0, cfg.vocab_size, n) for n in (L, 20, 16, 9)]
    q = calibrate(with_dense_embedding(sd, cfg), cfg, calib, per_channel=per_channel)
    return cfg, sd, q


def tiled_plan(cfg):
    return plan(tiled_schedule(cfg, L, 5, "head-outer"))


@cache
def exported(act: str = "gelu", per_channel: bool = True, compressed: bool = False):
    cfg, sd, q = setup(act, per_channel, compressed)
    files, manifest = render_c(sd, cfg, q, tiled_plan(cfg))
    return files, manifest


# ---------------------------------------------------------------------------- an independent parser
def parse_arrays(c_text: str) -> dict[str, np.ndarray]:
    """``const <type> <name>[<n>] <ALIGN> = { ... };`` -> {name: values}, checked against <n>."""
    out = {}
    for m in re.finditer(r"^const (\w+) (\w+)\[(\d+)\] \w+ = \{(.*?)\};", c_text, re.M | re.S):
        ctype, name, n, body = m.groups()
        tokens = [t.strip() for t in body.replace("\n", " ").split(",") if t.strip()]
        if ctype == "float":
            vals = np.array([float(t.rstrip("f")) for t in tokens], np.float32)
        else:
            vals = np.array([int(re.sub(r"(LL|u)$", "", t)) for t in tokens], np.int64)
            info = np.iinfo(CTYPES[ctype])
            assert vals.min() >= info.min and vals.max() <= info.max, name
        assert len(vals) == int(n), name
        out[name] = vals
    return out


def parse_defines(h_text: str) -> dict[str, int]:
    d = {k: int(v) for k, v in re.findall(r"^#define (\w+) \(?(-?\d+)\)?$", h_text, re.M)}
    d |= {k: int(v) for k, v in re.findall(r"^\s+(\w+) = (\d+),$", h_text, re.M)}          # the enum
    return d


def arrays_by_name(files, manifest) -> dict[str, np.ndarray]:
    """Parsed arrays reshaped as the manifest says, after checking dtype, shape and bytes."""
    parsed = parse_arrays(files["model_data.c"].decode())
    assert set(parsed) == {a["c_name"] for a in manifest["arrays"]}
    out = {}
    for a in manifest["arrays"]:
        v = parsed[a["c_name"]]
        n = math.prod(a["shape"])
        assert len(v) == max(n, 1)
        assert a["bytes"] == len(v) * np.dtype(a["dtype"]).itemsize
        ctype = re.search(rf"const (\w+) {a['c_name']}\[", files["model_data.h"].decode())[1]
        assert CTYPES[ctype] == np.dtype(a["dtype"]), a["c_name"]
        out[a["c_name"]] = v.reshape(a["shape"])
    return out


# ---------------------------------------------------------------------------- against the simulator
def harvest(cfg, sd, q, sp):
    """Run the simulator's int8 kernel once; its memo (weights, biases, tables, LayerNorm constants,
    linear multipliers) and every (mult, shift) it asked ``_multipliers`` for."""
    seen = set()
    real_multipliers = simulate_mod._multipliers

    def recording(real):
        m, sh = real_multipliers(real)
        seen.add((tuple(np.ravel(m).tolist()), tuple(np.ravel(sh).tolist())))
        return m, sh

    kernel = simulate_mod._Int8(simulate_mod._Weights(with_dense_embedding(sd, cfg), cfg), q)
    ids = np.random.default_rng(5).integers(0, cfg.vocab_size, L).astype(np.int32)
    simulate_mod._multipliers = recording
    try:
        simulate_mod._run(sp, np.full(sp.arena_bytes, 0xFF, np.uint8), kernel, ids, np.zeros(L, np.int32))
    finally:
        simulate_mod._multipliers = real_multipliers
    return kernel.cache, seen


@pytest.mark.parametrize("per_channel", [True, False])
def test_arrays_equal_what_the_int8_simulation_uses(per_channel):
    cfg, sd, q = setup("gelu", per_channel)
    files, man = exported("gelu", per_channel)
    A = arrays_by_name(files, man)
    memo, multipliers = harvest(cfg, sd, q, tiled_plan(cfg))
    by_source = {a["source"]: a["c_name"] for a in man["arrays"]}
    checked = set()

    def same(name, want):
        assert np.array_equal(A[name], np.asarray(want).reshape(A[name].shape)), name
        checked.add(name)

    for key, val in memo.items():
        if key[0] == "w":                          # int8 weights, kept transposed by the simulator
            same(by_source[key[1] + ".weight"], val.T)
        elif key[0] == "b":
            same(by_source[key[1] + ".bias"], val)
        elif key[0] == "m":                        # per output channel, computed per column block
            w, c0 = key[1], key[4]
            lin = next(x for lay in man["ops"]["layers"] for x in lay.values() if isinstance(x, dict)
                       and x.get("weight") == by_source[w + ".weight"])
            for part, v in zip(("mult", "shift"), val, strict=True):
                assert np.array_equal(A[lin[part]][c0:c0 + len(v)], v), (w, part)
                checked.add(lin[part])
        elif key[0] == "exp":
            same(f"mcubert_{key[1].split('.')[0]}_softmax_exp", val)          # key: ("exp", "l<i>.scores")
        elif key[0] == "act":
            same(f"mcubert_{key[3].split('.')[0]}_ffn_act_table", val)      # ("act", fn, in tag, out tag)
        elif key[0] == "ln":
            G, B, eps = val
            same(by_source[key[1] + ".weight"], G)
            same(by_source[key[1] + ".bias"], B)
            same(f"mcubert_{key[1].replace('.', '_')}_eps", eps)
    # embedding tables: the simulator quantises the rows it gathers; quantise whole tables here
    for n in ("word", "position", "token_type"):
        key = f"embeddings.{n}_embeddings.weight"
        s = np.asarray(q.weight[key], np.float64)
        same(by_source[key], np.clip(np.rint(sd[key].double().numpy() / s), -127, 127))
    # the ADD and attention-product multipliers: pairs the simulator computed
    requant = [a for a in man["arrays"] if a["role"] == "requant" and a["c_name"] not in checked
               and a["c_name"].endswith("_mult")]
    assert len(requant) == cfg.num_hidden_layers * (2 + 2 * 3) + 4
    for a in requant:
        sh = a["c_name"][:-len("mult")] + "shift"
        assert (tuple(A[a["c_name"]].ravel().tolist()), tuple(A[sh].ravel().tolist())) in multipliers, a["c_name"]
        checked |= {a["c_name"], sh}
    left = {a["c_name"] for a in man["arrays"]} - checked
    # what remains is checked by the integer forward below: exponents, LayerNorm frac, output scale
    assert {a["role"] for a in man["arrays"] if a["c_name"] in left} <= {"act_exp", "layernorm", "output"}
    assert all(n.endswith(("_exp", "_frac", "output_scale")) for n in left)
    # one scale per column or per tensor, as calibrated
    word = next(a for a in man["arrays"] if a["source"] == "embeddings.word_embeddings.weight")
    assert word["granularity"] == ("per column" if per_channel else "per tensor")


class IntegerBert:
    """The int8 forward on the exported arrays only (reads the manifest's op map for names)."""

    def __init__(self, A, man, cfg):
        self.A, self.ops, self.cfg = A, man["ops"], cfg

    def exp(self, name):
        return 0 if name is None else self.A[name].astype(np.int64)

    def requant(self, acc, op, wide=False):
        m, sh = self.A[op["mult"]].ravel(), self.A[op["shift"]].ravel()
        if wide:
            return multiply_by_quantized_multiplier_64(acc, m, sh)
        return multiply_by_quantized_multiplier(acc, m, sh)

    def linear(self, x, lin):
        e = self.exp(lin["in_exp"])
        W = self.A[lin["weight"]].astype(np.int64)
        acc = (x.astype(np.int64) << e) @ W.T + self.A[lin["bias"]]
        if not np.any(e):
            return np.clip(self.requant(np.clip(acc, *I32), lin), -128, 127)
        return np.clip(self.requant(acc, lin, wide=True), -128, 127)

    def add(self, xs: dict, op):
        acc = sum(self.requant(x.astype(np.int64) << 20, op[f"in_{n}"]) for n, x in xs.items())
        return np.clip(self.requant(acc, op["out"]), -128, 127)

    def layernorm(self, x8, ln):
        D = x8.shape[1]
        x = x8.astype(np.int64) << self.exp(ln["in_exp"])
        frac = int(self.A[ln["frac"]].item())
        S1 = x.sum(1, keepdims=True)
        var = D * (x * x).sum(1, keepdims=True) - S1 * S1 + int(self.A[ln["eps"]].item())
        sd = np.maximum(isqrt(var << 2 * frac), 1)
        num = ((D * x - S1) * self.A[ln["gamma"]] << frac) + self.A[ln["beta"]] * sd
        den = sd << 12
        return np.clip((2 * num + den) // (2 * den), -128, 127)

    def word_codes(self, ids):
        emb, A = self.ops["embeddings"], self.A
        if "word" not in emb:
            return A["mcubert_embeddings_word_embeddings_weight"][ids].astype(np.int64)
        w = emb["word"]
        off = A[w["offsets"]]
        out = np.zeros((len(ids), self.cfg.hidden_size), np.int64)
        for i, t in enumerate(ids):
            c = int(np.searchsorted(off, t, side="right")) - 1
            if w["tables"][c] is None:
                continue
            acc = A[w["tables"][c]][t - off[c]].astype(np.int64) @ A[w["projections"][c]].astype(np.int64)
            out[i] = np.clip(multiply_by_quantized_multiplier(acc, A[w["mult"]][c], A[w["shift"]][c]), -127, 127)
        return out

    def __call__(self, ids):
        A, emb, cfg = self.A, self.ops["embeddings"], self.cfg
        n = len(ids)
        x = self.add({"word": self.word_codes(ids), "position": A["mcubert_embeddings_position_embeddings_weight"][:n],
                      "token_type": A["mcubert_embeddings_token_type_embeddings_weight"][np.zeros(n, int)]}, emb["add"])
        x = self.layernorm(x, emb["layernorm"])
        dh = cfg.head_dim
        for lay in self.ops["layers"]:
            q, k, v = (self.linear(x, lay[p]) for p in ("query", "key", "value"))
            ctx = np.zeros_like(x)
            E = A[lay["softmax_exp"]].astype(np.int64)
            for h in range(cfg.num_attention_heads):
                c = slice(h * dh, (h + 1) * dh)
                s = np.clip(self.requant(q[:, c] @ k[:, c].T, lay["scores"]), -128, 127)
                e = E[s.max(1, keepdims=True) - s]
                tot = e.sum(1, keepdims=True)
                p = np.clip((e * 512 + tot) // (2 * tot) - 128, -128, 127)          # round(256 e / tot) - 128
                ctx[:, c] = np.clip(self.requant((p + 128) @ v[:, c], lay["context"]), -128, 127)
            a = self.linear(ctx, lay["attn_out"])
            y = self.layernorm(self.add({"proj": a, "res": x}, lay["attn_res"]), lay["attn_ln"])
            f = A[lay["ffn_act"]["table"]].astype(np.int64)[self.linear(y, lay["ffn_in"]) + 128]
            f = np.clip(rounding_divide_by_pot(f, self.exp(lay["ffn_act"]["out_exp"])), -128, 127)
            o = self.linear(f, lay["ffn_out"])
            x = self.layernorm(self.add({"proj": o, "res": y}, lay["ffn_res"]), lay["out"])
        return x


@pytest.mark.parametrize("act,per_channel", [("gelu", True), ("gelu_new", False), ("relu", True)])
def test_the_exported_arrays_alone_reproduce_simulate_bit_for_bit(act, per_channel):
    cfg, sd, q = setup(act, per_channel)
    files, man = exported(act, per_channel)
    A = arrays_by_name(files, man)
    if per_channel:      # the 16x8 kernels (per-column input exponents) are exercised
        assert any(x["kernel"] == "16x8" for lay in man["ops"]["layers"] for x in lay.values()
                   if isinstance(x, dict) and "kernel" in x)
    bert = IntegerBert(A, man, cfg)
    rng = np.random.default_rng(21)
    s_out = np.asarray(q.act[man["quant"]["output_tag"]], np.float64)
    for sp in (tiled_plan(cfg), plan(baseline_schedule(cfg, L))):
        ids = rng.integers(0, cfg.vocab_size, L)
        ref = simulate(sp, sd, ids, quant=q)
        mine = bert(ids)
        assert np.array_equal(mine, np.rint(ref.astype(np.float64) / s_out)), sp.schedule.label
        np.testing.assert_allclose(mine * A["mcubert_output_scale"], ref, rtol=1e-6)


# ---------------------------------------------------------------------------- the header
@pytest.mark.parametrize("kind", ["tiled", "tile-outer", "baseline"])
def test_header_defines_and_offsets_match_the_plan(kind):
    cfg, sd, q = setup()
    sp = plan({"tiled": lambda: tiled_schedule(cfg, L, 5), "tile-outer": lambda: tiled_schedule(cfg, L, 4, "tile-outer"),
               "baseline": lambda: baseline_schedule(cfg, L)}[kind]())
    files, man = render_c(sd, cfg, q, sp, prefix="tinybert")
    h = files["model_data.h"].decode()
    d = parse_defines(h)
    assert d["TINYBERT_ARENA_SIZE"] == sp.arena_bytes == man["schedule"]["arena_bytes"]
    assert (d["TINYBERT_SEQ_LEN"], d["TINYBERT_HIDDEN_SIZE"], d["TINYBERT_NUM_HEADS"], d["TINYBERT_NUM_LAYERS"],
            d["TINYBERT_VOCAB_SIZE"], d["TINYBERT_INTERMEDIATE_SIZE"]) == (L, 16, 2, 2, 60, 32)
    assert d["TINYBERT_TILE"] == (sp.schedule.tile or 0)
    assert d["TINYBERT_SCHEDULE_TILED"] == (kind != "baseline")
    assert d["TINYBERT_ORDER_TILE_OUTER"] == (kind == "tile-outer")
    offsets = {b["name"]: d[b["macro"]] for b in man["schedule"]["buffers"]}
    assert offsets == sp.offsets
    assert h.startswith("/*") and "#ifndef TINYBERT_MODEL_DATA_H" in h and h.rstrip().endswith("*/")
    assert not re.search(r"^const ", h, re.M)                  # declarations only, no definitions
    assert '#include "model_data.h"' in files["model_data.c"].decode()
    # every array the .c defines is declared extern in the header, with the same size
    c_defs = re.findall(r"^const (\w+) (\w+)\[(\d+)\]", files["model_data.c"].decode(), re.M)
    h_decls = set(re.findall(r"^extern const (\w+) (\w+)\[(\d+)\];", h, re.M))
    assert set(c_defs) <= h_decls and len(c_defs) == len(man["arrays"])


def test_flash_bytes_agree_with_the_report_where_they_mean_the_same():
    cfg, _, _ = setup()
    _, man = exported()
    arrays, totals = man["arrays"], man["totals"]
    assert totals["flash_bytes"] == sum(a["bytes"] for a in arrays) == sum(totals["flash_bytes_by_role"].values())
    # int8 matrices and tables: the report's bytes minus its 8-byte per-tensor scale (the export folds
    # scales into the mult/shift arrays, counted under "requant")
    weights = [a for a in arrays if a["role"] == "weight"]
    assert sum(a["bytes"] for a in weights) == sum(tensor_bytes(a["source"], tuple(a["shape"])) - 8 for a in weights)
    biases = [a for a in arrays if a["role"] == "bias" and a["dtype"] == "int32"]
    assert sum(a["bytes"] for a in biases) == sum(tensor_bytes(a["source"], tuple(a["shape"])) for a in biases)
    left = totals["report_flash_bytes_not_exported"]
    assert set(left) == {"pooler.dense.weight", "pooler.dense.bias"}
    exported_keys = {a["source"] for a in arrays}
    assert set(expected_shapes(cfg)) - exported_keys == set(left)


# ---------------------------------------------------------------------------- C compiler
def c_compiler() -> str | None:
    for cand in (os.environ.get("CC"), "gcc", "cc", "clang"):
        if cand and shutil.which(cand):
            return shutil.which(cand)
    return None


MAIN_C = r"""
#include <stdio.h>
#include <stdint.h>
#include "model_data.h"

int main(void) {
    printf("arena %d seq %d buffers %d\n", MCUBERT_ARENA_SIZE, MCUBERT_SEQ_LEN, MCUBERT_NUM_BUFFERS);
    printf("pos %d %d %d\n", mcubert_embeddings_position_embeddings_weight[0],
           mcubert_embeddings_position_embeddings_weight[1], mcubert_embeddings_position_embeddings_weight[17]);
    printf("bias %ld mult %ld shift %ld\n", (long)mcubert_encoder_layer_1_output_dense_bias[3],
           (long)mcubert_encoder_layer_1_output_dense_mult[3], (long)mcubert_encoder_layer_1_output_dense_shift[3]);
    printf("exp %ld eps %lld\n", (long)mcubert_l0_softmax_exp[7], (long long)mcubert_embeddings_LayerNorm_eps[0]);
    printf("scale %.9g\n", (double)mcubert_output_scale[0]);
    printf("ids %d out %d %s %u\n", (int)MCUBERT_INPUT_IDS, (int)MCUBERT_OUTPUT, mcubert_buffers[0].name,
           (unsigned)mcubert_buffers[0].offset);
    printf("aligned %d\n", (int)(((uintptr_t)mcubert_embeddings_position_embeddings_weight % 16u == 0u)
                               && ((uintptr_t)mcubert_l0_softmax_exp % 16u == 0u)));
#if MCUBERT_NUM_CLUSTERS > 0
    printf("clusters %d last %lu rank0 %u t0 %d\n", MCUBERT_NUM_CLUSTERS,
           (unsigned long)mcubert_word_offsets[MCUBERT_NUM_CLUSTERS], (unsigned)mcubert_word_ranks[0],
           mcubert_word_tables[0] ? mcubert_word_tables[0][0] : 999);
#endif
    return 0;
}
"""


@pytest.mark.parametrize("compressed", [False, True])
def test_compiles_with_warnings_as_errors_and_a_c_program_reads_it(tmp_path, compressed):
    cc = c_compiler()
    if cc is None:
        pytest.skip("no C compiler")
    cfg, sd, q = setup(compressed=compressed)
    sp = tiled_plan(cfg)
    man = export_c(sd, cfg, q, sp, tmp_path / "out")
    out = tmp_path / "out"
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
    subprocess.run([cc, *flags, "-c", "model_data.c", "-o", str(tmp_path / "model_data.o")], cwd=out, check=True)
    (tmp_path / "main.c").write_text(MAIN_C)
    subprocess.run([cc, *flags, "-I", str(out), str(tmp_path / "main.c"), str(tmp_path / "model_data.o"), "-o",
                    str(tmp_path / "prog")], check=True)
    got = subprocess.run([str(tmp_path / "prog")], capture_output=True, text=True, check=True).stdout.splitlines()
    files = {n: (out / n).read_bytes() for n in FILES}
    A = {k: v.ravel() for k, v in arrays_by_name(files, man).items()}
    pos, lin = A["mcubert_embeddings_position_embeddings_weight"], "mcubert_encoder_layer_1_output_dense_"
    buf0 = man["schedule"]["buffers"][0]
    want = [f"arena {sp.arena_bytes} seq {L} buffers {len(man['schedule']['buffers'])}",
            f"pos {pos[0]} {pos[1]} {pos[17]}",
            f"bias {A[lin + 'bias'][3]} mult {A[lin + 'mult'][3]} shift {A[lin + 'shift'][3]}",
            f"exp {A['mcubert_l0_softmax_exp'][7]} eps {A['mcubert_embeddings_LayerNorm_eps'][0]}",
            f"scale {float(np.float32(np.ravel(q.act['l1.out'])[0])):.9g}",
            f"ids {sp.offsets['input_ids']} out {sp.offsets['x']} {buf0['name']} {buf0['offset']}",
            "aligned 1"]
    if compressed:
        t0 = man["ops"]["embeddings"]["word"]["tables"][0]
        want.append(f"clusters {len(cfg.embedding_factors)} last {cfg.vocab_size} rank0 {cfg.embedding_factors[0][1]} "
                    f"t0 {A[t0][0] if t0 else 999}")
    assert got == want


# ---------------------------------------------------------------------------- compressed embedding
def test_compressed_embedding_exports_clusters_offsets_and_tables():
    cfg, sd, q = setup(compressed=True)
    assert len(cfg.embedding_factors) == 4
    files, man = exported(compressed=True)
    A = arrays_by_name(files, man)
    w = man["ops"]["embeddings"]["word"]
    sizes = [n for n, _ in cfg.embedding_factors]
    assert A[w["offsets"]].tolist() == [0, *np.cumsum(sizes).tolist()]
    assert A[w["ranks"]].tolist() == [r for _, r in cfg.embedding_factors]
    assert A[w["mult"]].shape == A[w["shift"]].shape == (4, cfg.hidden_size)
    assert "mcubert_embeddings_word_embeddings_weight" not in A
    # the int8 factors are those of ClusteredLowRank.int8_arrays (an independent quantiser)
    key = "embeddings.word_embeddings."
    tables = [sd[f"{key}tables.{c}"].double().numpy() for c in range(4)]
    projs = [sd[f"{key}projections.{c}"].double().numpy() for c in range(4)]
    offs = np.r_[0, np.cumsum(sizes)]
    ref = ClusteredLowRank([np.arange(offs[c], offs[c + 1]) for c in range(4)], tables, projs, cfg.vocab_size,
                           cfg.hidden_size).int8_arrays()
    assert np.array_equal(ref["offsets"], A[w["offsets"]]) and np.array_equal(ref["ranks"], A[w["ranks"]])
    assert cfg.embedding_factors[3][1] == 0 and w["tables"][3] is None and w["projections"][3] is None
    assert f"mcubert_word_tables[4] = {{\n    {', '.join(w['tables'][:3])}, 0\n}};" in files["model_data.c"].decode()
    for c, (n, r) in enumerate(cfg.embedding_factors):
        if n * r == 0:
            assert w["tables"][c] is None and not A[w["mult"]][c].any()
            continue
        assert np.array_equal(A[w["tables"][c]], ref[f"T{c}"]) and np.array_equal(A[w["projections"][c]], ref[f"P{c}"])
    # the MCU's word codes (int8 T·P requantised) against the simulator's codes of the dense table:
    # measured max 2 codes, mean 0.25 (per-tensor int8 factors); the integer forward's cosine 0.9998
    bert = IntegerBert(A, man, cfg)
    dense = np.concatenate([T @ P for T, P in zip(tables, projs, strict=True)])
    s_word = np.asarray(q.weight[key + "weight"], np.float64)
    codes = np.clip(np.rint(dense / s_word), -127, 127)
    mine = bert.word_codes(np.arange(cfg.vocab_size))
    assert not mine[offs[3]:].any() and not codes[offs[3]:].any()
    assert np.abs(mine - codes).max() <= 3 and np.abs(mine - codes).mean() < 0.5
    ids = np.random.default_rng(8).integers(0, cfg.vocab_size, L)
    ref_out = simulate(tiled_plan(cfg), with_dense_embedding(sd, cfg), ids, quant=q)
    out = bert(ids) * A["mcubert_output_scale"]
    assert float((out * ref_out).sum() / np.linalg.norm(out) / np.linalg.norm(ref_out)) > 0.99


# ---------------------------------------------------------------------------- determinism, atomicity
def test_two_exports_are_byte_identical_and_the_manifest_hashes_the_files(tmp_path):
    cfg, sd, q = setup()
    m1 = export_c(sd, cfg, q, tiled_plan(cfg), tmp_path / "a")
    m2 = export_c({k: v.clone() for k, v in sd.items()}, cfg, q, tiled_plan(cfg), tmp_path / "b")
    assert m1 == m2

    for n in FILES:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes()
    for n, info in json.loads((tmp_path / "a" / "manifest.json").read_text())["files"].items():
        data = (tmp_path / "a" / n).read_bytes()
        assert info == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_a_failure_mid_export_leaves_no_partial_output(tmp_path, monkeypatch):
    cfg, sd, q = setup()
    sp = tiled_plan(cfg)
    good = tmp_path / "good"
    export_c(sd, cfg, q, sp, good)
    before = {n: (good / n).read_bytes() for n in FILES}
    calls = []
    real_write = Path.write_bytes

    def failing_write(self, data):
        calls.append(self.name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing_write)
    with pytest.raises(OutputError, match="No space left"):
        export_c(sd, cfg, q, sp, tmp_path / "new")
    calls.clear()
    with pytest.raises(OutputError) as e:
        export_c(sd, replace(cfg), q, plan(baseline_schedule(cfg, L)), good)     # would replace the good one
    monkeypatch.undo()
    assert e.value.exit_code == 73
    with pytest.raises(OutputError):
        export_c(sd, cfg, q, sp, tmp_path / "no" / "such" / "folder")
    assert calls == ["model_data.h", "model_data.c"]              # it failed after writing one file
    assert not (tmp_path / "new").exists()
    assert {n: (good / n).read_bytes() for n in FILES} == before   # the previous export is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good"]  # no temp folders left


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("case", ["nan weight", "inf bias", "plan for another config", "float32 plan",
                                  "quant for another config", "bad prefix", "missing weight", "no quant",
                                  "compressed, quant without the word scale"])
def test_bad_input_is_an_input_error(tmp_path, case):
    cfg, sd, q = setup()
    ccfg, csd, cq = setup(compressed=True)
    other = replace(cfg, num_hidden_layers=1)
    sp = tiled_plan(cfg)
    nan_sd = {**sd, "encoder.layer.1.intermediate.dense.weight": sd["encoder.layer.1.intermediate.dense.weight"].clone()}
    nan_sd["encoder.layer.1.intermediate.dense.weight"][3, 4] = float("nan")
    calls = {
        "nan weight": lambda: export_c(nan_sd, cfg, q, sp, tmp_path / "o"),
        "inf bias": lambda: export_c({**sd, "embeddings.LayerNorm.bias": torch.full((16,), float("inf"))}, cfg, q, sp,
                                     tmp_path / "o"),
        "plan for another config": lambda: export_c(sd, cfg, q, tiled_plan(other), tmp_path / "o"),
        "float32 plan": lambda: export_c(sd, cfg, q, plan(tiled_schedule(cfg, L, 4, elem_bytes=4)), tmp_path / "o"),
        "quant for another config": lambda: export_c(sd, cfg, calibrate(random_state(other, 0), other, [np.arange(L)]),
                                                     sp, tmp_path / "o"),
        "bad prefix": lambda: export_c(sd, cfg, q, sp, tmp_path / "o", prefix="9bad-name"),
        "missing weight": lambda: export_c({k: v for k, v in sd.items() if k != "encoder.layer.0.output.dense.bias"},
                                           cfg, q, sp, tmp_path / "o"),
        "no quant": lambda: export_c(sd, cfg, None, sp, tmp_path / "o"),
        "compressed, quant without the word scale": lambda: export_c(
            csd, ccfg, replace(cq, weight={k: v for k, v in cq.weight.items() if "word" not in k}), tiled_plan(ccfg),
            tmp_path / "o"),
    }
    with pytest.raises(InputError) as e:
        calls[case]()
    assert e.value.exit_code == 65 and "\n" not in str(e.value)
    assert not (tmp_path / "o").exists()
