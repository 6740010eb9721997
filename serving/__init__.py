"""The scoring service (BentoML): online features, the model set from the MLflow registry, an audit log.

Start it with ``amlscore serve`` (or ``bentoml serve serving.service:AmlScoring`` with ``AML_*``
variables, :mod:`serving.config`). Modules, from the outside in:

* :mod:`serving.service`: the ``@bentoml.service`` class and its ``/v1/`` routes;
* :mod:`serving.middleware`: API key and role, body-size limit, one error shape;
* :mod:`serving.auth`, :mod:`serving.schemas`, :mod:`serving.views`: who may call what, strict
  request bodies, what each role sees;
* :mod:`serving.scoring`: the engine (online features -> model set -> rules -> decision -> audit);
* :mod:`serving.audit`, :mod:`serving.feedback`, :mod:`serving.ratings`, :mod:`serving.registry`,
  :mod:`serving.words`: the audit log, analysts' feedback, customer ratings, model loading, and
  peer comparisons in words.

Importing :mod:`serving` imports nothing heavy; :mod:`serving.service` imports BentoML.
"""
