"""Stochastic Moving MNIST with *corrected* bounces (the SRVP version, anchors 1.2; thesis 3.2).

Why "corrected": the original SVG generator clamped a digit onto the wall when it crossed it, losing
the rest of the displacement, so trajectories depended on the frame rate. Here positions are floats
and every step is integrated exactly: when the straight path of a step crosses the border of the
allowed box ``[0, frame_size - digit_size]`` (per axis), the motion stops at the *exact* intersection
point, the velocity changes, and the remaining fraction of the step continues from the wall (several
bounces per step are possible). In the deterministic version the bounce is a pure reflection; in the
stochastic version a *new* velocity is drawn at each bounce (both components uniform integers in
``[-max_speed, max_speed]``), then the component normal to the hit wall is forced to point inward
(``+|v|`` on the 0 wall, ``-|v|`` on the far wall). A normal component drawn as 0 stays 0: the digit
then slides along (or rests on) the wall, which never leaves the box (SRVP's rule too). A corner hit
(both axes reach a wall at the same instant, within 1e-8 px) reflects both components.

Conventions:
- positions are ``(row, col)`` of the digit's top-left corner, float64; a frame draws the digit at the
  rounded position (``np.rint``: round half to even, as Python's ``round`` in SRVP);
- initial positions are uniform integers in ``[0, box]``, initial velocities uniform integers in
  ``[-max_speed, max_speed]`` (zero allowed), drawn from the explicit ``numpy.random.Generator``;
- digits are overlaid additively and clipped at 255; videos are uint8 ``[N, T, 1, H, W]``.

The trajectory integration loops over time steps (each depends on the previous one) but is vectorised
across sequences; rendering has no Python loop over frames or pixels.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from stages import paths
from stages.datasets.arrays import load_npz
from stages.errors import ConfigError, DataError, atomic_path

__all__ = [
    "EPS", "advance", "initial_state", "trajectories", "render", "TrainClipSampler", "make_test_set",
    "single_digit_trajectory",
]

EPS = 1e-8  # px: a position less than EPS beyond a wall is on the wall (SRVP's tolerance)
_MAX_BOUNCE_ROUNDS = 10_000  # per step; only reachable through a bug (stochastic corners end a.s. quickly)


def _box(frame_size: int, digit_size: int, max_speed: int) -> int:
    """Largest allowed top-left coordinate, after validating the generator parameters."""
    if not (1 <= digit_size <= frame_size):
        raise ConfigError(f"smmnist: need 1 <= digit_size <= frame_size, got {digit_size} and {frame_size}.")
    if max_speed < 0:
        raise ConfigError(f"smmnist: max_speed must be >= 0, got {max_speed}.")
    return frame_size - digit_size


def initial_state(rng: np.random.Generator, n: int, *, box: int, max_speed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random (position, velocity) pairs, float64 [n, 2] each (integer-valued)."""
    pos = rng.integers(0, box + 1, size=(n, 2)).astype(np.float64)
    vel = rng.integers(-max_speed, max_speed + 1, size=(n, 2)).astype(np.float64)
    return pos, vel


