"""mlkit tof-compress: transients as mixtures of exponentially-modified Gaussians."""

from enum import StrEnum
from typing import Annotated

import typer

from .. import _output
from .._app import MlkitTyper
from .._options import Device, DeviceName, Fmt, Format, Output, Seed

app = MlkitTyper(help="Time-resolved light transport as EMG mixtures (Royo et al., Optics Letters): fit, decode on "
                 "any time grid, depth, NLOS reconstruction.")

Layout = Annotated[str, typer.Option("--layout", help="Axis order of a .npy cube: THW or HWT.")]
DeltaT = Annotated[float, typer.Option("--delta-t", help="Metres of optical path per bin (overrides the file).")]
TStart = Annotated[float, typer.Option("--t-start", help="Optical path of bin 0, metres (overrides the file).")]


class Scene(StrEnum):
    los = "los"
    confocal = "confocal"


class Loss(StrEnum):
    poisson = "poisson"
    l2 = "l2"


class Store(StrEnum):
    f16 = "f16"
    f32 = "f32"


class Rule(StrEnum):
    first = "first"
    strongest = "strongest"


class Method(StrEnum):
    fk = "fk"
    lct = "lct"
    bp = "bp"
    fbp = "fbp"


def _read(src: str, layout: str, delta_t: float, t_start: float):
    from mlkit.tofcompress.formats import read_transient

    return read_transient(src, layout=layout or None, delta_t=delta_t or None,
                          t_start=t_start if t_start == t_start else None)


def _is_tofz(src: str) -> bool:
    """A .tofz by name, or by its zip magic (transients are HDF5 or .npy)."""
    from mlkit.codecs._io import peek_file

    return src != "-" and (src.endswith(".tofz") or peek_file(src, 4) == b"PK\x03\x04")


def _cube_of(src: str, layout: str = "", delta_t: float = 0.0):
    """A transient (T, H, W) and its grid from a transient file or a .tofz (decoded)."""
    if _is_tofz(src):
        from mlkit.tofcompress.container import read_tofz
        from mlkit.tofcompress.encode import decode

        enc = read_tofz(src)
        return decode(enc), enc.delta_t, enc.t_start
    tr = _read(src, layout, delta_t, float("nan"))
    return tr.H, tr.delta_t, tr.t_start


@app.command()
def synth(output: Annotated[str, typer.Option("-o", "--output", help=".h5 (HDF5-TAL) to write.")],
          scene: Annotated[Scene, typer.Option(help="Line-of-sight two planes, or a confocal NLOS capture.")] = Scene.confocal,
          size: Annotated[int, typer.Option(help="Pixels per side.")] = 32,
          bins: Annotated[int, typer.Option(help="Time bins [confocal 256, los 512].")] = 0,
          delta_t: Annotated[float, typer.Option("--delta-t", help="Metres of path per bin [confocal 0.01, los 0.02].")] = 0.0,
          photons: Annotated[float, typer.Option(help="Mean signal photons per pixel.")] = 3000.0,
          dark: Annotated[float, typer.Option(help="Dark counts per bin.")] = 0.01,
          seed: Seed = 0):
    """A synthetic capture with its ground truth under /gt (clean cube, depth or hidden points)."""
    from mlkit.tofcompress.formats import write_tal
    from mlkit.tofcompress.synth import confocal_scene, los_scene

    kw = {"size": size, "photons": photons, "dark": dark, "seed": seed}
    if bins:
        kw["bins"] = bins
    if delta_t:
        kw["delta_t"] = delta_t
    tr = confocal_scene(**kw) if scene == Scene.confocal else los_scene(**kw)
    n = write_tal(tr, output)
    _output.note(f"{output}: {scene.value} {tr.H.shape[1]}x{tr.H.shape[2]}x{tr.H.shape[0]}, {n} bytes")


