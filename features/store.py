"""portrait's Feast feature store: open, apply, materialize, read (offline and online), push.

Training reads ``historical(service, entity_df)`` (point-in-time join on (one_id, cutoff)
rows); serving reads ``online(service, one_ids)`` with the same FeatureService name;
scoring writes predicted tags back with ``push_predicted_tags(df)`` (online and offline)::

    from features.store import open_store
    store = open_store(settings)              # or a data folder; redis="localhost:6379" to scale out
    store.apply()                             # register feature_repo/definitions.py
    store.materialize()                       # latest snapshot of every batch view -> online store
    X = store.historical("churn_v1", entity_df)
    row = store.online("churn_v1", ["c-000001"])

The repository is ``feature_repo/`` (``feature_store.yaml`` + ``definitions.py``); here its
paths are rewritten to ``<data>/feast/`` and ``<data>/features/`` so the same repo serves any
data folder. The plain ``feast`` CLI reads the same files with the YAML's default paths.
"""

from __future__ import annotations

import atexit
import gc
import importlib.util
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from features.predicted_tags import PREDICTED_COLUMNS, utc_us as _utc_us  # noqa: F401 - re-exported

REPO_DIR = Path(__file__).resolve().parents[1] / "feature_repo"
SERVICES = ("churn_v1", "ltv_v1", "propensity_v1", "lookalike_v1", "recsys_v1")
PUSH_SOURCE = "predicted_tags_push"
PREDICTED_VIEW = "predicted_tags"
_load_lock = threading.Lock()
_exit_hook = []  # the atexit registration, once per process


def _release_duckdb() -> None:
    """Close ibis' default DuckDB connection before the interpreter exits.

    Feast's DuckDB offline store reads Parquet through ``ibis.read_parquet``/``ibis.memtable``,
    i.e. ibis' process-wide default backend (``ibis.options.default_backend``). Left open,
    its connection and the Arrow tables registered on it are still alive when modules are torn
    down, and DuckDB's bindings (nanobind) print "leaked N instances" at exit. Closing it with
    ``Backend.disconnect()`` and dropping the option frees them first.
    """
    ibis = sys.modules.get("ibis")
    backend = getattr(getattr(ibis, "options", None), "default_backend", None)
    if backend is None:
        return
    try:
        backend.disconnect()
    except Exception:  # already closed, or closing failed: still drop the reference
        pass
    ibis.options.default_backend = None
    gc.collect()


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class _Plain:
    """A text stream that drops ANSI colour codes (Feast prints them even into files and pipes)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(_ANSI.sub("", text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False


@contextmanager
def _feast_chatter() -> Iterator[None]:
    """Feast's progress prints go to stderr (stdout stays for results), without colour unless it is a terminal."""
    err = sys.stderr
    with redirect_stdout(err if err.isatty() else _Plain(err)):
        yield


@dataclass(frozen=True)
class StoreConfig:
    data_dir: Path  # portrait's data folder: features/ is read, feast/ holds registry and online store
    redis: str | None = None  # "host:port[,db=N]" puts the online store in Redis instead of SQLite
    repo_dir: Path = REPO_DIR  # the Feast repo (feature_store.yaml + definitions.py)
    stock: bool = False  # Feast's own SQLite store and local engine (the benchmark's anchor)


_SCALARS = frozenset({"double_val", "float_val", "int64_val", "int32_val", "bool_val", "string_val"})


def _response_dict(resp) -> dict[str, list]:
    """``OnlineResponse.to_dict()`` with a short path for scalar values (most of a serving call's CPU)."""
    from feast.type_map import feast_value_type_to_python_type

    out: dict[str, list] = {}
    for name, vector in zip(resp.proto.metadata.feature_names.val, resp.proto.results):
        values = []
        for v in vector.values:
            kind = v.WhichOneof("val")
            # missing -> None; timestamps, lists, JSON...: Feast's own conversion
            values.append(getattr(v, kind) if kind in _SCALARS else
                          None if kind is None else feast_value_type_to_python_type(v))
        out[name] = values
    return out


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts


def _repo_config(cfg: StoreConfig):
    import yaml
    from feast.repo_config import RepoConfig

    raw = yaml.safe_load((cfg.repo_dir / "feature_store.yaml").read_text())
    feast_dir = Path(cfg.data_dir) / "feast"
    raw["registry"] = {**raw["registry"], "path": str(feast_dir / "registry.db")}
    if cfg.redis:
        kind = "redis" if cfg.stock else "features.feast_ext.redis_store.PortraitRedisOnlineStore"
        raw["online_store"] = {"type": kind, "connection_string": cfg.redis}
    elif cfg.stock:
        raw["online_store"] = {"type": "sqlite", "path": str(feast_dir / "online_stock.db")}
    else:
        raw["online_store"] = {**raw["online_store"], "path": str(feast_dir / "online.db")}
    if cfg.stock:  # Feast as shipped: local engine, per-row online writes
        raw["batch_engine"] = {"type": "local"}
        raw["registry"]["path"] = str(feast_dir / "registry_stock.db")
        raw.pop("materialization", None)
    config = RepoConfig(**raw)
    config.repo_path = cfg.repo_dir
    return config


