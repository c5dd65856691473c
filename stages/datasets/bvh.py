"""BVH motion capture files: reader, writer and forward kinematics (no third-party package ships one).

A BVH file is a HIERARCHY (joints with an OFFSET from their parent and the CHANNELS each frame gives
them, in any order) followed by MOTION: ``Frames: N``, ``Frame Time: dt`` and N rows of numbers, one per
channel of every joint in hierarchy order. Angles are degrees; a joint's local rotation is the product of
its rotation channels in the order listed (R = R_c1 R_c2 R_c3, column vectors), as in the BVH exporters of
Vicon, Xsens MVN and MotionBuilder. A joint with position channels (every joint of the Bandai-Namco files)
takes its local translation from them instead of its OFFSET.

Errors name the file and what is wrong (stages.errors.DataError).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stages.errors import DataError, atomic_path

ROTATIONS = ("Xrotation", "Yrotation", "Zrotation")
POSITIONS = ("Xposition", "Yposition", "Zposition")


@dataclass
class Skeleton:
    names: list[str]
    parents: np.ndarray                       # [J] index of the parent joint, -1 for the root
    offsets: np.ndarray                       # [J, 3]
    channels: list[tuple[str, ...]]           # per joint, in file order
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)   # joint -> End Site offset

    @property
    def n_channels(self) -> int:
        return sum(len(c) for c in self.channels)

    def columns(self, kinds: tuple[str, ...]) -> np.ndarray:
        """[J, len(kinds)] column index in a motion row of each joint's ``kinds`` channels (-1 if absent)."""
        out = np.full((len(self.names), len(kinds)), -1, dtype=np.int64)
        start = 0
        for j, chans in enumerate(self.channels):
            for k, kind in enumerate(kinds):
                if kind in chans:
                    out[j, k] = start + chans.index(kind)
            start += len(chans)
        return out

    def rotation_orders(self) -> list[str]:
        """Per joint, its rotation axes in channel order, e.g. "ZXY"."""
        return ["".join(c[0] for c in chans if c in ROTATIONS) for chans in self.channels]


@dataclass
class Motion:
    skeleton: Skeleton
    frame_time: float
    values: np.ndarray                        # [frames, n_channels] float64, file order

    @property
    def n_frames(self) -> int:
        return len(self.values)


def _fail(path, message: str, fix: str = "re-export the file as BVH or remove it from manifest.csv"):
    raise DataError(f"{path}: {message}; {fix}.")


def _parse_hierarchy(lines: list[str], path) -> tuple[Skeleton, int]:
    names, parents, offsets, channels, end_sites = [], [], [], [], {}
    stack: list[int] = []
    pending: int | None = None      # the joint whose '{' comes next
    in_end = False
    i = 1
    while i < len(lines):
        tok = lines[i].split()
        i += 1
        if not tok:
            continue
        head = tok[0]
        if head in ("ROOT", "JOINT"):
            if len(tok) < 2:
                _fail(path, f"line {i}: {head} without a name")
            names.append(tok[1])
            parents.append(stack[-1] if stack else -1)
            offsets.append(np.zeros(3))
            channels.append(())
            pending = len(names) - 1
        elif head == "End":
            in_end = True
        elif head == "{":
            if in_end:
                continue
            if pending is None:
                _fail(path, f"line {i}: '{{' without a joint")
            stack.append(pending)
            pending = None
        elif head == "}":
            if in_end:
                in_end = False
            elif stack:
                stack.pop()
            else:
                _fail(path, f"line {i}: unbalanced '}}'")
        elif head == "OFFSET":
            try:
                vec = np.array([float(v) for v in tok[1:4]])
            except ValueError:
                _fail(path, f"line {i}: OFFSET is not numeric")
            if len(vec) != 3:
                _fail(path, f"line {i}: OFFSET needs 3 values")
            if in_end:
                end_sites[stack[-1]] = vec
            else:
                offsets[-1] = vec
        elif head == "CHANNELS":
            chans = tuple(tok[2:])
            if not tok[1].isdigit() or int(tok[1]) != len(chans) or any(c not in ROTATIONS + POSITIONS for c in chans):
                _fail(path, f"line {i}: malformed CHANNELS line '{lines[i - 1].strip()}'")
            channels[-1] = chans
        elif head == "MOTION":
            if stack:
                _fail(path, "HIERARCHY has unclosed braces before MOTION")
            return Skeleton(names, np.array(parents), np.array(offsets), channels, end_sites), i
        else:
            _fail(path, f"line {i}: unexpected '{head}' in HIERARCHY")
    _fail(path, "no MOTION section")


def _header_value(line: str, key: str, path, lineno: int) -> str:
    if not line.strip().startswith(key):
        _fail(path, f"line {lineno}: expected '{key}' after MOTION")
    return line.split(":", 1)[1].strip()