@app.command()
def fit(src: Annotated[str, typer.Argument(metavar="TRANSIENT", help=".h5 (HDF5-TAL or Z-NLOS) or .npy; '-' = stdin.")],
        output: Annotated[str, typer.Option("-o", "--output", help=".tofz to write.")],
        k_max: Annotated[int, typer.Option("--k-max", help="Most components per pixel (1-16).")] = 3,
        loss: Annotated[Loss, typer.Option(help="Poisson deviance or L2.")] = Loss.poisson,
        pool: Annotated[int, typer.Option(help="Spatial window of the initialisation (1 = none).")] = 3,
        kappa: Annotated[float, typer.Option(help="Peak threshold, background standard deviations.")] = 3.0,
        iters: Annotated[int, typer.Option(help="Levenberg-Marquardt iterations.")] = 30,
        irf_sigma: Annotated[float, typer.Option("--irf-sigma", help="Known response sigma, bins.")] = 1.0,
        irf_tau: Annotated[float, typer.Option("--irf-tau", help="Known response tail, bins.")] = 2.0,
        irf_known: Annotated[bool, typer.Option("--irf-known", help="--irf-sigma/--irf-tau are the measured response: "
                                                "no return is narrower (σ and tail floors).")] = False,
        blend: Annotated[str, typer.Option(metavar="auto|W", help="Spatial coupling: each pixel is fitted to itself "
                                           "plus its 8 neighbours, each weighted W x the similarity of its returns "
                                           "(0 = none); auto picks W by Poisson-thinning cross-validation.")] = "auto",
        dtype: Annotated[Store, typer.Option(help="Parameter storage.")] = Store.f16,
        chunk: Annotated[int, typer.Option(help="Pixels per batch.")] = 4096,
        layout: Layout = "", delta_t: DeltaT = 0.0, t_start: TStart = float("nan"),
        device: Device = DeviceName.cpu):
    """Encode a transient cube as per-pixel EMG mixtures (.tofz)."""
    from mlkit.tensors import resolve_device
    from mlkit.tofcompress.container import write_tofz
    from mlkit.tofcompress.encode import encode
    from mlkit.tofcompress.fit import FitConfig

    w = _blend_weight(blend)
    tr = _read(src, layout, delta_t, t_start)
    cfg = FitConfig(k_max=k_max, loss=loss.value, pool=pool, kappa=kappa, iters=iters, sigma0=irf_sigma,
                    tau0=irf_tau, irf_known=irf_known).validate()
    dev = str(resolve_device(device.value))
    with _output.progress() as prog:
        if w is None:
            prog.add_task("choose --blend", total=None)
        task = prog.add_task("fit", total=tr.H.shape[1] * tr.H.shape[2])
        enc = encode(tr.H, cfg, delta_t=tr.delta_t, t_start=tr.t_start, blend=w, chunk=chunk, device=dev,
                     progress=lambda done, n: prog.update(task, completed=done))
    n = write_tofz(enc, output, dtype.value)
    _output.note(f"{output}: {tr.H.size * 4 / n:.1f}x smaller than float32, "
                 f"{enc.count.mean():.2f} components per pixel, blend {enc.meta['blend']:g}")


def _blend_weight(text: str) -> float | None:
    """'auto' -> None (cross-validated), else a weight in [0, 1]."""
    from mlkit.errors import InputError

    if text.strip().lower() == "auto":
        return None
    try:
        w = float(text)
    except ValueError:
        w = float("nan")
    if not 0 <= w <= 1:
        raise InputError("bad --blend", expected="auto or a weight in 0..1", got=text)
    return w


@app.command()
def decode(src: Annotated[str, typer.Argument(metavar="TOFZ", help=".tofz file.")],
           output: Output = "-",
           bins: Annotated[int, typer.Option(help="Output bins [the fitted number].")] = 0,
           delta_t: DeltaT = 0.0, t_start: TStart = float("nan")):
    """Evaluate the mixtures on any time grid -> .npy (T, H, W) or .h5."""
    from mlkit.codecs import arrays
    from mlkit.tofcompress.container import read_tofz
    from mlkit.tofcompress.encode import decode as run
    from mlkit.tofcompress.formats import Transient, write_tal

    enc = read_tofz(src)
    t0 = t_start if t_start == t_start else None
    cube = run(enc, bins=bins or None, delta_t=delta_t or None, t_start=t0)
    if output.endswith((".h5", ".hdf5")):
        write_tal(Transient(cube, delta_t or enc.delta_t, enc.t_start if t0 is None else t0), output)
    else:
        arrays.write(cube, output, fmt="npy" if output == "-" else None)


@app.command()
def depth(src: Annotated[str, typer.Argument(metavar="TOFZ|TRANSIENT", help=".tofz, or a transient for the "
                                                                            "histogram-peak baseline.")],
          output: Output = "-",
          component: Annotated[Rule, typer.Option(help="Which component gives the depth.")] = Rule.first,
          png: Annotated[str, typer.Option(metavar="FILE.png", help="Also draw the depth map.")] = "",
          layout: Layout = "", delta_t: DeltaT = 0.0):
    """Per-pixel depth in metres (optical path / 2) -> .npy (H, W)."""
    from mlkit.codecs import arrays

    if _is_tofz(src):
        from mlkit.tofcompress.container import read_tofz
        from mlkit.tofcompress.depth import depth_map

        d = depth_map(read_tofz(src), component.value)
    else:
        from mlkit.tofcompress.depth import histogram_peak_depth

        tr = _read(src, layout, delta_t, float("nan"))
        d = histogram_peak_depth(tr.H, tr.delta_t, tr.t_start)
    if png:
        from mlkit.plots import figure

        with figure(dst=png) as (fig, ax):
            im = ax.imshow(d, cmap="viridis")
            fig.colorbar(im, ax=ax, label="depth (m)")
    arrays.write(d.astype("float32"), output, fmt="npy" if output == "-" else None)


