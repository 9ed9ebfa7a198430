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
from features.identity.places import clean_cities
from features.identity.graph import resolve_graph
from features.identity.hashing import RECORD_KEY_VERSION, key_fingerprint, require_key
from features.identity.prepare import (
    HashedRecords, check_identity_table, hash_records, read_identity_records, read_profiles,
)
from features.identity.record_ids import meta_entry
from features.identity.stable import assign_ids, format_ids
from features.identity.state import StateError, commit, previous_ids, state_dir, write_segment
from features.identity.store import (
    aliases_frame, aliases_table, changelog_table, golden_table, identifiers_table, refused_table,
)
from features.identity.tables import read_identity_table, write_base, write_json, write_table

Step = Callable[[str], None]


def _kcol(t: str) -> str:
    return f"k_{t}"


def _dedupe(hr: HashedRecords) -> tuple[HashedRecords, np.ndarray]:
    """One row per record key (the latest observation), in input order; also the rkey-sorted order."""
    order = hr.order if hr.order is not None else np.argsort(hr.rkey, kind="stable")
    srt = hr.rkey[order]
    if not (len(srt) and (srt[1:] == srt[:-1]).any()):
        return hr, order
    order = np.lexsort((hr.observed_at, hr.rkey))  # rare: the same record twice in one input
    srt = hr.rkey[order]
    keep = np.sort(order[np.r_[srt[1:] != srt[:-1], True]])
    hr = hr.take(keep)
    return hr, np.argsort(hr.rkey, kind="stable")


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
    df = pd.DataFrame({"rkey": hr.rkey, "one_num": one_num, "observed_at": hr.observed_at,
                       "source": hr.source.dictionary_encode().to_pandas()})
    for t in types:
        df[_kcol(t)] = hr.keys[t]
    return df


