"""OneID runs: full and incremental resolution of source records into one_ids.

A **full** run reads every identity record, builds the identity graph
(:mod:`features.identity.graph`) and gives the groups one_ids, keeping the ids of a
previous run where one exists (:mod:`features.identity.stable`). An **incremental**
run takes only records not seen before (or seen again with a newer ``observed_at``),
pulls in the persons that share an identifier with them, re-resolves that small
neighbourhood and splices it into the state; everyone else is untouched.
Both write the outputs listed in :mod:`features.identity.store`.

    from features.identity.config import ResolveConfig
    from features.identity.resolve import resolve
    summary = resolve(ResolveConfig(identity_dir=..., raw_dir=..., hmac_key=...))
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from features.identity.config import ResolveConfig, Rules, load_rules
from features.identity.golden import golden_records
from features.identity.graph import resolve_graph
from features.identity.hashing import key_fingerprint, require_key
from features.identity.prepare import (
    HashedRecords, check_identity_table, hash_records, read_identity_records, read_profiles,
)
from features.identity.stable import assign_ids
from features.identity.store import (
    State, StateError, aliases_frame, aliases_table, golden_table, has_state, identifiers_table, load_state,
    refused_table, save, write_table,
)

Step = Callable[[str], None]


def _kcol(t: str) -> str:
    return f"k_{t}"


def _dedupe(hr: HashedRecords) -> HashedRecords:
    """One row per record key (the latest observation), sorted by record key."""
    order = np.argsort(hr.rkey, kind="stable")
    srt = hr.rkey[order]
    if len(srt) and (srt[1:] == srt[:-1]).any():  # rare: the same record twice in one input
        order = np.lexsort((hr.observed_at, hr.rkey))
        srt = hr.rkey[order]
    last = np.r_[srt[1:] != srt[:-1], True] if len(srt) else np.zeros(0, bool)
    return hr.take(order[last])


def dropped_table(hr: HashedRecords) -> pa.Table:
    """source, record_id, id_type, reason of every identifier dropped by normalization (no values)."""
    d = hr.dropped_rows
    if d is None or d.empty:
        return pa.table({"source": pa.array([], pa.string()), "record_id": pa.array([], pa.string()),
                         "id_type": pa.array([], pa.string()), "reason": pa.array([], pa.string())})
    rows = pa.array(d["row"].to_numpy())
    return pa.table({"source": hr.source.take(rows), "record_id": hr.record_id.take(rows),
                     "id_type": pa.array(d["id_type"].astype(str), pa.string()),
                     "reason": pa.array(d["reason"].astype(str), pa.string())})


def _records_frame(hr: HashedRecords, one_num: np.ndarray, types: tuple[str, ...]) -> pd.DataFrame:
    df = pd.DataFrame({"rkey": hr.rkey, "one_num": one_num, "observed_at": hr.observed_at})
    for t in types:
        df[_kcol(t)] = hr.keys[t]
    return df


def _identifiers(records: pd.DataFrame, types: tuple[str, ...]) -> pd.DataFrame:
    """id_type, key, one_num, n_records, last_seen per distinct (identifier, person); two hash passes per type."""
    num = records["one_num"].to_numpy()
    obs = records["observed_at"].to_numpy().astype("datetime64[us]").view(np.int64)
    base = np.int64(num.max() + 1) if len(num) else np.int64(1)
    parts = [pd.DataFrame({"id_type": pd.Series(dtype=str), "key": pd.Series(dtype=np.int64),
                           "one_num": pd.Series(dtype=np.int64), "n_records": pd.Series(dtype=np.int64),
                           "last_seen": pd.Series(dtype="datetime64[us]")})]
    for t in types:
        k = records[_kcol(t)].to_numpy()
        rows = np.flatnonzero(k != 0)
        if not len(rows):
            continue
        kc, kuniq = pd.factorize(k[rows])
        pcode, puniq = pd.factorize(kc.astype(np.int64) * base + num[rows])
        last = np.full(len(puniq), np.iinfo(np.int64).min)
        np.maximum.at(last, pcode, obs[rows])
        parts.append(pd.DataFrame({"id_type": t, "key": np.asarray(kuniq, np.int64)[puniq // base],
                                   "one_num": puniq % base, "n_records": np.bincount(pcode).astype(np.int64),
                                   "last_seen": last.view("datetime64[us]")}))
    return pd.concat(parts, ignore_index=True)


def _refused_holders(refused: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """One row per (refused identifier, person holding it)."""
    parts = [pd.DataFrame({"id_type": pd.Series(dtype=str), "key": pd.Series(dtype=np.int64),
                           "one_num": pd.Series(dtype=np.int64), "reason": pd.Series(dtype=str)})]
    for t, grp in refused.groupby("id_type"):
        col = records[_kcol(t)]
        hit = records.loc[col.isin(grp["key"]).to_numpy(), [_kcol(t), "one_num"]].drop_duplicates()
        hit = hit.merge(grp[["key", "reason"]], left_on=_kcol(t), right_on="key")
        parts.append(pd.DataFrame({"id_type": t, "key": hit["key"].to_numpy(), "one_num": hit["one_num"].to_numpy(),
                                   "reason": hit["reason"].to_numpy()}))
    return pd.concat(parts, ignore_index=True)


def _follow(aliases: pd.DataFrame) -> pd.DataFrame:
    """Point every alias at its final survivor (an id merged away twice follows both merges)."""
    if aliases.empty:
        return aliases
    target = dict(zip(aliases["alias_num"].tolist(), aliases["one_num"].tolist()))
    final = []
    for num in aliases["one_num"].tolist():
        seen = 0
        while num in target and seen < 64:
            num, seen = target[num], seen + 1
        final.append(num)
    return aliases.assign(one_num=np.asarray(final, np.int64)).drop_duplicates("alias_num", keep="last")


def _golden(records: pd.DataFrame, source: pa.Array, profiles: pd.DataFrame | None, rules: Rules) -> pd.DataFrame:
    rec = pd.DataFrame({"one_num": records["one_num"].to_numpy(), "source": source.to_pandas(),
                        "observed_at": records["observed_at"].to_numpy()})
    prof = pd.DataFrame(columns=["one_num", "source", "observed_at"])
    if profiles is not None and len(profiles):
        rk = records["rkey"].to_numpy()
        pos = np.searchsorted(rk, profiles["rkey"].to_numpy())
        pos = np.minimum(pos, max(len(rk) - 1, 0))
        ok = (rk[pos] == profiles["rkey"].to_numpy()) if len(rk) else np.zeros(len(profiles), bool)
        prof = profiles.loc[ok].assign(one_num=records["one_num"].to_numpy()[pos[ok]])
    return golden_records(rec, prof, rules.source_priority)


def _summary(mode: str, run_id: str, n_in: int, hr: HashedRecords, records: pd.DataFrame, graph, changes,
             timings: dict, extra: dict | None = None, people: int | None = None) -> dict:
    counts = changes["change"].value_counts().to_dict() if len(changes) else {}
    return {"run_id": run_id, "mode": mode, "input_records": n_in, "records": len(records),
            "people": int(people if people is not None else records["one_num"].nunique()), "changes": {k: int(v) for k, v in counts.items()},
            "dropped_identifiers": hr.dropped, "links": graph.stats,
            "refused_values": int(len(graph.refused)), "seconds": timings, **(extra or {})}


def _prepare(cfg: ResolveConfig, records: pa.Table | None, step: Step) -> tuple[bytes, Rules, State | None, pa.Table]:
    key = require_key(cfg.hmac_key, cfg.demo_key)
    rules = load_rules(cfg.rules_path)
    prev = load_state(cfg.identity_dir, full=cfg.incremental) if has_state(cfg.identity_dir) else None
    if prev is not None and prev.meta.get("key_fingerprint") != key_fingerprint(key):
        raise StateError(f"{cfg.identity_dir}: the identity state was built with another HMAC key; use the same "
                         "PORTRAIT_HMAC_KEY, or delete the identity directory to start over (one_ids will change)")
    if prev is not None and prev.meta.get("types") != list(rules.priority):
        raise StateError(f"{cfg.identity_dir}: the identity state was built for identifier types "
                         f"{prev.meta.get('types')}, the rules now list {list(rules.priority)}; run a full resolve "
                         "on a fresh identity directory")
    step("reading identity records")
    table = check_identity_table(records) if records is not None else \
        read_identity_records(Path(cfg.raw_dir) / "identity_records.parquet")
    return key, rules, prev, table


def resolve(cfg: ResolveConfig, records: pa.Table | None = None, profiles: pd.DataFrame | None = None,
            step: Step | None = None) -> dict:
    """Run OneID (full, or incremental with ``cfg.incremental``) and write the outputs; return a summary.

    ``records``/``profiles`` default to ``<raw>/identity_records.parquet`` and ``<raw>/profiles.parquet``;
    in an incremental run they may hold just the new batch.
    """
    if cfg.incremental:
        from features.identity.incremental import resolve_incremental

        return resolve_incremental(cfg, records, profiles, step)
    step = step or (lambda _msg: None)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    key, rules, prev, table = _prepare(cfg, records, step)
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    step("normalizing and hashing identifiers")
    hr = hash_records(table, rules, key)
    dropped = dropped_table(hr)
    hr = _dedupe(hr)
    n_in = table.num_rows
    del table
    timings["read_hash"] = time.perf_counter() - t
    t = time.perf_counter()
    step("linking records")
    graph = resolve_graph(hr.keys, rules.priority, rules.limits)
    timings["graph"] = time.perf_counter() - t
    t = time.perf_counter()
    prev_num = np.full(len(hr), -1, np.int64)
    if prev is not None and len(prev.records):
        rk = prev.records["rkey"].to_numpy()
        pos = np.minimum(np.searchsorted(rk, hr.rkey), len(rk) - 1)
        hit = rk[pos] == hr.rkey
        prev_num[hit] = prev.records["one_num"].to_numpy()[pos[hit]]
    a = assign_ids(graph.label, prev_num, hr.rkey, prev.meta["next_id"] if prev else 1)
    recs = _records_frame(hr, a.one_num, rules.priority)
    timings["assign_ids"] = time.perf_counter() - t
    t = time.perf_counter()
    step("golden records")
    if profiles is None:
        profiles = read_profiles(Path(cfg.raw_dir) / "profiles.parquet")
    golden = _golden(recs, hr.source, profiles, rules)
    identifiers = _identifiers(recs, rules.priority)
    refused = _refused_holders(graph.refused, recs)
    aliases = a.aliases.assign(run_id=run_id)
    if prev is not None:
        aliases = pd.concat([aliases_frame(prev.aliases), aliases], ignore_index=True)
    timings["golden_identifiers"] = time.perf_counter() - t
    t = time.perf_counter()
    step("writing outputs")
    meta = {"next_id": int(a.next_id), "key_fingerprint": key_fingerprint(key), "types": list(rules.priority),
            "rules": rules.fingerprint(), "last_run": run_id}
    prof_state = profiles if profiles is not None else pd.DataFrame(columns=["rkey", "source", "observed_at"])
    st = State(recs, hr.source, hr.record_id, prof_state, golden_table(golden), identifiers_table(identifiers),
               refused_table(refused), aliases_table(_follow(aliases)), meta)
    summary = _summary("full", run_id, n_in, hr, recs, graph, a.changes, timings, people=len(golden))
    write_table(dropped, Path(cfg.identity_dir) / "dropped.parquet")
    save(cfg.identity_dir, st, a.changes, run_id, summary, timings, t)
    return summary
