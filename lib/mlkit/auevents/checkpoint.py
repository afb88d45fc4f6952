"""EventFormer checkpoints: one safetensors file, the weights plus the normaliser's statistics as
tensors, and the config, AU list and training notes as string metadata."""

from __future__ import annotations

import json

import numpy as np
import torch

from mlkit.codecs._io import read_bytes, write_bytes
from mlkit.errors import InputError

from .model import EventFormer, EventFormerConfig
from .train import Normaliser

__all__ = ["save", "load"]

FORMAT = "mlkit-au-events-eventformer"


def save(model: EventFormer, norm: Normaliser, aus: list[str], dst, notes: dict | None = None) -> None:
    from safetensors.torch import save as to_bytes

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors["normaliser.mean"] = torch.from_numpy(np.asarray(norm.mean, np.float32))
    tensors["normaliser.std"] = torch.from_numpy(np.asarray(norm.std, np.float32))
    meta = {"format": FORMAT, "config": json.dumps(model.config.to_dict()), "aus": json.dumps(list(aus)),
            "seq_norm": json.dumps(bool(norm.seq_norm)), "notes": json.dumps(notes or {})}
    write_bytes(to_bytes(tensors, metadata=meta), dst)


def load(src) -> tuple[EventFormer, Normaliser, list[str], dict]:
    from safetensors import SafetensorError
    from safetensors.torch import load as from_bytes

    data = read_bytes(src)
    try:
        tensors = from_bytes(data)
        n = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8:8 + n]).get("__metadata__", {})
    except (SafetensorError, ValueError, OSError) as exc:
        raise InputError(f"{src}: not a safetensors checkpoint", got=str(exc)[:80]) from exc
    if meta.get("format") != FORMAT:
        raise InputError(f"{src}: not an EventFormer checkpoint", expected=FORMAT, got=str(meta.get("format")))
    try:
        cfg = EventFormerConfig.from_dict(json.loads(meta["config"]))
        aus = json.loads(meta["aus"])
        norm = Normaliser(tensors.pop("normaliser.mean").double().numpy(),
                          tensors.pop("normaliser.std").double().numpy(), json.loads(meta["seq_norm"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"{src}: checkpoint metadata incomplete", got=str(exc)[:80]) from exc
    model = EventFormer(cfg)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise InputError(f"{src}: weights do not match the config", got=str(exc).splitlines()[0][:80]) from exc
    if not all(torch.isfinite(v).all() for v in tensors.values()):
        raise InputError(f"{src}: NaN or Inf weights")
    model.eval()
    return model, norm, aus, json.loads(meta.get("notes", "{}"))
