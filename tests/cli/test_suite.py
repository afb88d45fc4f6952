"""mlkit demo / bench / doctor over registered tools (a stand-in tool from tests/helpers)."""

import json

import pytest

import mlkit.registry
from helpers import fake_tool
from mlkit.registry import Tool


@pytest.fixture
def one_tool(monkeypatch):
    tool = Tool(name="fake", package="helpers.fake_tool", cli="", summary="stand-in",
                requires=("python:helpers.fake_tool", "python:no_such_module_xyz"))
    monkeypatch.setattr(mlkit.registry, "TOOLS", (tool,))
    monkeypatch.setitem(fake_tool.FAIL, "demo", False)
    return tool


def test_demo_runs_each_tool(cli, one_tool):
    r = cli("demo", "--format", "jsonl")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["tool"] == "fake" and rec["ok"] and rec["metric"] == "f1" and rec["value"] == 0.5
    assert rec["seconds"] >= 0


def test_demo_table(cli, one_tool):
    r = cli("demo")
    assert r.exit_code == 0 and "synth -> run -> eval" in r.stdout and "fake" in r.stdout


def test_failing_demo_goes_on_and_exits_with_its_code(cli, one_tool):
    fake_tool.FAIL["demo"] = True
    r = cli("demo", "--format", "jsonl")
    assert r.exit_code == 65
    rec = json.loads(r.stdout)
    assert rec["ok"] is False and "synthetic failure" in rec["error"]


def test_bench_rows_are_tagged(cli, one_tool):
    r = cli("bench", "--format", "jsonl")
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert rows == [{"tool": "fake", "method": "ours", "ratio": 1.0},
                    {"tool": "fake", "method": "baseline", "ratio": 2.0}]


def test_unknown_tool_name(cli, one_tool):
    r = cli("demo", "nope")
    assert r.exit_code == 65 and "unknown tool" in r.stderr


def test_doctor_checks_tool_requirements(cli, one_tool):
    r = cli("doctor", "--format", "jsonl")
    rows = {x["check"]: x for x in map(json.loads, r.stdout.splitlines())}
    assert rows["module helpers.fake_tool"]["ok"] and rows["module helpers.fake_tool"]["needed_by"] == "fake"
    assert not rows["module no_such_module_xyz"]["ok"]
    assert r.exit_code == 1 and "module no_such_module_xyz" in r.stderr
