"""Scoring models: the PBoC-style rule score (:mod:`amlscore.models.rules`) and the learned models.

Kept light on purpose: importing :mod:`models` imports nothing heavy. ``models`` depends only on
:mod:`contract` and :mod:`amlscore.features.catalogue`; it knows nothing of training, serving, MLflow or HTTP.
"""
