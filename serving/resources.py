"""The data the endpoints need, loaded once per worker outside the request path.

Everything is read from the data directory's contract files and turned into
arrays and dictionaries that a request only indexes (no DataFrame per request):

* identity: ``identity/golden.parquet`` (one_id + golden attributes) and
  ``identity/record_map.parquet`` (``source:record_id`` -> one_id); the
  identity area's ``IdentityIndex`` when present (raw phone/email/member ids);
* features: the latest snapshot of ``features/customer_features.parquet``:
  numeric columns as one float matrix, non-numeric/bool columns as rule tags;
* items: ``features/item_features.parquet`` or ``raw/items.parquet`` (filters);
* behaviour: ``features/interactions.parquet`` summarised per customer;
* predicted tags: the latest value per (customer, tag) in ``tags/history.parquet``.

Each part is keyed by its files' modification times: :func:`load_resources`
reuses the previous part when its files did not change, so a reload after a tag
write-back re-reads only the tag history. A missing file leaves its part empty
and is named in :attr:`Resources.missing` (``/readyz`` reports it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from serving.config import ServeConfig

log = logging.getLogger("portrait.serving")


def _mtimes(paths: list[Path]) -> tuple:
    return tuple((str(p), p.stat().st_mtime_ns if p.exists() else None) for p in paths)


@dataclass(frozen=True)
class Identity:
    one_ids: frozenset  # every known one_id
    aliases: dict  # "source:record_id" -> one_id
    index: Any = None  # the identity area's IdentityIndex (raw identifiers), when available
    golden_row: dict = field(default_factory=dict)  # one_id -> row in golden_cols
    golden_cols: dict = field(default_factory=dict)  # attribute -> ndarray

    def resolve(self, identifier: str, personal: bool = False) -> str | None:
        """one_id for any identifier; None when unknown (never raises on odd input).

        ``personal``: a raw identifier several people share raises ``SharedIdentifier`` (see
        ``features.identity.index``) instead of naming its latest user.
        """
        if identifier in self.one_ids:
            return identifier
        hit = self.aliases.get(identifier)
        if hit is not None or self.index is None:
            return hit
        from features.identity.index import SharedIdentifier

        try:
            return self.index.resolve(identifier, personal=personal)
        except SharedIdentifier:
            raise
        except Exception:  # noqa: BLE001 - an unparseable identifier is simply unknown
            return None


@dataclass(frozen=True)
class Features:
    row: dict  # one_id -> row of matrix
    columns: tuple  # numeric feature names, matrix column order
    matrix: np.ndarray  # float64 (n_customers, n_features), NaN where missing
    tag_columns: tuple  # rule-tag names
    tags: dict  # tag -> ndarray (object) aligned with rows
    as_of: str | None  # the snapshot's cutoff (ISO)
    frame: Any = None  # the snapshot as a DataFrame (all columns, row order = ``row``), for model inputs

    def col_index(self, names: list[str]) -> np.ndarray:
        """Column positions of ``names``; KeyError naming the absent ones."""
        pos = {c: i for i, c in enumerate(self.columns)}
        missing = [n for n in names if n not in pos]
        if missing:
            raise KeyError(f"feature snapshot lacks column(s) {missing}")
        return np.array([pos[n] for n in names], dtype=np.int64)


@dataclass(frozen=True)
class Items:
    ids: np.ndarray  # item_id (object)
    row: dict  # item_id -> row
    category: np.ndarray  # object
    price: np.ndarray  # float64, NaN unknown
    in_stock: np.ndarray  # bool (unknown counts as in stock)
    launch: np.ndarray  # datetime64[D], NaT unknown


@dataclass(frozen=True)
class Resources:
    identity: Identity | None = None
    features: Features | None = None
    items: Items | None = None
    behaviour: dict = field(default_factory=dict)  # one_id -> summary dict
    predicted: dict = field(default_factory=dict)  # one_id -> list of tag dicts
    store: Any = None  # features.store.PortraitStore when /score reads Feast online (score_features="feast")
    services: dict = field(default_factory=dict)  # model -> FeatureService read online
    keys: dict = field(default_factory=dict)  # part -> file mtimes it was built from
    missing: tuple = ()  # human-readable list of absent inputs
    store_error: str | None = None  # why the Feast store could not be opened (score_features="feast"): /score -> 503
    lookalike: dict = field(default_factory=dict)  # one_id -> "a,b": the lookalike audiences that found them

    def resolve(self, identifier: str, personal: bool = False) -> str | None:
        return self.identity.resolve(identifier, personal) if self.identity is not None else None


# ---- loaders, one per part -------------------------------------------------------------------------


def load_identity(cfg: ServeConfig) -> Identity | None:
    """The identity part (``/score``'s resolver); ``portrait features online`` loads it alone."""
    import pandas as pd

    d = cfg.data_dir / "identity"
    golden_p, map_p = d / "golden.parquet", d / "record_map.parquet"
    if not golden_p.exists():
        return None
    from features.identity.tables import read_identity_table  # base + pending deltas of incremental runs

    golden = read_identity_table(d, "golden").to_pandas()
    golden["one_id"] = golden["one_id"].astype(str)
    aliases: dict = {}
    if map_p.exists():
        m = read_identity_table(d, "record_map", columns=["source", "record_id", "one_id"]).to_pandas()
        keys = (m["source"].astype(str) + ":" + m["record_id"].astype(str)).tolist()
        aliases = dict(zip(keys, m["one_id"].astype(str).tolist()))
    cols = {c: golden[c].to_numpy() for c in golden.columns if c != "one_id"}
    return Identity(frozenset(golden["one_id"]), aliases, _identity_index(cfg),
                    {o: i for i, o in enumerate(golden["one_id"])}, cols)


def _identity_index(cfg: ServeConfig) -> Any:
    """The identity area's IdentityIndex (raw identifiers -> one_id), when it and a key exist."""
    try:
        from features.identity.index import IdentityIndex
    except ImportError:
        return None
    try:  # without a key only the public demo key can match (the index refuses state made with another key)
        return IdentityIndex.load(cfg.data_dir / "identity", cfg.hmac_key, demo_key=cfg.hmac_key is None)
    except Exception as exc:  # noqa: BLE001 - raw-identifier lookups degrade to one_id/source:record_id
        log.warning("IdentityIndex unavailable (%s); resolving one_id and source:record_id only", type(exc).__name__)
        return None


def _load_features(cfg: ServeConfig) -> Features | None:
    import pandas as pd
    import pyarrow.parquet as pq

    path = cfg.data_dir / "features" / "customer_features.parquet"
    if not path.exists():
        return None
    df = pq.read_table(path).to_pandas()
    as_of = None
    if "event_timestamp" in df.columns and len(df):
        latest = df["event_timestamp"].max()
        df = df[df["event_timestamp"] == latest]
        as_of = pd.Timestamp(latest).isoformat()
    df = df.drop_duplicates("one_id", keep="last").reset_index(drop=True)
    skip = {"one_id", "event_timestamp", "created", "created_timestamp"}
    numeric = [c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])
               and not pd.api.types.is_bool_dtype(df[c])]
    tags = [c for c in df.columns if c.startswith("tag_")]  # the features area's rule tags
    tags = tags or [c for c in df.columns if c not in skip and c not in numeric]
    numeric = [c for c in numeric if c not in tags]
    matrix = np.ascontiguousarray(df[numeric].to_numpy(dtype=np.float64, na_value=np.nan)) if numeric \
        else np.zeros((len(df), 0))
    return Features({o: i for i, o in enumerate(df["one_id"].astype(str))}, tuple(numeric), matrix,
                    tuple(tags), {t: df[t].to_numpy(dtype=object) for t in tags}, as_of, df)