@app.command()
def recon(src: Annotated[str, typer.Argument(metavar="TOFZ|TRANSIENT", help="Confocal capture or its .tofz.")],
          output: Output = "-",
          wall: Annotated[float, typer.Option("--wall-size", help="Relay wall side, metres.")] = 1.0,
          png: Annotated[str, typer.Option(metavar="FILE.png", help="Max-intensity projection picture.")] = "",
          method: Annotated[Method, typer.Option(help="f-k migration, light-cone transform, back-projection, "
                                                     "filtered back-projection.")] = Method.fk,
          snr: Annotated[float, typer.Option(help="LCT only: Wiener filter signal-to-noise ratio.")] = 0.1,
          pad: Annotated[bool, typer.Option("--pad/--no-pad", help="LCT only: zero-pad the bins to a power of "
                                                                   "two (and crop the volume back).")] = False,
          layout: Layout = "", delta_t: DeltaT = 0.0, device: Device = DeviceName.cpu):
    """Reconstruct the hidden scene of a confocal NLOS capture -> volume .npy (T, N, N); voxel z at depth
    z·delta_t/2. Methods: f-k migration (Lindell et al. 2019), the light-cone transform (O'Toole et al.
    2018; needs 2^k bins or --pad), back-projection and filtered back-projection (O(T·N⁴) work)."""
    from mlkit.codecs import arrays
    from mlkit.tensors import resolve_device
    from mlkit.tofcompress.recon import mip, reconstruct

    cube, dt, _ = _cube_of(src, layout, delta_t)
    vol = reconstruct(cube, dt, wall, method.value, snr=snr, pad=pad, device=str(resolve_device(device.value)))
    if png:
        from mlkit.plots import figure

        with figure(dst=png) as (fig, ax):
            ax.imshow(mip(vol), cmap="gray")
            ax.set_title(f"{method.value} reconstruction (MIP)")
    arrays.write(vol, output, fmt="npy" if output == "-" else None)


@app.command("eval")
def eval_(pred: Annotated[str, typer.Argument(metavar="PRED", help=".tofz or a transient.")],
          ref: Annotated[str, typer.Option(help="Reference: a synth .h5 (its /gt/clean is used) or a clean cube.")],
          noisy: Annotated[str, typer.Option(help="The noisy input, for the deviance (default: --ref's H).")] = "",
          wall: Annotated[float, typer.Option("--wall-size", help="Relay wall side for the NCC (0 = skip).")] = 0.0,
          method: Annotated[Method, typer.Option(help="Reconstruction for the MIP NCC and depth error (LCT "
                                                      "zero-pads to 2^k bins).")] = Method.fk,
          output: Output = "-", format: Format = Fmt.jsonl):
    """Ratio, relative L2, PSNR, Poisson deviance, depth MAE (LOS ground truth), reconstruction MIP NCC."""
    import os

    import numpy as np

    from mlkit.tofcompress.formats import read_transient

    reft = read_transient(ref)
    clean = reft.gt.get("clean", reft.H)
    cube, dt, _ = _cube_of(pred)
    if cube.shape != clean.shape:
        from mlkit.errors import InputError

        raise InputError("prediction and reference differ in shape", expected=str(clean.shape), got=str(cube.shape))
    rec = {"pred": pred, "ref": ref}
    if _is_tofz(pred):
        rec["ratio"] = clean.size * 4 / os.path.getsize(pred)
    c64, p64 = clean.astype(np.float64), cube.astype(np.float64)
    rec["rel_l2"] = float(np.linalg.norm(p64 - c64) / max(np.linalg.norm(c64), 1e-300))
    peak = float(c64.max()) or 1.0
    mse = float(np.mean((p64 / peak - c64 / peak) ** 2))
    rec["psnr_db"] = float(10 * np.log10(1.0 / mse)) if mse > 0 else float("inf")
    import torch

    from mlkit.tofcompress.fit import loss_of

    y = (read_transient(noisy).H if noisy else reft.H).astype(np.float64)
    flat = lambda c: torch.from_numpy(c.reshape(c.shape[0], -1).T.copy())  # noqa: E731  (T, H, W) -> (P, T)
    rec["mean_deviance"] = float(loss_of(flat(y), flat(p64), "poisson").sum()) / y.size
    if "depth" in reft.gt and _is_tofz(pred):
        from mlkit.tofcompress.container import read_tofz
        from mlkit.tofcompress.depth import depth_map

        d = depth_map(read_tofz(pred))
        rec["depth_mae_m"] = float(np.nanmean(np.abs(d - reft.gt["depth"])))
    if wall > 0:
        from mlkit.tofcompress.recon import depth_of_max, mip, ncc, reconstruct

        vc, vp = (reconstruct(c, dt, wall, method.value, pad=True) for c in (clean, cube))
        mc = mip(vc)
        mask = mc > 0.3 * mc.max()
        rec["recon_method"] = method.value
        rec["mip_ncc"] = ncc(mip(vp), mc)
        rec["recon_depth_mae_bins"] = float(np.mean(np.abs(depth_of_max(vp, dt) - depth_of_max(vc, dt))[mask]) / (dt / 2))
    _output.emit([rec], format, output, title="tof-compress eval")


