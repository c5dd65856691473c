"""The registry: load, validate and resolve params.yaml.

Every stage, the Snakefile and the DVC exporter read the experiment graph through this module, so the
two orchestrators cannot disagree about what exists. Resolution is a deep merge of an entry's ``base``
block with its ``profiles.<profile>`` override.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from stages.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PARAMS = Path("params.yaml")
SCHEMA_PATH = ROOT / "workflow" / "schemas" / "params.schema.yaml"
def safe_load(text: str):
    """yaml.safe_load with libyaml's safe loader when present (10x faster on every dry run)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def deep_merge(base: dict, override: dict) -> dict:
    """Return ``base`` with ``override`` merged in recursively (override wins; lists are replaced)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _key_path(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _schema() -> dict:
    """The base schema with every chapter's fragment merged into its $defs."""
    from stages import chapters

    return _composed_schema(tuple(chapters.schema_files()))


@functools.cache
def _composed_schema(fragments: tuple[str, ...]) -> dict:
    schema = safe_load(SCHEMA_PATH.read_text())
    for rel in fragments:
        fragment = safe_load((ROOT / rel).read_text()) or {}
        for name, definition in (fragment.get("$defs") or {}).items():
            if name in schema["$defs"]:
                raise ConfigError(f"{rel}: $defs/{name} is already defined by another schema file; rename one.")
            schema["$defs"][name] = definition
    return schema


def _definition(schema: dict, name: str, what: str, source: Path) -> dict:
    if name not in schema["$defs"]:
        raise ConfigError(f"{source}: {what} has no schema: its chapter's schema.yaml must define $defs/{name}.")
    return {"$defs": schema["$defs"], **schema["$defs"][name]}


def _validate(instance: Any, schema: dict, where: str, source: Path) -> None:
    import jsonschema  # imported only when a params.yaml content is validated for the first time

    validator = jsonschema.Draft202012Validator(schema)
    # The shallowest error first; "unevaluated properties" last, since a wrong value in a known key also
    # leaves that key unevaluated and the wrong value is the message worth showing.
    errors = sorted(validator.iter_errors(instance),
                    key=lambda e: (e.validator == "unevaluatedProperties", [str(p) for p in e.absolute_path]))
    if errors:
        err = errors[0]
        raise ConfigError(
            f"{source}: invalid value at '{where}{'.' if where and err.absolute_path else ''}"
            f"{_key_path(err.absolute_path) if err.absolute_path else ''}': {err.message}. "
            f"Fix that key (schema: {SCHEMA_PATH.relative_to(ROOT)} and the chapters' schema.yaml fragments)."
        )


def load_params(path: str | Path | None = None) -> dict:
    """Read and validate params.yaml; raise ConfigError naming the bad key and the fix."""
    path = Path(path or DEFAULT_PARAMS)
    if not path.is_file():
        raise ConfigError(f"{path} not found: run from the repository root or pass --params PATH.")
    try:
        text = path.read_text()
        params = safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise ConfigError(f"{path}{where}: not valid YAML ({problem}); fix the file there.") from exc
    if not isinstance(params, dict):
        raise ConfigError(f"{path} must be a mapping of sections (profiles, datasets, protocols, experiments).")
    stamp = _validated_stamp(text)
    validate = not stamp.exists()  # validation is a third of a dry run's own time: done once per content
    if validate:
        schema = _schema()
        _validate(params, schema, "", path)
    _inherit_profiles(params, path)
    if validate:
        _check_references(params, schema, path)
        with contextlib.suppress(OSError):  # a read-only checkout validates every time
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.touch()
    params["_source"] = str(path)
    return params


def _validated_stamp(params_text: str) -> Path:
    """A file whose existence records that this params.yaml content passed validation against this schema,
    these chapter declarations and this validating code (all hashed into its name)."""
    from stages import chapters

    blob = hashlib.sha256(params_text.encode())
    checks = [Path(__file__), Path(chapters.__file__), SCHEMA_PATH]   # the validating code counts too
    for path in [*checks, *(ROOT / rel for rel in chapters.schema_files()), *chapters.declaration_files()]:
        blob.update(str(path).encode() + b"\0" + path.read_bytes())
    return ROOT / ".snakemake" / "weakgen-validated" / blob.hexdigest()[:32]


def _inherit_profiles(params: dict, path: Path) -> None:
    """A profile with ``extends: P`` starts from every entry's override for P, then applies its own
    (``paper-released`` is ``paper`` plus the released weights), so P's overrides are written once."""
    profiles = params["profiles"]
    for name, prof in profiles.items():
        parent = prof.get("extends")
        if parent is None:
            continue
        if parent not in profiles or profiles[parent].get("extends"):
            raise ConfigError(f"{path}: profiles.{name}.extends: '{parent}' must be a profile that extends no "
                              f"other; known: {sorted(profiles)}.")
        for section in ("datasets", "protocols", "experiments"):
            for entry in params[section].values():
                overrides = entry.get("profiles") or {}
                if parent in overrides:
                    entry["profiles"] = {**overrides, name: deep_merge(overrides[parent], overrides.get(name, {}))}


