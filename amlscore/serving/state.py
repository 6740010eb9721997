"""The service's state folder: bound to the data it was built from, warmed up once.

``amlscore serve`` prepares the state before it starts the server, so the one-time warm-up shows a
progress bar; the engine (:mod:`amlscore.serving.scoring`) does the same when started directly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from amlscore.contract import load_dataset, report_data_warnings
from amlscore.core.audit import utc_now_iso
from amlscore.features.catalogue import FEATURE_SET_VERSION
from amlscore.features.online import OnlineFeatureState, warm_up
from amlscore.features.recent_rows import RecentRowsSpec
from amlscore.models.rules import RulesConfig
from amlscore.serving.config import Settings, SettingsError
from amlscore.storage.folder_lock import FolderInUse, FolderLock, lock_folder
from amlscore.storage.private import open_private, private_dir

__all__ = ["Progress", "bind_state", "lock_state", "prepare_state", "rating_window_spec"]

Progress = Callable[[int, int], None]


def bind_state(state_dir: Path, customers: pd.DataFrame, params_hash: str, data_dir: Path) -> None:
    """Refuse to reuse a state folder built with other feature parameters or another feature set.

    The customers table is not part of the binding: the online state is keyed by customer_id and maps
    itself to the table it starts with (customers added or changed since are taken as they are now;
    a customer of the state's history missing from the table is refused by the state itself).
    """
    path = state_dir / "state_binding.json"
    current = {"feature_params_hash": params_hash, "feature_set_version": FEATURE_SET_VERSION}
    if path.exists():
        bound = json.loads(path.read_text(encoding="utf-8"))
        for key, value in current.items():
            if bound.get(key) != value:
                raise SettingsError(
                    f"the state folder {str(state_dir)!r} was built with {key} {bound.get(key)!r} (data folder "
                    f"{bound.get('data_dir')!r}) but the service now has {value!r} (data folder {str(data_dir)!r}). "
                    "The online feature state, the audit log and the feedback belong to that data: start with "
                    "another --state-dir, or with the original data folder.")
        return
    private_dir(state_dir)
    with os.fdopen(open_private(path), "w", encoding="utf-8") as fh:
        fh.write(json.dumps({**current, "data_dir": str(data_dir), "created_at": utc_now_iso()}, indent=2) + "\n")


def lock_state(state_dir: Path) -> FolderLock:
    """Take the state folder for this process, or refuse: one process at a time may write it.

    The online state and the audit log go on from what they hold in memory (counters, windows, the
    chain's head), so a second writer would count transactions twice and break the chain. The lock
    (``<state>/service.lock``, :mod:`amlscore.storage.folder_lock`) goes with its process, also on
    ``kill -9``.
    """
    try:
        return lock_folder(state_dir)
    except FolderInUse as exc:
        raise SettingsError(
            f"the state folder {str(state_dir)!r} is in use by {exc.holder or 'another process'} (another amlscore "
            "service, or the worker of one whose server was killed: BentoML starts its worker in a session of its "
            "own, so a kill of the server's process group leaves it running). One process at a time may write a "
            "state folder: stop that process, or start with another --state / AML_STATE_DIR.") from None


def rating_window_spec(rules_config: RulesConfig) -> RecentRowsSpec:
    """The rows the ratings' behaviour window reads (:class:`~amlscore.serving.ratings.BehaviourLog`): its
    columns, over its days. The online state keeps them when its store trims (the shared one)."""
    from amlscore.serving.ratings import BehaviourLog  # noqa: PLC0415 - ratings import the rules' frames

    behaviour = BehaviourLog(rules_config)
    return RecentRowsSpec(behaviour.columns, behaviour.keep_ns)


def _served_rules_config(settings: Settings) -> RulesConfig:
    """The rules configuration of the model set the service will serve (its rating window's columns and days)."""
    from amlscore.serving.registry import FolderLoader, RegistryLoader  # noqa: PLC0415

    loader = (FolderLoader(settings.model_dir, settings.model_name) if settings.model_dir is not None
              else RegistryLoader(settings.tracking_uri, settings.model_name, Path(settings.state_dir) / "models"))
    loaded = loader.load(alias=None if settings.model_version else settings.model_alias, version=settings.model_version)
    return loaded.model_set.rules_config


def prepare_state(settings: Settings, progress: Progress | None = None) -> tuple[int, int]:
    """Bind the state folder to the data and warm up an empty online state, then close it.

    ``amlscore serve`` runs this before starting the server so the (one-time) warm-up shows a
    progress bar; the service does the same on its own when started directly. Returns
    ``(transactions in the state, transactions replayed now)``.

    Over the shared store the state keeps the rows of the rating window of the model set to be served
    (the store trims its own), so that its snapshot gives the workers their rating window.
    """
    state_dir = private_dir(settings.state_dir)
    # the embedded backends have one writer; the shared ones (state and audit log on servers) several workers
    held = None if settings.shared else lock_state(state_dir)
    try:
        dataset = load_dataset(settings.data_dir, require_reports=False)
        report_data_warnings(dataset)
        from amlscore.serving.backends import feature_store  # noqa: PLC0415 - backends imports this module's neighbours

        spec = rating_window_spec(_served_rules_config(settings)) if settings.state_url else None
        state = OnlineFeatureState(dataset.customers, store=feature_store(settings, state_dir), reports=dataset.reports,
                                   recent_rows=spec)
        try:
            if not settings.state_url:
                bind_state(state_dir, dataset.customers, state.params.hash, Path(settings.data_dir))
            replayed = warm_up(state, dataset.transactions, settings.warm_up_days, progress)
            return int(state.processed), replayed
        finally:
            state.close()
    finally:
        if held is not None:
            held.release()


