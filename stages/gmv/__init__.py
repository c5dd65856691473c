"""Chapter 4.2, GMV and CGMV (multi-view generation without view supervision): the chapter's declaration.

Modules: data (splits and the pair / tuple sampler), train (the adversarial step of every family), reference
(attribute classifier, real-pair identity AUC, dataset attribute estimate), evaluate (Tables 4.3-4.6 of one
model), identity_pairs (pairs and AUC columns), metrics_io (metrics files per table), accuracy_table (the
classifier's per-attribute accuracy, beyond the thesis), figures (Figs 4.3-4.15), graph (stages).
Datasets declared here: multi-view MNIST (from the MNIST digits) and 3D-Chairs; CelebA is reused from 3.1.
"""
from stages.contract import Chapter, Dataset, Family, FigureKind, TableFormat

_ADVERSARIAL = dict(stages="stages.gmv.graph:experiment_stages", train="stages.gmv.train:train",
                    evaluate="stages.gmv.evaluate:evaluate")

CHAPTER = Chapter(
    name="gmv",
    title="4.2 GMV and CGMV: multi-view generation without view supervision",
    families=(
        *(Family(name, model="models.gmv:MultiViewGAN", **_ADVERSARIAL) for name in ("gmv", "cgmv", "ganx", "cgan")),
        Family("mathieu", model="models.mathieu:Mathieu", **_ADVERSARIAL),
        Family("gmv-reference", model="models.gmv:AttributeClassifier", stages="stages.gmv.graph:experiment_stages",
               train="stages.gmv.reference:train", evaluate="stages.gmv.reference:evaluate"),
    ),
    figures=(FigureKind("gmv-grid", stage="stages.gmv.graph:figure_stage_for", draw="stages.gmv.figures:gmv_grid"),
             FigureKind("ganx-samples", stage="stages.gmv.graph:figure_stage_for", draw="stages.gmv.figures:gmv_grid"),
             FigureKind("gmv-interpolation", stage="stages.gmv.graph:figure_stage_for",
                        draw="stages.gmv.figures:gmv_interpolation"),
             FigureKind("conditional-views", stage="stages.gmv.graph:figure_stage_for",
                        draw="stages.gmv.figures:conditional_views")),
    datasets=(
        Dataset("mvmnist", preprocess="stages.datasets.mvmnist:preprocess", processed=("views.npz",)),
        Dataset("chairs", preprocess="stages.datasets.chairs:preprocess", processed=("views.npz",),
                download="stages.datasets.chairs:download", raw=("rendered_chairs.tar",),
                synthetic="stages.datasets.chairs:write_synthetic_chairs"),
        # User-supplied folder (no archive to fetch): its "download" checks the folder and says where to get it.
        Dataset("mvc", preprocess="stages.datasets.mvc:preprocess", processed=("views.npz",),
                download="stages.datasets.mvc:check_raw"),
        Dataset("flowers102", preprocess="stages.datasets.flowers102:preprocess", processed=("views.npz",),
                download="stages.datasets.flowers102:download", raw=("102flowers.tgz", "imagelabels.mat")),
    ),
    tables={t: TableFormat(decimals={"identity_preservation_AUC_percent": 1}) for t in ("4.3", "4.4")},
    protocols=("gmv",),
    stages="stages.gmv.graph:chapter_stages",
    schema="stages/gmv/schema.yaml",
)