@app.command()
def info(src: Annotated[str, typer.Argument(metavar="TOFZ", help=".tofz file.")],
         output: Output = "-", format: Format = Fmt.jsonl):
    """What a .tofz holds: grid, pixels, components per pixel, storage."""
    import os

    import numpy as np

    from mlkit.tofcompress.container import read_tofz

    enc = read_tofz(src)
    size = os.path.getsize(src)
    rec = {"path": src, "shape": list(enc.shape), "bins": enc.bins, "delta_t": enc.delta_t, "t_start": enc.t_start,
           "k_max": enc.k_max, "loss": enc.loss, "dtype": enc.meta.get("dtype"), "blend": enc.meta.get("blend"),
           "bytes": size,
           "ratio_vs_float32": enc.n_pixels * enc.bins * 4 / size,
           "components_per_pixel": float(enc.count.mean()), "empty_pixels": int((enc.count == 0).sum()),
           "components_hist": np.bincount(enc.count, minlength=enc.k_max + 1).tolist()}
    _output.emit([rec], format, output, title="tof-compress info")


@app.command()
def bench(photons: Annotated[str, typer.Option(help="Comma-separated photon counts per pixel.")] = "3000,300,100",
          ratios: Annotated[str, typer.Option(help="Comma-separated target ratios for the baselines.")] = "25,50,100",
          methods: Annotated[str, typer.Option(help="Comma-separated methods.")] = "emg,gmm,svd,dct,wavelet,gzip",
          size: Annotated[int, typer.Option(help="Confocal scene side, pixels.")] = 32,
          bins: Annotated[int, typer.Option(help="Time bins.")] = 256,
          speed: Annotated[bool, typer.Option(help="Also time the batched fitter against a per-pixel scipy loop.")] = True,
          output: Output = "-", format: Format = Fmt.jsonl):
    """EMG against every baseline at matched ratios and several photon counts: relL2, PSNR, f-k NCC,
    reconstruction depth error, seconds, and relL2 relative to the EMG (vs_emg)."""
    from mlkit.errors import InputError
    from mlkit.tofcompress.bench import compare
    from mlkit.tofcompress.bench import speed as run_speed

    try:
        ph = [float(v) for v in photons.split(",") if v.strip()]
        rs = [float(v) for v in ratios.split(",") if v.strip()]
    except ValueError as exc:
        raise InputError("bad --photons or --ratios", expected="comma-separated numbers") from exc
    ms = tuple(m.strip() for m in methods.split(",") if m.strip())
    known = {"emg", "gmm", "svd", "dct", "wavelet", "gzip"}
    if not ms or set(ms) - known:
        raise InputError("unknown method", expected=", ".join(sorted(known)), got=", ".join(sorted(set(ms) - known)))

    def stream():
        with _output.progress() as prog:
            task = prog.add_task("bench", total=len(ph) + int(speed))
            for p in ph:
                yield from compare(p, rs, size=size, bins=bins, methods=ms)
                prog.advance(task)
            if speed:
                yield {"method": "speed", **run_speed(pixels=1024, scipy_pixels=64)}
                prog.advance(task)

    _output.emit(stream(), format, output, title="tof-compress bench")


@app.command()
def demo(output: Output = "-", format: Format = Fmt.table):
    """A line-of-sight depth scene and a confocal NLOS scene, fitted, stored and scored."""
    from mlkit.tofcompress.demo import demo_rows

    with _output.progress() as prog:
        task = prog.add_task("tof-compress demo", total=None)
        rows = demo_rows()
        prog.update(task, completed=1, total=1)
    _output.emit(rows, format, output, title="tof-compress demo")
