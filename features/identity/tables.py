"""The public OneID tables on disk: a compacted base plus small delta parts, and the reader.

Layout under ``<data>/identity/``::

    record_map.parquet  golden.parquet  identifiers.parquet  refused.parquet  dropped.parquet
                                    the base: complete after a full run or a compaction
    delta/<run_id>/<table>.parquet  what each incremental run changed since the base
    delta/<run_id>/touched.parquet  one_num of every person that run re-resolved
    manifest.json                   {"base": run_id, "deltas": [run_id, ...]}: the current version
    aliases.parquet                 base like the others; each delta holds the complete (small) table
    changelog/, summary.json        added / rewritten every run

An incremental run writes only its delta parts and then replaces ``manifest.json``
(atomically), so it costs in proportion to the batch, not to the 10M-row tables. The
current table is the base with each delta applied in order:

- ``record_map``: a delta row replaces the base row of the same ``(source, record_id)``;
- ``golden``, ``identifiers``, ``refused``: all rows of a touched person are replaced by the
  delta's rows for that person (a person merged away has none, so it disappears);
- ``dropped``: delta rows are appended;
- ``aliases``: the newest delta's copy is the table.

Read with :func:`read_identity_table` (it applies the deltas; plain ``read_parquet`` of the
base file is right only when the manifest lists no deltas, e.g. after a full run). A reader
that meets a base written after the manifest it read (a full run or a compaction in
progress) reads the manifest again, so it sees the old or the new state, never a mix.
After :data:`MAX_DELTAS` incremental runs the next one compacts (rewrites the base).
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.io import atomic_write

TABLES = ("record_map", "golden", "identifiers", "refused", "dropped", "aliases")
WHOLE = ("aliases",)  # small: each delta holds the complete table
BY_PERSON = ("golden", "identifiers", "refused")
MAX_DELTAS = 16  # incremental runs before the next one rewrites the base
RUN_META = b"portrait.identity.base"
PARQUET = {"compression": "lz4", "write_statistics": False}  # fast; the base is rewritten by every full run
LOW_CARDINALITY = {"source", "id_type", "reason", "change", "run_id", "gender", "city", "reg_channel", "occupation",
                   "sources"}  # dictionary-encoded; unique strings (ids, hashes) are not


def write_table(table: pa.Table, path: Path, compression: str = "lz4", base_run: str | None = None) -> Path:
    """Write ``table`` atomically (``base_run`` tags a base file with the run that wrote it)."""
    if base_run is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), RUN_META: base_run.encode()})
    dictionary = [c for c in table.column_names if c in LOW_CARDINALITY]
    opts = {**PARQUET, "compression": compression}
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp, use_dictionary=dictionary, **opts))


def write_json(obj: dict, path: Path) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, default=str)))


def _state_error(msg: str) -> Exception:
    from features.identity.state import StateError  # state imports this module: resolved at call time

    return StateError(msg)


def read_manifest(identity_dir: Path) -> dict | None:
    """``{"base": run_id, "deltas": [run_id, ...]}``, None before manifests existed; StateError when corrupt."""
    p = Path(identity_dir) / "manifest.json"
    if not p.exists():
        return None
    try:
        man = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise _state_error(f"{p}: unreadable ({type(exc).__name__}: {exc}); run `portrait identity resolve` "
                           "without --incremental to rewrite the tables") from exc
    if not (isinstance(man, dict) and isinstance(man.get("base"), str) and isinstance(man.get("deltas"), list)):
        field = "base" if not isinstance(man, dict) or not isinstance(man.get("base"), str) else "deltas"
        raise _state_error(f"{p}: field {field!r} missing or malformed; run `portrait identity resolve` "
                           "without --incremental to rewrite the tables")
    return man


def write_base(identity_dir: Path, tables: dict[str, pa.Table], run_id: str, pool: ThreadPoolExecutor | None = None) -> None:
    """Write the complete tables as the new base, then a manifest without deltas; old deltas are removed."""
    d = Path(identity_dir)
    jobs = [(lambda n=name, t=tab: write_table(t, d / f"{n}.parquet", base_run=run_id)) for name, tab in tables.items()]
    if pool is not None:
        for f in [pool.submit(j) for j in jobs]:
            f.result()
    else:
        for j in jobs:
            j()
    old = read_manifest(d)
    write_json({"base": run_id, "deltas": []}, d / "manifest.json")
    for run in (old or {}).get("deltas", []):
        shutil.rmtree(d / "delta" / run, ignore_errors=True)


def write_delta(identity_dir: Path, run_id: str, tables: dict[str, pa.Table], touched: np.ndarray) -> dict:
    """Add one run's delta parts and list them in the manifest (the manifest replace is the commit)."""
    d = Path(identity_dir)
    man = read_manifest(d)
    if man is None:
        raise _state_error(f"{d / 'manifest.json'}: missing, so there is no base to add a delta to (a directory "
                           "written before manifests existed); run `portrait identity resolve` without --incremental")
    part = d / "delta" / run_id
    for name, tab in tables.items():
        write_table(tab, part / f"{name}.parquet", compression="none")
    write_table(pa.table({"one_num": pa.array(np.asarray(touched, np.int64))}), part / "touched.parquet",
                compression="none")
    man = {"base": man["base"], "deltas": [*man["deltas"], run_id]}
    write_json(man, d / "manifest.json")
    return man


