"""The authors' released ReDO weights as a weakgen checkpoint (``convert``: the redo family's import_weights).

``python -m stages.import_weights --experiment redo-flowers --from data/raw/pretrained/redo/flowers/``

``source`` is one of (formats in the official-weights README):
- a ``best.pth`` / ``state_NNNNN.pth`` file, or a folder holding ``best.pth``: one ``torch.save``d dict with
  the four state dicts ``netEncM``, ``netGenX``, ``netDX``, ``netRecZ``, the optimiser states and ``options``
  (an ``argparse.Namespace`` of the training options);
- a folder holding the split files ``<dataset>_netM_state``, ``_netX_state``, ``_netD_state``,
  ``_netZ_state`` (extracted from their ``.tar.gz``), each a dict with that network's state dict and
  ``options``.

Checks, in order: each file is a plain weights file (``stages.checkpoints.load_foreign``: no pickled code),
the options agree with the experiment's model block option by option (``OPTIONS``; an option the file
lacks is not checked, its shapes still are), every tensor of our architecture is there with its shape and no
other is. Our modules carry the released submodule names, so the mapping is the network prefix alone
(``PREFIXES``); nothing is reshaped.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from models.gan_blocks import skip_init
from stages.checkpoints import build_model, load_foreign
from stages.errors import ConfigError, DataError

# Their network -> (our module prefix, the split file's suffix). netGenX holds its G_k under "net.<k>".
PREFIXES = {"netEncM": ("mask_net.", "netM"), "netGenX": ("generators.", "netX"),
            "netDX": ("disc.", "netD"), "netRecZ": ("z_encoder.", "netZ")}
_STRIP = {"netGenX": "net."}

# Their option -> our model config key (both self-attention flags map to our one switch).
OPTIONS = {"sizex": "image_size", "nMasks": "n_regions", "nResM": "n_res_mask", "nfM": "nf_mask", "nfX": "ch",
           "nfD": "nf_disc", "nfZ": "nf_zenc", "nz": "z_dim", "useSelfAttG": "self_attention",
           "useSelfAttD": "self_attention", "temperature": "temperature"}
# Not checked: wrecZ (the z loss weight: a training choice that does not change the networks or their
# evaluation), the optimiser / data options, and nx (its meaning is not fixed by the tensor list; the input
# channels are checked through the first conv's shape).


def our_key(net: str, key: str) -> str:
    """Their ``key`` inside network ``net``'s state dict -> our ReDO state-dict key."""
    strip = _STRIP.get(net, "")
    if strip and not key.startswith(strip):
        return f"{net}.{key}"          # not a key of ours: reported as an extra tensor
    return PREFIXES[net][0] + key[len(strip):]


def authors_key(key: str) -> tuple[str, str]:
    """Our ReDO state-dict ``key`` -> (their network, their key inside it): the inverse of ``our_key``."""
    for net, (prefix, _) in PREFIXES.items():
        if key.startswith(prefix):
            return net, _STRIP.get(net, "") + key[len(prefix):]
    raise KeyError(f"{key} is not a ReDO state-dict key")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def locate(source: Path) -> dict[str, Path]:
    """Which file holds each network: {net: path} (all four the same path for a one-file checkpoint)."""
    if source.is_file():
        return dict.fromkeys(PREFIXES, source)
    if (source / "best.pth").is_file():
        return dict.fromkeys(PREFIXES, source / "best.pth")
    found = {}
    for net, (_, suffix) in PREFIXES.items():
        hits = sorted(p for p in source.glob(f"*_{suffix}_state*") if p.is_file() and not p.name.endswith(".tar.gz"))
        if len(hits) > 1:
            raise DataError(f"{source} holds several {suffix} files ({', '.join(p.name for p in hits)}): keep one "
                            f"dataset's files per folder.")
        if hits:
            found[net] = hits[0]
    if not found:
        raise DataError(f"{source} holds neither best.pth nor the split <dataset>_netM_state ... _netZ_state files: "
                        f"put the authors' released ReDO files there (extract the .tar.gz archives).")
    missing = [f"_{PREFIXES[n][1]}_state" for n in PREFIXES if n not in found]
    if missing:
        raise DataError(f"{source} lacks the split file(s) {', '.join(missing)}: all four networks are needed.")
    return found


