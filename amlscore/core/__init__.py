"""The shared core: what serving, reports, training and the other applications have in common.

- :mod:`amlscore.core.audit`: the append-only, hash-chained audit log of decisions;
- :mod:`amlscore.core.registry`: the model set's registered name, resolution and download from MLflow.

Applications import from here; the core imports only the layers below it (models, features, contract,
storage) and never an application.
"""
