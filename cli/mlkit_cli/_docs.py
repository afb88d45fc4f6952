"""Man pages and shell completions generated from the typer app.

typer bundles its own click, so the command tree is walked through
``typer.main.get_command(app)``. ``render_all()`` returns ``{relative path: text}``;
``tools/gendocs.py`` writes it, and a test fails when the committed files are stale.
Completions are static (no Python start-up on TAB).
"""

import re
from dataclasses import dataclass, field
from enum import Enum

import typer
import typer.main

from mlkit import __version__

EXIT_CODES = [
    ("0", "success"),
    ("1", "a check verb found a negative result (eval --fail-under, doctor)"),
    ("2", "command-line usage error"),
    ("65", "bad input data: wrong header, shape, dtype, NaN, corrupt file"),
    ("66", "input missing or unreadable"),
    ("69", "a backend is unavailable (CUDA asked for and absent, ffmpeg/x265 missing)"),
    ("70", "internal error (a bug); rerun with --debug"),
    ("73", "cannot create the output"),
    ("74", "I/O error mid-stream"),
    ("130", "interrupted (Ctrl-C)"),
    ("141", "stdout closed early (broken pipe, e.g. | head); no message"),
]
ENVIRONMENT = [
    ("MLKIT_DEVICE", "default for --device (auto, cpu, cuda)"),
    ("MLKIT_SEED", "default for --seed"),
    ("MLKIT_THREADS", "default for --threads"),
    ("MLKIT_FORMAT", "default for --format"),
    ("MLKIT_QUIET", "1 = --quiet"),
    ("MLKIT_DEBUG", "1 = --debug (tracebacks)"),
    ("MLKIT_FFMPEG", "ffmpeg binary to use instead of the one imageio-ffmpeg ships"),
    ("MLKIT_WEIGHTS_DIR", "where --weights names are looked up"),
    ("MLKIT_CACHE_DIR", "cache folder (default $XDG_CACHE_HOME/mlkit)"),
    ("NO_COLOR", "no colour on stderr"),
]


@dataclass
class Opt:
    names: list[str]
    help: str
    takes_value: bool
    choices: list[str]
    metavar: str


@dataclass
class Node:
    path: list[str]
    help: str
    short: str
    options: list[Opt] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    children: list["Node"] = field(default_factory=list)

    @property
    def name(self) -> str:
        return " ".join(self.path)


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def _first_sentence(text: str) -> str:
    text = _clean(text)
    m = re.match(r"(.+?[.;:])(\s|$)", text)
    return (m.group(1) if m else text).rstrip(".;:")


def build_tree(app: typer.Typer) -> Node:
    cmd = typer.main.get_command(app)
    return _node(cmd, ["mlkit"], typer.Context(cmd, info_name="mlkit"))


def _node(cmd, path: list[str], ctx) -> Node:
    node = Node(path=path, help=_clean(cmd.help), short=_first_sentence(cmd.short_help or cmd.help or ""))
    for p in cmd.get_params(ctx):
        if p.param_type_name == "argument":
            arg = (p.metavar or p.name).upper().strip("{}<>")
            node.arguments.append(arg + ("..." if p.nargs == -1 and not arg.endswith("...") else ""))
            continue
        choices, count = _choices_and_count(p)
        takes = not (getattr(p, "is_flag", False) or count)
        node.options.append(Opt(names=list(p.opts) + list(p.secondary_opts), help=_clean(p.help),
                                takes_value=takes, choices=[str(c) for c in choices],
                                metavar=(p.metavar or p.name.upper()) if takes else ""))
    if hasattr(cmd, "list_commands"):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            node.children.append(_node(sub, path + [name], typer.Context(sub, info_name=name, parent=ctx)))
    return node


def _choices_and_count(p) -> tuple[list, bool]:
    """Enum choices and count flags, from typer's type descriptor (or click's ``type``)."""
    td = getattr(p, "type_descriptor", None)
    ann = getattr(td, "annotation", None)
    if isinstance(ann, type) and issubclass(ann, Enum):
        choices = [m.value for m in ann]
    else:
        choices = [getattr(c, "value", c) for c in (getattr(getattr(p, "type", None), "choices", None) or [])]
    count = bool(getattr(getattr(td, "parameter_info", None), "count", False) or getattr(p, "count", False))
    return choices, count


def _walk(node: Node):
    yield node
    for c in node.children:
        yield from _walk(c)


