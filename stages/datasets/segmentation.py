"""Shared pieces of the segmentation datasets (chapter 5): the ReDO transform, archive reading, and
the processed file every ReDO stage reads.

Processed file ``segmentation.npz`` (uint8, decoded once): ``{split}_images`` [N, S, S, 3] and
``{split}_masks`` [N, S, S] (class index: 0 background, 1.. foreground classes) for split in train,
val, test; ``train_has_masks`` is False when the training images are unlabelled (LFW), in which case
``train_masks`` is empty.
"""
from __future__ import annotations

import io
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from stages.datasets.arrays import load_npz
from stages.datasets.fetch import verify_checksum
from stages.errors import DataError, atomic_path

SPLITS = ("train", "val", "test")


def resize_crop(img: Image.Image, size: int) -> np.ndarray:
    """ReDO transform: shorter side to ``size`` with NEAREST (images and masks alike), then centre crop
    (torchvision Resize(int) + CenterCrop semantics)."""
    w, h = img.size
    if w <= h:
        nw, nh = size, int(size * h / w)
    else:
        nw, nh = int(size * w / h), size
    img = img.resize((nw, nh), Image.NEAREST)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    return np.asarray(img.crop((left, top, left + size, top + size)))


def decode_image(data: bytes, name: str, archive: Path | str, mode: str = "RGB") -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{archive}: member {name} is not a readable image ({exc}); the archive is corrupt: "
                        "delete it and download it again.") from exc
    return img.convert(mode)


def member_name(name: str, archive: Path) -> str:
    """A member's name without leading "./"; DataError for a name that could point outside the archive's
    tree (absolute, ``..``), checked before any normalisation so that no unsafe name can pass as a safe one."""
    parts = PurePosixPath(name).parts
    if name.startswith("/") or "\\" in name or ".." in parts:
        raise DataError(f"{archive}: member {name!r} points outside the archive's tree; the archive is not the "
                        "official one (or was tampered with): delete it and download it again.")
    return "/".join(p for p in parts if p != ".")


class TarReader:
    """Random access to the regular files of a tar archive by member name (no extraction to disk).

    ``md5``: the archive's published checksum, verified before anything is read (also when the download
    stage was skipped because the file already existed)."""

    def __init__(self, path: str | Path, md5: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path} is missing: run `python -m stages.download --dataset ...` or place the "
                            "official archive there (see docs/chapters/redo.md).")
        if md5:
            verify_checksum(self.path, md5=md5)
        try:
            self.tar = tarfile.open(self.path)
            members = [m for m in self.tar.getmembers() if m.isfile()]
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(f"{self.path} is corrupt or truncated ({exc}): delete it and download it again.") from exc
        self.members = {member_name(m.name, self.path): m for m in members}

    def names(self) -> list[str]:
        return sorted(self.members)

    def read(self, name: str, what: str = "file") -> bytes:
        member = self.members.get(name)
        if member is None:
            raise DataError(f"{self.path}: {what} {name} is missing from the archive.")
        try:
            return self.tar.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError, AttributeError) as exc:
            raise DataError(f"{self.path}: cannot read {name} ({exc}); delete the archive and download it again.") from exc

    def decode_many(self, names, fn, what: str = "file") -> dict:
        """``{name: fn(name, bytes)}`` for ``names``, reading the archive once in its own order: random
        access into a .tgz re-decompresses from the start at every backward seek."""
        wanted = set(names)
        missing = sorted(wanted - set(self.members))
        if missing:
            raise DataError(f"{self.path}: {what} {missing[0]} is missing from the archive ({len(missing)} missing).")
        out = {}
        try:
            for member in sorted((self.members[n] for n in wanted), key=lambda m: m.offset):
                name = member_name(member.name, self.path)
                out[name] = fn(name, self.tar.extractfile(member).read())
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(f"{self.path}: cannot read the archive ({exc}); delete it and download it again.") from exc
        return out

    def close(self):
        self.tar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def save_processed(out: str | Path, arrays: dict[str, np.ndarray], train_has_masks: bool) -> None:
    for split in SPLITS:
        imgs, masks = arrays[f"{split}_images"], arrays[f"{split}_masks"]
        if imgs.dtype != np.uint8 or imgs.ndim != 4 or imgs.shape[-1] != 3:
            raise ValueError(f"{split}_images must be uint8 [N, S, S, 3], got {imgs.dtype} {imgs.shape}")
        if (split != "train" or train_has_masks) and masks.shape != imgs.shape[:3]:
            raise ValueError(f"{split}_masks shape {masks.shape} does not match images {imgs.shape}")
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, train_has_masks=np.asarray(train_has_masks), **arrays)


def load_processed(path: str | Path) -> dict[str, np.ndarray]:
    keys = [f"{s}_{k}" for s in SPLITS for k in ("images", "masks")] + ["train_has_masks"]
    data = load_npz(path, keys)
    data["train_has_masks"] = bool(data["train_has_masks"])
    return data


def stack(images: list[np.ndarray], size: int, channels: int | None = 3) -> np.ndarray:
    shape = (0, size, size, channels) if channels else (0, size, size)
    return np.stack(images).astype(np.uint8) if images else np.zeros(shape, np.uint8)