def _load_definitions(cfg: StoreConfig) -> dict[str, Any]:
    """Execute ``definitions.py`` with ``PORTRAIT_DATA_DIR`` = our data folder; its Feast objects by name."""
    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import DataSource

    spec = importlib.util.spec_from_file_location("portrait_feast_definitions", cfg.repo_dir / "definitions.py")
    module = importlib.util.module_from_spec(spec)
    with _load_lock:  # the environment is process-wide: one loader at a time
        old = os.environ.get("PORTRAIT_DATA_DIR")
        os.environ["PORTRAIT_DATA_DIR"] = str(Path(cfg.data_dir).resolve())
        try:
            spec.loader.exec_module(module)
        finally:
            if old is None:
                os.environ.pop("PORTRAIT_DATA_DIR", None)
            else:
                os.environ["PORTRAIT_DATA_DIR"] = old
    kinds = (Entity, DataSource, FeatureView, FeatureService)
    return {name: obj for name, obj in vars(module).items() if isinstance(obj, kinds)}


class PortraitStore:
    """A Feast ``FeatureStore`` over portrait's data folder, with the calls the other layers need."""

    def __init__(self, cfg: StoreConfig):
        from feast import FeatureStore

        self.cfg = cfg
        self.fs = FeatureStore(config=_repo_config(cfg), repo_path=str(cfg.repo_dir))
        if not _exit_hook:
            _exit_hook.append(atexit.register(_release_duckdb))
        self._services: dict[str, Any] = {}
        self._columns: dict[str, list[str]] = {}

    @property
    def predicted_path(self) -> Path:
        return Path(self.cfg.data_dir) / "feast" / "predicted_tags.parquet"

    # -- registry ----------------------------------------------------------
    def apply(self) -> list[str]:
        """Register entities, sources, views and services from ``definitions.py``; their names."""
        objects = _load_definitions(self.cfg)
        (Path(self.cfg.data_dir) / "feast").mkdir(parents=True, exist_ok=True)
        self._ensure_predicted_table()
        self.fs.apply(list(objects.values()))
        self._services.clear()
        self._columns.clear()
        return sorted(o.name for o in objects.values())

    def _ensure_predicted_table(self) -> None:
        """An empty predicted-tags Parquet file, so offline pushes can append and joins can read it."""
        if self.predicted_path.exists():
            return
        from features.io import write_parquet
        from features.predicted_tags import empty_table

        write_parquet(empty_table(), self.predicted_path)

    def refresh(self) -> None:
        """Re-read the registry (after an ``apply`` by another process) and drop cached services."""
        self.fs.refresh_registry()
        self._services.clear()
        self._columns.clear()

    def batch_views(self) -> list[str]:
        """Feature views fed by a batch source (everything but the push-fed predicted tags)."""
        return sorted(v.name for v in self.fs.list_feature_views() if v.name != PREDICTED_VIEW)

    def service(self, name: str):
        """The registered ``FeatureService`` ``name`` (cached); ``KeyError`` lists the known ones."""
        if name not in self._services:
            known = {s.name: s for s in self.fs.list_feature_services()}
            if name not in known:
                if not known:
                    raise KeyError(f"feature service {name!r}: no feature services are registered; "
                                   "run `portrait features apply` first")
                raise KeyError(f"unknown feature service {name!r}; registered: {sorted(known)}")
            self._services.update(known)
        return self._services[name]

    # -- offline -> online -------------------------------------------------
    def materialize(self, end: datetime | None = None, views: list[str] | None = None,
                    start: datetime | None = None) -> list[str]:
        """Load the latest row per entity up to ``end`` (default now) into the online store; views done.

        Incremental by default (from where the last run stopped, as ``feast materialize-incremental``);
        with ``start`` every row from ``start`` on is reconsidered (after rebuilding a snapshot).
        """
        end = _aware(end or datetime.now(timezone.utc))
        known = self.batch_views()
        if not known:  # Feast would "materialize" nothing and report success
            raise ValueError("no feature views are registered in the Feast registry; "
                             "run `portrait features apply` first")
        unknown = [v for v in (views or []) if v not in known]
        if unknown:
            raise ValueError(f"--view: unknown feature view(s) {', '.join(map(repr, unknown))}; "
                             f"the registered batch views are {', '.join(known)}")
        views = list(dict.fromkeys(views)) if views else known
        with _feast_chatter():
            if start is None:
                self.fs.materialize_incremental(end_date=end, feature_views=views)
            else:
                self.fs.materialize(start_date=_aware(start), end_date=end, feature_views=views)
        return views

    # -- reads -------------------------------------------------------------
    def historical(self, service: str, entity_df: pd.DataFrame) -> pd.DataFrame:
        """Point-in-time features for (one_id, event_timestamp) rows: values known at each cutoff only.

        ``entity_df`` needs ``one_id`` and ``event_timestamp`` (any tz; naive = UTC); extra
        columns (labels) are carried through. Rows come back in Feast's order.
        """
        missing = [c for c in ("one_id", "event_timestamp") if c not in entity_df.columns]
        if missing:
            raise ValueError(f"entity_df is missing column(s) {missing}")
        frame = entity_df.copy()
        frame["one_id"] = frame["one_id"].astype(str)
        frame["event_timestamp"] = _utc_us(frame["event_timestamp"]).to_numpy()
        job = self.fs.get_historical_features(entity_df=frame, features=self.service(service))
        return job.to_df()

    def online_dict(self, service: str, one_ids: list[str]) -> dict[str, list]:
        """Online features of ``one_ids`` as ``{column: [value per id]}`` (``one_id`` included)."""
        svc = self.service(service)
        resp = self.fs.get_online_features(features=svc, entity_rows={"one_id": [str(i) for i in one_ids]})
        got = _response_dict(resp)
        return {name: got[name] for name in self.columns(service)}

    def columns(self, service: str) -> list[str]:
        """``one_id`` then the features of ``service`` in declaration order (the online column order)."""
        if service not in self._columns:
            svc = self.service(service)
            self._columns[service] = ["one_id"] + [f.name for p in svc.feature_view_projections for f in p.features]
        return self._columns[service]

    def online(self, service: str, one_ids: list[str]) -> pd.DataFrame:
        """Online features of ``one_ids``, one row each in input order (missing ids: nulls)."""
        return pd.DataFrame(self.online_dict(service, one_ids))

    # -- write-back --------------------------------------------------------
    def push_predicted_tags(self, df: pd.DataFrame) -> int:
        """Write predicted tags to the ``predicted_tags`` view, offline then online; rows written.

        ``df`` needs ``one_id`` and ``scored_at`` (when the scores were computed, also the rows'
        event time), or ``event_timestamp`` for a write without scores (``lookalike_audiences``).
        The columns given replace the customer's stored values; the columns left out keep them
        (Feast stores one whole row per customer: see :mod:`features.predicted_tags`), so a churn
        batch keeps the LTV scores and the lookalike audiences, and the reverse.
        """
        from features import predicted_tags as pt

        given = pt.prepare(df)
        if given.empty:
            return 0
        self._ensure_predicted_table()
        with pt.predicted_lock(self.predicted_path):
            ttl = self.fs.get_feature_view(PREDICTED_VIEW).ttl or None  # scores older than it are not carried
            rows = pt.merge_rows(given, pt.latest_rows(self.predicted_path, given["one_id"]), ttl)
            pt.append_offline(self.predicted_path, rows)  # the reference of the next merge: first
            pt.push_online(self.fs, PUSH_SOURCE, PREDICTED_VIEW, rows)
        return len(rows)

    def latest_predicted(self, one_ids=None) -> pd.DataFrame:
        """The newest predicted-tags row of each customer (of ``one_ids``), as the next write merges with."""
        from features.predicted_tags import latest_rows

        return latest_rows(self.predicted_path, one_ids)

    def predicted_lock(self):
        """The predicted-tags write lock (re-entrant): hold it across a read of the stored tags and a push."""
        from features.predicted_tags import predicted_lock

        return predicted_lock(self.predicted_path)


