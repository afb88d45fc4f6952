"""mlkit memsched through the command line: pipelines, pure-JSON stdout, bad input."""

import json

from PIL import Image

from mlkit.memsched import synth
from mlkit.memsched.dp import dp_schedule
from mlkit.memsched.io import save_graph


def test_synth_schedule_eval_pipeline(sh, tmp_path):
    r = sh("mlkit memsched synth randwire --n 12 --seed 1 -o g.json && "
           "mlkit memsched schedule g.json --method ilp | mlkit memsched eval g.json --order - --arena",
           cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    rec = json.loads(r.stdout)  # stdout is one JSON record: no solver banner in it
    g = synth.randwire(gen="ws", n=12, seed=1)
    assert rec["peak"] == dp_schedule(g).peak
    assert rec["arena"]["arena_bytes"] >= rec["arena"]["peak_live_bytes"]
    assert len(rec["profile"]) == g.n


def test_schedule_record_and_require_optimal(cli, tmp_path):
    save_graph(synth.randwire(gen="ws", n=16, seed=0), tmp_path / "g.json")
    r = cli("memsched", "schedule", tmp_path / "g.json", "--method", "dp")
    rec = json.loads(r.stdout)
    assert r.exit_code == 0 and rec["optimal"] and rec["peak"] == rec["lower_bound"]
    r = cli("memsched", "schedule", tmp_path / "g.json", "--method", "greedy", "--require-optimal")
    assert r.exit_code == 1 and "optimality not proven" in r.stderr
    assert json.loads(r.stdout)["method"] == "greedy"  # the record is still written


def test_eval_plot_and_csv(cli, tmp_path):
    g = synth.diamond()
    save_graph(g, tmp_path / "d.json")
    (tmp_path / "o.txt").write_text("\n".join("ABDECFG"))
    r = cli("memsched", "eval", tmp_path / "d.json", "--order", tmp_path / "o.txt", "--format", "csv",
            "--plot", tmp_path / "p.png")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == ["step,op,bytes", "0,A,10", "1,B,60", "2,D,90", "3,E,110", "4,C,130",
                                     "5,F,120", "6,G,10"]
    assert Image.open(tmp_path / "p.png").size[0] > 300


def test_bad_order_names_the_first_bad_op(cli, tmp_path):
    save_graph(synth.diamond(), tmp_path / "d.json")
    (tmp_path / "o.txt").write_text("A\nC\nB\nD\nE\nF\nG\n")
    r = cli("memsched", "eval", tmp_path / "d.json", "--order", tmp_path / "o.txt")
    assert r.exit_code == 65 and r.stdout == ""
    assert r.stderr.strip() == ("mlkit memsched eval: error: order violates a dependency: expected 'B' before "
                                "'C', got op 'C' first")


def test_cycle_and_bad_json_are_65(cli, tmp_path):
    d = synth.diamond().to_dict()
    d["tensors"].append({"id": "back", "size": 1, "producer": "F", "consumers": ["B"], "output": False})
    (tmp_path / "c.json").write_text(json.dumps(d))
    r = cli("memsched", "schedule", tmp_path / "c.json")
    assert r.exit_code == 65 and "cycle through op" in r.stderr
    (tmp_path / "n.json").write_text('{"ops": [{"id": "a"}], "tensors": [{"id": "t", "size": -4, "producer": "a"}]}')
    r = cli("memsched", "schedule", tmp_path / "n.json")
    assert r.exit_code == 65 and "bad size" in r.stderr
    r = cli("memsched", "schedule", tmp_path / "missing.json")
    assert r.exit_code == 66


def test_verify_and_fuse(cli, tmp_path):
    save_graph(synth.random_dag(n=8, p=0.3, seed=4), tmp_path / "g.json")
    r = cli("memsched", "verify", tmp_path / "g.json")
    rec = json.loads(r.stdout)
    assert r.exit_code == 0 and rec["agree"] and rec["brute_force"] == rec["dp"] == rec["ilp"]
    save_graph(synth.random_chain_dag(n=8, seed=2), tmp_path / "c.json")
    r = cli("memsched", "fuse", tmp_path / "c.json", "-o", tmp_path / "f.json")
    assert r.exit_code == 0 and "fused" in r.stderr
    fused = json.loads((tmp_path / "f.json").read_text())
    assert any(op.get("members") for op in fused["ops"])
