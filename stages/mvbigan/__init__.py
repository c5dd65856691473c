"""Chapter 3.1, MV-BiGAN: the chapter's declaration.

Modules: views (view settings and data), train, evaluate (diversity / best-of-N error against the number
of views), diagnostics (does a sample agree with its views, and why not: observed-pixel error, inversion
error, latent gap, discriminator accuracies), table (that table, B.1, beyond the thesis), figures (Figs
3.5-3.8), graph (stages); claims.yaml holds the chapter's claims for the report's claims page. MNIST and
CelebA are declared here, the first chapter to read them; later chapters reuse them by name.
"""
from stages.contract import Chapter, Dataset, Family, FigureKind

CHAPTER = Chapter(
    name="mvbigan",
    title="3.1 MV-BiGAN: multi-view BiGAN",
    families=(
        Family("mvbigan", model="models.mvbigan:MVBiGAN", stages="stages.mvbigan.graph:experiment_stages",
               train="stages.mvbigan.train:train", evaluate="stages.mvbigan.evaluate:evaluate"),
    ),
    figures=tuple(FigureKind(kind, stage="stages.mvbigan.graph:figure_stage_for", draw=f"stages.mvbigan.figures:{fn}")
                  for kind, fn in (("mvbigan-views", "mvbigan_views"), ("mvbigan-kl-compare", "mvbigan_kl_compare"),
                                   ("mvbigan-incoming", "mvbigan_incoming"), ("mvbigan-celeba", "mvbigan_celeba"))),
    datasets=(
        Dataset("mnist", preprocess="stages.datasets.mnist:preprocess", processed=("digits.npz",),
                download="stages.datasets.mnist:download_mnist",
                raw=("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                     "t10k-labels-idx1-ubyte.gz")),
        # Licence-gated: "download" checks the user's files and says where to get them.
        Dataset("celeba", preprocess="stages.datasets.celeba:preprocess", processed=("faces.npz",),
                download="stages.datasets.celeba:check_raw",
                raw=("img_align_celeba.zip", "list_attr_celeba.txt", "identity_CelebA.txt", "list_eval_partition.txt"),
                synthetic="stages.datasets.celeba:write_synthetic_celeba"),
    ),
    protocols=("mvbigan",),
    stages="stages.mvbigan.graph:chapter_stages",
    schema="stages/mvbigan/schema.yaml",
)
