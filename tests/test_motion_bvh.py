"""BVH reader / writer / forward kinematics: hand-computed poses, round trips, the real Bandai-Namco files
(read from ../shared, skipped when absent) and malformed files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stages.datasets.bvh import (POSITIONS, Motion, Skeleton, euler_matrices, format_bvh, forward_kinematics, parse_bvh,
                                 read_bvh, rotation_features, write_bvh)
from stages.datasets.emilya import synthetic_motion
from stages.errors import DataError

BANDAI = Path(__file__).resolve().parents[1].parent / "shared" / "mocap-bandai-sample" / "data"

TWO_JOINTS = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Arm
  {
    OFFSET 1 0 0
    CHANNELS 3 Yrotation Xrotation Zrotation
    End Site
    {
      OFFSET 2 0 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.0083333
0 0 0 0 0 0 0 0 0
5 0 0 90 0 0 0 0 0
"""


def bandai_files() -> list[Path]:
    files = sorted(BANDAI.glob("*.bvh"))
    if not files:
        pytest.skip(f"the real Bandai-Namco sample is absent ({BANDAI}); these checks need ../shared")
    return files


def test_parse_and_hand_computed_forward_kinematics():
    m = parse_bvh(TWO_JOINTS)
    assert m.skeleton.names == ["Hips", "Arm"] and list(m.skeleton.parents) == [-1, 0]
    assert m.n_frames == 2 and m.frame_time == pytest.approx(1 / 120, rel=1e-4)
    assert m.skeleton.rotation_orders() == ["ZXY", "YXZ"]
    p = forward_kinematics(m)
    np.testing.assert_allclose(p[0], [[0, 0, 0], [1, 0, 0]], atol=1e-12)
    # frame 1: root moved by x = 5 and turned 90 degrees about Z: the arm's (1, 0, 0) offset points along +y
    np.testing.assert_allclose(p[1], [[5, 0, 0], [5, 1, 0]], atol=1e-12)


def test_euler_matrices_follow_channel_order():
    a = np.array([30.0, -50.0, 70.0])
    rz, rx, ry = (euler_matrices(np.array([v]), ax) for v, ax in zip(a, "ZXY"))
    np.testing.assert_allclose(euler_matrices(a, "ZXY"), rz @ rx @ ry, atol=1e-12)
    assert np.allclose(euler_matrices(np.array([90.0]), "Z") @ [1, 0, 0], [0, 1, 0])


def test_writer_round_trips_the_synthetic_skeleton(tmp_path):
    m = synthetic_motion("walk", "joy", 2, 40, 30.0, np.random.default_rng(0))
    write_bvh(tmp_path / "a.bvh", m)
    back = read_bvh(tmp_path / "a.bvh")
    assert back.skeleton.names == m.skeleton.names and back.skeleton.channels == m.skeleton.channels
    np.testing.assert_array_equal(back.skeleton.parents, m.skeleton.parents)
    np.testing.assert_allclose(back.values, m.values, atol=1e-6)
    np.testing.assert_allclose(back.skeleton.offsets, m.skeleton.offsets, atol=1e-5)
    assert back.frame_time == pytest.approx(1 / 30, rel=1e-6)
    assert rotation_features(back).shape == (40, 23, 3)


def test_real_bandai_files_parse_round_trip_and_keep_bone_lengths():
    for path in bandai_files():
        m = read_bvh(path)
        assert len(m.skeleton.names) == 22 and m.frame_time == pytest.approx(1 / 30, rel=1e-4)
        assert m.values.shape == (m.n_frames, 22 * 6)
        back = parse_bvh(format_bvh(m))
        assert back.skeleton.names == m.skeleton.names
        np.testing.assert_allclose(back.values, m.values, atol=1e-5)
        pos = forward_kinematics(m)
        cols = m.skeleton.columns(POSITIONS)
        for j, parent in enumerate(m.skeleton.parents):
            if parent < 0:
                continue
            # every joint carries position channels: bones whose channels hold the offset keep its length
            if np.allclose(m.values[:, cols[j]], m.skeleton.offsets[j], atol=1e-4):
                length = np.linalg.norm(pos[:, j] - pos[:, parent], axis=1)
                np.testing.assert_allclose(length, np.linalg.norm(m.skeleton.offsets[j]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("HIERARCHY\n", ""), "no HIERARCHY"),
    (lambda t: t.split("MOTION")[0], "no MOTION"),
    (lambda t: t.replace("Frames: 2", "Frames: 3"), "'Frames: 3' but 2 rows"),
    (lambda t: t.replace("5 0 0 90 0 0 0 0 0", "5 0 0 90 0 0 0 0"), "row 2 has 8 values"),
    (lambda t: t.replace("5 0 0 90", "5 0 0 abc"), "non-numeric"),
    (lambda t: t.replace("5 0 0 90", "5 0 0 nan"), "row 2 holds NaN"),
    (lambda t: t.replace("CHANNELS 3 Yrotation", "CHANNELS 4 Yrotation"), "malformed CHANNELS"),
])
def test_malformed_files_name_the_file_and_the_problem(tmp_path, edit, message):
    path = tmp_path / "bad.bvh"
    path.write_text(edit(TWO_JOINTS))
    with pytest.raises(DataError, match=message) as err:
        read_bvh(path)
    assert str(path) in str(err.value)
