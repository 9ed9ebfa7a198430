"""Writes to Feast's ``predicted_tags`` view that keep what is already stored.

Feast keeps one whole row per (customer, view) online, and the offline point-in-time join
takes a customer's newest row of ``<data>/feast/predicted_tags.parquet``. So a push of
churn scores alone would blank the customer's LTV and ``lookalike_audiences`` online, and
its offline row would carry nulls for them from then on. Every write therefore goes
through :func:`merge_rows`: the columns a caller gives replace the stored values, the
others are copied from the customer's latest stored row. A null given is stored as null
(that is how a tag is taken away).

The write itself (:meth:`features.store.PortraitStore.push_predicted_tags`) runs under
:func:`predicted_lock` (threads and processes), rewrites the offline file atomically
(temporary file + rename: readers see the old or the new table, never half), then pushes
the same rows online. The offline file is the reference the next merge reads, so a write
whose online push failed is repaired by the next write of those customers.

Each row's event time is raised to 1 µs after the customer's stored row when needed, so
the newest *write* wins online (the SQLite store keeps the newer ``event_ts``) and offline,
even when a score batch stamped with the start of its scoring lands after a later write.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

# Columns of the predicted-tags view, with the pandas dtype pushed (scored_at is a feature too).
PREDICTED_COLUMNS = {
    "churn_risk": "float64", "churn_tier": "string", "ltv": "float64", "ltv_tier": "string",
    "propensity": "float64", "propensity_decile": "Int64", "lookalike_audiences": "string",
    "model_name": "string", "model_version": "string",
}
# What a row holds besides one_id: the view's columns, when the models scored, when the row was written.
VALUE_COLUMNS = [*PREDICTED_COLUMNS, "scored_at"]
TABLE_COLUMNS = ["one_id", *VALUE_COLUMNS, "event_timestamp"]
_TICK = pd.Timedelta(microseconds=1)


def utc_us(values: Any) -> pd.Series:
    """Timestamps as tz-aware UTC at microsecond precision (what Feast's DuckDB joins need)."""
    ts = pd.to_datetime(pd.Series(values), utc=True)
    return ts.astype("datetime64[us, UTC]")


def empty_table() -> pd.DataFrame:
    """The predicted-tags table with no row, typed as every write types it."""
    return pd.DataFrame({"one_id": pd.Series(dtype="string"),
                         **{c: pd.Series(dtype=t) for c, t in PREDICTED_COLUMNS.items()},
                         "scored_at": utc_us([]), "event_timestamp": utc_us([])})


class _FileLock:
    """Exclusive across processes (``flock``) and threads (``RLock``); re-entrant in the holding thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._rlock = threading.RLock()
        self._depth = 0
        self._fh: Any = None

    def __enter__(self) -> None:
        self._rlock.acquire()
        try:
            if self._depth == 0:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "w")
                fcntl.flock(self._fh, fcntl.LOCK_EX)
        except BaseException:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            self._rlock.release()
            raise
        self._depth += 1

    def __exit__(self, *exc: Any) -> None:
        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
        self._rlock.release()


_LOCKS: dict[str, _FileLock] = {}
_LOCKS_GUARD = threading.Lock()


@contextmanager
def predicted_lock(table: Path) -> Iterator[None]:
    """Hold the write lock of the predicted-tags ``table`` (a read-merge-write must not interleave)."""
    lock_path = Path(table).with_name(f".{Path(table).name}.lock")
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(str(lock_path.resolve()), _FileLock(lock_path))
    with lock:
        yield


def prepare(df: pd.DataFrame, now: pd.Timestamp | None = None) -> pd.DataFrame:
    """The rows a caller gives, checked and typed: ``one_id``, the given value columns, ``event_timestamp``.

    The event time is ``event_timestamp`` when given, else ``scored_at``; a frame with
    neither is an error, as are unknown columns, missing or repeated one_ids and values
    that do not fit a column's type.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"predicted tags must be a DataFrame, got {type(df).__name__}")
    if "one_id" not in df.columns:
        raise ValueError("predicted tags are missing column(s) ['one_id']")
    if "scored_at" not in df.columns and "event_timestamp" not in df.columns:
        raise ValueError("predicted tags are missing column(s) ['scored_at'] (when the scores were computed), "
                         "or 'event_timestamp' for a write without scores")
    unknown = sorted(set(df.columns) - set(VALUE_COLUMNS) - {"one_id", "event_timestamp"})
    if unknown:
        raise ValueError(f"predicted tags: unknown column(s) {unknown}; expected some of {list(PREDICTED_COLUMNS)}")
    ids = df["one_id"]
    if ids.isna().any():
        raise ValueError(f"predicted tags: {int(ids.isna().sum())} row(s) without a one_id")
    ids = ids.astype(str)
    repeated = ids[ids.duplicated()]
    if len(repeated):
        raise ValueError(f"predicted tags: one_id {repeated.iloc[0]!r} appears more than once "
                         f"({repeated.nunique():,} repeated id(s)); give one row per customer")
    out = pd.DataFrame({"one_id": pd.Series(ids.to_numpy(), dtype="string")})
    for col in VALUE_COLUMNS:
        if col in df.columns:
            try:
                out[col] = utc_us(df[col]).array if col == "scored_at" else df[col].astype(PREDICTED_COLUMNS[col]).array
            except (TypeError, ValueError) as exc:
                raise ValueError(f"predicted tags: column {col!r} does not hold "
                                 f"{PREDICTED_COLUMNS.get(col, 'timestamp')} values ({exc})") from None
    when = df["event_timestamp"] if "event_timestamp" in df.columns else df["scored_at"]
    try:
        out["event_timestamp"] = utc_us(when).array
    except (TypeError, ValueError) as exc:
        raise ValueError(f"predicted tags: bad event time ({exc})") from None
    if out["event_timestamp"].isna().any():
        raise ValueError("predicted tags: every row needs a time (scored_at or event_timestamp); some are missing")
    return out


def latest_path(table: Path) -> Path:
    """The side table holding each customer's newest row of ``table`` (``predicted_tags.latest.parquet``)."""
    return Path(table).with_name(f"{Path(table).stem}.latest.parquet")


_STAMP = b"portrait.history"  # side-table metadata: the history file's rows and bytes it was built from


def _stamp(table: Path) -> bytes:
    import pyarrow.parquet as pq

    return f"{pq.read_metadata(table).num_rows}:{Path(table).stat().st_size}".encode()


def _newest(data: Any) -> Any:
    """The newest row of each customer of the Arrow table ``data``, in its own types (all-null columns too)."""
    import pyarrow as pa

    keys = pd.DataFrame({"one_id": data["one_id"].to_pandas(), "t": data["event_timestamp"].to_pandas()})
    # stable sort: equal times keep file order (rows written by this module are strictly increasing per customer)
    keep = keys.sort_values("t", kind="stable").drop_duplicates("one_id", keep="last").index.to_numpy()
    return data.take(pa.array(keep))


def _read_newest(table: Path, history: Any = None) -> Any:
    """Arrow table of the newest row per customer: the side table when it matches ``table``, else ``table``.

    The side table keeps a merge's read to one row per customer instead of the whole score
    history (each batch adds a row per customer scored). It is trusted only while it names the
    history file's current rows and size: a history written by anything else (Feast's own offline
    push, a restored backup) is read whole, as before (``history``: the table already read, if it was).
    """
    import pyarrow.parquet as pq

    side = latest_path(table)
    if side.exists():
        try:
            meta = pq.read_schema(side).metadata or {}
            if meta.get(_STAMP) == _stamp(table):
                return pq.read_table(side)
        except (OSError, ValueError):  # unreadable side table: the history decides
            pass
    return pq.read_table(table) if history is None else history


def latest_rows(table: Path, one_ids: Any = None) -> pd.DataFrame:
    """The newest stored row of each customer (of ``one_ids`` when given), typed as written; keyed by one_id."""
    import pyarrow.compute as pc

    path = Path(table)
    if not path.exists():
        return empty_table().set_index("one_id")
    data = _read_newest(path)
    missing = [c for c in TABLE_COLUMNS if c not in data.column_names]
    if missing:
        raise ValueError(f"{path}: not a predicted-tags table (no column(s) {missing})")
    if one_ids is not None:
        import pyarrow as pa

        keys = pa.array(pd.unique(pd.Series(one_ids, dtype=object).astype(str)), type=pa.string())
        data = data.filter(pc.is_in(data["one_id"].cast(pa.string()), value_set=keys))
    return _typed(_newest(data).select(TABLE_COLUMNS).to_pandas()).set_index("one_id")


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"one_id": frame["one_id"].astype("string").to_numpy()})
    for col, dtype in PREDICTED_COLUMNS.items():
        out[col] = frame[col].astype(dtype).to_numpy()
    out["scored_at"] = utc_us(frame["scored_at"]).array
    out["event_timestamp"] = utc_us(frame["event_timestamp"]).array
    return out


