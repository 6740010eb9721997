"""The service ``amlscore serve`` runs: the scoring service with the casework pages mounted on ``/cases``.

Serving and casework are applications and never import each other; this module, in the command
layer (the one place that wires applications), composes them: BentoML's ``mount_asgi_app`` adds
casework's Starlette app under the service's own HTTP server, so one process, one port and one
state folder serve the API (``/v1/...``, behind the API-key gate) and the pages (``/cases/...``, named
people only). ``bentoml serve amlscore.cli.service_app:AmlScoring`` (what ``amlscore serve`` execs);
``bentoml serve amlscore.serving.service:AmlScoring`` still serves the API alone.
"""

from __future__ import annotations

from amlscore.casework.web import create_app
from amlscore.serving.service import AmlScoring

CASES_PATH = "/cases"

# state and data folders come from AML_STATE_DIR / AML_DATA_DIR (set by `amlscore serve`), read at the first request
AmlScoring.mount_asgi_app(create_app(), path=CASES_PATH, name="casework")

__all__ = ["AmlScoring", "CASES_PATH"]