# ------------------------------------------------------------------------------------ man
def _roff(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + ln) if ln[:1] in ".'" else ln for ln in text.split("\n"))


def _man_options(opts: list[Opt]) -> list[str]:
    out = []
    for o in opts:
        names = ", ".join(f"\\fB{_roff(n)}\\fR" for n in o.names)
        if o.takes_value:
            val = "{" + ",".join(o.choices) + "}" if o.choices else o.metavar.strip("<>")
            names += f" \\fI{_roff(val)}\\fR"
        out += [".TP", names, _roff(o.help or "")]
    return out


def _man_page(title: str, node: Node, verbs: list[Node], see_also: list[str]) -> str:
    lines = [f'.TH {title.upper()} 1 "" "mlkit {__version__}" "mlkit manual"', ".SH NAME",
             f"{_roff(title)} \\- {_roff(node.short or node.help)}", ".SH SYNOPSIS",
             f".B {_roff(node.name)}", "[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
             ".SH DESCRIPTION", _roff(node.help)]
    if node.options:
        lines += [".SH OPTIONS", *_man_options(node.options)]
    lines.append(".SH COMMANDS")
    for v in verbs:
        args = " ".join(v.arguments)
        lines += [f'.SS "{_roff(v.name)} [OPTIONS]{" " + _roff(args) if args else ""}"', _roff(v.help)]
        lines += _man_options(v.options)
    lines.append(".SH EXIT STATUS")
    for code, text in EXIT_CODES:
        lines += [".TP", f"\\fB{code}\\fR", _roff(text)]
    lines.append(".SH ENVIRONMENT")
    for var, text in ENVIRONMENT:
        lines += [".TP", f"\\fB{var}\\fR", _roff(text)]
    if see_also:
        lines += [".SH SEE ALSO", ", ".join(f"\\fB{_roff(s)}\\fR(1)" for s in see_also)]
    return "\n".join(lines) + "\n"


def render_man(root: Node) -> dict[str, str]:
    groups = [c for c in root.children if c.children]
    leaves = [c for c in root.children if not c.children]
    pages = {"man/mlkit.1": _man_page("mlkit", root, leaves, [f"mlkit-{g.path[-1]}" for g in groups])}
    for g in groups:
        verbs = [n for n in _walk(g) if not n.children]
        pages[f"man/mlkit-{g.path[-1]}.1"] = _man_page(f"mlkit-{g.path[-1]}", g, verbs, ["mlkit"])
    return pages


# ------------------------------------------------------------------------------ completions
def _key(node: Node) -> str:
    return " ".join(node.path[1:])


def _bash(root: Node) -> str:
    nodes = list(_walk(root))
    subs = "\n".join(f'    "{_key(n)}") echo "{" ".join(c.path[-1] for c in n.children)}" ;;'
                     for n in nodes if n.children)
    opts = "\n".join(f'    "{_key(n)}") echo "{" ".join(nm for o in n.options for nm in o.names)}" ;;'
                     for n in nodes)
    vals = "\n".join(f'    "{_key(n)}|{nm}") echo "{" ".join(o.choices) or "__value__"}" ;;'
                     for n in nodes for o in n.options if o.takes_value for nm in o.names)
    return f"""# bash completion for mlkit (generated by tools/gendocs.py; do not edit)
_mlkit_subs() {{
  case "$1" in
{subs}
  esac
}}
_mlkit_opts() {{
  case "$1" in
{opts}
  esac
}}
_mlkit_values() {{
  case "$1|$2" in
{vals}
  esac
}}
_mlkit() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" path="" i w subs vals
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${{COMP_WORDS[i]}}"
    subs=" $(_mlkit_subs "$path") "
    if [[ "$w" != -* && "$subs" == *" $w "* ]]; then path="${{path:+$path }}$w"; fi
  done
  vals="$(_mlkit_values "$path" "$prev")"
  if [[ "$vals" == "__value__" ]]; then COMPREPLY=(); return; fi
  if [[ -n "$vals" ]]; then COMPREPLY=($(compgen -W "$vals" -- "$cur")); return; fi
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$(_mlkit_opts "$path")" -- "$cur")); return; fi
  subs="$(_mlkit_subs "$path")"
  if [[ -n "$subs" ]]; then COMPREPLY=($(compgen -W "$subs" -- "$cur")); else COMPREPLY=(); fi
}}
complete -o default -o bashdefault -F _mlkit mlkit
"""


