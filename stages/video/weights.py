"""The authors' released SRVP weights (``model.pt`` + ``config.json``) as a weakgen checkpoint.

``convert(source, cfg)`` is the srvp family's ``import_weights`` (``python -m stages.import_weights``).
``source`` is the released folder (its ``model.pt``, the file the authors' test script loads) or one weights
file (e.g. ``model_best.pt``) with ``config.json`` beside it. The checks, in order: the file is a plain
state dict (no pickled code), ``config.json`` agrees with the experiment's model block option by option,
every tensor of the experiment's architecture is there with its shape, and no other is.

Key mapping (theirs -> ours), one-to-one; ``authors_key`` gives it from our side:

    encoder.conv.*                  encoder.stages.*
    encoder.last_conv.*             encoder.head.*     (VGG: their last_conv.1.{0,1} = our head.{1,2})
    decoder.first_upconv.*          decoder.first.*
    decoder.conv.*                  decoder.stages.*
    w_proj.* / w_inf.*              content_proj.* / content_out.*
    q_y / p_z / dynamics.module.I.J q_y / prior / dynamics.(2I)     (their MLP nests each Linear)
    inf_z.* / q_z.*                 q_z_lstm.* / q_z_out.*

The one layer that differs is the VGG decoder's last: theirs is ``ConvTranspose2d(nf, nc, 3, 1, 1,
bias=False)``, ours the ``Conv2d(nf, nc, 3, 1, 1, bias=False)`` it equals at stride 1: its weight with input and
output channels swapped and the kernel rotated by 180 degrees (``transposed_to_conv``; the equality is tested in
tests/test_import_weights.py). Kept as a Conv2d: same function, and the smoke numbers of every
SRVP and SVG run stay as they were.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import torch

from stages.checkpoints import build_model, load_foreign
from stages.errors import ConfigError, DataError

WEIGHTS_FILE, CONFIG_FILE = "model.pt", "config.json"

# Their dataset names (data/base.py of the authors' code) -> ours.
DATASETS = {"smmnist": "smmnist", "kth": "kth", "human": "h36m", "bair": "bair"}

# config.json option -> our model config key, and the authors' default when the option is absent (None:
# their argparse requires it, so a file without it is not theirs).
OPTIONS = {
    "nx": ("image_size", 64), "nc": ("channels", None), "nf": ("nf", 64), "nhx": ("nhx", 128),
    "ny": ("ny", None), "nz": ("nz", None), "skipco": ("skip", False), "archi": ("arch", "dcgan"),
    "nt_inf": ("nt_inf", None), "nh_inf": ("nh_inf", 256), "nlayers_inf": ("nlayers_inf", 3),
    "nh_res": ("nh_res", 512), "nlayers_res": ("nlayers_res", 4), "n_euler_steps": ("n_euler_steps", 1),
    "res_gain": ("res_gain", 1.41), "beta_y": ("beta_y", 1.0), "beta_z": ("beta_z", 1.0),
    "l2_res": ("l2_res", 1.0), "nt_cond": ("nt_cond", None),
}
# obs_scale is the observation standard deviation; our obs_var is its square (A16, models/srvp.py). The README's
# 0.71 for BAIR is our 0.5 to within 1 %.
OBS_SCALE_RTOL = 0.02

# Our key prefix -> theirs (longest first); the MLP and VGG-head indices are remapped in authors_key.
_PREFIXES = [("encoder.stages.", "encoder.conv."), ("encoder.head.", "encoder.last_conv."),
             ("decoder.first.", "decoder.first_upconv."), ("decoder.stages.", "decoder.conv."),
             ("content_proj.", "w_proj."), ("content_out.", "w_inf."), ("q_z_lstm.", "inf_z."),
             ("q_z_out.", "q_z."), ("q_y.", "q_y.module."), ("prior.", "p_z.module."),
             ("dynamics.", "dynamics.module.")]
_MLPS = ("q_y.", "prior.", "dynamics.")
VGG_LAST = "decoder.stages.3.1.weight"   # the transposed-conv layer (VGG decoder only)


def authors_key(ours: str, arch: str) -> str:
    """The authors' state-dict key of our key ``ours`` (models/srvp.py with ``arch``)."""
    if ours.startswith(_MLPS):
        head, index, rest = ours.split(".", 2)        # our Sequential(Linear, ReLU, Linear, ...): Linear i at 2i
        i = int(index) // 2
        ours = f"{head}.{i}.{0 if i == 0 else 1}.{rest}"
    elif arch == "vgg" and ours.startswith("encoder.head."):
        _, _, index, rest = ours.split(".", 3)        # our head: pool, conv, bn, tanh; theirs: pool, (conv, bn, tanh)
        ours = f"encoder.head.1.{int(index) - 1}.{rest}"
    for mine, theirs in _PREFIXES:
        if ours.startswith(mine):
            return theirs + ours[len(mine):]
    raise AssertionError(f"no authors' name for {ours}")  # a new layer in models/srvp.py needs a mapping here


def transposed_to_conv(weight: torch.Tensor) -> torch.Tensor:
    """Weight of the Conv2d equal to a stride-1 ConvTranspose2d of weight [in, out, k, k] (padding p -> k-1-p)."""
    return weight.transpose(0, 1).flip(2, 3).contiguous()


def locate(source: Path) -> tuple[Path, Path]:
    """(weights file, config.json) of a released folder or of one weights file."""
    source = Path(source)
    if source.is_dir():
        return source / WEIGHTS_FILE, source / CONFIG_FILE
    return source, source.parent / CONFIG_FILE


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_options(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"{path} is missing: the authors' released folder holds config.json beside model.pt "
                        f"(see docs/weights.md); copy it there.")
    try:
        options = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is not valid JSON ({exc}): download the authors' config.json again.") from exc
    if not isinstance(options, dict):
        raise DataError(f"{path} must be a JSON object of training options, got {type(options).__name__}.")
    return options


