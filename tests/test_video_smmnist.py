"""stages.datasets.smmnist: corrected (exact) bounces, rendering, test set and on-the-fly training clips."""
from __future__ import annotations

import numpy as np
import pytest

from stages.datasets import smmnist as sm

BOX = 64 - 28


def fold(u: np.ndarray, box: float = BOX) -> np.ndarray:
    """Closed form of a pure reflection inside [0, box]: unfold the box into a line of period 2*box."""
    m = np.mod(u, 2 * box)
    return box - np.abs(box - m)


def digits_bank(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28)).astype(np.uint8)


@pytest.mark.parametrize("deterministic", [False, True])
def test_positions_stay_in_box(deterministic):
    rng = np.random.default_rng(0)
    pos = sm.trajectories(60, rng, 3000, deterministic=deterministic)
    assert pos.shape == (3000, 60, 2) and pos.dtype == np.float64
    assert pos.min() >= 0.0 and pos.max() <= BOX
    assert np.all(pos[:, 0] == np.round(pos[:, 0]))  # integer initial positions
    assert np.abs(np.diff(pos, axis=1)).max() <= 4 + 1e-9  # at most max_speed px per axis and frame
    assert pos.min() == 0.0 and pos.max() == BOX  # the walls are reached


def test_deterministic_is_exact_reflection():
    """Against the closed form x(t) = fold(x0 + v t): exact intersections, no lost displacement."""
    rng = np.random.default_rng(1)
    start = rng.integers(0, BOX + 1, size=(500, 2)).astype(float)
    vel = rng.integers(-4, 5, size=(500, 2)).astype(float)
    pos = sm.trajectories(100, None, 500, deterministic=True, start=start, velocity=vel)
    t = np.arange(100)[None, :, None]
    np.testing.assert_allclose(pos, fold(start[:, None] + vel[:, None] * t), atol=1e-9)


def test_hand_made_bounce():
    # Deterministic: row 35 moving +4 hits the wall 36 after 1/4 step, then goes back 3 px.
    pos, vel = sm.advance(np.array([[35.0, 10.0]]), np.array([[4.0, 0.0]]), box=BOX, deterministic=True)
    np.testing.assert_array_equal(pos, [[33.0, 10.0]])
    np.testing.assert_array_equal(vel, [[-4.0, 0.0]])
    # Stochastic: the bounce happens at exactly (36, 18.25); a new velocity is drawn there (one [1, 2]
    # draw from the generator), its row component forced inward, and the remaining 3/4 step is
    # travelled from the wall with it.
    pos, vel = sm.advance(np.array([[35.0, 18.0]]), np.array([[4.0, 1.0]]), box=BOX,
                          rng=np.random.default_rng(7))
    drawn = np.random.default_rng(7).integers(-4, 5, size=(1, 2)).astype(float)[0]
    expected_vel = np.array([-abs(drawn[0]), drawn[1]])
    np.testing.assert_array_equal(vel[0], expected_vel)
    np.testing.assert_allclose(pos[0], np.array([36.0, 18.25]) + 0.75 * expected_vel, atol=1e-12)


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("side", ["low", "high"])
def test_normal_component_points_inward_after_bounce(axis, side):
    n = 2000
    rng = np.random.default_rng(3)
    pos = np.column_stack([rng.uniform(8, 28, n), rng.uniform(8, 28, n)])
    vel = rng.integers(-4, 5, size=(n, 2)).astype(float)
    pos[:, axis] = 0.5 if side == "low" else BOX - 0.5
    vel[:, axis] = -4.0 if side == "low" else 4.0  # reaches the wall after 1/8 step
    new_pos, new_vel = sm.advance(pos, vel, box=BOX, rng=rng)
    if side == "low":
        assert np.all(new_vel[:, axis] >= 0)
        np.testing.assert_allclose(new_pos[:, axis], 0.875 * new_vel[:, axis], atol=1e-12)
    else:
        assert np.all(new_vel[:, axis] <= 0)
        np.testing.assert_allclose(new_pos[:, axis], BOX + 0.875 * new_vel[:, axis], atol=1e-12)
    assert len(np.unique(new_vel, axis=0)) > 10  # velocities are redrawn, not reflected


def test_corner_bounce():
    pos, vel = sm.advance(np.array([[35.0, 35.0]]), np.array([[4.0, 4.0]]), box=BOX, deterministic=True)
    np.testing.assert_array_equal(pos, [[33.0, 33.0]])
    np.testing.assert_array_equal(vel, [[-4.0, -4.0]])
    rng = np.random.default_rng(0)
    pos, vel = sm.advance(np.full((500, 2), 35.0), np.full((500, 2), 4.0), box=BOX, rng=rng)
    assert np.all(vel <= 0) and pos.min() >= 0 and pos.max() <= BOX