def advance(
    pos: np.ndarray,
    vel: np.ndarray,
    duration: float = 1.0,
    *,
    box: float,
    max_speed: int = 4,
    deterministic: bool = False,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Move ``n`` objects (pos, vel: [n, 2]) for ``duration`` time units with exact wall bounces.

    Returns new (pos, vel) arrays. The stochastic version draws new velocities from ``rng`` for the
    objects that bounce (one ``[k, 2]`` draw per bounce round, so the result is a deterministic
    function of the generator state).
    """
    if not deterministic and rng is None:
        raise ValueError("the stochastic version needs a numpy Generator (rng)")
    pos = np.array(pos, dtype=np.float64).reshape(-1, 2)
    vel = np.array(vel, dtype=np.float64).reshape(-1, 2)
    remaining = np.full(len(pos), float(duration))
    active = np.arange(len(pos))
    for _ in range(_MAX_BOUNCE_ROUNDS):
        if active.size == 0:
            break
        p, v, r = pos[active], vel[active], remaining[active]
        wall = np.where(v > 0, float(box), 0.0)  # the wall each axis is heading to
        moving = v != 0
        with np.errstate(divide="ignore", invalid="ignore"):
            t_axis = np.where(moving, np.maximum((wall - p) / v, 0.0), np.inf)  # time to reach it
            overshoot = np.where(moving, (r[:, None] - t_axis) * np.abs(v), -np.inf)
        crosses = overshoot > EPS  # the straight path of what is left of the step leaves the box
        bouncing = crosses.any(axis=1)

        done = active[~bouncing]
        pos[done] = p[~bouncing] + v[~bouncing] * r[~bouncing, None]
        remaining[done] = 0.0
        if not bouncing.any():
            break

        p, v, r, wall = p[bouncing], v[bouncing], r[bouncing], wall[bouncing]
        t_axis, crosses, active = t_axis[bouncing], crosses[bouncing], active[bouncing]
        t_hit = np.where(crosses, t_axis, np.inf).min(axis=1)  # first wall reached
        # Axes reaching their wall at that same instant (within EPS px) all bounce: corners.
        with np.errstate(invalid="ignore"):
            hit = crosses & ((t_axis - t_hit[:, None]) * np.abs(v) <= EPS)
        at_hit = np.clip(p + v * t_hit[:, None], 0.0, box)
        at_hit = np.where(hit, wall, at_hit)  # exactly on the wall, no float dust
        new_v = v if deterministic else rng.integers(-max_speed, max_speed + 1, size=v.shape).astype(np.float64)
        inward = np.where(wall > 0, -1.0, 1.0)
        pos[active] = at_hit
        vel[active] = np.where(hit, inward * np.abs(new_v), new_v)
        remaining[active] = r - t_hit
    else:
        raise RuntimeError("smmnist.advance: too many bounces within one step (bug)")
    np.clip(pos, 0.0, box, out=pos)  # removes sub-EPS float dust only
    return pos, vel


def trajectories(
    n_frames: int,
    rng: np.random.Generator | None,
    n: int,
    *,
    frame_size: int = 64,
    digit_size: int = 28,
    max_speed: int = 4,
    deterministic: bool = False,
    start: np.ndarray | None = None,
    velocity: np.ndarray | None = None,
) -> np.ndarray:
    """Float positions [n, n_frames, 2] of ``n`` independent objects, one frame per time unit.

    Frame 0 is the initial position. ``start`` / ``velocity`` ([n, 2]) fix the initial condition;
    otherwise it is drawn from ``rng`` (positions first, then velocities).
    """
    box = _box(frame_size, digit_size, max_speed)
    if n_frames < 1:
        raise ConfigError(f"smmnist: n_frames must be >= 1, got {n_frames}.")
    if (start is None or velocity is None or not deterministic) and rng is None:
        raise ValueError("a numpy Generator (rng) is needed to draw initial conditions or stochastic bounces")
    if start is None or velocity is None:
        pos0, vel0 = initial_state(rng, n, box=box, max_speed=max_speed)
    pos = pos0 if start is None else np.broadcast_to(np.asarray(start, np.float64), (n, 2)).copy()
    vel = vel0 if velocity is None else np.broadcast_to(np.asarray(velocity, np.float64), (n, 2)).copy()
    if np.any(pos < 0) or np.any(pos > box):
        raise ConfigError(f"smmnist: start positions must lie in [0, {box}].")
    out = np.empty((n, n_frames, 2), dtype=np.float64)
    out[:, 0] = pos
    for t in range(1, n_frames):
        pos, vel = advance(pos, vel, 1.0, box=box, max_speed=max_speed, deterministic=deterministic, rng=rng)
        out[:, t] = pos
    return out


def render(digits: np.ndarray, positions: np.ndarray, *, frame_size: int = 64) -> np.ndarray:
    """Draw videos: digits uint8 [n, n_digits, h, w] at positions [n, n_digits, T, 2] -> uint8 [n, T, 1, F, F].

    Each digit is pasted at its rounded position; overlapping digits add up and the sum is clipped at 255.
    """
    digits = np.asarray(digits)
    positions = np.asarray(positions)
    if digits.ndim != 4 or positions.ndim != 4 or positions.shape[-1] != 2 or positions.shape[:2] != digits.shape[:2]:
        raise DataError(f"render: need digits [n, n_digits, h, w] and positions [n, n_digits, T, 2], got "
                        f"{digits.shape} and {positions.shape}.")
    n, n_digits, h, w = digits.shape
    n_frames = positions.shape[2]
    if n_digits * 255 >= np.iinfo(np.uint16).max:
        raise ConfigError(f"render: at most 256 digits per video, got {n_digits}.")
    corner = np.rint(positions).astype(np.intp)
    outside = corner.size and (corner.min() < 0 or corner[..., 0].max() > frame_size - h
                               or corner[..., 1].max() > frame_size - w)
    if outside:
        raise DataError(f"render: positions place a {h}x{w} digit outside the {frame_size}x{frame_size} frame.")
    out = np.empty((n, n_frames, 1, frame_size, frame_size), dtype=np.uint8)
    chunk = max(1, (64 << 20) // max(1, n_frames * frame_size * frame_size * 2))  # ~64 MiB canvas
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        canvas = np.zeros((hi - lo, n_frames, frame_size, frame_size), dtype=np.uint16)
        # windows[b, t, r, c] is the h x w patch of frame (b, t) whose top-left corner is (r, c).
        windows = sliding_window_view(canvas, (h, w), axis=(2, 3), writeable=True)
        b = np.arange(hi - lo)[:, None]
        t = np.arange(n_frames)[None, :]
        for d in range(n_digits):  # one paste per digit: no two (b, t) pairs share pixels
            rows, cols = corner[lo:hi, d, :, 0], corner[lo:hi, d, :, 1]
            windows[b, t, rows, cols] += digits[lo:hi, d, None].astype(np.uint16)
        np.minimum(canvas, 255, out=canvas)
        out[lo:hi, :, 0] = canvas
    return out


def _check_digits(digits: np.ndarray, what: str) -> np.ndarray:
    digits = np.asarray(digits)
    if digits.ndim != 3 or digits.shape[1] != digits.shape[2] or digits.dtype != np.uint8 or len(digits) == 0:
        raise DataError(f"{what}: need a non-empty uint8 array of square digits [N, s, s], got "
                        f"{digits.dtype} {digits.shape}; re-run the mnist preprocess stage.")
    return digits


class TrainClipSampler:
    """Training clips generated on the fly from a bank of digits.

    ``batch(step, batch_size)`` is a pure function of (seed, step, batch_size): it uses
    ``np.random.default_rng([seed, step])``, so a training run resumed at step k sees exactly the
    batches it would have seen without the interruption. The digit bank is kept as one array
    (no copy per worker; SRVP issue #8).
    """

    def __init__(self, digits: np.ndarray, n_frames: int, seed: int, *, n_digits: int = 2, frame_size: int = 64,
                 max_speed: int = 4, deterministic: bool = False):
        self.digits = _check_digits(digits, "TrainClipSampler")
        _box(frame_size, self.digits.shape[1], max_speed)
        if n_digits < 1 or n_frames < 1:
            raise ConfigError(f"TrainClipSampler: n_digits and n_frames must be >= 1, got {n_digits}, {n_frames}.")
        self.n_frames, self.seed, self.n_digits = int(n_frames), int(seed), int(n_digits)
        self.frame_size, self.max_speed, self.deterministic = int(frame_size), int(max_speed), bool(deterministic)

    def batch(self, step: int, batch_size: int) -> np.ndarray:
        """uint8 [batch_size, n_frames, 1, frame_size, frame_size]: random digits, random trajectories."""
        rng = np.random.default_rng([self.seed, int(step)])
        which = rng.integers(0, len(self.digits), size=(batch_size, self.n_digits))
        pos = trajectories(self.n_frames, rng, batch_size * self.n_digits, frame_size=self.frame_size,
                           digit_size=self.digits.shape[1], max_speed=self.max_speed,
                           deterministic=self.deterministic)
        pos = pos.reshape(batch_size, self.n_digits, self.n_frames, 2)
        return render(self.digits[which], pos, frame_size=self.frame_size)


def make_test_set(
    test_digits: np.ndarray,
    n_frames: int = 25,
    seed: int = 42,
    *,
    n_digits: int = 2,
    frame_size: int = 64,
    max_speed: int = 4,
    deterministic: bool = False,
    pairing: str = "disjoint",
    max_sequences: int | None = None,
) -> dict[str, np.ndarray]:
    """The fixed test set: ``videos`` uint8 [N, n_frames, 1, F, F], ``digit_indices`` int64 [N, n_digits],
    ``positions`` float64 [N, n_digits, n_frames, 2].

    Rule (one ``np.random.default_rng(seed)`` stream, consumed in this order):
    1. ``pairing="disjoint"`` (default): one permutation of the test digits, cut into consecutive
       n_digits-tuples, so every digit is used exactly once and N = len(test_digits) // n_digits
       (leftover digits unused). ``pairing="srvp"``: n_digits independent permutations, sequence i
       uses the i-th digit of each, so N = len(test_digits) and every digit appears once per slot
       (what SRVP's ``preprocessing/mmnist/make_test_set.py`` does: 10,000 sequences on MNIST test).
    2. Trajectories for all N sequences (``trajectories`` with ``n = N * n_digits``, row-major).
    ``max_sequences`` renders only the first ones: a smaller test set is an exact prefix of the full one.
    """
    digits = _check_digits(test_digits, "make_test_set")
    if n_digits < 1:
        raise ConfigError(f"make_test_set: n_digits must be >= 1, got {n_digits}.")
    rng = np.random.default_rng(seed)
    if pairing == "disjoint":
        n_seq = len(digits) // n_digits
        if n_seq == 0:
            raise DataError(f"make_test_set: {len(digits)} test digits cannot make one {n_digits}-digit sequence.")
        index = rng.permutation(len(digits))[: n_seq * n_digits].reshape(n_seq, n_digits)
    elif pairing == "srvp":
        n_seq = len(digits)
        index = np.stack([rng.permutation(n_seq) for _ in range(n_digits)], axis=1)
    else:
        raise ConfigError(f"make_test_set: pairing must be 'disjoint' or 'srvp', got {pairing!r}.")
    pos = trajectories(n_frames, rng, n_seq * n_digits, frame_size=frame_size, digit_size=digits.shape[1],
                       max_speed=max_speed, deterministic=deterministic).reshape(n_seq, n_digits, n_frames, 2)
    keep = n_seq if max_sequences is None else max(0, min(n_seq, int(max_sequences)))
    index, pos = index[:keep].astype(np.int64), pos[:keep]
    return {"videos": render(digits[index], pos, frame_size=frame_size), "digit_indices": index, "positions": pos}


def single_digit_trajectory(
    digit: np.ndarray,
    n_frames: int,
    *,
    start: tuple[float, float] | None = None,
    velocity: tuple[float, float] | None = None,
    rng: np.random.Generator | None = None,
    deterministic: bool = True,
    frame_size: int = 64,
    max_speed: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """One digit moving alone (latent-interpolation figure): (video uint8 [T, 1, F, F], positions [T, 2]).

    Give ``start`` and ``velocity`` for a fully specified path; whatever is missing (and stochastic
    bounces) is drawn from ``rng``.
    """
    digit = _check_digits(np.asarray(digit)[None], "single_digit_trajectory")
    pos = trajectories(n_frames, rng, 1, frame_size=frame_size, digit_size=digit.shape[1], max_speed=max_speed,
                       deterministic=deterministic,
                       start=None if start is None else np.asarray(start, np.float64)[None],
                       velocity=None if velocity is None else np.asarray(velocity, np.float64)[None])
    video = render(digit[None], pos[:, None], frame_size=frame_size)
    return video[0], pos[0]


def preprocess(cfg: dict, profile: str) -> str:
    """The fixed test set (seed, each test digit used once), generated from the processed MNIST digits."""
    digits = load_npz(paths.processed_files(profile, cfg["digits_from"])[0], ["test"])["test"]
    # A capped test set (smoke, ci) is an exact prefix of the full one.
    test = make_test_set(digits, n_frames=cfg["test_frames"], seed=cfg["test_seed"],
                                 n_digits=cfg["n_digits"], frame_size=cfg["frame_size"], max_speed=cfg["max_speed"],
                                 max_sequences=cfg.get("max_test_sequences"))
    videos, index = test["videos"], test["digit_indices"]
    out = paths.processed_files(profile, "smmnist")[0]
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, videos=videos, digit_indices=index)
    print(f"wrote {out}: {videos.shape[0]} test sequences of {videos.shape[1]} frames")
    return out
