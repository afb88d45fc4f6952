"""man/ and completions/ are generated from the app and committed; stale files fail here.
Regenerate with `make man completions`."""

import shutil
import subprocess
from pathlib import Path

import pytest

from mlkit_cli._docs import render_all

ROOT = Path(__file__).resolve().parents[2]


def test_generated_files_are_fresh():
    files = render_all()
    assert "man/mlkit.1" in files and "completions/mlkit.bash" in files
    for rel, text in files.items():
        path = ROOT / rel
        assert path.exists(), f"{rel} missing: run make man completions"
        assert path.read_text() == text, f"{rel} is stale: run make man completions"
    committed = {f"{d}/{p.name}" for d in ("man", "completions") for p in (ROOT / d).iterdir()}
    assert committed == set(files), f"unexpected files: {committed - set(files)}"


def test_man_page_mentions_every_verb_and_exit_code():
    page = render_all()["man/mlkit.1"]
    for verb in ("info", "convert", "doctor", "demo", "bench"):
        assert f'.SS "mlkit {verb}' in page
    for code in ("65", "66", "69", "70", "73", "74", "130"):
        assert f"\\fB{code}\\fR" in page


def _bash_complete(words: list[str]) -> list[str]:
    script = ROOT / "completions" / "mlkit.bash"
    line = " ".join(f"'{w}'" for w in words)
    cmd = (f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _mlkit; "
           'printf "%s\\n" "${COMPREPLY[@]}"')
    return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True).stdout.split()


def test_bash_completion_works():
    assert _bash_complete(["mlkit", "con"]) == ["convert"]
    assert "--format" in _bash_complete(["mlkit", "info", "--f"])
    assert _bash_complete(["mlkit", "info", "--format", "j"]) == ["jsonl", "json"]
    assert _bash_complete(["mlkit", "-q", "convert", "x.npy", "--co"]) == ["--codec"]


def _need(shell: str) -> str:
    path = shutil.which(shell)
    if path is None:  # make test installs zsh and fish; a bare pytest run may lack them
        pytest.skip(f"{shell} not installed (make test installs it)")
    return path


def test_fish_completion_works():
    fish = _need("fish")
    script = ROOT / "completions" / "mlkit.fish"
    subprocess.run([fish, "-n", str(script)], check=True)

    def complete(line):
        out = subprocess.run([fish, "-c", f"source {script}; complete -C'{line}'"], capture_output=True,
                             text=True, check=True).stdout
        return [row.split("\t")[0] for row in out.splitlines()]

    assert complete("mlkit con") == ["convert"]
    assert complete("mlkit info --format j") == ["json", "jsonl"]
    assert complete("mlkit -q convert x --co") == ["--codec"]


def test_zsh_completion_parses_and_knows_the_tree():
    zsh = _need("zsh")
    script = ROOT / "completions" / "_mlkit"
    subprocess.run([zsh, "-n", str(script)], check=True)
    body = script.read_text().rsplit("_mlkit \"$@\"", 1)[0]  # the functions, without the call
    out = subprocess.run([zsh, "-fc", body + '\n_mlkit_subs ""; print -l ${reply%%:*}; '
                                              '_mlkit_opts "info"; print -l -- $reply'],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert {"info", "convert", "doctor", "demo", "bench"} <= set(out)
    assert "--format[Record format on stdout/-o.]:format:(jsonl json csv tsv table)" in out