SCORE_COLUMNS = [c for c in VALUE_COLUMNS if c != "lookalike_audiences"]  # what a model batch writes


def merge_rows(given: pd.DataFrame, stored: pd.DataFrame, ttl: pd.Timedelta | None = None) -> pd.DataFrame:
    """Whole rows to write: ``given`` (from :func:`prepare`) over the ``stored`` rows (from :func:`latest_rows`).

    A column absent from ``given`` keeps the stored value (null for a customer with no row);
    the event time is raised to 1 µs after the stored row's when it is not later already. Stored
    scores older than ``ttl`` (the view's time to live) at the new row's time are not carried:
    a newer row would otherwise keep them alive past the view's TTL.
    """
    old = stored.reindex(pd.Index(given["one_id"].astype(str), name="one_id"))
    if ttl is not None and len(old):
        stale = (old["scored_at"] < pd.Series(given["event_timestamp"].to_numpy(), index=old.index) - ttl).fillna(False)
        if stale.any():
            old = old.copy()
            old.loc[stale.to_numpy(), SCORE_COLUMNS] = None
    out = pd.DataFrame({"one_id": given["one_id"].to_numpy()})
    for col in VALUE_COLUMNS:
        source = given[col] if col in given.columns else old[col]
        out[col] = source.array
    out = _typed(out.assign(event_timestamp=given["event_timestamp"].to_numpy()))
    floor = (old["event_timestamp"] + _TICK).reset_index(drop=True)
    ts = out["event_timestamp"]
    out["event_timestamp"] = ts.where(~(floor > ts), floor)  # no stored row: NaT > ts is False
    return out[TABLE_COLUMNS]


