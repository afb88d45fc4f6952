"""Video through ffmpeg pipes (ffmpeg-python driving the imageio-ffmpeg binary): read frames from
any container or a frame folder, write x264 / x265 / lossless FFV1 (label videos) or a frame
folder, probe fps/size/frame count. Frames stream one at a time; a video is never held whole.

Frames are ``(H, W, 3) uint8`` RGB for ``pix_fmt="rgb24"``, ``(H, W) uint8`` for ``"gray"``,
``(H, W) uint16`` for ``"gray16le"``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailable, InputError, OutputError
from ._io import PathLike, atomic_dir, atomic_path, display_name, is_bytes, is_std, read_bytes, suffix_of

__all__ = ["FORMATS", "CODECS", "VideoInfo", "ffmpeg_exe", "encoders", "probe", "read_frames",
           "VideoWriter", "write", "is_frame_folder"]

FORMATS = ("mp4", "mkv", "avi", "mov", "webm", "nut", "y4m")
CODECS = {"ffv1": "ffv1", "x264": "libx264", "x265": "libx265", "libx264": "libx264",
          "libx265": "libx265"}
_PIX = {"rgb24": (3, np.uint8), "gray": (1, np.uint8), "gray16le": (1, np.uint16)}
_FRAME_EXT = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


@dataclass
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int | None
    codec: str
    pix_fmt: str
    duration: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def ffmpeg_exe() -> str:
    """The ffmpeg binary: ``MLKIT_FFMPEG``, else the one imageio-ffmpeg ships, else PATH."""
    exe = os.environ.get("MLKIT_FFMPEG")
    if not exe:
        try:
            import imageio_ffmpeg

            exe = imageio_ffmpeg.get_ffmpeg_exe()
        except (ImportError, RuntimeError):
            exe = shutil.which("ffmpeg")
    if not exe or not Path(exe).exists():
        raise BackendUnavailable("ffmpeg not found", hint="pip install imageio-ffmpeg or set MLKIT_FFMPEG")
    return exe


def _ffmpeg_cmd() -> list[str]:
    """The binary with its global options first (ffmpeg 7+ rejects options after the output)."""
    return [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin"]


def encoders() -> set[str]:
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True)
    return {ln.split()[1] for ln in out.stdout.splitlines() if ln.startswith(" V") and len(ln.split()) > 1}


def is_frame_folder(path: PathLike) -> bool:
    return not is_std(path) and not is_bytes(path) and Path(path).is_dir()


def _frame_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _FRAME_EXT)
    if not files:
        raise InputError(f"{folder}: no frames", expected="PNG/JPEG/TIFF files in the folder")
    return files


def probe(src: PathLike, *, count: bool = True) -> VideoInfo:
    """Size, fps, codec and (``count=True``: exact, by decoding) the number of frames."""
    from . import images

    if is_frame_folder(src):
        files = _frame_files(Path(src))
        img = images.read(files[0])
        return VideoInfo(img.shape[1], img.shape[0], 0.0, len(files), "frames", str(img.dtype), None)
    with _local(src) as path:
        res = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                             capture_output=True, text=True)
        text = res.stderr
        m = re.search(r"Stream #\S+.*?: Video: (\w+).*?, (\w+)(?:\([^)]*\))?, (\d+)x(\d+)", text)
        if not m:
            raise InputError(f"{display_name(src)}: no video stream (not a video, or corrupt)",
                             got=_last_line(text))
        codec, pix, w, h = m.group(1), m.group(2), int(m.group(3)), int(m.group(4))
        fr = re.search(r"([\d.]+) fps", text) or re.search(r"([\d.]+) tbr", text)
        fps = float(fr.group(1)) if fr else 0.0
        dm = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
        dur = int(dm.group(1)) * 3600 + int(dm.group(2)) * 60 + float(dm.group(3)) if dm else None
        n = _count_frames(path) if count else None
    return VideoInfo(w, h, fps, n, codec, pix, dur)


def _count_frames(path: Path) -> int:
    res = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0",
                          "-f", "null", "-"], capture_output=True, text=True)
    hits = re.findall(r"frame=\s*(\d+)", res.stderr)
    if res.returncode != 0 or not hits:
        raise InputError(f"{path}: cannot decode video", got=_last_line(res.stderr))
    return int(hits[-1])


@contextlib.contextmanager
def _local(src: PathLike) -> Iterator[Path]:
    """A real file for ffmpeg: the path itself, or stdin spooled to a temp file."""
    if not is_std(src) and not is_bytes(src):
        p = Path(src)
        if not p.exists():
            from ..errors import MissingInputError

            raise MissingInputError(f"{p}: no such file", hint="check the path")
        yield p
        return
    data = read_bytes(src)
    fd, tmp = tempfile.mkstemp(prefix="mlkit-video-", suffix=".bin")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        yield Path(tmp)
    finally:
        os.unlink(tmp)


def read_frames(src: PathLike, *, pix_fmt: str = "rgb24", start: int = 0,
                max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Yield frames one at a time from a video file, stdin or a frame folder."""
    if pix_fmt not in _PIX:
        raise InputError("unknown pixel format", expected="/".join(_PIX), got=pix_fmt)
    if is_frame_folder(src):
        yield from _folder_frames(Path(src), pix_fmt, start, max_frames)
        return
    import ffmpeg

    with _local(src) as path:
        info = probe(path, count=False)
        ch, dt = _PIX[pix_fmt]
        size = info.width * info.height * ch * np.dtype(dt).itemsize
        stream = ffmpeg.input(str(path))
        out_kw = {"format": "rawvideo", "pix_fmt": pix_fmt}
        if start:
            stream = stream.filter("select", f"gte(n,{int(start)})")
            out_kw["fps_mode"] = "passthrough"
        if max_frames is not None:
            out_kw["frames:v"] = int(max_frames)
        proc = stream.output("pipe:", **out_kw).run_async(cmd=_ffmpeg_cmd(), pipe_stdout=True, pipe_stderr=True)
        try:
            while True:
                buf = proc.stdout.read(size)
                if not buf:
                    break
                if len(buf) != size:
                    raise InputError(f"{display_name(src)}: truncated frame", expected=f"{size} bytes",
                                     got=f"{len(buf)} bytes")
                frame = np.frombuffer(buf, dtype=dt).reshape(info.height, info.width, ch)
                yield frame[:, :, 0].copy() if ch == 1 else frame.copy()
            err = proc.stderr.read().decode("utf-8", "replace")
            if proc.wait() != 0:
                raise InputError(f"{display_name(src)}: cannot decode video", got=_last_line(err))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()


