"""Casework settings as validated data: grouping period, deadlines, retention, the reporting institution.

Read from ``amlscore/casework/config/casework.yaml`` (or a file given with ``AML_CASEWORK_CONFIG`` /
``--config``); a missing or wrong value raises :class:`CaseworkConfigError` naming the key, what is
allowed and the value received.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from amlscore.contract.config_file import load_yaml_model
from amlscore.contract.errors import AmlError

DEFAULT_CONFIG = Path(__file__).parent / "config" / "casework.yaml"


class CaseworkConfigError(AmlError):
    """The casework configuration is missing or breaks a rule."""


class Institution(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    code: str = Field(pattern=r"^[0-9A-Z]{6,20}$")
    branch_code: str = Field(pattern=r"^[0-9A-Z]{1,20}$")
    contact: str = Field(min_length=1)


class CaseworkConfig(BaseModel):
    """The validated casework settings (see the YAML file for what each means)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = Field(1, ge=1, le=1)
    grouping_days: int = Field(30, ge=1, le=366)
    analysis_due_working_days: int = Field(10, ge=1, le=60)
    str_due_working_days: int = Field(5, ge=1, le=5)  # the regulation's maximum
    lvr_due_working_days: int = Field(5, ge=1, le=5)
    retention_years: int = Field(5, ge=5, le=30)  # never less than the regulation's five years
    institution: Institution


def load_casework_config(path: str | Path | None = None) -> CaseworkConfig:
    """The casework configuration of ``path``, ``$AML_CASEWORK_CONFIG`` or the packaged default."""
    chosen = Path(path or os.environ.get("AML_CASEWORK_CONFIG") or DEFAULT_CONFIG)
    return load_yaml_model(chosen, CaseworkConfig, CaseworkConfigError, what="casework configuration")