def parse_bvh(text: str, path: str | Path = "<bvh>") -> Motion:
    lines = text.splitlines()
    start = next((k for k, line in enumerate(lines) if line.strip()), None)
    if start is None or lines[start].strip() != "HIERARCHY":
        _fail(path, "no HIERARCHY section (not a BVH file)")
    skeleton, i = _parse_hierarchy(lines[start:], path)
    i += start
    if not skeleton.names:
        _fail(path, "HIERARCHY declares no joint")
    if i + 1 >= len(lines):
        _fail(path, "MOTION lacks 'Frames:' and 'Frame Time:'")
    try:
        n_frames = int(_header_value(lines[i], "Frames:", path, i + 1))
        frame_time = float(_header_value(lines[i + 1], "Frame Time:", path, i + 2))
    except ValueError:
        _fail(path, "'Frames:' or 'Frame Time:' is not a number")
    rows = [line for line in lines[i + 2:] if line.strip()]
    if len(rows) != n_frames:
        _fail(path, f"'Frames: {n_frames}' but {len(rows)} rows of motion follow")
    counts = np.fromiter((len(r.split()) for r in rows), dtype=np.int64, count=len(rows))
    bad = np.flatnonzero(counts != skeleton.n_channels)
    if bad.size:
        _fail(path, f"motion row {bad[0] + 1} has {counts[bad[0]]} values, the hierarchy declares "
                    f"{skeleton.n_channels} channels")
    try:
        values = np.array(" ".join(rows).split(), dtype=np.float64).reshape(n_frames, skeleton.n_channels)
    except ValueError:
        _fail(path, "motion rows hold non-numeric values")
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        _fail(path, f"motion row {row + 1} holds NaN or infinite values")
    return Motion(skeleton, frame_time, values)


def read_bvh(path: str | Path) -> Motion:
    path = Path(path)
    try:
        text = path.read_text(errors="strict")
    except FileNotFoundError:
        raise DataError(f"{path} not found; check the file name (manifest.csv) or restore the file.") from None
    except UnicodeDecodeError:
        _fail(path, "not a text file")
    return parse_bvh(text, path)


def format_bvh(motion: Motion) -> str:
    sk = motion.skeleton
    children: dict[int, list[int]] = {j: [] for j in range(len(sk.names))}
    for j, p in enumerate(sk.parents):
        if p >= 0:
            children[int(p)].append(j)
    out = ["HIERARCHY"]

    def vec(v) -> str:
        return " ".join(f"{x:.9g}" for x in v)

    def joint(j: int, depth: int) -> None:
        pad = "  " * depth
        out.append(f"{pad}{'ROOT' if sk.parents[j] < 0 else 'JOINT'} {sk.names[j]}")
        out.append(f"{pad}{{")
        out.append(f"{pad}  OFFSET {vec(sk.offsets[j])}")
        out.append(f"{pad}  CHANNELS {len(sk.channels[j])} {' '.join(sk.channels[j])}")
        for c in children[j]:
            joint(c, depth + 1)
        if j in sk.end_sites or not children[j]:
            out.extend([f"{pad}  End Site", f"{pad}  {{",
                    f"{pad}    OFFSET {vec(sk.end_sites.get(j, np.zeros(3)))}", f"{pad}  }}"])
        out.append(f"{pad}}}")

    joint(0, 0)
    out += ["MOTION", f"Frames: {motion.n_frames}", f"Frame Time: {motion.frame_time:.7g}"]
    buf = io.StringIO()
    np.savetxt(buf, motion.values, fmt="%.6f")
    return "\n".join(out) + "\n" + buf.getvalue()


def write_bvh(path: str | Path, motion: Motion) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(format_bvh(motion))


def euler_matrices(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """[..., 3] angles (degrees, in channel order ``order``) -> [..., 3, 3] R = R_order[0] R_order[1] R_order[2]."""
    rad = np.deg2rad(angles_deg)
    out = None
    for k, axis in enumerate(order):
        c, s = np.cos(rad[..., k]), np.sin(rad[..., k])
        m = np.zeros(rad.shape[:-1] + (3, 3))
        a, b = {"X": (1, 2), "Y": (2, 0), "Z": (0, 1)}[axis]
        m[..., 3 - a - b, 3 - a - b] = 1.0
        m[..., a, a], m[..., b, b] = c, c
        m[..., a, b], m[..., b, a] = -s, s
        out = m if out is None else out @ m
    return out


def forward_kinematics(motion: Motion) -> np.ndarray:
    """[frames, J, 3] world positions of every joint (vectorised over frames; joints in hierarchy order,
    so a parent is always computed before its children)."""
    sk = motion.skeleton
    rot_cols, pos_cols = sk.columns(ROTATIONS), sk.columns(POSITIONS)
    orders = sk.rotation_orders()
    n = motion.n_frames
    world_r = np.zeros((n, len(sk.names), 3, 3))
    world_p = np.zeros((n, len(sk.names), 3))
    for j, parent in enumerate(sk.parents):
        local_t = np.broadcast_to(sk.offsets[j], (n, 3)).copy()
        has_pos = pos_cols[j] >= 0
        local_t[:, has_pos] = motion.values[:, pos_cols[j][has_pos]]
        order = orders[j]
        if order:
            cols = [rot_cols[j]["XYZ".index(a)] for a in order]
            local_r = euler_matrices(motion.values[:, cols], order)
        else:
            local_r = np.broadcast_to(np.eye(3), (n, 3, 3))
        if parent < 0:
            world_r[:, j], world_p[:, j] = local_r, local_t
        else:
            world_r[:, j] = world_r[:, parent] @ local_r
            world_p[:, j] = world_p[:, parent] + np.einsum("fab,fb->fa", world_r[:, parent], local_t)
    return world_p


def rotation_features(motion: Motion) -> np.ndarray:
    """[frames, J, 3] each joint's Euler angles (degrees) in its own channel order; a joint without rotation
    channels is a DataError (the features need 3 angles per joint)."""
    sk = motion.skeleton
    cols = sk.columns(ROTATIONS)
    orders = sk.rotation_orders()
    missing = [sk.names[j] for j, o in enumerate(orders) if len(o) != 3]
    if missing:
        raise DataError(f"joint {missing[0]} lacks three rotation channels: every joint needs X, Y and Z rotations")
    idx = np.array([[cols[j]["XYZ".index(a)] for a in orders[j]] for j in range(len(sk.names))])
    return motion.values[:, idx]
