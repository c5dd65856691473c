"""What the KTH, Human3.6M and BAIR ingestions share: decoding video files, the processed layout, clips.

Processed layout of a natural-video dataset (data/processed/<profile>/<dataset>/):

    test.npz    videos [N, T, C, H, W] uint8        the fixed test clips (+ per-dataset metadata arrays)
    train.npz   frames [F, C, H, W] uint8, offsets [V+1] int64, names [V]   all training videos, concatenated
    val.npz     same layout: the held-out validation videos (model selection)

Videos are kept whole and concatenated (one array, no copy per worker; SRVP issue #8); a training
clip is a random window of a random video long enough for it.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from stages.errors import DataError


# ------------------------------------------------------------------------------------------------ decoding
def decode_video(path: str | Path, *, fps: float | None = None):
    """Yield the decoded ``av.VideoFrame`` s of ``path`` (resampled to ``fps`` when given, like ``ffmpeg -r``).

    A file that cannot be opened, fails while decoding, or yields fewer frames than its header
    announces (a truncated download) raises DataError naming the file.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: video file not found.")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise DataError(f"{path}: not a readable video ({exc}); delete it and fetch it again.") from exc
    with container:
        if not container.streams.video:
            raise DataError(f"{path}: contains no video stream; delete it and fetch it again.")
        stream = container.streams.video[0]
        announced = int(stream.frames or 0)
        rate = float(stream.average_rate or 0) or None
        n = 0
        next_t = 0.0  # output timestamps for -r resampling (nearest preceding source frame, as ffmpeg's fps filter)
        try:
            for frame in container.decode(stream):
                n += 1
                if fps is None or rate is None or abs(rate - fps) < 1e-6:
                    yield frame
                    continue
                t = (n - 1) / rate
                while next_t < t + 1.0 / rate - 1e-9:
                    yield frame
                    next_t += 1.0 / fps
        except av.error.FFmpegError as exc:
            raise DataError(f"{path}: decoding failed after {n} frames ({exc}); the file is corrupt or truncated: "
                            "delete it and fetch it again.") from exc
        if n == 0 or (announced and n < announced):
            raise DataError(f"{path}: truncated video ({n} of {announced} frames decoded); delete it and fetch it again.")


def count_frames(path: str | Path) -> int:
    """Frame count announced by the container (no decoding): used to draw test clips before decoding."""
    import av

    try:
        with av.open(str(path)) as container:
            n = int(container.streams.video[0].frames or 0)
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        raise DataError(f"{path}: not a readable video ({exc}); delete it and fetch it again.") from exc
    if n <= 0:
        raise DataError(f"{path}: the container announces no frame count; the file is truncated or not a video.")
    return n


def write_video(path: str | Path, frames: np.ndarray, *, fps: int = 25, codec: str = "mpeg4") -> None:
    """Encode uint8 frames [T, H, W] (grey) or [T, H, W, 3] (RGB) with PyAV: the synthetic raw sources."""
    import av

    frames = np.asarray(frames, np.uint8)
    rgb = frames.ndim == 4
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "2"} if codec == "mpeg4" else {}
        for img in frames:
            frame = av.VideoFrame.from_ndarray(img if rgb else img, format="rgb24" if rgb else "gray")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


# ------------------------------------------------------------------------------------------------ storage
def pack_videos(videos: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """list of [T_i, C, H, W] -> (frames [sum T_i, C, H, W], offsets [V+1])."""
    if not videos:
        raise DataError("no video to pack: the split is empty (check the raw folder and the subject lists).")
    offsets = np.zeros(len(videos) + 1, np.int64)
    offsets[1:] = np.cumsum([len(v) for v in videos])
    return np.concatenate(videos, axis=0), offsets


def load_packed(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing: run the preprocess stage first (snakemake {path}).")
    try:
        with np.load(path) as data:
            return data["frames"], data["offsets"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is corrupt ({exc}): delete it and rerun its preprocess stage.") from exc


def validation_split(n_videos: int, fraction: float, seed: int) -> np.ndarray:
    """Indices of the held-out validation videos: a fixed random ``fraction`` (SRVP: 5%, RandomState(42))."""
    n_val = max(1, int(round(n_videos * fraction))) if n_videos > 1 and fraction > 0 else 0
    return np.sort(np.random.RandomState(seed).permutation(n_videos)[:n_val])


class ClipSampler:
    """Random training clips of ``n_frames`` (every ``stride``-th stored frame) from packed videos.

    ``batch(step, batch_size)`` is a pure function of (seed, step): ``default_rng([seed, step])`` picks a
    video among those long enough, then a start; so a resumed run sees the batches of an uninterrupted one.
    """

    def __init__(self, frames: np.ndarray, offsets: np.ndarray, n_frames: int, seed: int, stride: int = 1):
        self.frames, self.offsets = frames, offsets
        self.n_frames, self.seed, self.stride = int(n_frames), int(seed), int(stride)
        span = (self.n_frames - 1) * self.stride + 1
        lengths = np.diff(offsets)
        self.eligible = np.flatnonzero(lengths >= span)
        if len(self.eligible) == 0:
            raise DataError(f"no video has the {span} frames a {n_frames}-frame clip needs "
                            f"(longest: {lengths.max() if len(lengths) else 0}); lower seq_len.")
        self.span = span

    def batch(self, step: int, batch_size: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, int(step)])
        vids = self.eligible[rng.integers(0, len(self.eligible), size=batch_size)]
        room = np.diff(self.offsets)[vids] - self.span + 1
        starts = self.offsets[vids] + (rng.random(batch_size) * room).astype(np.int64)
        index = starts[:, None] + np.arange(self.n_frames) * self.stride  # [B, T] gather, no Python loop
        return self.frames[index]
