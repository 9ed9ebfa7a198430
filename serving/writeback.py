"""Predicted tags for every customer, written to the tag history and pushed to Feast.

Used by ``POST /tags/writeback`` and ``portrait score --write-back``. For each
champion predictor, every customer of the current feature snapshot is scored in
one batch and tagged (``churn_tier``, ``ltv_tier``, ``propensity_decile``: percentile cohorts of the
scored population, ``training.tags.Cohorts``); the batch
is appended to ``<data>/tags/history.parquet`` (one_id, tag, value, score, model,
version, date, scored_at) and pushed to Feast's ``predicted_tags`` (online and
offline) when the feature store is there.

Idempotent: a batch already in the history for the same model, version and date
is skipped (``force`` replaces it), unless another version's batch of that tag was written
after it (a rollback): then it is scored again so the champion's tags are the latest.
Atomic: the history is rewritten to a temporary file and renamed under an exclusive lock, so readers see the old or the new
table, never half a batch, and two writers never lose each other's rows.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from serving.adapters import SCORE_NAMES, TAG_NAMES, PredictorAdapter
from serving.errors import BadRequest, NotLoaded
from serving.loader import Bundle
from serving.schemas import WritebackBatch
from training.tags import Cohorts

log = logging.getLogger("portrait.serving")
HISTORY_COLUMNS = ["one_id", "tag", "value", "score", "model", "version", "date", "scored_at"]


def history_path(data_dir: Path) -> Path:
    return Path(data_dir) / "tags" / "history.parquet"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def score_all(bundle: Bundle, kind: str, scored_at: dt.datetime, date: dt.date) -> Any:
    """One model's predicted tags for every customer of the snapshot, as a history-shaped DataFrame."""
    import pandas as pd

    served = bundle.model(kind)
    res = bundle.resources
    if res is None or res.features is None:
        raise NotLoaded("customer features are not loaded (features/customer_features.parquet missing)")
    feats = res.features
    adapter: PredictorAdapter = served.model
    one_ids = np.empty(len(feats.row), dtype=object)
    for o, r in feats.row.items():
        one_ids[r] = o
    s, keys = adapter.score_rows(feats, np.arange(len(one_ids))) if len(one_ids) else (np.zeros(0), None)
    top = adapter.score_of(s).astype(np.float64) if len(one_ids) else np.zeros(0)
    # percentile cohorts of the scored population (training/tags.py, the catalog's `cohorts`), ranked by
    # the raw score when the model is calibrated (isotonic ties would skew the shares); `score` stays calibrated
    values = Cohorts.fit(kind, top, keys=keys).tag(top, keys)
    return pd.DataFrame({
        "one_id": one_ids, "tag": TAG_NAMES[kind], "value": pd.Series(values, dtype="string"),
        "score": top, "model": served.name,
        "version": served.version, "date": date.isoformat(),
        "scored_at": pd.Timestamp(scored_at).as_unit("us"),
    }, columns=HISTORY_COLUMNS)


def feast_frame(history: Any) -> Any:
    """The latest predicted tags per customer, one wide row each, as Feast's predicted_tags view wants.

    Feast stores one row per customer and view, so every push carries all models' latest
    tags (pushing churn alone would blank the LTV columns online).
    """
    import pandas as pd

    # stable: two batches stamped in the same second keep their write order (the later one wins)
    latest = history.sort_values("scored_at", kind="stable").drop_duplicates(["one_id", "tag"], keep="last")
    kind_of = {t: k for k, t in TAG_NAMES.items()}
    wide = pd.DataFrame({"one_id": pd.unique(latest["one_id"])}).set_index("one_id")
    versions = []
    for tag, part in latest.groupby("tag", sort=True):
        kind = kind_of.get(tag)
        if kind is None:
            continue
        part = part.set_index("one_id")
        wide[SCORE_NAMES[kind]] = part["score"].astype("float64")
        value = part["value"]
        wide[tag] = pd.to_numeric(value, errors="coerce").astype("Int64") if kind == "propensity" else value
        versions.append(f"{part['model'].iloc[-1]}={part['version'].iloc[-1]}")
    wide["scored_at"] = latest.groupby("one_id")["scored_at"].max()
    wide["model_name"] = ",".join(v.split("=")[0] for v in versions)
    wide["model_version"] = ";".join(versions)
    return wide.reset_index()


