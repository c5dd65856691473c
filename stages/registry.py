"""The registry: load, validate and resolve params.yaml.

Every stage, the Snakefile and the DVC exporter read the experiment graph through this module, so the
two orchestrators cannot disagree about what exists. Resolution is a deep merge of an entry's ``base``
block with its ``profiles.<profile>`` override.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from stages.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PARAMS = Path("params.yaml")
SCHEMA_PATH = ROOT / "workflow" / "schemas" / "params.schema.yaml"


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
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _validate(instance: Any, schema: dict, where: str, source: Path) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        raise ConfigError(
            f"{source}: invalid value at '{where}{'.' if where and err.absolute_path else ''}"
            f"{_key_path(err.absolute_path) if err.absolute_path else ''}': {err.message}. "
            f"Fix that key (the schema is {SCHEMA_PATH.relative_to(ROOT)})."
        )


def load_params(path: str | Path | None = None) -> dict:
    """Read and validate params.yaml; raise ConfigError naming the bad key and the fix."""
    path = Path(path or DEFAULT_PARAMS)
    if not path.is_file():
        raise ConfigError(f"{path} not found: run from the repository root or pass --params PATH.")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(params, dict):
        raise ConfigError(f"{path} must be a mapping of sections (profiles, datasets, protocols, experiments).")
    schema = _schema()
    _validate(params, schema, "", path)
    _check_references(params, schema, path)
    params["_source"] = str(path)
    return params


def _check_references(params: dict, schema: dict, path: Path) -> None:
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
    for name, ds in params["datasets"].items():
        src = ds.get("digits_from")
        if src and src not in params["datasets"]:
            raise ConfigError(f"{path}: datasets.{name}.digits_from: unknown dataset '{src}'.")
    defs = schema["$defs"]
    for name, exp in params["experiments"].items():
        if exp["dataset"] not in params["datasets"]:
            raise ConfigError(f"{path}: experiments.{name}.dataset: unknown dataset '{exp['dataset']}'.")
        if "protocol" in exp and exp["protocol"] not in params["protocols"]:
            raise ConfigError(f"{path}: experiments.{name}.protocol: unknown protocol '{exp['protocol']}'.")
        for prof in exp.get("profiles_enabled", []):
            if prof not in profiles:
                raise ConfigError(f"{path}: experiments.{name}.profiles_enabled: unknown profile '{prof}'.")
        # Each model family has its own training keys: $defs/train_<family>, else the video loop's $defs/train.
        train_def = f"train_{exp['model']}" if f"train_{exp['model']}" in defs else "train"
        train_schema = {"$defs": defs, **defs[train_def]}
        _validate(exp["base"]["train"], train_schema, f"experiments.{name}.base.train", path)
        for prof in profiles:
            merged = resolve(exp, prof)
            _validate(merged["train"], train_schema, f"experiments.{name} (profile {prof}).train", path)
    for name, proto in params["protocols"].items():
        protocol_schema = {"$defs": defs, **defs[f"protocol_{proto.get('kind', 'video')}"]}
        for prof in profiles:
            _validate(resolve(proto, prof), protocol_schema, f"protocols.{name} (profile {prof})", path)
    for name, fig in (params.get("figures") or {}).items():
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
    cfg["kind"] = entry.get("kind", "video")
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
    if entry.get("protocol"):
        cfg["protocol"] = protocol_config(params, entry["protocol"], profile)
    return cfg


def enabled_experiments(params: dict, profile: str) -> list[str]:
    return [
        name
        for name, exp in params["experiments"].items()
        if "profiles_enabled" not in exp or profile in exp["profiles_enabled"]
    ]


def config_digest(obj: Any) -> str:
    """Stable short hash of a JSON-able object (used to refuse resuming a run whose config changed)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
