"""MVC-Cloth (Liu et al., ICMR 2016, "MVC: a dataset for view-invariant clothing retrieval"): clothing items
photographed from 4+ views. User-supplied (the official download is a set of JSON files of image URLs).

Layout this project reads: ``data/raw/mvc/<item>/<view>.jpg`` (or .png), one folder per clothing item, any
file names. To arrange the official download: fetch the images listed in ``image_links.json`` and put each
item's views (the entries sharing an ``itemN``) in ``data/raw/mvc/<itemN>/``. Processing: each image padded
to a square with white, resized to ``image_size`` (64); ``n_test_items`` (495) items drawn with a seeded
generator are the test split [our reading], the rest train; content = item. An item with fewer than two
views cannot make a pair: a DataError names it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from stages.errors import ConfigError, DataError

EXTENSIONS = (".jpg", ".jpeg", ".png")
WHERE = ("MVC-Cloth is user-supplied: download the images listed by the official MVC release (Liu et al., "
         "ICMR 2016; image_links.json lists each item's image URLs) and put each item's views in "
         "data/raw/mvc/<item>/<view>.jpg (docs/chapters/gmv.md)")


def square(img, image_size: int) -> np.ndarray:
    """Pad to a white square (clothes photos are portrait), then resize; uint8 [3, S, S]."""
    from PIL import Image

    w, h = img.size
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(img, ((side - w) // 2, (side - h) // 2))
    return np.asarray(canvas.resize((image_size, image_size), Image.BILINEAR), np.uint8).transpose(2, 0, 1)


def read_mvc(root: str | Path, image_size: int) -> dict[str, np.ndarray]:
    """{item: uint8 [V, 3, S, S]}, items sorted by name."""
    from PIL import Image

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is missing: {WHERE}.")
    items = sorted(p for p in root.iterdir() if p.is_dir())
    if not items:
        raise DataError(f"{root} holds no item folders: {WHERE}.")
    out = {}
    for item in items:
        views = sorted(p for p in item.iterdir() if p.suffix.lower() in EXTENSIONS)
        if len(views) < 2:
            raise DataError(f"MVC item {item} has {len(views)} view(s); a pair needs at least 2: add its views "
                            f"or remove the folder.")
        decoded = []
        for v in views:
            try:
                with Image.open(v) as img:
                    decoded.append(square(img.convert("RGB"), image_size))
            except OSError as exc:
                raise DataError(f"{v} is not a readable image ({exc}): replace it or remove it.") from exc
        out[item.name] = np.stack(decoded)
    return out


def split_items(items: dict[str, np.ndarray], n_test: int, seed: int) -> dict[str, np.ndarray]:
    names = sorted(items)
    if not 0 < n_test < len(names):
        raise ConfigError(f"datasets.mvc.n_test_items = {n_test} must leave train items ({len(names)} items)")
    test = set(np.random.default_rng(seed).choice(len(names), n_test, replace=False).tolist())
    out: dict[str, list] = {k: [] for k in ("train_images", "train_content", "test_images", "test_content")}
    for k, name in enumerate(names):
        split = "test" if k in test else "train"
        out[f"{split}_images"].append(items[name])
        out[f"{split}_content"].append(np.full(len(items[name]), k, np.int64))
    return {key: np.concatenate(v) for key, v in out.items()}


def write_synthetic_mvc(root: str | Path, n_items: int = 6, n_views: int = 4, seed: int = 0) -> Path:
    """Portrait JPEG photos of coloured garments (a body and two sleeves), one folder per item (tests)."""
    from PIL import Image, ImageDraw

    root = Path(root)
    rng = np.random.default_rng(seed)
    for i in range(n_items):
        colour = tuple(int(c) for c in rng.integers(30, 220, 3))
        folder = root / f"item{i:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        for v in range(n_views):
            img = Image.new("RGB", (60, 80), (245, 245, 245))
            draw = ImageDraw.Draw(img)
            dx = int(rng.integers(-6, 7))
            draw.rectangle([18 + dx, 15, 42 + dx, 70], fill=colour)
            draw.polygon([(18 + dx, 15), (6 + dx, 40 - 3 * v), (18 + dx, 35)], fill=colour)
            draw.polygon([(42 + dx, 15), (54 + dx, 40 - 3 * v), (42 + dx, 35)], fill=colour)
            img.save(folder / f"{v}.jpg", quality=90)
    return root


def preprocess(cfg: dict, profile: str) -> str:
    from stages import paths
    from stages.datasets.multiview import write_views

    items = read_mvc(paths.raw_dir("mvc"), cfg["image_size"])
    return write_views(profile, "mvc", split_items(items, cfg["n_test_items"], cfg["seed"]), "user-supplied MVC")


def check_raw(raw_dir: str | Path) -> None:
    """The download step of a user-supplied dataset: check the folder, say where to get it."""
    root = Path(raw_dir)
    if not root.is_dir() or not any(p.is_dir() for p in root.iterdir()):
        raise DataError(f"{root} is missing or empty: {WHERE}.")