def _load_items(cfg: ServeConfig) -> Items | None:
    import pandas as pd

    raw = cfg.data_dir / "raw" / "items.parquet"
    if not raw.exists():
        return None
    df = pd.read_parquet(raw).drop_duplicates("item_id", keep="last").reset_index(drop=True)
    ids = df["item_id"].astype(str).to_numpy(dtype=object)
    n = len(df)
    price = df["price"].to_numpy(dtype=np.float64, na_value=np.nan) if "price" in df else np.full(n, np.nan)
    stock = df["in_stock"].fillna(True).to_numpy(dtype=bool) if "in_stock" in df else np.ones(n, bool)
    launch = (pd.to_datetime(df["launch_date"], utc=True).dt.tz_localize(None).to_numpy().astype("datetime64[D]")
              if "launch_date" in df else np.full(n, np.datetime64("NaT"), dtype="datetime64[D]"))
    cat = df["category"].astype(str).to_numpy(dtype=object) if "category" in df else np.full(n, "", dtype=object)
    return Items(ids, {i: k for k, i in enumerate(ids)}, cat, price, stock, launch)


def _load_behaviour(cfg: ServeConfig, items: Items | None) -> dict:
    import pandas as pd

    path = cfg.data_dir / "features" / "interactions.parquet"
    if not path.exists():
        return {}
    df = pd.read_parquet(path, columns=["one_id", "item_id", "event_type", "ts"])
    if items is not None:
        df["category"] = df["item_id"].astype(str).map(dict(zip(items.ids, items.category)))
    g = df.groupby("one_id", observed=True)
    out = pd.DataFrame({"events": g.size(), "last_seen": g["ts"].max(), "distinct_items": g["item_id"].nunique()})
    out["purchases"] = df[df["event_type"] == "purchase"].groupby("one_id", observed=True).size()
    if "category" in df:
        top = df.dropna(subset=["category"]).groupby(["one_id", "category"], observed=True).size()
        out["top_category"] = top.sort_values().groupby(level=0).tail(1).reset_index(level=1)["category"]
    out["purchases"] = out["purchases"].fillna(0).astype(int)
    out["last_seen"] = out["last_seen"].map(lambda t: pd.Timestamp(t).isoformat() if pd.notna(t) else None)
    return {str(k): {c: (None if pd.isna(v) else v) for c, v in row.items()}
            for k, row in out.to_dict("index").items()}


