"""The chapter contract: what one chapter package declares, once, so the generic layer can run it.

A chapter package (``stages/<chapter>/__init__.py``) defines ``CHAPTER = Chapter(...)`` built from the
dataclasses below. Every callable is named as a ``"module:function"`` string and imported only when a
stage needs it, so reading the declarations (the Snakefile does, for every dry run) imports no torch.

Signatures of the named callables:

    Family.model       class with ``from_config(model_cfg: dict)``          (models/ only; no stages import)
    Family.stages      (params, profile, experiment) -> list[Stage]           the experiment's graph stages
    Family.train       (args, params, profile) -> exit status               ``python -m stages.train``
    Family.sample      (args, params, profile) -> exit status               ``python -m stages.sample``
    Family.evaluate    (args, params, profile) -> exit status               ``python -m stages.evaluate``
    Family.import_weights (source: Path, cfg: dict) -> checkpoint payload   ``python -m stages.import_weights``
                       cfg is ``registry.experiment_config(params, exp, profile)``; the payload (family,
                       model_config, state_dict, weights_source: one line naming the file) goes to
                       ``checkpoints.save_checkpoint``. DataError for file problems, ConfigError when the
                       file's options contradict the experiment (naming the option and both values).
    FigureKind.stage   (params, profile, figure, spec, experiments) -> Stage
    FigureKind.draw    (params, profile, spec) -> (PNG bytes, caption)
    Dataset.preprocess (dataset_cfg, profile) -> None                       writes ``Dataset.processed``
    Dataset.download   (dataset_cfg) -> None                                fetches or checks ``Dataset.raw``
    Dataset.synthetic  (folder, ...) -> None      writes a look-alike in the real raw layout (smoke, ci, tests)
    Chapter.stages     (params, profile, experiments) -> list[Stage]        stages tied to no one experiment

Schema fragments live in the chapter's ``schema.yaml`` as ``$defs`` named ``train_<family>``,
``model_<family>``, ``protocol_<kind>``, ``dataset_<name>`` and ``figure_<kind>``; the registry validates
params.yaml against them (stages/registry.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Resources:
    """What one job asks a scheduler for (Snakemake resources; the SLURM plugin maps them)."""
    gpu: int = 0
    runtime: int = 60          # minutes
    mem_mb: int = 16000
    cpus: int = 1              # threads when the profile does not fix torch_threads

    def merged(self, override: dict | None) -> "Resources":
        return Resources(**{**self.__dict__, **(override or {})})


TRAIN_GPU = Resources(gpu=1, runtime=2880, mem_mb=32000, cpus=8)
INFER_GPU = Resources(gpu=1, runtime=240, mem_mb=16000, cpus=4)
LIGHT = Resources()


@dataclass(frozen=True)
class Family:
    """A model family: how its experiments are built into stages and run."""
    name: str
    model: str
    stages: str
    train: str
    evaluate: str | None = None
    sample: str | None = None
    ddp: bool = False                                  # may be relaunched under torchrun (WEAKGEN_NPROC)
    import_weights: str | None = None                  # released-weights converter (see below)
    resources: dict[str, Resources] = field(default_factory=dict)   # step (train, sample, ...) -> defaults

    def resources_for(self, step: str) -> Resources:
        return self.resources.get(step, TRAIN_GPU if step == "train" else LIGHT)


@dataclass(frozen=True)
class FigureKind:
    name: str
    stage: str
    draw: str


@dataclass(frozen=True)
class Dataset:
    """A dataset: its raw files under data/raw/<name>/ and the processed files its preprocess writes."""
    name: str
    preprocess: str
    processed: tuple[str, ...]
    raw: tuple[str, ...] = ()
    download: str | None = None                        # None: nothing to fetch (embedded or derived data)
    synthetic: str | None = None
    resources: Resources = LIGHT


@dataclass(frozen=True)
class TableFormat:
    """How a thesis results table is filled: decimals when the thesis prints none, rows not re-run."""
    decimals: dict[str, int] = field(default_factory=dict)
    not_rerun: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Chapter:
    name: str                                          # package name under stages/
    title: str                                         # thesis section number and name, as the report shows it
    families: tuple[Family, ...] = ()
    figures: tuple[FigureKind, ...] = ()
    datasets: tuple[Dataset, ...] = ()
    tables: dict[str, TableFormat] = field(default_factory=dict)
    protocols: tuple[str, ...] = ()                    # protocol kinds (schema $defs protocol_<kind>)
    stages: str | None = None                          # chapter-level stages
    schema: str | None = None                          # path of the schema fragment, relative to the repo root
