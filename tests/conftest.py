"""Shared by every test folder: the one model-set stand-in (:mod:`fakes`) is importable as ``fakes``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