def _folder_frames(folder: Path, pix_fmt: str, start: int, max_frames: int | None):
    from . import images, masks

    files = _frame_files(folder)[start:]
    if max_frames is not None:
        files = files[:max_frames]
    for f in files:
        raw = read_bytes(f)
        if pix_fmt != "rgb24" and raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 25 and raw[25] == 3:
            # palette PNGs (DAVIS masks) hold object ids: keep the indices, not the colours
            ids, _ = masks.read(raw)
            yield ids if pix_fmt == "gray" else ids.astype(np.uint16)
        else:
            yield _to_pix(images.decode(raw, str(f)), pix_fmt)


def _to_pix(img: np.ndarray, pix_fmt: str) -> np.ndarray:
    import cv2

    if pix_fmt == "rgb24":
        if img.dtype != np.uint8:
            img = (img / 257).astype(np.uint8) if img.dtype == np.uint16 else img.astype(np.uint8)
        if img.ndim == 2:
            return np.repeat(img[:, :, None], 3, axis=2)
        return img[:, :, :3]
    gray = img if img.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_RGB2GRAY)
    if pix_fmt == "gray16le":
        return gray.astype(np.uint16) if gray.dtype != np.uint8 else gray.astype(np.uint16) * 257
    return gray if gray.dtype == np.uint8 else (gray / 257).astype(np.uint8)


