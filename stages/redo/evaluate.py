"""Score ReDO runs (Table 5.4): ``python -m stages.evaluate --experiment redo-flowers --profile smoke``.

Each run's kept checkpoint (best validation IoU) segments the train and test images; per image the
accuracy and IoU under their best region permutation (stages/metrics/segmentation.py) are averaged over
the images; the table shows the mean ± standard deviation of those per-run scores over the runs (the
thesis: mean ± std over 5 runs). Train scores are "not_reported" where the training images have no masks
(LFW). Also writes segmentation.npz (run 0's test masks and per-image scores) for the figures.

Beyond the table: ``Acc_test_at_init`` / ``IoU_test_at_init`` score F as each run started (same seed, no
training), the baseline of the claim "ReDO improves with training" (stages/redo/claims.yaml).
"""
from __future__ import annotations

import numpy as np

from models.redo import ReDO
from stages import paths
from stages.errors import atomic_path, write_json_atomic
from stages.metrics.segmentation import IOU_EMPTY_RULE, hard_regions, score_masks
from stages.redo.data import SegmentationData, segment_all
from stages.redo.files import segmentation_file
from stages.redo.train import load_redo
from stages.registry import experiment_config
from stages.runtime import select_device


def spread(values: list[float]) -> dict:
    arr = np.asarray(values, np.float64)
    std = float(arr.std(ddof=1)) if len(arr) > 1 else None
    return {"status": "ok", "mean": float(arr.mean()), "ci95": std, "std": std, "n": len(arr)}


def evaluate(args, params: dict, profile: str) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    exp, tr = args.experiment, cfg["train"]
    device = select_device(args.device)
    data = SegmentationData(cfg, profile)
    per_run: dict[str, list[float]] = {}
    kept, sources = {}, []
    for run in range(tr["runs"]):
        model, ckpt = load_redo(paths.checkpoint(profile, exp, run), device)
        if ckpt.get("weights_source"):   # imported, not trained: the table row names the file
            sources.append(ckpt["weights_source"])
        for split in ("train", "test"):
            if not data.labelled(split):
                continue
            masks = segment_all(model.mask_net, data.images[split], tr["eval_batch_size"], device)
            scores = score_masks(data.masks[split], masks)
            for name, values in scores.items():
                per_run.setdefault(f"{name}_{split}", []).append(float(values.mean()))
            if run == 0 and split == "test":
                kept = {"test_regions": hard_regions(masks).astype(np.uint8),
                        "test_acc": scores["Acc"], "test_iou": scores["IoU"]}
        if data.labelled("test"):
            start = ReDO.initial_mask_net(cfg["model"], tr["seed"] + run).to(device).eval()
            scores = score_masks(data.masks["test"], segment_all(start, data.images["test"], tr["eval_batch_size"], device))
            for name, values in scores.items():
                per_run.setdefault(f"{name}_test_at_init", []).append(float(values.mean()))
    metrics = {}
    for col in ("Acc_train", "IoU_train", "Acc_test", "IoU_test", "Acc_test_at_init", "IoU_test_at_init"):
        metrics[col] = (spread(per_run[col]) if col in per_run else
                        {"status": "not_reported", "reason": "the training images have no masks"})
    out = {"experiment": exp, "profile": profile, "model": "redo", "dataset": cfg["dataset"],
           "report": cfg["report"], "runs": tr["runs"], "spread": "std",
           "protocol": {"runs": tr["runs"], "spread": "std", "n_test_images": int(len(data.images["test"]))},
           "note": IOU_EMPTY_RULE,   # Table 5.4's note: the evaluation's edge rules
           "per_run": per_run, "metrics": metrics, **({"weights_source": "; ".join(sources)} if sources else {})}
    with atomic_path(segmentation_file(profile, exp)) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **kept)
    write_json_atomic(paths.metrics(profile, exp), out)
    summary = ", ".join(f"{k} {v['mean']:.3f}" for k, v in metrics.items() if v["status"] == "ok")
    print(f"wrote {paths.metrics(profile, exp)}: {summary} ({tr['runs']} runs)")
    return 0
