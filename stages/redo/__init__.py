"""Chapter 5, ReDO unsupervised segmentation and its supervised baseline: the chapter's declaration.

Modules: data (images, masks, batched segmentation), train (one ReDO run), evaluate (Table 5.4 over runs),
supervised (the baseline of Fig 5.6), figures (Figs 5.4-5.9), graph (stages), weights (the authors'
released weights as a checkpoint).
"""
from stages.contract import Chapter, Dataset, Family, FigureKind

_SEG = dict(preprocess="stages.datasets.seg_preprocess:preprocess_real", processed=("segmentation.npz",))

CHAPTER = Chapter(
    name="redo",
    title="5 ReDO: unsupervised object segmentation by redrawing",
    families=(
        Family("redo", model="models.redo:ReDO", stages="stages.redo.graph:experiment_stages",
               train="stages.redo.train:train_all_runs", evaluate="stages.redo.evaluate:evaluate",
               import_weights="stages.redo.weights:convert"),
        Family("redo-supervised", model="models.redo:MaskNetwork", stages="stages.redo.graph:supervised_stages",
               train="stages.redo.supervised:train", evaluate="stages.redo.supervised:evaluate"),
    ),
    figures=tuple(FigureKind(kind, stage="stages.redo.graph:figure_stage_for", draw=f"stages.redo.figures:{fn}")
                  for kind, fn in (("redo-redraws", "redraws"), ("redo-extremes", "extremes"),
                                   ("redo-supervised-curve", "supervised_curve"))),
    datasets=(
        Dataset("cmnist2", preprocess="stages.datasets.seg_preprocess:preprocess_cmnist2",
                processed=("segmentation.npz",)),
        Dataset("flowers", **_SEG, download="stages.datasets.flowers:download",
                raw=("102flowers.tgz", "102segmentations.tgz", "setid.mat"),
                synthetic="stages.datasets.synthetic_sources:write_flowers"),
        Dataset("lfw", **_SEG, download="stages.datasets.lfw:download",
                raw=("lfw-funneled.tgz", "parts_lfw_funneled_gt_images.tgz"),
                synthetic="stages.datasets.synthetic_sources:write_lfw"),
        Dataset("cub", **_SEG, download="stages.datasets.cub:download", raw=("CUB_200_2011.tgz", "segmentations.tgz"),
                synthetic="stages.datasets.synthetic_sources:write_cub"),
    ),
    schema="stages/redo/schema.yaml",
)