_STORES: dict = {}


def _store(data_dir: Path, feature_store: Any, redis: str | None = None) -> Any:
    """The Feast store of ``data_dir``, online in Redis at ``redis`` (``ServeConfig.feast_redis``) or SQLite:
    the one serving reads, so what is written here is what ``/score`` and ``/profile`` see."""
    key = (str(Path(data_dir).resolve()), redis)
    if key not in _STORES:  # opening the store imports Feast: once per process
        _STORES[key] = feature_store.open_store(Path(data_dir), redis=redis)
    return _STORES[key]


def sync_lookalike_tags(data_dir: Path, redis: str | None = None) -> str:
    """Bring Feast's ``lookalike_audiences`` in line with the saved lookalike audiences; a one-line status.

    Called after ``POST /lookalike`` saved an audience (``features.audience_tags``: only changed
    customers are written, their scores kept). Never raises: the audience is saved either way,
    and ``portrait audience sync-tags`` repairs a failed write.
    """
    from features import store as feature_store
    from features.audience import AudienceStore
    from features.audience_tags import feature_store_ready, sync_lookalike_tags as sync

    if not feature_store_ready(data_dir):
        return "skipped: no feature store in the data folder (portrait features apply)"
    try:
        result = sync(AudienceStore(Path(data_dir) / "audiences"), _store(data_dir, feature_store, redis))
    except Exception as exc:  # noqa: BLE001 - reported, not fatal (see above)
        log.error("lookalike_audiences sync failed: %s: %s", type(exc).__name__, exc)
        return f"failed: {type(exc).__name__}: {exc}; run `portrait audience sync-tags`"
    return result.summary()


def push_to_feast(data_dir: Path, history: Any, redis: str | None = None) -> str:
    """Push the latest predicted tags to Feast (online + offline); returns a one-line status."""
    try:
        from features import store as feature_store  # the feast area's module
    except ImportError:
        return "skipped: features/store.py is not installed"
    try:
        rows = _store(data_dir, feature_store, redis).push_predicted_tags(feast_frame(history))
    except Exception as exc:  # noqa: BLE001 - the history is written; Feast is reported, not fatal
        log.error("push to Feast failed: %s: %s", type(exc).__name__, exc)
        return f"failed: {type(exc).__name__}: {exc}"
    return f"pushed {rows} rows (online + offline)"


def check_date(date: dt.date, today: dt.date, features: Any = None) -> None:
    """A batch's date must be a day its scores can belong to: not after tomorrow (UTC, so any time zone's
    today passes), not before the feature snapshot the scores are computed from."""
    if date > today + dt.timedelta(days=1):
        raise BadRequest(f"date: {date.isoformat()} is in the future (today is {today.isoformat()} UTC); "
                         "the scores come from the current feature snapshot")
    as_of = getattr(features, "as_of", None)
    if as_of and date < dt.date.fromisoformat(str(as_of)[:10]):
        raise BadRequest(f"date: {date.isoformat()} is before the feature snapshot the scores come from "
                         f"({str(as_of)[:10]}); give that day or a later one")


def _require(bundle: Bundle, kinds: list[str]) -> None:
    """:class:`NotLoaded` naming the missing champions, the ones loaded and the ``models`` list that would work."""
    missing = [k for k in kinds if k not in bundle.models]
    if not missing:
        return
    have = [k for k in TAG_NAMES if k in bundle.models]
    why = "; ".join(f"{k}: {bundle.errors.get(k, 'no registered model has the alias')}" for k in missing)
    hint = f"; loaded: {', '.join(have)}; send \"models\": {json.dumps(have)} to write those" if have else ""
    raise NotLoaded(f"model not loaded: {', '.join(missing)} ({why}){hint}")


