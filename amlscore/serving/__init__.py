"""The scoring service (BentoML): online features, the model set from the MLflow registry, an audit log.

Start it with ``amlscore serve`` (or ``bentoml serve amlscore.serving.service:AmlScoring`` with ``AML_*``
variables, :mod:`amlscore.serving.config`). Modules, from the outside in:

* :mod:`amlscore.serving.service`: the ``@bentoml.service`` class and its ``/v1/`` routes;
* :mod:`amlscore.serving.middleware`: API key and role, body-size limit, one error shape;
* :mod:`amlscore.serving.auth`, :mod:`amlscore.serving.schemas`, :mod:`serving.views`: who may call what, strict
  request bodies, what each role sees;
* :mod:`amlscore.serving.scoring`: the engine (online features -> model set -> rules -> decision -> audit);
* :mod:`amlscore.core.audit`, :mod:`amlscore.serving.feedback`, :mod:`amlscore.serving.ratings`, :mod:`amlscore.core.registry`,
  :mod:`serving.words`: the audit log, analysts' feedback, customer ratings, model loading, and
  peer comparisons in words.

Importing :mod:`serving` imports nothing heavy; :mod:`amlscore.serving.service` imports BentoML.
"""