class VideoWriter:
    """Streaming, atomic video writer::

        with VideoWriter("labels.mkv", fps=25, codec="ffv1") as w:
            for frame in frames:
                w.write(frame)

    The file appears only when the block ends without error. ``codec``: ``ffv1`` (lossless, the
    default), ``x264``, ``x265``; ``crf`` sets quality for x264/x265. A folder path (existing
    folder, or no extension) writes numbered PNG frames instead."""

    def __init__(self, dst: PathLike, *, fps: float = 25.0, codec: str = "ffv1", crf: int | None = None,
                 preset: str | None = None, fmt: str | None = None):
        if codec not in CODECS:
            raise InputError("unknown video codec", expected="/".join(sorted(set(CODECS))), got=codec)
        if fps <= 0:
            raise InputError("bad fps", expected="> 0", got=str(fps))
        self.dst, self.fps, self.codec, self.crf, self.preset = dst, fps, CODECS[codec], crf, preset
        self.folder = not is_std(dst) and (Path(dst).is_dir() or suffix_of(dst) == "")
        self.container = (fmt or ("mkv" if is_std(dst) else suffix_of(dst))).lower()
        if not self.folder and self.container not in FORMATS:
            raise InputError(f"{dst}: unknown video container", expected=", ".join(FORMATS))
        self._proc = None
        self._ctx = None
        self._tmp: Path | None = None
        self._shape = None
        self.count = 0

    def __enter__(self) -> VideoWriter:
        if self.folder:
            self._ctx = atomic_dir(self.dst)
        elif not is_std(self.dst):
            self._ctx = atomic_path(self.dst, suffix="." + suffix_of(self.dst))
        if self._ctx is not None:
            self._tmp = self._ctx.__enter__()
        return self

    def write(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if self._shape is None:
            self._start(frame)
        if frame.shape != self._shape or frame.dtype != self._dtype:
            raise InputError("frame size changed mid-video", expected=f"{self._shape} {self._dtype}",
                             got=f"{frame.shape} {frame.dtype}")
        if self.folder:
            from . import images

            images.write(frame, self._tmp / f"{self.count:05d}.png")
        else:
            try:
                self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
            except BrokenPipeError as exc:
                raise OutputError(f"{self.dst}: ffmpeg stopped", got=self._err()) from exc
        self.count += 1

    def _start(self, frame: np.ndarray) -> None:
        import ffmpeg

        if frame.ndim == 2 and frame.dtype == np.uint8:
            in_pix = "gray"
        elif frame.ndim == 2 and frame.dtype == np.uint16:
            in_pix = "gray16le"
        elif frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8:
            in_pix = "rgb24"
        else:
            raise InputError("unsupported frame", expected="(H,W) uint8/uint16 or (H,W,3) uint8",
                             got=f"{frame.shape} {frame.dtype}")
        self._shape, self._dtype = frame.shape, frame.dtype
        if self.folder:
            return
        h, w = frame.shape[:2]
        if self.codec == "ffv1":
            out_pix = {"gray": "gray", "gray16le": "gray16le", "rgb24": "bgr0"}[in_pix]
            kw = {"vcodec": "ffv1", "level": 3}
        else:
            if h % 2 or w % 2:
                raise InputError(f"{self.codec} needs even frame sizes", got=f"{w}x{h}",
                                 hint="crop or pad, or use --codec ffv1")
            out_pix = "gray" if in_pix.startswith("gray") and self.codec == "libx264" else "yuv420p"
            kw = {"vcodec": self.codec}
            if self.crf is not None:
                kw["crf"] = int(self.crf)
            if self.preset:
                kw["preset"] = self.preset
            if self.codec == "libx265":
                kw["x265-params"] = "log-level=error"
        target = "pipe:" if is_std(self.dst) else str(self._tmp)
        kw["format"] = {"mkv": "matroska", "y4m": "yuv4mpegpipe"}.get(self.container, self.container)
        if is_std(self.dst) and self.container in ("mp4", "mov"):
            kw["movflags"] = "frag_keyframe+empty_moov"  # a pipe cannot seek back to write the index
        stream = ffmpeg.input("pipe:", format="rawvideo", pix_fmt=in_pix, s=f"{w}x{h}", framerate=self.fps)
        self._proc = (stream.output(target, pix_fmt=out_pix, **kw).overwrite_output()
                      .run_async(cmd=_ffmpeg_cmd(), pipe_stdin=True, pipe_stderr=True))

    def _err(self) -> str:
        try:
            return _last_line(self._proc.stderr.read().decode("utf-8", "replace"))
        except (OSError, ValueError):
            return "?"

    def __exit__(self, et, ev, tb) -> bool:
        try:
            if self._proc is not None:
                if et is None:
                    self._proc.stdin.close()
                    if self._proc.wait() != 0:
                        raise OutputError(f"{self.dst}: ffmpeg failed", got=self._err())
                else:
                    self._proc.kill()
                    self._proc.wait()
                self._proc.stderr.close()
            elif et is None and not self.folder:
                raise InputError("no frames to write", expected="at least one frame")
        except BaseException as exc:
            if self._ctx is not None:
                self._ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        if self._ctx is not None:
            return bool(self._ctx.__exit__(et, ev, tb))
        return False


def write(frames: Iterable[np.ndarray], dst: PathLike, *, fps: float = 25.0, codec: str = "ffv1",
          crf: int | None = None, fmt: str | None = None) -> int:
    """Write an iterable of frames; returns the frame count. ``fmt`` names the container when
    ``dst`` is ``-`` (default mkv)."""
    with VideoWriter(dst, fps=fps, codec=codec, crf=crf, fmt=fmt) as w:
        for f in frames:
            w.write(f)
    return w.count



def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1][:160] if lines else "no message"