def write_back(bundle: Bundle, data_dir: Path, kinds: list[str] | None, date: dt.date | None = None,
               force: bool = False, push: bool = True,
               how_to_force: str = 'send "force": true to rewrite it', redis: str | None = None) -> list[WritebackBatch]:
    """Score every customer with each champion in ``kinds`` and write the predicted tags.

    ``kinds`` None: every model that has a champion (``Bundle.with_champions``), as ``portrait score`` does.
    A skipped batch's ``note`` ends with ``how_to_force``: each caller names its own option (the HTTP
    field by default, ``portrait score`` its ``--force``). ``redis``: the Redis online store serving reads
    (``ServeConfig.feast_redis``), None for the data folder's SQLite one.
    """
    import pandas as pd

    from features.io import write_parquet

    kinds = bundle.default_kinds(kinds)  # a model named twice is one batch, not its rows twice
    _require(bundle, kinds)  # 503 before anything is written when a champion is missing
    feats = getattr(bundle.resources, "features", None)
    if feats is None:
        raise NotLoaded("customer features are not loaded (features/customer_features.parquet missing); "
                        "run `portrait features build` first")
    if not len(feats.row):  # 0 scored rows would replace a good batch (with force) by nothing
        raise BadRequest("the feature snapshot has no customers: nothing to score, the tag history is left as it "
                         "is (force only rewrites a batch with new scores); rebuild the features "
                         "(`portrait features build`) with a cutoff inside the data")
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    date = date or now.date()
    check_date(date, now.date(), getattr(bundle.resources, "features", None))
    path = history_path(data_dir)
    out: list[WritebackBatch] = []
    with _locked(path):
        hist = pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=HISTORY_COLUMNS)
        new = []
        for kind in kinds:
            served = bundle.model(kind)
            same = (hist["model"] == served.name) & (hist["version"] == served.version) & (hist["date"] == date.isoformat())
            # after a rollback (or a promote back) the batch of this version may exist while another version's
            # batch was written later: readers take the latest per customer and tag, so skipping would leave the
            # rolled-back model's tags in force; the batch is scored again and becomes the latest
            # (batches are appended in write order and scored_at has whole seconds: position decides ties)
            pos = np.flatnonzero(same.to_numpy())
            later = len(pos) > 0 and bool(((hist["tag"] == TAG_NAMES[kind]) & ~same).to_numpy()[pos[-1] + 1:].any())
            if same.any() and not force and not later:
                at = str(hist.loc[same, "scored_at"].iloc[0])
                note = f"already written for this version and {date.isoformat()} (at {at}), left as it is; {how_to_force}"
                out.append(WritebackBatch(model=served.name, version=served.version, date=date, rows=int(same.sum()),
                                          status="skipped", scored_at=at, note=note, feast="not pushed again"))
                continue
            hist = hist[~same]
            batch = score_all(bundle, kind, now, date)
            new.append(batch)
            out.append(WritebackBatch(model=served.name, version=served.version, date=date, rows=len(batch),
                                      status="written", scored_at=now.isoformat(), feast="pending"))
        if new:
            frames = [f for f in (hist, *new) if len(f)]
            table = pd.concat(frames, ignore_index=True) if frames else new[0]
            table["scored_at"] = pd.to_datetime(table["scored_at"], utc=True).dt.as_unit("us")
            table["value"] = table["value"].astype("string")
            write_parquet(table[HISTORY_COLUMNS], path)
            feast = push_to_feast(data_dir, table, redis) if push else "skipped: Feast push turned off"
            out = [b.model_copy(update={"feast": feast}) if b.status == "written" else b for b in out]
    return out