def _zq(text: str) -> str:
    text = re.sub(r"[\[\]:]", " ", text).replace("'", "")
    return " ".join(text.split())


def _zsh(root: Node) -> str:
    nodes = list(_walk(root))
    subs, opts = [], []
    for n in nodes:
        if n.children:
            items = " ".join(f"'{c.path[-1]}:{_zq(c.short)}'" for c in n.children)
            subs.append(f'    "{_key(n)}") reply=({items}) ;;')
        specs = []
        for o in n.options:
            for nm in o.names:
                spec = f"{nm}[{_zq(o.help)}]"
                if o.takes_value:
                    spec += f":{o.metavar.strip('<>').lower() or 'value'}:" + (
                        f"({' '.join(o.choices)})" if o.choices else "_files")
                specs.append(f"'{spec}'")
        opts.append(f'    "{_key(n)}") reply=({" ".join(specs)}) ;;')
    return f"""#compdef mlkit
# zsh completion for mlkit (generated by tools/gendocs.py; do not edit)
_mlkit_subs() {{
  reply=()
  case "$1" in
{chr(10).join(subs)}
  esac
}}
_mlkit_opts() {{
  reply=()
  case "$1" in
{chr(10).join(opts)}
  esac
}}
_mlkit() {{
  local path="" w i last=1
  local -a reply subs names
  for (( i = 2; i < CURRENT; i++ )); do
    w=${{words[i]}}
    [[ $w == -* ]] && continue
    _mlkit_subs "$path"; names=(${{reply%%:*}})
    if (( ${{names[(Ie)$w]}} )); then path="${{path:+$path }}$w"; last=$i; fi
  done
  _mlkit_subs "$path"; subs=($reply)
  if (( ${{#subs}} )) && [[ ${{words[CURRENT]}} != -* ]]; then
    _describe -t commands 'mlkit command' subs
    return
  fi
  _mlkit_opts "$path"
  words=("mlkit" "${{(@)words[last+1,-1]}}")
  (( CURRENT -= last - 1 ))
  _arguments -s $reply '*:file:_files'
}}
_mlkit "$@"
"""


def _fq(text: str) -> str:
    return _clean(text).replace("\\", "\\\\").replace("'", "\\'")


def _fish(root: Node) -> str:
    nodes = list(_walk(root))
    cases = "\n".join(f"        case '{_key(n)}'\n            echo {' '.join(c.path[-1] for c in n.children)}"
                      for n in nodes if n.children)
    lines = ["# fish completion for mlkit (generated by tools/gendocs.py; do not edit)",
             "function __mlkit_subs", "    switch \"$argv[1]\"", cases, "    end", "end",
             "function __mlkit_path",
             "    set -l path ''",
             "    for w in (commandline -opc)[2..-1]",
             "        if string match -q -- '-*' $w; continue; end",
             "        if contains -- $w (string split ' ' (__mlkit_subs $path))",
             "            set path (string trim -- \"$path $w\")",
             "        end",
             "    end",
             "    echo $path",
             "end",
             "function __mlkit_at",
             "    set -l p (__mlkit_path)",
             "    test \"$p\" = \"$argv[1]\"",
             "end",
             "complete -c mlkit -f"]
    for n in nodes:
        cond = f"-n \"__mlkit_at '{_key(n)}'\""
        for c in n.children:
            lines.append(f"complete -c mlkit {cond} -a {c.path[-1]} -d '{_fq(c.short)}'")
        for o in n.options:
            flags = " ".join(f"-s {nm[1:]}" if not nm.startswith("--") else f"-l {nm[2:]}" for nm in o.names)
            extra = ""
            if o.takes_value:
                extra = f" -x -a '{' '.join(o.choices)}'" if o.choices else " -r -F"
            lines.append(f"complete -c mlkit {cond} {flags}{extra} -d '{_fq(o.help)}'")
        if not n.children and n.arguments:
            lines.append(f"complete -c mlkit {cond} -F")
    return "\n".join(lines) + "\n"


def render_completions(root: Node) -> dict[str, str]:
    return {"completions/mlkit.bash": _bash(root), "completions/_mlkit": _zsh(root),
            "completions/mlkit.fish": _fish(root)}


def render_all(app: typer.Typer | None = None) -> dict[str, str]:
    if app is None:
        from .main import app
    root = build_tree(app)
    return {**render_man(root), **render_completions(root)}