def test_frame_rate_independence_deterministic():
    """Two half steps (or four quarter steps) land exactly where one full step does."""
    rng = np.random.default_rng(5)
    pos = rng.uniform(0, BOX, size=(2000, 2))
    vel = rng.integers(-4, 5, size=(2000, 2)).astype(float)
    kw = dict(box=BOX, deterministic=True)
    full_p, full_v = sm.advance(pos, vel, 1.0, **kw)
    half_p, half_v = sm.advance(*sm.advance(pos, vel, 0.5, **kw), 0.5, **kw)
    p, v = pos, vel
    for _ in range(4):
        p, v = sm.advance(p, v, 0.25, **kw)
    np.testing.assert_allclose(half_p, full_p, atol=1e-9)
    np.testing.assert_allclose(p, full_p, atol=1e-9)
    np.testing.assert_array_equal(half_v, full_v)
    np.testing.assert_array_equal(v, full_v)
    assert np.any(full_v != vel)  # bounces did happen


def test_render_overlay_and_rounding():
    a = np.full((28, 28), 200, np.uint8)
    b = np.full((28, 28), 100, np.uint8)
    digits = np.stack([a, b])[None]  # [1, 2, 28, 28]
    positions = np.array([[[[0.0, 0.0]], [[10.0, 2.5]]]])  # col 2.5 is drawn at 2 (round half to even)
    video = sm.render(digits, positions)
    assert video.shape == (1, 1, 1, 64, 64) and video.dtype == np.uint8
    f = video[0, 0, 0]
    assert f[5, 5] == 200 and f[15, 1] == 200 and f[15, 2] == 255 and f[30, 20] == 100
    assert f[37, 20] == 100 and f[38, 20] == 0 and f[30, 29] == 100 and f[30, 30] == 0
    low = sm.render(np.stack([b, b])[None], np.zeros((1, 2, 1, 2)))
    assert low.max() == 200  # sums below 255 are kept as they are


def test_render_matches_naive_paste():
    bank = digits_bank(6)
    rng = np.random.default_rng(2)
    pos = sm.trajectories(9, rng, 6).reshape(3, 2, 9, 2)
    idx = np.array([[0, 1], [2, 3], [4, 5]])
    video = sm.render(bank[idx], pos)
    for i in range(3):
        for t in range(9):
            frame = np.zeros((64, 64), int)
            for d in range(2):
                r, c = np.rint(pos[i, d, t]).astype(int)
                frame[r:r + 28, c:c + 28] += bank[idx[i, d]]
            np.testing.assert_array_equal(video[i, t, 0], np.minimum(frame, 255))


def test_make_test_set():
    bank = digits_bank(11)
    a = sm.make_test_set(bank)
    b = sm.make_test_set(bank, n_frames=25, seed=42)
    assert a["videos"].shape == (5, 25, 1, 64, 64) and a["videos"].dtype == np.uint8
    assert a["digit_indices"].shape == (5, 2) and a["positions"].shape == (5, 2, 25, 2)
    used = a["digit_indices"].ravel()
    assert len(np.unique(used)) == 10 and used.min() >= 0 and used.max() < 11  # each digit at most once
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_array_equal(a["videos"], sm.render(bank[a["digit_indices"]], a["positions"]))
    assert not np.array_equal(a["videos"], sm.make_test_set(bank, seed=43)["videos"])
    # Even count: every digit exactly once.
    even = sm.make_test_set(digits_bank(10))
    np.testing.assert_array_equal(np.sort(even["digit_indices"].ravel()), np.arange(10))
    # A truncated test set is an exact prefix of the full one.
    small = sm.make_test_set(bank, max_sequences=2)
    np.testing.assert_array_equal(small["videos"], a["videos"][:2])
    # SRVP's pairing: one permutation per digit slot, N = number of digits.
    srvp = sm.make_test_set(bank, pairing="srvp")
    assert srvp["videos"].shape[0] == 11
    for slot in range(2):
        np.testing.assert_array_equal(np.sort(srvp["digit_indices"][:, slot]), np.arange(11))


def test_train_sampler_is_pure_function_of_seed_and_step():
    bank = digits_bank(20)
    s1 = sm.TrainClipSampler(bank, n_frames=15, seed=3)
    s2 = sm.TrainClipSampler(bank, n_frames=15, seed=3)
    x = s1.batch(step=7, batch_size=8)
    assert x.shape == (8, 15, 1, 64, 64) and x.dtype == np.uint8
    s1.batch(step=8, batch_size=8)  # no hidden state carried between calls
    np.testing.assert_array_equal(s1.batch(7, 8), x)
    np.testing.assert_array_equal(s2.batch(7, 8), x)
    assert not np.array_equal(s1.batch(8, 8), x)
    assert not np.array_equal(sm.TrainClipSampler(bank, 15, seed=4).batch(7, 8), x)


def test_single_digit_trajectory():
    digit = digits_bank(1)[0]
    video, pos = sm.single_digit_trajectory(digit, 30, start=(0, 36), velocity=(3, -2))
    assert video.shape == (30, 1, 64, 64) and pos.shape == (30, 2)
    t = np.arange(30)[:, None]
    np.testing.assert_allclose(pos, fold(np.array([0.0, 36.0]) + np.array([3.0, -2.0]) * t), atol=1e-9)
    r, c = np.rint(pos[17]).astype(int)
    np.testing.assert_array_equal(video[17, 0, r:r + 28, c:c + 28], digit)
    assert video[17, 0].astype(int).sum() == digit.astype(int).sum()
    with pytest.raises(ValueError):
        sm.single_digit_trajectory(digit, 5, deterministic=False)  # stochastic needs a generator
