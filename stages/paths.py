"""Where every artifact lives (relative to the repository root), in one place.

    data/raw/<dataset>/                       downloads / user-supplied archives
    data/processed/<profile>/<dataset>/       fixed splits and test sets, uint8
    results/<profile>/<experiment>/           checkpoint.pt, samples.h5, metrics.json, run/ (resumable state, logs)
    reports/figures, reports/tables           figures (PNG + JSON caption sidecar) and CSV tables
    reports/thesis_tables.pdf                 the report
"""
from __future__ import annotations

REFERENCE_NUMBERS = "reference/thesis_numbers.yaml"
REPORT = "reports/thesis_tables.pdf"

# Files each dataset's preprocess stage writes, by dataset name.
_PROCESSED = {
    "mnist": ["digits.npz"],
    "smmnist": ["test.npz"],
    "celeba": ["faces.npz"],
    # Chapter 5 (ReDO)
    "cmnist2": ["segmentation.npz"],
    "flowers": ["segmentation.npz"],
    "lfw": ["segmentation.npz"],
    "cub": ["segmentation.npz"],
    # Natural videos: the fixed test clips first (sample/evaluate read [0]), then the packed train/val videos.
    "kth": ["test.npz", "train.npz", "val.npz"],
    "h36m": ["test.npz", "train.npz", "val.npz"],
    "bair": ["test.npz", "train.npz", "val.npz"],
}
# Files each dataset's download stage writes under data/raw/<dataset>/ (paper profile).
_RAW = {
    "mnist": [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ],
    # licence-gated: supplied by the user (stages/datasets/celeba.py says where from); checked, not downloaded
    "celeba": ["img_align_celeba.zip", "list_attr_celeba.txt", "identity_CelebA.txt", "list_eval_partition.txt"],
    # Chapter 5 (ReDO)
    "flowers": ["102flowers.tgz", "102segmentations.tgz", "setid.mat"],
    "lfw": ["lfw-funneled.tgz", "parts_lfw_funneled_gt_images.tgz"],
    "cub": ["CUB_200_2011.tgz", "segmentations.tgz"],
    "kth": [f"zips/{a}.zip" for a in ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")],
    "bair": ["bair_robot_pushing_dataset_v0.tar"],
}


def raw_dir(dataset: str) -> str:
    return f"data/raw/{dataset}"


def raw_files(dataset: str) -> list[str]:
    return [f"{raw_dir(dataset)}/{f}" for f in _RAW[dataset]]


def processed_dir(profile: str, dataset: str) -> str:
    return f"data/processed/{profile}/{dataset}"


def processed_files(profile: str, dataset: str) -> list[str]:
    return [f"{processed_dir(profile, dataset)}/{f}" for f in _PROCESSED[dataset]]


def run_dir(profile: str, experiment: str) -> str:
    return f"results/{profile}/{experiment}"


def checkpoint(profile: str, experiment: str) -> str:
    return f"{run_dir(profile, experiment)}/checkpoint.pt"


def train_state(profile: str, experiment: str) -> str:
    """Resumable training state: deliberately not a declared output, so orchestrators never delete it."""
    return f"{run_dir(profile, experiment)}/run/train_state.pt"


def train_log(profile: str, experiment: str) -> str:
    return f"{run_dir(profile, experiment)}/run/train_log.jsonl"


def samples(profile: str, experiment: str) -> str:
    return f"{run_dir(profile, experiment)}/samples.h5"


def metrics(profile: str, experiment: str) -> str:
    return f"{run_dir(profile, experiment)}/metrics.json"


def figure_files(figure: str) -> list[str]:
    stem = f"reports/figures/{figure.replace('-', '_')}"
    return [f"{stem}.png", f"{stem}.json"]


def table(table_id: str) -> str:
    return f"reports/tables/table_{table_id.replace('.', '_')}.csv"
