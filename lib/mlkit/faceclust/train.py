"""Fitting, applying, saving and loading the similarity models.

Inputs: features ``X`` float32 (N, D), L2-normalised; a kNN graph ``ids`` int (N, k) and ``dists``
float32 (N, k) (1 - cos, ascending, the point itself at rank 0); ``labels`` int (N,).

* ``fit_logistic``: our 2-parameter stand-in p = sigmoid(a cos + b), maximum likelihood by Newton
  steps with step halving (deterministic, float64) on the graph's (anchor, neighbour) pairs.
* ``fit_transformer``: the official recipe (BCE-with-logits over ranks 1..k-1, Adam, lr 1e-4,
  wd 5e-4, 512 anchors a batch) with one optimizer step per batch (the official loop steps twice)
  and data-parallel under ``torchrun`` via :func:`mlkit.tensors.distributed`.
* ``refine_distances``: dist = 1 - p(same), self kept at 0, rows re-sorted (stable).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import numpy as np

from ..errors import InputError
from ..tensors import check_dtype, check_finite, check_shape
from .config import SimConfig, TrainConfig
from .model import LogisticCalibration, PairTransformer, load_official

__all__ = ["same_identity", "fit_logistic", "fit_logistic_pairs", "fit_transformer", "split_identities",
           "refine_distances", "save_sim", "load_sim", "SIM_METHOD"]

SIM_METHOD = "faceclust.sim"


def _check_graph(X, ids, dists=None, labels=None, *, allow_missing: bool = False) -> None:
    """Shapes and ranges; ``allow_missing`` accepts id -1 (an IVF miss, distance +inf)."""
    check_dtype(X, "f", "features")
    check_shape(X, (None, None), "features")
    check_dtype(ids, "iu", "neighbour ids")
    check_shape(ids, (X.shape[0], None), "neighbour ids")
    if ids.shape[1] < 2:
        raise InputError("kNN graph too narrow", expected=">= 2 columns (self and a neighbour)", got=str(ids.shape))
    lo = -1 if allow_missing else 0
    if ids.size and (ids.min() < lo or ids.max() >= X.shape[0]):
        raise InputError("neighbour id out of range", expected=f"{lo}..{X.shape[0] - 1}",
                         got=f"{ids.min()}..{ids.max()}", hint="rebuild the graph (exact index, or a larger nprobe)")
    if dists is not None:
        check_shape(dists, ids.shape, "neighbour distances")
        check_finite(dists[ids >= 0], "neighbour distances")
    if labels is not None:
        check_dtype(labels, "iu", "labels")
        check_shape(labels, (X.shape[0],), "labels")


def same_identity(ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N, k-1) bool: label(ids[i, r]) == label(i) for ranks r = 1..k-1."""
    return labels[ids[:, 1:]] == labels[:, None]


# ---------------------------------------------------------------- logistic stand-in
def fit_logistic_pairs(cos: np.ndarray, same: np.ndarray, *, max_iter: int = 100, tol: float = 1e-10,
                       ridge: float = 1e-6) -> LogisticCalibration:
    """Maximum-likelihood (a, b) of p = sigmoid(a cos + b) by damped Newton steps. A tiny fixed
    ``ridge`` penalty (ridge/2 * (a^2 + b^2)) keeps separable data finite; on real graphs (>= 1e4
    pairs) it moves the estimate by well under 1e-3 standard errors."""
    x = np.asarray(cos, dtype=np.float64).ravel()
    y = np.asarray(same, dtype=np.float64).ravel()
    if x.size != y.size or x.size == 0:
        raise InputError("pairs mismatch", expected="as many targets as cosines (> 0)", got=f"{x.size} vs {y.size}")
    if y.min() == y.max():
        raise InputError("cannot fit the calibration", expected="both same-identity and other pairs",
                         got="same" if y[0] else "no same-identity pairs", hint="check the labels")
    lam = float(ridge)

    def nll(w):
        z = w[0] * x + w[1]
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * lam * (w @ w))

    w, f = np.zeros(2), nll(np.zeros(2))
    for _ in range(max_iter):
        p = 0.5 * (1.0 + np.tanh(0.5 * (w[0] * x + w[1])))
        r, s = p - y, p * (1.0 - p)
        grad = np.array([r @ x, r.sum()]) + lam * w
        hess = np.array([[s @ (x * x), s @ x], [s @ x, s.sum()]]) + lam * np.eye(2)
        step, t = np.linalg.solve(hess, grad), 1.0
        while nll(w - t * step) > f and t > 1e-10:                                 # step halving
            t *= 0.5
        f_new = nll(w - t * step)
        if f_new > f:                                                              # no descent left
            break
        w, f_old, f = w - t * step, f, f_new
        if f_old - f <= tol * max(1.0, abs(f)):
            break
    return LogisticCalibration(w[0], w[1])


