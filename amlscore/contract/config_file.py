"""Configuration files as validated data: a YAML file read into a pydantic model, errors for people.

Every configuration of the project (feature parameters, world variants, protocol grids, drift
thresholds) is read the same way: a missing file, bad YAML or a value that breaks its rule raises
the caller's :class:`~amlscore.contract.errors.AmlError` subclass, naming the file, the key, what
is allowed and the value received, in the one error format of the project.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from amlscore.contract.errors import AmlError

M = TypeVar("M", bound=BaseModel)

__all__ = ["load_yaml_model", "read_yaml", "validation_problems"]


def read_yaml(path: Path, error: type[AmlError], what: str) -> Any:
    """The YAML document in ``path``; ``error`` naming ``what`` (e.g. "protocol file") when it is missing or bad."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path} is not valid YAML: {exc}") from None


def validation_problems(exc: ValidationError, where: str, noun: str = "key") -> list[str]:
    """One line per problem, ``where`` placing it ("in params.yaml"): "The 'a.b' key in params.yaml must be
    ... Got X instead." """
    return [f"The '{'.'.join(str(x) for x in e['loc']) or '(file)'}' {noun} {where} {e['msg'].lower()}. "
            f"Got {e.get('input')!r} instead." for e in exc.errors()]


def load_yaml_model(path: Path, model: type[M], error: type[AmlError], *, what: str, noun: str = "key",
                    expects: str = "a mapping", empty_ok: bool = False) -> M:
    """``model`` validated from the YAML mapping in ``path``.

    ``what`` names the file in errors, ``noun`` its entries ("key", "parameter"), ``expects`` what the
    file must hold; ``empty_ok`` reads an empty file as an empty mapping (every default).
    """
    raw = read_yaml(path, error, what)
    if raw is None and empty_ok:
        raw = {}
    if not isinstance(raw, dict):
        raise error(f"{path} must hold {expects}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error("\n".join(validation_problems(exc, f"in {path.name}", noun))) from None