def _network_state(payload, net: str, path: Path) -> dict:
    """Network ``net``'s state dict from a loaded container (the full checkpoint or a split file)."""
    if not isinstance(payload, dict):
        raise DataError(f"{path} is a {type(payload).__name__}, not a ReDO checkpoint (a dict with {net} and "
                        f"options): use the authors' released file unmodified.")
    state = payload.get(net)
    if state is None:  # a split file may name its state dict otherwise: take its only dict of tensors
        dicts = [v for k, v in payload.items() if k != "options" and isinstance(v, dict)
                 and v and all(isinstance(t, torch.Tensor) for t in v.values())]
        state = dicts[0] if len(dicts) == 1 else None
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise DataError(f"{path} has no {net} state dict (keys: {', '.join(map(str, payload)) or 'none'}): it is not "
                        f"a ReDO checkpoint or it is incomplete.")
    return state


def _options(payload, path: Path):
    opts = payload.get("options") if isinstance(payload, dict) else None
    if opts is None:
        raise DataError(f"{path} has no 'options' (the training options saved by the authors' train.py): "
                        f"use the released file unmodified.")
    return opts


def check_options(opts, model_cfg: dict, path: Path) -> None:
    """ConfigError naming the first option whose value contradicts the experiment's model block."""
    values = vars(opts) if hasattr(opts, "__dict__") else dict(opts) if isinstance(opts, dict) else None
    if values is None:
        raise DataError(f"{path}: 'options' is a {type(opts).__name__}, expected an argparse Namespace.")
    for theirs, ours in OPTIONS.items():
        if theirs not in values or ours not in model_cfg:
            continue
        got, want = values[theirs], model_cfg[ours]
        try:
            same = (bool(got) == bool(want)) if isinstance(want, bool) else float(got) == float(want)
        except (TypeError, ValueError):
            same = False
        if not same:
            raise ConfigError(f"{path}: option {theirs} = {got!r} but the experiment's model.{ours} = {want!r}: "
                              f"the file was trained with another configuration (use the matching experiment, or "
                              f"set model.{ours} to {got!r} in params.yaml).")


def convert_state_dict(theirs: dict[str, dict], model: torch.nn.Module, where: dict[str, Path]) -> dict:
    """Our state dict from the four networks' state dicts: one to one, shapes checked, nothing missing or extra."""
    ours = model.state_dict()
    mapped: dict[str, tuple[str, Path, torch.Tensor]] = {}
    for net, state in theirs.items():
        for key, tensor in state.items():
            mapped[our_key(net, key)] = (f"{net}.{key}", where[net], tensor)
    missing = [k for k in ours if k not in mapped]
    if missing:
        net = next(n for n, (p, _) in PREFIXES.items() if missing[0].startswith(p))
        hint = missing[0][len(PREFIXES[net][0]):]
        name = f"{net}.{('net.' if net == 'netGenX' else '')}{hint}"
        raise DataError(f"{where[net]} lacks {len(missing)} tensor(s) of this architecture, first {name}: the file is "
                        f"incomplete or belongs to another configuration.")
    extra = [m for k, m in mapped.items() if k not in ours]
    if extra:
        name, path, _ = extra[0]
        raise DataError(f"{path} holds {len(extra)} tensor(s) this architecture does not have, first {name}: the file "
                        f"belongs to another configuration (check its options against params.yaml).")
    out = {}
    for key, (name, path, tensor) in mapped.items():
        if tuple(tensor.shape) != tuple(ours[key].shape):
            raise DataError(f"{path}: tensor {name} has shape {tuple(tensor.shape)}, this architecture needs "
                            f"{tuple(ours[key].shape)}: the file belongs to another configuration.")
        if not tensor.dtype.is_floating_point:
            raise DataError(f"{path}: tensor {name} is {tensor.dtype}, expected floating point.")
        out[key] = tensor.to(ours[key].dtype).contiguous()
    return out


def convert(source: Path, cfg: dict) -> dict:
    """A weakgen checkpoint payload (run 0 of ``cfg``'s experiment) from the authors' released ReDO files."""
    where = locate(Path(source))
    loaded = {p: load_foreign(p) for p in dict.fromkeys(where.values())}  # each file read once, checked first
    from models.redo import DEFAULTS

    for path, payload in loaded.items():
        check_options(_options(payload, path), {**DEFAULTS, **cfg["model"]}, path)
    theirs = {net: _network_state(loaded[path], net, path) for net, path in where.items()}
    with skip_init():  # every weight is overwritten: skip the orthogonal init (~30 s at the released size)
        model = build_model(cfg["family"], cfg["model"])
    state = convert_state_dict(theirs, model, where)
    model.load_state_dict(state, strict=True)
    files = ", ".join(f"{p.parent.name}/{p.name} (sha256 {sha256(p)[:12]})" for p in loaded)
    return {"family": cfg["family"], "model_config": cfg["model"], "state_dict": state,
            "experiment": cfg["name"], "profile": cfg["profile"], "run": 0,
            "weights_source": f"authors' released ReDO weights, {files}"}
