"""Chapter 4.2 metrics against hand values: label distance, unique combinations, blurry %, per-attribute
accuracy, and the AUC columns built from pair distances (the descriptor and AUC are stubs here; the real
ones are tested in tests/test_gmv_identity*.py)."""
import numpy as np
import pytest

from stages.datasets.celeba import ATTRIBUTES
from stages.gmv import identity_pairs
from stages.gmv.metrics_io import attribute_entries
from stages.metrics import attributes as A


def test_frequencies_and_label_distance_by_hand():
    pred = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 0], [1, 0, 0]], np.uint8)
    q = A.frequencies(pred)
    np.testing.assert_allclose(q, [0.75, 0.25, 0.25])
    # |0.75-0.5| + |0.25-0.25| + |0.25-1.0| = 0.25 + 0 + 0.75 -> mean 1/3 (the mean, not the sum)
    assert A.label_distance(q, [0.5, 0.25, 1.0]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        A.label_distance(q, [0.5, 0.5])


def test_unique_combinations_and_blurry_by_hand():
    pred = np.array([[1, 0], [1, 0], [0, 1], [0, 0], [1, 0]], np.uint8)
    assert A.unique_combinations_percent(pred) == pytest.approx(60.0)        # 3 distinct of 5
    q = np.zeros(40)
    q[ATTRIBUTES.index("Blurry")] = 0.0861
    assert A.blurry_percent(q, list(ATTRIBUTES)) == pytest.approx(8.61)


def test_binarise_threshold_and_accuracy():
    probs = np.array([[0.49, 0.5, 0.51]])
    np.testing.assert_array_equal(A.binarise(probs), [[0, 1, 1]])
    np.testing.assert_allclose(A.per_attribute_accuracy([[1, 0], [0, 1]], [[1, 1], [0, 1]]), [1.0, 0.5])


def test_attribute_entries_fill_table_4_5_and_4_6_columns():
    rng = np.random.default_rng(0)
    pred = (rng.random((10, 40)) < 0.3).astype(np.uint8)
    p = A.frequencies(pred)
    t45 = attribute_entries("4.5", pred, p)
    assert t45["label_distance"]["mean"] == 0.0
    assert set(t45) == {"label_distance", "unique_attribute_combinations_percent", "blurry_percent"}
    t46 = attribute_entries("4.6", pred, p)
    assert len(t46) == 40 and t46["attribute_frequency:Blurry"]["mean"] == pytest.approx(p[ATTRIBUTES.index("Blurry")])
    from stages.gmv.metrics_io import table_columns
    assert set(t46) == set(table_columns("4.6")) and set(t45) == set(table_columns("4.5"))


def mann_whitney(pos, neg):
    """Independent reference: P(pos > neg) + 1/2 P(pos == neg), by brute force."""
    pos, neg = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def test_auc_columns_pair_positive_and_negative_kinds():
    positives = {"generated": np.array([0.1, 0.2]), "real": np.array([0.3, 0.9]), "mixed": np.array([0.5, 0.5])}
    negatives = {"generated": np.array([0.2, 0.4]), "real": np.array([1.0, 0.05])}
    cols = ["identity_preservation_AUC_percent_mixed-vs-real", "identity_preservation_AUC_percent_generated-vs-generated",
            "identity_preservation_AUC_percent_real-vs-generated"]
    out = identity_pairs.auc_columns(cols, positives, negatives, mann_whitney, lambda a, n1, n2: 0.01 * a)
    # generated-vs-generated: scores -d; pairs (0.1 vs 0.2) win, (0.1 vs 0.4) win, (0.2 vs 0.2) tie, (0.2 vs 0.4) win
    assert out[cols[1]]["mean"] == pytest.approx(100 * 3.5 / 4)
    # mixed-vs-real: 0.5 closer than 1.0 (win), farther than 0.05 (loss), twice -> 50 %
    assert out[cols[0]]["mean"] == pytest.approx(50.0)
    # real-vs-generated: 0.3 vs (0.2, 0.4): loss, win; 0.9: loss, loss -> 25 %
    assert out[cols[2]]["mean"] == pytest.approx(25.0)
    assert all(v["status"] == "ok" and v["n"] == 2 for v in out.values())
    assert out[cols[0]]["ci95"] == pytest.approx(0.5)           # the interval function gets the AUC as a fraction
    assert identity_pairs.INTERVAL in out[cols[0]]["interval"]


def test_unavailable_descriptor_fills_every_column_with_the_reason():
    out = identity_pairs.unavailable(["a", "b"], "no weights")
    assert out == {"a": {"status": "unavailable", "reason": "no weights"},
                   "b": {"status": "unavailable", "reason": "no weights"}}


class StubDescriptor:
    label = "stub mean colour"
    threshold = 0.6

    def describe(self, images):
        assert images.ndim == 4 and images.shape[-1] == 3 and images.dtype == np.uint8
        return images.reshape(len(images), -1, 3).mean(1).astype(np.float32)


def test_describe_transposes_to_channels_last_in_batches():
    imgs = np.zeros((5, 3, 4, 4), np.uint8)
    imgs[:, 1] = 10
    out = identity_pairs.describe(StubDescriptor(), imgs, batch=2)
    np.testing.assert_allclose(out, np.tile([0, 10, 0], (5, 1)))


def test_figure_tiles_of_two_sizes_share_one_grid():
    from stages.gmv.figures import same_size

    small = np.arange(3 * 2 * 2, dtype=np.uint8).reshape(3, 2, 2)
    rows = same_size([("a", [small, None]), ("b", [np.zeros((3, 4, 4), np.uint8)])])
    grown = rows[0][1][0]
    assert grown.shape == (3, 4, 4) and rows[0][1][1] is None
    np.testing.assert_array_equal(grown[:, ::2, ::2], small)
    np.testing.assert_array_equal(grown[:, 1::2, 1::2], small)


def test_one_experiment_row_note_reaches_the_table():
    from stages import paths, tables
    from stages.gmv.metrics_io import table_columns

    ref = tables.load_reference(paths.REFERENCE_NUMBERS, "4.4")
    row = "Mathieu et al. 2016 (authors' implementation)"
    data = {"experiment": "mathieu-celeba", "profile": "paper", "note": "our PyTorch port of the original nets",
            "report": {"table": "4.4", "dataset": "CelebA (test images as inputs)", "model": row},
            "metrics": {c: {"status": "ok", "mean": 50.0, "ci95": None} for c in table_columns("4.4")}}
    header, rows = tables.build_table(ref, "paper", {"m.json": data}, [])
    ours = next(r for r in rows if r[2] == row)
    assert ours[-2] == "ours" and "our PyTorch port of the original nets" in ours[-1] and "50.0" in ours


def test_corrupt_or_missing_reference_arrays_name_the_stage(tmp_path):
    from stages.errors import DataError
    from stages.gmv.evaluate import load_reference_arrays

    with pytest.raises(DataError, match="missing: run the evaluate stage of celeba-reference"):
        load_reference_arrays(str(tmp_path / "reference.npz"), "celeba-reference")
    (tmp_path / "reference.npz").write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(DataError, match="corrupt .*rerun the evaluate stage of celeba-reference"):
        load_reference_arrays(str(tmp_path / "reference.npz"), "celeba-reference")
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(DataError, match="corrupt"):
        load_reference_arrays(str(tmp_path / "other.npz"), "celeba-reference")