def _check_references(params: dict, schema: dict, path: Path) -> None:
    from stages import chapters

    profiles = set(params["profiles"])
    if params["default_profile"] not in profiles:
        raise ConfigError(f"{path}: default_profile '{params['default_profile']}' is not one of {sorted(profiles)}.")
    for section in ("datasets", "protocols", "experiments"):
        for name, entry in params[section].items():
            for prof in entry.get("profiles", {}) or {}:
                if prof not in profiles:
                    raise ConfigError(
                        f"{path}: {section}.{name}.profiles.{prof}: unknown profile; known: {sorted(profiles)}."
                    )

    def each_profile(entry: dict, definition: dict, where: str, block: str | None = None) -> None:
        pick, suffix = (lambda cfg: cfg[block], f".{block}") if block else (lambda cfg: cfg, "")
        _validate(pick(entry["base"]), definition, f"{where}.base{suffix}", path)
        for prof in profiles:
            _validate(pick(resolve(entry, prof)), definition, f"{where} (profile {prof}){suffix}", path)

    for name, ds in params["datasets"].items():
        chapters.dataset(name, f"{path}: datasets.{name}: ")
        src = ds.get("digits_from")
        if src and src not in params["datasets"]:
            raise ConfigError(f"{path}: datasets.{name}.digits_from: unknown dataset '{src}'.")
        each_profile(ds, _definition(schema, f"dataset_{name}", f"datasets.{name}", path), f"datasets.{name}")
    for name, exp in params["experiments"].items():
        family = exp["model"]
        chapters.family(family, f"{path}: experiments.{name}.model: ")
        if exp["dataset"] not in params["datasets"]:
            raise ConfigError(f"{path}: experiments.{name}.dataset: unknown dataset '{exp['dataset']}'.")
        if "protocol" in exp and exp["protocol"] not in params["protocols"]:
            raise ConfigError(f"{path}: experiments.{name}.protocol: unknown protocol '{exp['protocol']}'.")
        for prof in exp.get("profiles_enabled", []):
            if prof not in profiles:
                raise ConfigError(f"{path}: experiments.{name}.profiles_enabled: unknown profile '{prof}'.")
        where = f"experiments.{name}"
        each_profile(exp, _definition(schema, f"train_{family}", where, path), where, "train")
        each_profile(exp, _definition(schema, f"model_{family}", where, path), where, "model")
        for prof in profiles:  # a profile override may add released weights; base is checked by the schema
            weights = resolve(exp, prof).get("weights")
            if weights is not None:
                _validate(weights, {"$defs": schema["$defs"], **schema["$defs"]["weights"]},
                          f"{where}.profiles.{prof}.weights", path)
    kinds = chapters.protocol_kinds()
    for name, proto in params["protocols"].items():
        if proto["kind"] not in kinds:
            raise ConfigError(f"{path}: protocols.{name}.kind: unknown kind '{proto['kind']}'; known: {', '.join(kinds)}.")
        each_profile(proto, _definition(schema, f"protocol_{proto['kind']}", f"protocols.{name}", path),
                     f"protocols.{name}")
    for name, fig in (params.get("figures") or {}).items():
        chapters.figure_kind(fig["kind"], f"{path}: figures.{name}.kind: ")
        _definition(schema, f"figure_{fig['kind']}", f"figures.{name}", path)
        figure_schema = {"$defs": schema["$defs"], "unevaluatedProperties": False,
                         "allOf": [{"$ref": "#/$defs/figure_common"}, {"$ref": f"#/$defs/figure_{fig['kind']}"}]}
        _validate(fig, figure_schema, f"figures.{name}", path)
        for role, exps in fig["experiments"].items():
            for exp in [exps] if isinstance(exps, str) else exps:
                if exp not in params["experiments"]:
                    raise ConfigError(f"{path}: figures.{name}.experiments.{role}: unknown experiment '{exp}'.")


def resolve(entry: dict, profile: str) -> dict:
    return deep_merge(entry["base"], (entry.get("profiles") or {}).get(profile, {}))


def check_profile(params: dict, profile: str | None) -> str:
    profile = profile or params["default_profile"]
    if profile not in params["profiles"]:
        raise ConfigError(f"unknown profile '{profile}'; choose one of {sorted(params['profiles'])}.")
    return profile


def _lookup(params: dict, section: str, name: str) -> dict:
    try:
        return params[section][name]
    except KeyError:
        raise ConfigError(
            f"unknown {section[:-1]} '{name}'; known: {', '.join(sorted(params[section]))} (see params.yaml)."
        ) from None


def dataset_config(params: dict, name: str, profile: str) -> dict:
    entry = _lookup(params, "datasets", name)
    cfg = resolve(entry, profile)
    cfg["name"] = name
    if entry.get("digits_from"):
        cfg["digits_from"] = entry["digits_from"]
    return cfg


def protocol_config(params: dict, name: str, profile: str) -> dict:
    entry = _lookup(params, "protocols", name)
    cfg = resolve(entry, profile)
    cfg["name"] = name
    cfg["kind"] = entry["kind"]
    return cfg


def experiment_config(params: dict, name: str, profile: str) -> dict:
    """Fully resolved configuration of one experiment under one profile."""
    entry = _lookup(params, "experiments", name)
    merged = resolve(entry, profile)
    cfg = {
        "name": name,
        "profile": profile,
        "family": entry["model"],
        "dataset": entry["dataset"],
        "model": merged["model"],
        "train": merged["train"],
        "report": entry.get("report"),
    }
    if merged.get("weights"):  # released weights replace training (stages.import_weights)
        cfg["weights"] = merged["weights"]
    if entry.get("protocol"):
        cfg["protocol"] = protocol_config(params, entry["protocol"], profile)
    return cfg


def enabled_experiments(params: dict, profile: str) -> list[str]:
    """Experiments of ``profile``: those listing it in ``profiles_enabled`` (or listing none); a profile with
    ``requires_weights`` keeps only those that have released weights (``weights: {from: ...}``) there."""
    only_released = params["profiles"][profile].get("requires_weights", False)
    return [
        name
        for name, exp in params["experiments"].items()
        if ("profiles_enabled" not in exp or profile in exp["profiles_enabled"])
        and (not only_released or resolve(exp, profile).get("weights"))
    ]


def config_digest(obj: Any) -> str:
    """Stable short hash of a JSON-able object (used to refuse resuming a run whose config changed)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
