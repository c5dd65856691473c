"""Chapter 4.1, motion capture with weak style labels (Seq2Seq, ERD, SeqVAE, ASAE, ASFSAE, DASAE): the
chapter's declaration.

Modules: data (windows of motion.npz), train, evaluate (Parzen, G2T / T2G, transfer accuracy), table (the
data / classifier table beyond the thesis), figures (stick-figure emotion transfer), graph (stages). Data
readers: stages/datasets/bvh.py (BVH), emilya.py (the licence-gated import and its synthetic look-alike),
bandai.py (Bandai-Namco-Research-Motiondataset-1, public).
"""
from stages.contract import Chapter, Dataset, Family, FigureKind, TableFormat

CHAPTER = Chapter(
    name="motion",
    title="4.1 Motion capture: emotion transfer with sequence auto-encoders",
    families=(
        Family("motion", model="models.motion:MotionModel", stages="stages.motion.graph:experiment_stages",
               train="stages.motion.train:train", evaluate="stages.motion.evaluate:evaluate"),
    ),
    figures=(FigureKind("motion-transfer", stage="stages.motion.graph:figure_stage_for",
                        draw="stages.motion.figures:motion_transfer"),),
    datasets=(
        # Licence-gated: "download" only checks the user's folder (no download stage: source import).
        Dataset("emilya", preprocess="stages.datasets.emilya:preprocess", processed=("motion.npz",),
                download="stages.datasets.emilya:check_raw", raw=("manifest.csv",),
                synthetic="stages.datasets.emilya:write_synthetic_emilya"),
        Dataset("bandai1", preprocess="stages.datasets.bandai:preprocess", processed=("motion.npz",),
                download="stages.datasets.bandai:download", raw=("manifest.csv",)),
    ),
    tables={"4.1": TableFormat(decimals={"emotion_classification_accuracy_percent": 1})},
    protocols=("motion",),
    stages="stages.motion.graph:chapter_stages",
    schema="stages/motion/schema.yaml",
)
