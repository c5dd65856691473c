"""A toy chapter, registered only through WEAKGEN_CHAPTERS=toy_chapter (tests/test_chapter_contract.py).

It declares one of everything the contract has (family, dataset, figure kind, table format) and runs on
numpy alone, so the test can build and run its stages in seconds.
"""
from stages.contract import Chapter, Dataset, Family, FigureKind, TableFormat

_STEPS = "toy_chapter.steps"

CHAPTER = Chapter(
    name="toy",
    title="T toy chapter",
    families=(Family("toy", model="toy_chapter.model:Toy", stages=f"{_STEPS}:experiment_stages",
                     train=f"{_STEPS}:train", evaluate=f"{_STEPS}:evaluate"),),
    figures=(FigureKind("toy-plot", stage=f"{_STEPS}:figure_stage_for", draw=f"{_STEPS}:draw"),),
    datasets=(Dataset("toyset", preprocess=f"{_STEPS}:preprocess", processed=("toy.npz",)),),
    tables={"4.1": TableFormat(not_rerun=frozenset({("Emilya", "ERD")}))},
    schema="toy_chapter/schema.yaml",
)
