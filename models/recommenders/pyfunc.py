"""MLflow pyfunc face of a :class:`~models.recommenders.serving.RecommenderBundle`.

Shipped with the model (``code_paths`` = ``models/``), so any process can do::

    m = mlflow.pyfunc.load_model("models:/recommender@champion")
    m.predict(pd.DataFrame({"one_id": ["c1", "c2"], "k": [10, 10]}))
    bundle = m.unwrap_python_model().bundle     # the full API: filters, cold start, fresh events

``predict`` returns one row per input row: ``one_id, item_ids (list), scores (list), source``.
Optional input columns: ``k`` (default 10) and the profile fields used for cold start
(``age_band, gender, city, lifecycle``).
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc


class RecommenderPyfunc(mlflow.pyfunc.PythonModel):
    """Wraps a bundle; the bundle travels pickled inside the model."""

    def __init__(self, bundle: Any) -> None:
        self.bundle = bundle
        # the plain attributes serving reads (see serving's handoff): model and its matrices
        self.recommender = bundle.model
        self.user_ids = bundle.users
        self.item_ids = bundle.items
        self.user_items = bundle.history

    def predict(self, context, model_input, params=None):  # untyped: MLflow infers no signature from hints
        import pandas as pd

        from models.recommenders.serving import SEGMENT_FIELDS

        df = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if "one_id" not in df.columns:
            raise KeyError("input lacks column 'one_id'")
        rows = []
        for rec in df.to_dict("records"):
            k = int(rec.get("k") or 10)
            profile = {f: rec.get(f) for f in SEGMENT_FIELDS if f in rec}
            got = self.bundle.recommend(str(rec["one_id"]), k=k, profile=profile)
            rows.append({"one_id": str(rec["one_id"]), "item_ids": [i for i, _ in got],
                         "scores": [s for _, s in got], "source": self.bundle.last_source})
        return pd.DataFrame(rows, index=df.index)
