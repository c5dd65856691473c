"""Supervised baseline of Fig 5.6: ReDO's mask network F trained with per-pixel cross-entropy on the
first N labelled training images, for each N of ``train.n_labelled`` (all = every labelled image).

The labelled pool is the training split when it has masks, else the validation split (LFW, whose training
images are unlabelled). Optimiser: ReDO's settings for F (Adam, betas (0, 0.9), weight decay) for
``steps`` steps with batches drawn from the N images; scored on the same test split with the same
best-permutation metrics. The thesis gives none of these choices (catalog A34): they are our reading.

    python -m stages.train --experiment supervised-flowers --profile smoke     (trains every N)
    python -m stages.evaluate --experiment supervised-flowers --profile smoke  (writes metrics.json)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from models.redo import MaskNetwork
from stages import paths
from stages.errors import DataError, write_json_atomic
from stages.metrics.segmentation import score_masks
from stages.redo.data import SegmentationData, segment_all, to_tensor
from stages.redo.evaluate import spread
from stages.registry import config_digest, experiment_config
from stages.training import autocast, save_checkpoint, select_device, step_generator


def labelled_pool(data: SegmentationData):
    split = "train" if data.labelled("train") else "val"
    return data.images[split], data.masks[split], split


def grid(tr: dict, pool_size: int) -> list[int]:
    return sorted({pool_size if n == "all" else min(int(n), pool_size) for n in tr["n_labelled"]})


def train_supervised(args, params: dict, profile: str) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    tr, m = cfg["train"], cfg["model"]
    device = select_device(args.device)
    data = SegmentationData(cfg, profile)
    images, masks, split = labelled_pool(data)
    states = {}
    for n in grid(tr, len(images)):
        for run in range(tr["runs"]):
            torch.manual_seed(tr["seed"] + run)
            net = MaskNetwork(m["n_regions"], m["nf_mask"], m["n_res_mask"]).to(device)
            opt = torch.optim.Adam(net.parameters(), lr=tr["lr_mask"], betas=tuple(tr["betas"]),
                                   weight_decay=tr["weight_decay_mask"])
            for step in range(tr["steps"]):
                gen = step_generator(tr["seed"] + run + 7 * n, step, torch.device("cpu"))
                idx = torch.randint(n, (min(tr["batch_size"], n),), generator=gen).numpy()
                x = to_tensor(images[idx], device)
                y = torch.from_numpy(masks[idx]).long().to(device)
                with autocast(device):
                    loss = F.nll_loss(net.log_probs(x).float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            states[f"{n}_{run}"] = net.state_dict()
            print(f"{args.experiment}: N={n} run {run} final loss {float(loss):.4f} (pool: {split} split)")
    save_checkpoint(paths.checkpoint(profile, args.experiment), {
        "family": "redo-supervised", "model_config": m, "states": states, "pool": split,
        "digest": config_digest([m, tr]),
    })
    return 0


def evaluate_supervised(args, params: dict, profile: str) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    tr, m = cfg["train"], cfg["model"]
    device = select_device(args.device)
    path = paths.checkpoint(profile, args.experiment)
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except (FileNotFoundError, RuntimeError, EOFError) as exc:
        raise DataError(f"{path} is missing or corrupt ({exc}): rerun its train stage.") from exc
    data = SegmentationData(cfg, profile)
    curve: dict[int, dict[str, list[float]]] = {}
    for key, state in ckpt["states"].items():
        n = int(key.split("_")[0])
        net = MaskNetwork(m["n_regions"], m["nf_mask"], m["n_res_mask"]).to(device)
        net.load_state_dict(state)
        net.eval()
        scores = score_masks(data.masks["test"], segment_all(net, data.images["test"], tr["eval_batch_size"], device))
        for name, v in scores.items():
            curve.setdefault(n, {}).setdefault(name, []).append(float(v.mean()))
    points = [{"n_labelled": n, **{k: spread(v) for k, v in curve[n].items()}} for n in sorted(curve)]
    write_json_atomic(paths.metrics(profile, args.experiment), {
        "experiment": args.experiment, "profile": profile, "model": "redo-supervised", "dataset": cfg["dataset"],
        "report": None, "pool": ckpt["pool"], "curve": points, "metrics": {},
    })
    print(f"wrote {paths.metrics(profile, args.experiment)}: " +
          ", ".join(f"N={p['n_labelled']} IoU {p['IoU']['mean']:.3f}" for p in points))
    return 0