def fit_logistic(X, ids, dists, labels) -> LogisticCalibration:
    """Fit on every (anchor, rank r >= 1) pair of the graph: cos = 1 - dist, target = same label."""
    _check_graph(X, ids, dists, labels)
    return fit_logistic_pairs(1.0 - dists[:, 1:].astype(np.float64), same_identity(ids, labels))


# ---------------------------------------------------------------- transformer
def split_identities(X, labels, fraction: float, k: int, seed: int):
    """Hold out ``fraction`` of the identities (at least one): ((X_train, ids_train, labels_train),
    (X_val, ids_val, labels_val)), each with its own exact kNN graph of ``k`` columns, so neither
    split's tokens contain the other's faces."""
    from .knn import build_knn

    uniq = np.unique(labels)
    n_val = max(1, int(round(fraction * len(uniq))))
    if n_val >= len(uniq):
        raise InputError("too few identities for a validation split", expected=">= 2 identities",
                         got=str(len(uniq)), hint="set val_fraction to 0")
    held = np.random.default_rng(seed).choice(uniq, size=n_val, replace=False)
    is_val = np.isin(labels, held)
    out = []
    for mask in (~is_val, is_val):
        x, y = np.ascontiguousarray(X[mask]), np.asarray(labels)[mask]
        if len(x) <= k:
            raise InputError("a split is too small for the model's k", expected=f"> {k} faces in each split",
                             got=f"{len(x)}", hint="lower val_fraction or k")
        out.append((x, build_knn(x, k).ids, y))
    return out[0], out[1]


def _pair_logits(net, feats, nbrs, lab, batch: int = 1024):
    """(logits (M,), same-identity targets (M,)) over every (anchor, rank >= 1) pair, eval mode."""
    import torch

    out, tgt = [], []
    with torch.no_grad():
        for s in range(0, nbrs.shape[0], batch):
            nb = nbrs[s:s + batch]
            out.append(net(feats[nb])[:, 1:].reshape(-1))
            tgt.append((lab[nb[:, 1:]] == lab[nb[:, :1]]).reshape(-1))
    return torch.cat(out), torch.cat(tgt).float()


