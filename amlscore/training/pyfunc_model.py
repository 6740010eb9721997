"""The MLflow pyfunc wrapper of a model set (logged as "models from code").

MLflow copies this file into the logged model and runs it when the model is loaded
(``mlflow.pyfunc.load_model``): no pickled Python object is stored. It imports only
:mod:`amlscore.models.model_set` (not :mod:`training`), so whatever has the ``amlscore`` packages installed
can load it. ``load_context`` reads the model set once, from the ``model_set`` artifact directory.

Serving does not need this wrapper: it downloads the registered model's artifacts and calls
:meth:`amlscore.models.model_set.ModelSet.load` on ``<download>/artifacts/model_set``.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class AmlModelSetPyfunc(PythonModel):
    """``predict(frame of feature columns) -> frame of scores`` (see :meth:`ModelSet.score_frame`)."""

    def load_context(self, context: Any) -> None:
        from amlscore.models.model_set import ModelSet  # noqa: PLC0415 - loaded once, here

        self.model_set = ModelSet.load(context.artifacts["model_set"])

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201 - MLflow reads type hints as a schema
        ms = self.model_set
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(np.asarray(model_input, dtype=np.float64), columns=list(ms.feature_names))
        reasons = (params or {}).get("reasons", "alerts")
        return ms.score_frame(model_input, reasons=reasons)


mlflow.models.set_model(AmlModelSetPyfunc())
