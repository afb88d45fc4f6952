"""Reading and writing graphs: memsched JSON (``mlkit.memsched.graph/v1``, any path or ``-``) and,
for convenience, ONNX models wherever a graph is expected."""

from __future__ import annotations

import json

from mlkit.codecs._io import PathLike, display_name, is_std, read_bytes, suffix_of, write_bytes
from mlkit.errors import InputError

from .graph import Graph

__all__ = ["load_graph", "save_graph", "load_order"]


def load_graph(src: PathLike, *, input_shapes: dict | None = None, inplace: str = "none") -> Graph:
    raw = read_bytes(src)
    name = display_name(src)
    if (not is_std(src) and suffix_of(src) == "onnx") or raw[:1] == b"\x08":  # protobuf field 1 varint
        from .onnx_import import import_onnx

        return import_onnx(raw, input_shapes=input_shapes, inplace=inplace,
                           name=None if is_std(src) else str(src).rsplit("/", 1)[-1].rsplit(".", 1)[0])
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{name}: not a graph", expected="memsched graph JSON or an .onnx model",
                         got=str(exc)[:80]) from exc
    return Graph.from_dict(obj, name=obj.get("name", name) if isinstance(obj, dict) else name)


def save_graph(g: Graph, dst: PathLike) -> None:
    write_bytes((json.dumps(g.to_dict(), separators=(",", ":")) + "\n").encode(), dst)


def load_order(src: PathLike) -> list[str]:
    """An order from a schedule record (``{"order": [...]}``), a JSON list, or one op id a line."""
    raw = read_bytes(src).decode("utf-8", "replace").strip()
    name = display_name(src)
    if raw[:1] in "[{":
        try:
            obj = json.loads(raw.splitlines()[0] if raw[:1] == "{" and "\n" in raw else raw)
        except ValueError as exc:
            raise InputError(f"{name}: not an order", expected='a schedule record, a JSON list or one op id a line',
                             got=str(exc)[:80]) from exc
        order = obj.get("order") if isinstance(obj, dict) else obj
        if not isinstance(order, list):
            raise InputError(f"{name}: no order in it", expected='{"order": [...]}')
        return [str(x) for x in order]
    return [ln.strip() for ln in raw.splitlines() if ln.strip()]