def fit_transformer(X, ids, labels, cfg: SimConfig | None = None, train_cfg: TrainConfig | None = None,
                    device: str | None = "auto", *,
                    progress: Callable[[int, int, float], None] | None = None) -> PairTransformer:
    """Train a ``PairTransformer`` on the first ``cfg.k`` columns of the graph (the defaults:
    ``SimConfig(d_model=D)``, ``TrainConfig()``). Under torchrun each rank takes its share of the
    global batch and DDP averages the gradients. ``progress(epoch, epochs, mean_loss)`` runs on
    rank 0 after each epoch. Returns the model, unwrapped, in eval mode, on the training device;
    ``model.history`` lists each epoch's training (and validation) loss.

    With ``train_cfg.val_fraction > 0`` [R] that share of the identities is held out (``ids`` is then
    not used: each split gets its own exact kNN graph), the epoch with the lowest validation BCE is
    kept, and p = sigmoid(a·logit + b) is fitted on the held-out pairs (``model.calibration``): TPDi's
    sigma and the tau threshold assume probabilities that are calibrated on identities the model
    never saw, which a model's own training pairs cannot give."""
    import copy

    import torch

    from ..tensors import distributed, seed_everything

    _check_graph(X, ids, labels=labels)
    cfg = (cfg or SimConfig(d_model=X.shape[1])).validate()
    tc = (train_cfg or TrainConfig()).validate()
    if cfg.tokens == "features" and cfg.d_model != X.shape[1]:
        raise InputError("feature dimension does not match the model", expected=f"D = d_model = {cfg.d_model}",
                         got=str(X.shape[1]), hint="the model has no input projection; set d_model to D")
    if ids.shape[1] < cfg.k:
        raise InputError("kNN graph has too few neighbours", expected=f">= k = {cfg.k}", got=str(ids.shape[1]))
    val = None
    if tc.val_fraction > 0:
        (X, ids, labels), val = split_identities(X, labels, tc.val_fraction, cfg.k, tc.seed)
    seed_everything(tc.seed)
    history: list[dict] = []
    with distributed(device) as dist:
        dev = dist.device

        def tensors(x, nb, y):
            return (torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32, device=dev),
                    torch.as_tensor(np.ascontiguousarray(nb[:, : cfg.k]), dtype=torch.long, device=dev),
                    torch.as_tensor(np.asarray(y), dtype=torch.long, device=dev))

        feats, nbrs, lab = tensors(X, ids, labels)
        val_t = tensors(*val) if val is not None else None
        net = dist.wrap(PairTransformer(cfg))
        loader = dist.loader(torch.utils.data.TensorDataset(torch.arange(X.shape[0])), batch_size=tc.batch,
                             shuffle=True, seed=tc.seed)
        opt = torch.optim.Adam(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        best = (float("inf"), None)
        for epoch in range(tc.epochs):
            dist.set_epoch(epoch)
            net.train()
            total, steps = 0.0, 0
            for (anchor,) in loader:
                anchor = anchor.to(dev)                                             # (B,)
                nb = nbrs[anchor]                                                   # (B, k)
                target = (lab[nb[:, 1:]] == lab[anchor, None]).float()              # (B, k-1)
                logits = net(feats[nb])[:, 1:]                                      # (B, k-1)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()                                                          # once (official: twice)
                total, steps = total + float(loss.detach()), steps + 1
            mean = dist.all_reduce_mean(total / max(steps, 1))                      # collective: all ranks
            rec = {"epoch": epoch, "loss": mean}
            if val_t is not None:                                                   # every rank, same data
                net.eval()
                z, t = _pair_logits(dist.unwrap(net), *val_t)
                rec["val_loss"] = float(torch.nn.functional.binary_cross_entropy_with_logits(z, t))
                if rec["val_loss"] < best[0]:
                    best = (rec["val_loss"], copy.deepcopy(dist.unwrap(net).state_dict()))
            history.append(rec)
            if progress is not None and dist.is_main:
                progress(epoch, tc.epochs, mean)
        model = dist.unwrap(net)
        if best[1] is not None:
            model.load_state_dict(best[1])
            model.eval()
            z, t = _pair_logits(model, *val_t)
            cal = fit_logistic_pairs(z.double().cpu().numpy(), t.cpu().numpy() > 0.5)
            model.set_calibration(float(cal.a), float(cal.b))
    model.history = history
    return model.eval()


# ---------------------------------------------------------------- refinement
def _resort(ids: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    new[:, 0] = 0.0                                                                 # self stays first
    order = np.argsort(new, axis=1, kind="stable")
    rows = np.arange(new.shape[0])[:, None]
    return np.ascontiguousarray(ids[rows, order]), np.ascontiguousarray(new[rows, order], dtype=np.float32)


def refine_distances(model, X, ids, dists, *, batch: int = 1024, device=None) -> tuple[np.ndarray, np.ndarray]:
    """Learned distances 1 - p(same identity) for every (anchor, rank r) of the graph; rank 0 (self)
    keeps 0; each row is re-sorted ascending (stable) with its ids permuted alike."""
    import torch

    _check_graph(X, ids, dists, allow_missing=True)
    missing = ids < 0   # IVF misses stay -1 with distance +inf, sorted last
    if isinstance(model, LogisticCalibration):
        new = 1.0 - model.prob(1.0 - np.where(missing, 1.0, dists).astype(np.float64))
        new[missing] = np.inf
        return _resort(ids, new)
    if not isinstance(model, PairTransformer):
        raise InputError("unknown similarity model", expected="PairTransformer or LogisticCalibration",
                         got=type(model).__name__)
    gram = model.cfg.tokens == "gram"
    k_max = min(model.cfg.max_len, model.cfg.d_model) if gram else model.cfg.max_len
    if (not gram and X.shape[1] != model.cfg.d_model) or ids.shape[1] > k_max:
        raise InputError("graph does not fit the model",
                         expected=f"{'any D' if gram else f'D = {model.cfg.d_model}'}, k <= {k_max}",
                         got=f"D = {X.shape[1]}, k = {ids.shape[1]}")
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(dev).eval()
    feats = torch.as_tensor(np.ascontiguousarray(X), dtype=torch.float32, device=dev)
    new = np.empty(ids.shape, dtype=np.float64)
    with torch.no_grad():
        for s in range(0, ids.shape[0], batch):
            rows = ids[s:s + batch].astype(np.int64)
            rows = np.where(rows >= 0, rows, rows[:, :1])                           # misses: gather self
            nb = torch.as_tensor(rows, device=dev)                                   # (B, k)
            new[s:s + batch] = torch.sigmoid(model(feats[nb]).double()).cpu().numpy()
    new = 1.0 - new
    new[missing] = np.inf
    return _resort(ids, new)


# ---------------------------------------------------------------- save / load
def _ext(path) -> str:
    return os.path.splitext(os.fspath(path))[1].lower()


def save_sim(model, path) -> None:
    """Logistic -> JSON ``{"model": "logistic", "a", "b", ...}``; transformer -> ``.safetensors``
    (mlkit metadata) or ``.pt/.pth/.tar`` in the official ``{'net', 'optimizer', 'epoch'}`` layout.
    Written atomically."""
    from ..codecs._io import write_bytes

    ext = _ext(path)
    if isinstance(model, LogisticCalibration):
        if ext != ".json":
            raise InputError("wrong extension for a logistic model", expected=".json", got=ext or "none")
        doc = {"model": "logistic", "a": float(model.a), "b": float(model.b), "method": SIM_METHOD,
               "format_version": 1}
        write_bytes((json.dumps(doc, indent=1) + "\n").encode(), path)
    elif isinstance(model, PairTransformer):
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        if ext == ".safetensors":
            from ..tensors import save_checkpoint

            save_checkpoint(path, state, method=SIM_METHOD, config=model.cfg.to_dict(),
                            extra={"model": "transformer", "calibration": model.get_calibration()})
        elif ext in (".pt", ".pth", ".tar"):
            import io

            import torch

            buf = io.BytesIO()
            torch.save({"net": state, "optimizer": {}, "epoch": -1,
                        "mlkit": json.dumps({"method": SIM_METHOD, "config": model.cfg.to_dict(),
                                             "calibration": model.get_calibration()})}, buf)
            write_bytes(buf.getvalue(), path)
        else:
            raise InputError("wrong extension for a transformer model", expected=".safetensors, .pt, .pth or .tar",
                             got=ext or "none")
    else:
        raise InputError("unknown similarity model", expected="PairTransformer or LogisticCalibration",
                         got=type(model).__name__)


def _calibration(value, path) -> tuple[float, float]:
    if value is None:
        return 1.0, 0.0
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: corrupt calibration in the checkpoint", expected="[a, b]",
                         got=repr(value)[:40]) from exc
    if not (np.isfinite(a) and np.isfinite(b)):
        raise InputError(f"{path}: non-finite calibration", got=f"a={a}, b={b}")
    return a, b


def load_sim(path):
    """Dispatch on the extension: ``.json`` (logistic), ``.safetensors`` (ours), ``.pt/.pth/.tar``
    (official checkpoint via :func:`load_official`)."""
    from ..codecs._io import read_bytes
    from ..tensors import load_checkpoint, load_state_dict_checked

    ext = _ext(path)
    if ext == ".json":
        try:
            doc = json.loads(read_bytes(path))
            if doc.get("model") != "logistic":
                raise KeyError("model")
            a, b = float(doc["a"]), float(doc["b"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{path}: not a logistic similarity model",
                             expected='{"model": "logistic", "a": float, "b": float}', got=str(exc)[:80]) from exc
        if not (np.isfinite(a) and np.isfinite(b)):
            raise InputError(f"{path}: non-finite calibration", got=f"a={a}, b={b}")
        return LogisticCalibration(a, b)
    if ext == ".safetensors":
        state, meta = load_checkpoint(path, method=SIM_METHOD, max_format_version=1)
        model = PairTransformer(SimConfig.from_dict(meta.get("config") or {}))
        load_state_dict_checked(model, state)
        model.set_calibration(*_calibration(meta.get("calibration"), path))
        return model.eval()
    if ext in (".pt", ".pth", ".tar"):
        return load_official(os.fspath(path))
    raise InputError(f"{path}: unknown similarity-model format", expected=".json, .safetensors, .pt, .pth or .tar",
                     got=ext or "no extension")