def _same(theirs, ours) -> bool:
    if isinstance(theirs, bool) or isinstance(ours, bool):   # True is not 1 here
        return type(theirs) is type(ours) and theirs == ours
    if isinstance(theirs, (int, float)) and isinstance(ours, (int, float)):
        return math.isclose(theirs, ours, rel_tol=1e-6)
    return theirs == ours


def check_options(options: dict, cfg: dict, where: Path) -> None:
    """ConfigError naming the first option of ``config.json`` that contradicts the experiment's config."""
    model, exp = cfg["model"], cfg["name"]

    def contradiction(key: str, theirs, ours, our_key: str) -> ConfigError:
        return ConfigError(f"{where}: option {key} = {theirs!r} contradicts experiments.{exp} (profile "
                           f"{cfg['profile']}): {our_key} = {ours!r}. These weights belong to another "
                           f"configuration: import the file of this experiment, or fix params.yaml.")

    dataset = options.get("dataset")
    if dataset is not None and DATASETS.get(dataset, dataset) != cfg["dataset"]:
        raise contradiction("dataset", dataset, cfg["dataset"], "dataset")
    if options.get("deterministic"):
        raise contradiction("deterministic", True, cfg["dataset"], "dataset (stochastic bounces)")
    for key, (our_key, default) in OPTIONS.items():
        theirs = options.get(key, default)
        if theirs is None:
            if key == "nt_cond":   # a test-time option: absent from some training configs
                continue
            raise DataError(f"{where} lacks option {key}, which the authors' training script requires: this is "
                            f"not the config.json of an SRVP release (see docs/weights.md).")
        ours = model.get(our_key, _model_default(our_key))
        if not _same(theirs, ours):
            raise contradiction(key, theirs, ours, f"model.{our_key}")
    scale = options.get("obs_scale", 1.0)
    ours = model.get("obs_var", _model_default("obs_var"))
    if not isinstance(scale, (int, float)) or not math.isclose(scale ** 2, ours, rel_tol=OBS_SCALE_RTOL):
        raise contradiction("obs_scale", scale, ours, "model.obs_var (a variance: obs_scale squared)")


def _model_default(key: str):
    import inspect

    from models.srvp import SRVP

    return inspect.signature(SRVP.__init__).parameters[key].default


def _state_dict(payload, path: Path) -> dict:
    if not isinstance(payload, dict) or not payload or not all(isinstance(v, torch.Tensor) for v in payload.values()):
        kind = type(payload).__name__ if not isinstance(payload, dict) else "a dict holding non-tensors"
        raise DataError(f"{path} is {kind}, not the plain state dict of an SRVP release (torch.save of "
                        f"model.state_dict()): use the authors' model.pt / model_best.pt unmodified.")
    return payload


def convert_state_dict(theirs: dict, model: torch.nn.Module, arch: str, path: Path) -> dict:
    """Our state dict from theirs: every key mapped one-to-one, shapes checked, nothing missing or left over."""
    ours = model.state_dict()
    expected = {authors_key(k, arch): k for k in ours}
    missing = [k for k in expected if k not in theirs]
    if missing:
        raise DataError(f"{path} lacks {len(missing)} tensor(s) of this architecture, first {missing[0]}: the "
                        f"file is incomplete or belongs to another configuration.")
    extra = [k for k in theirs if k not in expected]
    if extra:
        raise DataError(f"{path} holds {len(extra)} tensor(s) this architecture does not have, first {extra[0]}: "
                        f"the file belongs to another configuration (check config.json and params.yaml).")
    out = {}
    for their_key, our_key in expected.items():
        tensor = theirs[their_key]
        if arch == "vgg" and our_key == VGG_LAST:
            tensor = transposed_to_conv(tensor) if tensor.dim() == 4 else tensor
            want = ours[our_key].transpose(0, 1).shape   # their ConvTranspose2d weight is [in, out, k, k]
            got = theirs[their_key].shape
        else:
            want, got = ours[our_key].shape, tensor.shape
        if tuple(got) != tuple(want):
            raise DataError(f"{path}: tensor {their_key} has shape {tuple(got)}, this architecture needs "
                            f"{tuple(want)}: the file belongs to another configuration.")
        if tensor.dtype.is_floating_point != ours[our_key].dtype.is_floating_point:
            raise DataError(f"{path}: tensor {their_key} is {tensor.dtype}, expected {ours[our_key].dtype}.")
        out[our_key] = tensor.to(ours[our_key].dtype).contiguous()
    return out


def convert(source: Path, cfg: dict) -> dict:
    """A weakgen checkpoint payload from the authors' released SRVP folder (or weights file) ``source``."""
    weights, config = locate(Path(source))
    payload = load_foreign(weights)               # refuses missing, truncated and code-carrying files first
    check_options(read_options(config), cfg, config)
    model = build_model(cfg["family"], cfg["model"])
    state = convert_state_dict(_state_dict(payload, weights), model, cfg["model"].get("arch", "dcgan"), weights)
    model.load_state_dict(state, strict=True)
    folder = weights.parent.name
    return {"family": cfg["family"], "model_config": cfg["model"], "state_dict": state,
            "experiment": cfg["name"], "profile": cfg["profile"],
            "weights_source": f"authors' released SRVP weights, {folder}/{weights.name} "
                              f"(sha256 {sha256(weights)[:12]})"}