def _load_predicted(cfg: ServeConfig) -> dict:
    import pandas as pd

    path = cfg.data_dir / "tags" / "history.parquet"
    if not path.exists():
        return {}
    # stable: batches stamped in the same second keep their write order (the later one is the current tag)
    df = pd.read_parquet(path).sort_values("scored_at", kind="stable").drop_duplicates(["one_id", "tag"], keep="last")
    out: dict = {}
    for r in df.itertuples(index=False):
        out.setdefault(str(r.one_id), []).append({
            "name": r.tag, "value": r.value, "source": "model", "model": r.model, "version": str(r.version),
            "updated_at": pd.Timestamp(r.scored_at).isoformat()})
    return out


def _load_lookalike(cfg: ServeConfig) -> dict:
    """one_id -> the saved lookalike audiences that found the customer (``features.audience_tags``' rule)."""
    from features.audience import AudienceError, AudienceStore
    from features.audience_tags import lookalike_memberships

    folder = cfg.data_dir / "audiences"
    if not folder.is_dir():
        return {}
    try:
        value, _ = lookalike_memberships(AudienceStore(folder))
    except AudienceError as exc:  # a member file that cannot be read: profiles go on without the tag
        log.error("lookalike audiences not shown in /profile: %s", exc)
        return {}
    return {str(k): str(v) for k, v in value.items()}


def load_resources(cfg: ServeConfig, previous: Resources | None) -> Resources:
    """Load (or reuse from ``previous``) every part; never raises for a missing file."""
    d = cfg.data_dir
    inputs = {
        "identity": [d / "identity" / "golden.parquet", d / "identity" / "record_map.parquet",
                     d / "identity" / "manifest.json"],
        # a materialization rewrites Feast's registry: the snapshot is re-read with it, so what serving holds
        # in memory is what Feast serves online
        "features": [d / "features" / "customer_features.parquet", d / "feast" / "registry.db"],
        "items": [d / "raw" / "items.parquet"],
        "behaviour": [d / "features" / "interactions.parquet", d / "raw" / "items.parquet"],
        "predicted": [d / "tags" / "history.parquet"],
        "lookalike": [d / "audiences"],  # a saved, replaced or deleted audience renames files: the folder's mtime
    }
    prev = previous or Resources()
    keys = {part: _mtimes(paths) for part, paths in inputs.items()}
    if previous is not None and keys == prev.keys:
        return previous
    same = {part: previous is not None and prev.keys.get(part) == key for part, key in keys.items()}
    identity = prev.identity if same["identity"] else load_identity(cfg)
    features = prev.features if same["features"] else _load_features(cfg)
    items = prev.items if same["items"] else _load_items(cfg)
    behaviour = prev.behaviour if same["behaviour"] else _load_behaviour(cfg, items)
    predicted = prev.predicted if same["predicted"] else _load_predicted(cfg)
    lookalike = prev.lookalike if same["lookalike"] else _load_lookalike(cfg)
    store, store_error = None, None
    if cfg.score_features == "feast":
        try:  # a store that cannot be opened fails /score only (503), not the other parts
            store = prev.store if same["features"] and prev.store is not None else _open_store(cfg)
        except Exception as exc:  # noqa: BLE001 - Feast config, import or connection errors
            store_error = f"{type(exc).__name__}: {exc}"
    missing = tuple(str(paths[0].relative_to(d)) for part, paths in inputs.items()
                    if part not in ("predicted", "lookalike") and not paths[0].exists())
    return Resources(identity, features, items, behaviour, predicted, store, dict(cfg.feature_services), keys, missing,
                     store_error, lookalike)


def _open_store(cfg: ServeConfig) -> Any:
    """The Feast store /score reads online (once per worker and registry version; imports Feast)."""
    from features.store import open_store

    return open_store(cfg.data_dir, redis=cfg.feast_redis)