def _keys(table: pa.Table, name: str) -> np.ndarray:
    if name == "record_map":
        from features.identity.hashing import record_keys

        return record_keys(table.column("source"), table.column("record_id"))
    from features.identity.stable import parse_ids

    return parse_ids(table.column("one_id"))


def _apply(cur: pa.Table, parts: list[tuple[pa.Table, np.ndarray]], name: str) -> pa.Table:
    """``cur`` with each ``(part, touched)`` applied in order (module docstring), keying ``cur`` once.

    A row survives unless a *later* part replaces its key (record_map) or touches its person (the
    others), so each table is filtered once by the union of the later parts' keys.
    """
    if name == "dropped":
        return pa.concat_tables([cur, *(part.cast(cur.schema) for part, _ in parts)])
    out, later = [], np.zeros(0, np.int64)
    for part, touched in reversed(parts):
        part = part.select(cur.column_names).cast(cur.schema)
        keys = _keys(part, name)
        if len(later) and part.num_rows:
            part = part.filter(pc.invert(pc.is_in(pa.array(keys), value_set=pa.array(later))))
        out.append(part)
        later = np.union1d(later, keys if name == "record_map" else touched)
    if len(later) and cur.num_rows:
        cur = cur.filter(pc.invert(pc.is_in(pa.array(_keys(cur, name)), value_set=pa.array(later))))
    return pa.concat_tables([cur, *reversed(out)])


def read_identity_table(identity_dir: Path | str, name: str, columns: list[str] | None = None) -> pa.Table:
    """The current ``name`` table (one of :data:`TABLES`, or ``aliases``) with every delta applied."""
    d = Path(identity_dir)
    if name not in TABLES:
        raise ValueError(f"read_identity_table: unknown table {name!r}; known: {list(TABLES)}")
    for _attempt in range(20):
        man = read_manifest(d)
        base = pq.read_table(d / f"{name}.parquet")
        tag = (base.schema.metadata or {}).get(RUN_META)
        if man is None and tag is not None and any((d / "delta").glob("*/record_map.parquet")):
            raise _state_error(f"{d / 'manifest.json'}: missing while delta parts exist under {d / 'delta'}; "
                               "the tables cannot be read without it")
        if man is None or tag is None:  # written before manifests existed: the file is the table
            break
        if tag.decode() != man["base"]:  # a full run or compaction is being written: read again
            import time

            time.sleep(0.2)
            continue
        try:
            if name in WHOLE:
                at = d / "delta" / man["deltas"][-1] / f"{name}.parquet" if man["deltas"] else None
                base = pq.read_table(at) if at else base
                break
            parts = []
            for run in man["deltas"]:
                touched = np.zeros(0, np.int64)
                if name in BY_PERSON:
                    at = d / "delta" / run / "touched.parquet"
                    touched = pq.read_table(at).column("one_num").to_numpy()
                at = d / "delta" / run / f"{name}.parquet"
                parts.append((pq.read_table(at), touched))
            base = _apply(base, parts, name) if parts else base
        except FileNotFoundError as exc:
            if read_manifest(d) == man:  # not a compaction removing the deltas after we read the manifest
                raise _state_error(f"{at}: listed by {d / 'manifest.json'} (deltas) but missing; run "
                                   "`portrait identity resolve` without --incremental to rewrite the tables") from exc
            continue
        break
    else:
        raise _state_error(f"{d}: the identity tables kept changing while being read ({d / name}.parquet is from run "
                           f"{tag.decode()!r}, manifest.json field 'base' names {man['base']!r}; a full run that "
                           "stopped half-way leaves this: run `portrait identity resolve` again)")
    base = base.replace_schema_metadata(None)
    return base.select(columns) if columns else base

