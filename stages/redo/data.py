"""The images and masks one ReDO experiment reads, and tensor conversion."""
from __future__ import annotations

import numpy as np
import torch

from stages.datasets.segmentation import load_processed
from stages.redo.files import data_files


class SegmentationData:
    """Concatenation of the splits of the experiment's datasets (train masks only where every part has them)."""

    def __init__(self, cfg: dict, profile: str):
        parts = [load_processed(f) for f in data_files(cfg, profile)]
        self.train_has_masks = all(p["train_has_masks"] for p in parts)
        self.images = {s: np.concatenate([p[f"{s}_images"] for p in parts]) for s in ("train", "val", "test")}
        self.masks = {s: np.concatenate([p[f"{s}_masks"] for p in parts]) for s in ("val", "test")}
        if self.train_has_masks:
            self.masks["train"] = np.concatenate([p["train_masks"] for p in parts])

    def labelled(self, split: str) -> bool:
        return split in self.masks


def to_tensor(images: np.ndarray, device) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> float [B, 3, H, W] in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device=device, dtype=torch.float32)
    return x.permute(0, 3, 1, 2).div_(127.5).sub_(1.0)


@torch.no_grad()
def segment_all(mask_net, images: np.ndarray, batch: int, device) -> np.ndarray:
    """Soft masks [N, n, H, W] float32 for uint8 images [N, H, W, 3], in batches."""
    out = []
    for i in range(0, len(images), batch):
        out.append(mask_net(to_tensor(images[i:i + batch], device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0,), np.float32)