def check_redis_address(value: str | None, source: str = "redis") -> str | None:
    """A Redis online-store address, checked: ``host:port`` node(s), then optional ``key=value`` options.

    Feast parses the string only when it first connects; ``source`` names where it came from in
    the error (an option or an environment variable). Empty means no Redis (None).
    """
    value = (value or "").strip()
    if not value:
        return None
    nodes = [p for p in value.split(",") if "=" not in p]
    ok = bool(nodes) and all(p.count(":") == 1 and p.split(":")[0].strip() and p.split(":")[1].isdigit()
                             and 0 < int(p.split(":")[1]) < 65536 for p in nodes)
    if not ok:
        raise ValueError(f"{source}={value!r}: expected host:port[,host:port...][,key=value...] "
                         f"(e.g. localhost:6379 or redis:6379,db=0)")
    return value


def open_store(data: Any, *, redis: str | None = None, repo_dir: Path = REPO_DIR, stock: bool = False) -> PortraitStore:
    """Open the feature store of a data folder.

    ``data`` is a path or anything with a ``data_dir`` (portrait's ``Settings``). ``redis``
    ("host:port", checked by :func:`check_redis_address`) selects the Redis online store instead
    of ``<data>/feast/online.db``.
    """
    redis = check_redis_address(redis)
    data_dir = Path(getattr(data, "data_dir", data))
    return PortraitStore(StoreConfig(data_dir=data_dir, redis=redis, repo_dir=Path(repo_dir), stock=stock))