def append_offline(table: Path, rows: pd.DataFrame) -> None:
    """Append ``rows`` to the offline table, atomically (temporary file + rename), in the file's own schema.

    The side table of each customer's newest row (:func:`latest_path`) is rewritten after it.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from features.io import atomic_write

    path = Path(table)
    typed = pa.Schema.from_pandas(empty_table()[TABLE_COLUMNS], preserve_index=False)  # an all-null column too
    added = pa.Table.from_pandas(rows[TABLE_COLUMNS], schema=typed, preserve_index=False)
    newest = added
    if path.exists():
        old = pq.read_table(path)
        if sorted(old.column_names) != sorted(TABLE_COLUMNS):
            raise ValueError(f"{path}: columns {old.column_names} are not the predicted-tags columns "
                             f"{TABLE_COLUMNS}; move the file away to start a new table")
        added = added.select(old.column_names).cast(old.schema)
        previous = _read_newest(path, old).select(old.column_names).cast(old.schema)  # before the history changes
        newest = pa.concat_tables([previous, added])
        added = pa.concat_tables([old, added])
    atomic_write(path, lambda tmp: pq.write_table(added, tmp))
    # then the side table, stamped with the history it matches (a crash in between leaves a stale stamp:
    # the next read takes the history whole)
    side = _newest(newest)
    side = side.replace_schema_metadata({**(side.schema.metadata or {}), _STAMP: _stamp(path)})
    atomic_write(latest_path(path), lambda tmp: pq.write_table(side, tmp))


def push_online(fs: Any, push_source: str, view: str, rows: pd.DataFrame) -> None:
    """Write whole rows to the online store through Feast's push source ``push_source``.

    Portrait's online stores take the rows whole through their ``write_arrow`` (the vectorized encoder
    materialization uses: Feast's push converts each cell to a protobuf object in Python, 70% of a
    200k-row write-back's time). With a stock store: Feast's push, which skips, with a mere warning, a
    frame whose features are all null; here that
    is a real write (a customer never scored who just left their last lookalike audience),
    and skipping it would leave the removed tag online. Such a frame goes to the provider's
    ``ingest_df``, the step the push itself ends with.
    """
    from feast.data_source import PushMode

    online_store = getattr(fs._get_provider(), "online_store", None)
    if hasattr(online_store, "write_arrow"):  # portrait's SQLite / Redis stores: the bulk encoder materialize uses
        import pyarrow as pa

        fv = fs.get_feature_view(view)
        table = pa.Table.from_pandas(rows[["one_id", "event_timestamp", *(f.name for f in fv.features)]],
                                     preserve_index=False)
        online_store.write_arrow(fs.config, fv, table)
        return
    if rows[VALUE_COLUMNS].isna().all().all():
        fs._get_provider().ingest_df(fs.get_feature_view(view), rows)
    else:
        fs.push(push_source, rows, to=PushMode.ONLINE)
