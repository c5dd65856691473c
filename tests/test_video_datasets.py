"""KTH, Human3.6M and BAIR ingestion on small fixtures in their real raw formats; protocol numbers; bad inputs."""
from __future__ import annotations

import struct
import zipfile

import numpy as np
import pytest

from stages.datasets import bair, h36m, kth, tfrecord
from stages.datasets.videos import ClipSampler, decode_video, pack_videos
from stages.errors import DataError
from stages.registry import dataset_config, experiment_config, load_params


# ---------------------------------------------------------------------------------------------- TFRecord
def test_masked_crc32c_matches_the_tensorflow_definition():
    # CRC-32C check value of "123456789" is 0xE3069283; TF masks it as ((c >> 15) | (c << 17)) + 0xa282ead8.
    c = 0xE3069283
    assert tfrecord.masked_crc(b"123456789") == (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _protobuf_example_class():
    """tf.train.Example built from its .proto definition with the protobuf runtime (no TensorFlow)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FileDescriptorProto(name="example_test.proto", package="tft", syntax="proto3")
    T = descriptor_pb2.FieldDescriptorProto

    def msg(name, *fields):
        m = f.message_type.add(name=name)
        for num, fname, ftype, label, tname in fields:
            fd = m.field.add(name=fname, number=num, type=ftype, label=label)
            if tname:
                fd.type_name = tname
        return m

    rep, opt = T.LABEL_REPEATED, T.LABEL_OPTIONAL
    msg("BytesList", (1, "value", T.TYPE_BYTES, rep, None))
    msg("FloatList", (1, "value", T.TYPE_FLOAT, rep, None))
    msg("Int64List", (1, "value", T.TYPE_INT64, rep, None))
    feat = msg("Feature", (1, "bytes_list", T.TYPE_MESSAGE, opt, ".tft.BytesList"),
               (2, "float_list", T.TYPE_MESSAGE, opt, ".tft.FloatList"),
               (3, "int64_list", T.TYPE_MESSAGE, opt, ".tft.Int64List"))
    feat.oneof_decl.add(name="kind")
    for fd in feat.field:
        fd.oneof_index = 0
    feats = msg("Features", (1, "feature", T.TYPE_MESSAGE, rep, ".tft.Features.FeatureEntry"))
    entry = feats.nested_type.add(name="FeatureEntry")
    entry.field.add(name="key", number=1, type=T.TYPE_STRING, label=opt)
    entry.field.add(name="value", number=2, type=T.TYPE_MESSAGE, label=opt, type_name=".tft.Feature")
    entry.options.map_entry = True
    msg("Example", (1, "features", T.TYPE_MESSAGE, opt, ".tft.Features"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tft.Example"))


def test_example_codec_agrees_with_the_protobuf_runtime():
    Example = _protobuf_example_class()
    values = {"0/image_aux1/encoded": [bytes(range(256)) * 3], "0/action": [0.5, -1.25], "n": [3, -7, 2**40]}
    ours = tfrecord.encode_example(values)
    ref = Example.FromString(ours)  # the runtime parses our bytes...
    assert list(ref.features.feature["0/action"].float_list.value) == [0.5, -1.25]
    assert list(ref.features.feature["n"].int64_list.value) == [3, -7, 2**40]
    theirs = Example()
    theirs.features.feature["k"].bytes_list.value.append(b"\x00\xffabc")
    theirs.features.feature["f"].float_list.value.extend([1.5, 2.0])
    theirs.features.feature["i"].int64_list.value.extend([-1, 5])
    assert tfrecord.parse_example(theirs.SerializeToString()) == {"k": [b"\x00\xffabc"], "f": [1.5, 2.0], "i": [-1, 5]}
    assert tfrecord.parse_example(ours) == values


def test_corrupt_tfrecord_is_a_clear_error(tmp_path):
    path = tmp_path / "traj_0_to_1.tfrecords"
    tfrecord.write_records(path, [b"first record", b"second record"])
    assert list(tfrecord.read_records(path)) == [b"first record", b"second record"]
    data = bytearray(path.read_bytes())
    data[12 + 3] ^= 0x01  # one bit of the first record's data
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"traj_0_to_1\.tfrecords: CRC mismatch"):
        list(tfrecord.read_records(path))
    path.write_bytes(bytes(data[:-6]))
    with pytest.raises(DataError, match="truncated"):
        list(tfrecord.read_records(path, check_crc=False))


# ---------------------------------------------------------------------------------------------- BAIR
def test_bair_reads_image_aux1_frames_of_each_example(tmp_path):
    bair.write_synthetic_bair(tmp_path, n_train=5, n_test=3, per_file=2)
    files = bair.record_files(tmp_path, "train")
    assert [p.name for p in files] == ["traj_0_to_1.tfrecords", "traj_2_to_3.tfrecords", "traj_4_to_5.tfrecords"]
    record = next(tfrecord.read_records(files[0]))
    raw = tfrecord.parse_example(record)["7/image_aux1/encoded"][0]
    video = bair.decode_example(record, files[0])
    assert video.shape == (30, 3, 64, 64) and video.dtype == np.uint8
    np.testing.assert_array_equal(video[7], np.frombuffer(raw, np.uint8).reshape(64, 64, 3).transpose(2, 0, 1))
    cfg = {"frame_size": 32, "val_fraction": 0.2, "val_seed": 42, "test_clips": 256, "test_frames": 30}
    splits = bair.build_bair(tmp_path, cfg)
    assert splits["test"]["videos"].shape == (3, 30, 3, 32, 32)  # every test video (256 in the real data)
    assert len(splits["train"]["offsets"]) - 1 + len(splits["val"]["offsets"]) - 1 == 5
    # 2x2 area average of the raw frame
    first = bair.decode_example(next(tfrecord.read_records(bair.record_files(tmp_path, "test")[0])), files[0])
    np.testing.assert_array_equal(splits["test"]["videos"][0, 0, :, 0, 0],
                                  first[0, :, :2, :2].reshape(3, 4).mean(1).round().astype(np.uint8))


# ---------------------------------------------------------------------------------------------- KTH
def test_kth_names_split_and_fixed_test_set(tmp_path):
    assert kth.parse_name("person21_walking_d3_uncomp.avi") == (21, "walking", 3)
    with pytest.raises(DataError, match="not a KTH video name"):
        kth.parse_name("person21_dancing_d3_uncomp.avi")
    kth.write_synthetic_kth(tmp_path, [1, 2, 21], actions=("walking", "boxing"), n_frames=20)
    for a in kth.ACTIONS:
        (tmp_path / a).mkdir(exist_ok=True)
    cfg = {"frame_size": 16, "val_fraction": 0.25, "val_seed": 42, "test_clips": 5, "test_frames": 12,
           "test_seed": 42, "train_persons": [1, 2], "test_persons": [21]}
    a, b = kth.build_kth(tmp_path, cfg), kth.build_kth(tmp_path, cfg)
    np.testing.assert_array_equal(a["test"]["videos"], b["test"]["videos"])  # seed 42: the same test set
    assert a["test"]["videos"].shape == (5, 12, 1, 16, 16)
    assert set(a["test"]["persons"]) == {21}
    names = list(a["train"]["names"]) + list(a["val"]["names"])
    assert sorted(names) == sorted(f"person{p:02d}_{x}_d1_uncomp.avi" for p in (1, 2) for x in ("walking", "boxing"))
    assert len(a["val"]["names"]) == 1  # 25% of 4 training videos
    # A test clip is the decoded video's window at the recorded start (no crop: the whole frame is scaled).
    key = (21, str(a["test"]["actions"][0]), 1)
    full = kth.decode_kth(tmp_path / key[1] / f"person21_{key[1]}_d1_uncomp.avi", 16)
    s = a["test"]["starts"][0]
    np.testing.assert_array_equal(a["test"]["videos"][0], full[s:s + 12])


def test_truncated_video_is_a_clear_error(tmp_path):
    (path,) = kth.write_synthetic_kth(tmp_path, [3], actions=("running",), n_frames=40)
    assert sum(1 for _ in decode_video(path)) == 40
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"person03_running_d1_uncomp\.avi"):
        kth.decode_kth(path)


def test_kth_download_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch):
    src = tmp_path / "site"
    src.mkdir()
    for a in kth.ACTIONS:
        with zipfile.ZipFile(src / f"{a}.zip", "w") as z:
            z.writestr(f"person01_{a}_d1_uncomp.avi", b"not really a video")
    raw = tmp_path / "raw"
    kth.download_kth(raw, url=f"file://{src}/{{action}}.zip", progress=False)
    assert (raw / "walking" / "person01_walking_d1_uncomp.avi").is_file()
    monkeypatch.setitem(kth.SHA256, "boxing", "0" * 64)
    raw2 = tmp_path / "raw2"
    with pytest.raises(DataError, match="boxing.zip"):
        kth.download_kth(raw2, url=f"file://{src}/{{action}}.zip", progress=False)
    assert not (raw2 / "boxing").exists()


# ---------------------------------------------------------------------------------------------- Human3.6M
def test_h36m_excludes_all_videos_subsamples_and_crops(tmp_path):
    h36m.write_synthetic_h36m(tmp_path, [1, 9], videos_per_subject=1, n_frames=30, size=100)
    found = h36m.list_videos(tmp_path, [1, 9])
    assert all(not p.name.startswith("_") for ps in found.values() for p in ps) and len(found[1]) == 1
    cfg = {"frame_size": 16, "crop_box": [10, 10, 90, 90], "subsampling": 3, "val_fraction": 0.0, "val_seed": 42,
           "test_clips": 4, "test_frames": 5, "test_seed": 42, "train_subjects": [1], "test_subjects": [9]}
    with pytest.raises(DataError, match="split is empty"):  # one training video and no validation video
        h36m.build_h36m(tmp_path, {**cfg, "val_fraction": 0.5})
    h36m.write_synthetic_h36m(tmp_path / "b", [1, 9], videos_per_subject=2, n_frames=30, size=100)
    splits = h36m.build_h36m(tmp_path / "b", {**cfg, "val_fraction": 0.5})
    assert splits["train"]["frames"].shape[1:] == (3, 16, 16)
    assert len(splits["train"]["frames"]) == 10  # 30 frames, every 3rd
    test = splits["test"]["videos"]
    assert test.shape == (4, 5, 3, 16, 16)
    file = tmp_path / "b" / "S9" / "Videos" / splits["test"]["files"][0].split("-", 1)[1]
    full = h36m.decode_h36m(file, 16, (10, 10, 90, 90))
    s = splits["test"]["starts"][0]
    np.testing.assert_array_equal(test[0], full[s:s + 13:3])


def test_h36m_missing_subject_says_where_to_get_the_data(tmp_path):
    h36m.write_synthetic_h36m(tmp_path, [1], videos_per_subject=1, n_frames=4, size=40)
    with pytest.raises(DataError, match=r"S5/Videos: subject folder missing.*vision\.imar\.ro"):
        h36m.list_videos(tmp_path, [1, 5])
    with pytest.raises(DataError, match=r"archives.*vision\.imar\.ro"):
        h36m.import_archives(tmp_path / "empty")


def test_preprocess_stage_fails_cleanly_without_raw_data(project, monkeypatch, capsys):
    from stages import preprocess

    monkeypatch.chdir(project)
    with pytest.raises(DataError, match="kth"):
        preprocess.main(["--dataset", "kth", "--profile", "paper"])
    assert not (project / "data" / "processed").exists()


# ---------------------------------------------------------------------------------------------- shared
def test_clip_sampler_is_a_pure_function_of_seed_and_step():
    videos = [np.full((n, 1, 2, 2), i, np.uint8) for i, n in enumerate([3, 10, 6])]  # pixel value = video index
    frames, offsets = pack_videos(videos)
    sampler = ClipSampler(frames, offsets, n_frames=5, seed=1)
    a, b = sampler.batch(7, 16), sampler.batch(7, 16)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (16, 5, 1, 2, 2)
    assert set(np.unique(a)) <= {1, 2}  # the 3-frame video is too short for a 5-frame clip
    ramp = [np.arange(n, dtype=np.uint8)[:, None, None, None].repeat(2, 2).repeat(2, 3) for n in (12, 9)]
    clip = ClipSampler(*pack_videos(ramp), n_frames=4, seed=0, stride=2).batch(3, 8)
    assert (np.diff(clip[:, :, 0, 0, 0].astype(int), axis=1) == 2).all()  # consecutive frames, stride 2


def test_protocol_numbers_of_the_paper_profile():
    params = load_params("params.yaml")
    k, h, b = (dataset_config(params, d, "paper") for d in ("kth", "h36m", "bair"))
    assert (k["frame_size"], k["test_clips"], k["test_frames"], k["test_seed"], k["val_fraction"]) == (64, 1000, 40, 42, 0.05)
    assert (h["crop_box"], h["subsampling"], h["test_clips"], h["test_frames"]) == ([100, 100, 900, 900], 8, 1000, 53)
    assert (b["test_clips"], b["test_frames"]) == (256, 30)
    expect = {"srvp-kth": (10, 30, 1.2, 0.04, 100, 3), "srvp-h36m": (8, 45, 1.2, 0.04, 100, 3),
              "srvp-bair": (2, 28, 1.41, 0.5, 192, 2)}
    for exp, (n_cond, n_pred, gain, obs, batch, k_inf) in expect.items():
        cfg = experiment_config(params, exp, "paper")
        m, p = cfg["model"], cfg["protocol"]
        assert (p["n_cond"], p["n_pred"], p["n_samples"]) == (n_cond, n_pred, 100)
        assert set(p["metrics"]) == {"PSNR", "SSIM", "LPIPS", "FVD"}
        assert (m["res_gain"], m["obs_var"], cfg["train"]["batch_size"], m["nt_inf"]) == (gain, obs, batch, k_inf)
        assert (m["arch"], m["skip"], m["ny"], m["nz"], m["n_euler_steps"], m["image_size"]) == ("vgg", True, 50, 50, 2, 64)
    assert struct.calcsize("<Q") == 8