def _identifiers(records: pd.DataFrame, types: tuple[str, ...],
                 codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> pd.DataFrame:
    """id_type, key, one_num, n_records, last_seen per distinct (identifier, person).

    Grouped by dense value codes (``codes`` from :func:`hash_records`, else factorized here): most values
    belong to one person, so counts and latest dates are bincounts over codes; only values shared by
    several persons (refused links) need a pair grouping.
    """
    from features.identity.graph import _codes

    num = records["one_num"].to_numpy()
    obs = records["observed_at"].to_numpy().astype("datetime64[us]").view(np.int64)
    base = np.int64(num.max() + 1) if len(num) else np.int64(1)
    cols: dict[str, list] = {"tcode": [], "key": [], "one_num": [], "n_records": [], "last_seen": []}
    lowest = np.iinfo(np.int64).min
    for tcode, t in enumerate(types):
        code, uniq = codes[t] if codes is not None and t in codes else _codes(records[_kcol(t)].to_numpy())
        rows = np.flatnonzero(code >= 0)
        if not len(rows):
            continue
        cr, nr, orow = code[rows], num[rows], obs[rows]
        nv = len(uniq)
        some = np.full(nv, -1, np.int64)
        some[cr] = nr  # one holder per value
        shared = np.zeros(nv, bool)
        shared[cr[nr != some[cr]]] = True
        one = ~shared[cr]
        cnt = np.bincount(cr[one], minlength=nv)
        last = np.full(nv, lowest)
        np.maximum.at(last, cr[one], orow[one])
        sel = np.flatnonzero(cnt > 0)
        parts = [(uniq[sel], some[sel], cnt[sel], last[sel])]
        if shared.any():  # values held by several persons: group (value, person) pairs
            many = ~one
            pcode, puniq = pd.factorize(cr[many] * base + nr[many])
            plast = np.full(len(puniq), lowest)
            np.maximum.at(plast, pcode, orow[many])
            parts.append((uniq[puniq // base], puniq % base, np.bincount(pcode), plast))
        for key, person, n, seen in parts:
            for c, v in (("tcode", np.full(len(key), tcode, np.int8)), ("key", key), ("one_num", person),
                         ("n_records", n.astype(np.int64)), ("last_seen", seen)):
                cols[c].append(v)
    cat = {c: np.concatenate(v) if v else np.zeros(0, np.int8 if c == "tcode" else np.int64) for c, v in cols.items()}
    return pd.DataFrame({"id_type": pd.Categorical.from_codes(cat["tcode"], pd.Index(list(types), dtype=object)),
                         "key": cat["key"], "one_num": cat["one_num"], "n_records": cat["n_records"],
                         "last_seen": cat["last_seen"].view("datetime64[us]")})


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


def _golden(records: pd.DataFrame, profiles: pd.DataFrame | None, rules: Rules) -> pd.DataFrame:
    """Golden records of the persons in ``records`` (one_num, rkey, source, observed_at)."""
    prof = pd.DataFrame(columns=["one_num", "source", "observed_at"])
    if profiles is not None and len(profiles):
        rk = records["rkey"].to_numpy()
        order = np.argsort(rk, kind="stable")
        srt = rk[order]
        want = profiles["rkey"].to_numpy()
        pos = np.minimum(np.searchsorted(srt, want), max(len(srt) - 1, 0))
        ok = (srt[pos] == want) if len(srt) else np.zeros(len(profiles), bool)
        prof = profiles.loc[ok].assign(one_num=records["one_num"].to_numpy()[order[pos[ok]]])
        if "city" in prof.columns:  # one spelling per city before survivorship picks a source's value
            prof["city"] = clean_cities(prof["city"], rules.city_aliases, rules.blocked_any)
    return golden_records(records, prof, rules.source_priority)


def _summary(mode: str, run_id: str, n_in: int, hr: HashedRecords, records: pd.DataFrame, graph, changes,
             timings: dict, extra: dict | None = None, people: int | None = None) -> dict:
    counts = changes["change"].value_counts().to_dict() if len(changes) else {}
    return {"run_id": run_id, "mode": mode, "input_records": n_in, "records": len(records),
            "people": int(people if people is not None else records["one_num"].nunique()), "changes": {k: int(v) for k, v in counts.items()},
            "dropped_identifiers": hr.dropped, "links": graph.stats,
            "refused_values": int(len(graph.refused)), "seconds": timings, **(extra or {})}


def _check_meta(cfg: ResolveConfig, meta: dict, key: bytes, rules: Rules) -> None:
    if meta.get("key_fingerprint") != key_fingerprint(key):
        raise StateError(f"{cfg.identity_dir}: the identity state was built with another HMAC key; use the same "
                         "PORTRAIT_HMAC_KEY, or delete the identity directory to start over (one_ids will change)")
    if meta.get("types") != list(rules.priority):
        raise StateError(f"{cfg.identity_dir}: the identity state was built for identifier types "
                         f"{meta.get('types')}, the rules now list {list(rules.priority)}; run a full resolve "
                         "on a fresh identity directory")


def _rekey_previous(identity_dir: Path, meta: dict, rules: Rules, key: bytes) -> tuple[np.ndarray, np.ndarray, dict]:
    """(sorted record keys, one_num, meta) of a state written before record ids were hashed.

    Its records were keyed by their raw ids; a phone or email used as a record id is keyed by its hash
    now. Re-keying the last run's record_map the new way lets such records keep their one_id (else
    every one of them would look new and its person would get a second id).
    """
    import pyarrow.compute as pc

    from features.identity.hashing import record_keys
    from features.identity.record_ids import protect

    # the current record_map: its base plus the deltas of incremental runs since (people added or merged)
    rm = read_identity_table(identity_dir, "record_map").select(["source", "record_id", "one_id"])
    rk = np.asarray(record_keys(rm.column("source"), protect(rm.column("record_id"), rules, key)[0]))
    num = np.asarray(pc.cast(pc.utf8_slice_codeunits(rm.column("one_id"), 3), pa.int64()))
    order = np.argsort(rk, kind="stable")
    return rk[order], num[order], meta


def _read_input(cfg: ResolveConfig, records: pa.Table | None, step: Step) -> pa.Table:
    step("reading identity records")
    return check_identity_table(records) if records is not None else \
        read_identity_records(Path(cfg.raw_dir) / "identity_records.parquet")


def _run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


def write_outputs(cfg: ResolveConfig, run_id: str, hr: HashedRecords, order: np.ndarray, one_num: np.ndarray,
                  public: dict[str, pa.Table], changes: pd.DataFrame, aliases: pa.Table, meta: dict,
                  profiles: pd.DataFrame | None) -> None:
    """A full run's writes: the state (one segment), the public base tables, changelog; meta.json last."""
    from concurrent.futures import ThreadPoolExecutor

    d, sd = Path(cfg.identity_dir), state_dir(cfg.identity_dir)
    cols = {"rkey": hr.rkey, "observed_at": hr.observed_at.view(np.int64), **{_kcol(t): k for t, k in hr.keys.items()}}
    name = f"seg-{run_id}"
    with ThreadPoolExecutor(2) as pool:  # Parquet and file writes release the GIL
        seg = pool.submit(write_segment, sd, name, cols, pa.table({"source": hr.source, "record_id": hr.record_id}), order)
        write_base(d, {**public, "aliases": aliases}, run_id, pool)
        segment = seg.result()
    commit(d, {**meta, "segments": [segment]}, one_num, run_id, profiles)
    write_table(changelog_table(changes, run_id), d / "changelog" / f"{run_id}.parquet")


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
    key, rules = require_key(cfg.hmac_key, cfg.demo_key), load_rules(cfg.rules_path)
    prev = previous_ids(cfg.identity_dir)
    if prev is not None:
        _check_meta(cfg, prev[2], key, rules)
        if "record_ids" not in prev[2]:  # a state from before record ids were hashed: key its records as now
            prev = _rekey_previous(cfg.identity_dir, prev[2], rules, key)
    table = _read_input(cfg, records, step)
    run_id = _run_id()
    step("normalizing and hashing identifiers")
    hr = hash_records(table, rules, key)
    dropped = dropped_table(hr)
    hr, order = _dedupe(hr)
    n_in = table.num_rows
    del table
    timings["read_hash"] = time.perf_counter() - t
    t = time.perf_counter()
    step("linking records")
    graph = resolve_graph(hr.keys, rules.priority, rules.limits, codes=hr.codes)
    timings["graph"] = time.perf_counter() - t
    t = time.perf_counter()
    prev_num = np.full(len(hr), -1, np.int64)
    if prev is not None and len(prev[0]):
        rk, nums, _ = prev
        pos = np.minimum(np.searchsorted(rk, hr.rkey), len(rk) - 1)
        hit = rk[pos] == hr.rkey
        prev_num[hit] = nums[pos[hit]]
    a = assign_ids(graph.label, prev_num, hr.rkey, prev[2]["next_id"] if prev else 1)
    recs = _records_frame(hr, a.one_num, rules.priority)
    timings["assign_ids"] = time.perf_counter() - t
    t = time.perf_counter()
    step("golden records")
    if profiles is None:
        profiles = read_profiles(Path(cfg.raw_dir) / "profiles.parquet", rules, key)
    golden = _golden(recs, profiles, rules)
    identifiers = _identifiers(recs, rules.priority, hr.codes)
    refused = _refused_holders(graph.refused, recs)
    aliases = a.aliases.assign(run_id=run_id)
    if prev is not None and (Path(cfg.identity_dir) / "aliases.parquet").exists():
        aliases = pd.concat([aliases_frame(read_identity_table(cfg.identity_dir, "aliases")), aliases], ignore_index=True)
    public = {"record_map": pa.table({"source": hr.source, "record_id": hr.record_id, "one_id": format_ids(a.one_num)}),
              "golden": golden_table(golden), "identifiers": identifiers_table(identifiers),
              "refused": refused_table(refused), "dropped": dropped}
    timings["golden_identifiers"] = time.perf_counter() - t
    t = time.perf_counter()
    step("writing outputs")
    meta = {"next_id": int(a.next_id), "key_fingerprint": key_fingerprint(key), "types": list(rules.priority),
            "rules": rules.fingerprint(), "last_run": run_id, "record_key": RECORD_KEY_VERSION,
            "people": int(len(golden)), "record_ids": meta_entry(rules, hr.hashed_ids)}
    summary = _summary("full", run_id, n_in, hr, recs, graph, a.changes, timings, people=len(golden))
    prof_state = profiles if profiles is not None else pd.DataFrame(columns=["rkey", "source", "observed_at"])
    write_outputs(cfg, run_id, hr, order, a.one_num, public, a.changes, aliases_table(_follow(aliases)), meta,
                  prof_state)
    timings["write"] = time.perf_counter() - t
    summary["seconds"] = timings
    write_json(summary, Path(cfg.identity_dir) / "summary.json")
    return summary
