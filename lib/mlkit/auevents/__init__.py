"""Facial action unit (AU) events: onset-offset segments per AU, detected as class-specific sets.

Paper: Yingjie Chen, Jiarui Zhang, Tao Wang, Yun Liang, "EventFormer: AU Event Transformer for
Facial Action Unit Event Detection", BMVC 2023, arXiv 2203.06355. No official code is known and the
method section is not available to us: the model is a DETR/TadTR-style reconstruction (paper notes
``au-events.md``). Events are half-open frame segments [s, e); scoring is the ActivityNet detection
protocol (per-AU AP at several tIoU thresholds), event F1 and frame F1.

Modules: ``formats`` (features, BP4D-style frame CSV, ActivityNet JSON), ``events`` (frames <->
events: runs, median filter, merge, minimum duration, rasterising), ``metrics`` (tIoU, AP, mAP,
event F1, frame F1), ``synth`` (BP4D-statistics sequences), ``baseline`` (per-frame logistic
regression, raw and tuned post-processing, oracle), ``model``/``train`` (EventFormer),
``checkpoint`` (safetensors), ``bench`` (all methods side by side per seed), ``demo``, ``plot``.
"""


def run_demo(workdir):
    from .demo import run_demo as demo

    return demo(workdir)


def run_bench(workdir):
    from .bench import run_bench as bench

    return bench(workdir)


__all__ = ["run_demo", "run_bench"]
