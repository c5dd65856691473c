"""The one place checkpoints and training states are written and read (weights only, never code).

A checkpoint is a dict with at least ``family``, ``model_config`` and ``state_dict``; the family's model
class (declared by its chapter, stages/chapters.py) rebuilds the network from it.
"""
from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import torch

from stages import chapters
from stages.errors import ConfigError, DataError, atomic_path


def save_checkpoint(path: str | Path, payload: dict) -> None:
    # Saved through a file object: given a path, torch names the archive after the (random) temporary
    # file, and two identical runs would write different bytes.
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(payload, fh)


def load_checkpoint(path: str | Path, device="cpu", stage: str = "train") -> dict:
    """The payload of ``path``; DataError naming the file and the fix when missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing: run its {stage} stage first (snakemake {path}).")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated, corrupt or non-weight files
        raise DataError(f"{path} is corrupt ({exc}): delete it and rerun its {stage} stage.") from exc
    if not isinstance(payload, dict):
        raise DataError(f"{path} is not a weakgen checkpoint (a dict): delete it and rerun its {stage} stage.")
    return payload


def load_foreign(path: str | Path) -> object:
    """A weights file written by someone else's code (released checkpoints), read without running code.

    ``torch.load(weights_only=True)`` with only ``argparse.Namespace`` allow-listed (released files keep
    their training options in one), mapped to cpu. A missing, truncated or corrupt file, or one whose
    pickle asks for anything but tensors, containers and a Namespace, is a DataError naming the file."""
    import argparse

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing: put the released weights file there (see docs/weights.md).")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        why = next((line.strip() for line in str(exc).splitlines() if "GLOBAL" in line), "")
        raise DataError(f"{path} is not a plain weights file: its pickle asks to run or build objects "
                        f"other than tensors{f' ({why})' if why else ''}; refusing to load it. Use the "
                        f"authors' released file, unmodified.") from exc
    except Exception as exc:  # truncated zip, bad magic number, EOF: torch raises several types
        raise DataError(f"{path} cannot be read as a torch weights file ({exc}); it may be truncated or "
                        f"corrupt: download it again.") from exc


def load_state(path: Path, device) -> dict | None:
    """A resumable training state, or None after moving an unreadable one aside (training then restarts)."""
    try:
        return load_checkpoint(path, device)
    except DataError as exc:
        aside = path.with_name(path.name + ".corrupt")
        shutil.move(path, aside)
        print(f"warning: {path} could not be read ({exc.__cause__ or exc}); moved to {aside}, starting from step 0")
        return None


def build_model(family: str, model_cfg: dict):
    """The family's network from its model config; an unknown family or a bad key is a ConfigError."""
    from stages.cli import resolve_target

    try:
        return resolve_target(chapters.family(family).model).from_config(model_cfg)
    except ValueError as exc:  # models.blocks.ModelConfigError: models/ does not import stages/
        raise ConfigError(f"model {family}: {exc} (fix the experiment's model block in params.yaml)") from exc


def load_model(path: str | Path, device):
    """Rebuild a trained model from its checkpoint, in eval mode, with the checkpoint's payload."""
    ckpt = load_checkpoint(path, device)
    model = build_model(ckpt["family"], ckpt["model_config"]).to(device)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt
