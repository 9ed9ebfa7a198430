"""The identity graph: records linked by shared identifiers, with priority and per-type limits.

Input: per identifier type, one int64 key per record (a keyed hash of the normalized value;
0 = no value). Output: a group label per record (the smallest record index of its group).

Rules (Segment Unify style, deterministic, vectorized; no loop over records):

1. Types are applied one at a time in priority order (``member_id`` first). Each starts
   from the groups the higher-priority types built.
2. A value of the current type that appears in two or more groups proposes to merge them.
   The merge is **refused** when the merged group would hold more distinct values of the
   current type, or of any higher-priority type, than ``max(limit, the most any of the
   groups already holds)``. So a kiosk device shared by 50 shoppers (50 phones) links no one,
   a recycled phone does not join two member accounts, and a record with a mistyped phone
   that is already in a person's group through its member id does not block that person's
   later phone links. Lower-priority types never veto a merge.
3. Accepted values are merged with connected components (scipy.sparse.csgraph). A chain of
   individually accepted values can still join two conflicting groups (A-B by one phone, B-C
   by another, A and C with different member ids): such a merged group is checked again and,
   when it breaks a limit, all of this type's merges inside it are undone (``chain``).

Refused values are returned with the type whose limit refused them, so ``identity explain``
can show which links were not made and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


@dataclass
class GraphResult:
    label: np.ndarray  # int64 per record: smallest record index of its group
    refused: pd.DataFrame  # id_type, key, n_groups, reason ("limit:<type>" or "chain:<type>")
    stats: dict = field(default_factory=dict)  # per type: proposed, accepted, refused_limit, refused_chain


def _codes(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes 0..k-1 of the non-zero keys (-1 where the key is 0) and the keys per code."""
    keys = np.asarray(keys, np.int64)
    codes = np.full(len(keys), -1, np.int64)
    has = keys != 0
    c, uniq = pd.factorize(keys[has], sort=False)
    codes[has] = c
    return codes, np.asarray(uniq, np.int64)


def _unique_sorted(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a plain sort: numpy's hash-based unique is slower on these keys)."""
    s = np.sort(x)
    return s[np.r_[True, s[1:] != s[:-1]]] if len(s) else s


def _unique_pairs(a: np.ndarray, b: np.ndarray, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (a, b) pairs sorted by a then b (a, b non-negative, b < nb)."""
    u = _unique_sorted(a.astype(np.int64) * np.int64(nb) + b)
    return u // nb, u % nb


def _group_max(group: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    out = np.zeros(n_groups, np.int64)
    np.maximum.at(out, group, values)
    return out


def resolve_graph(keys: dict[str, np.ndarray], priority: tuple[str, ...], limits: dict[str, int],
                  use_limits: bool = True, codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> GraphResult:
    """Group records by shared identifiers under the priority and limit rules (module docstring).

    ``keys[t]`` is an int64 array (one per record, 0 = none) for each type in ``priority``;
    ``use_limits=False`` gives the naive baseline: plain connected components. ``codes`` (optional, per
    type: a dense code per record, -1 = none, and the key of each code) saves re-hashing the keys.
    """
    types = [t for t in priority if t in keys]
    n = len(next(iter(keys.values()))) if keys else 0
    given, codes, uniques = codes, {}, {}
    for t in types:
        codes[t], uniques[t] = given[t] if given is not None and t in given else _codes(keys[t])
    comp = np.arange(n, dtype=np.int64)
    refused: list[pd.DataFrame] = []
    stats: dict[str, dict] = {}
    for rank, t in enumerate(types):
        nv = len(uniques[t])
        st = stats[t] = {"proposed": 0, "accepted": 0, "refused_limit": 0, "refused_chain": 0}
        r = np.flatnonzero(codes[t] >= 0)
        if not len(r) or not nv:
            continue
        pv, pc = _unique_pairs(codes[t][r], comp[r], n)
        sel = np.bincount(pv, minlength=nv)[pv] >= 2
        pv, pc = pv[sel], pc[sel]
        if not len(pv):
            continue
        cand = _unique_sorted(pv)
        st["proposed"] = len(cand)
        touched = _unique_sorted(pc)
        tpos = np.full(n, -1, np.int64)  # comp label -> position in touched
        tpos[touched] = np.arange(len(touched))
        rec = np.flatnonzero(tpos[comp] >= 0)
        rec_comp = comp[rec]
        ok = np.ones(nv, bool)
        why = np.full(nv, -1, np.int64)
        per_type = {}
        checked = types[: rank + 1] if use_limits else []
        for j, u in enumerate(checked):
            cu = codes[u][rec]
            has = cu >= 0
            qc, qv = _unique_pairs(rec_comp[has], cu[has], max(len(uniques[u]), 1))
            cnt = np.bincount(qc, minlength=n)
            per_type[u] = (qc, qv, cnt)
            ln = cnt[pc]
            start = (np.cumsum(cnt) - cnt)[pc]  # qc is sorted by comp: where each comp's values begin
            rep_v = np.repeat(pv, ln)
            offs = np.repeat(start - (np.cumsum(ln) - ln), ln) + np.arange(int(ln.sum()))
            uv, _ = _unique_pairs(rep_v, qv[offs], max(len(uniques[u]), 1))
            union = np.bincount(uv, minlength=nv)
            allowed = np.maximum(limits.get(u, 1), _group_max(pv, ln, nv))
            bad = (union > allowed) & ok
            why[bad] = j
            ok &= ~bad
        refused_v = cand[~ok[cand]]
        st["refused_limit"] = len(refused_v)
        if len(refused_v):
            refused.append(pd.DataFrame({
                "id_type": t, "key": uniques[t][refused_v],
                "n_groups": np.bincount(pv, minlength=nv)[refused_v],
                "reason": [f"limit:{checked[k]}" for k in why[refused_v]]}))
        acc = ok[pv]
        nt = len(touched)
        acc_vals = _unique_sorted(pv[acc])
        if not len(acc_vals):
            continue
        a = tpos[pc[acc]]
        b = nt + np.searchsorted(acc_vals, pv[acc])
        size = nt + len(acc_vals)
        graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(size, size))
        n_groups, lab = connected_components(graph, directed=False)
        grp = lab[:nt]
        if use_limits:  # a chain of accepted values may still join conflicting groups
            bad_g = np.zeros(n_groups, bool)
            multi = np.bincount(grp, minlength=n_groups) > 1
            for u, (qc, qv, cnt) in per_type.items():
                g = grp[tpos[qc]]
                ug, _ = _unique_pairs(g, qv, max(len(uniques[u]), 1))
                union_g = np.bincount(ug, minlength=n_groups)
                mx = _group_max(grp, cnt[touched], n_groups)
                bad_g |= multi & (union_g > np.maximum(limits.get(u, 1), mx))
            if bad_g.any():
                val_grp = lab[nt + np.arange(len(acc_vals))]
                chain_v = acc_vals[bad_g[val_grp]]
                st["refused_chain"] = len(chain_v)
                refused.append(pd.DataFrame({
                    "id_type": t, "key": uniques[t][chain_v],
                    "n_groups": np.bincount(pv, minlength=nv)[chain_v], "reason": f"chain:{t}"}))
                undo = bad_g[grp]
                grp = np.where(undo, n_groups + np.arange(nt), grp)
                n_groups += nt
        st["accepted"] = len(acc_vals) - st["refused_chain"]
        new_label = np.full(n_groups, np.iinfo(np.int64).max)
        np.minimum.at(new_label, grp, touched)
        comp[rec] = new_label[grp[tpos[rec_comp]]]
    label = comp  # each merge keeps the smallest label, so labels are the groups' smallest record index
    cols = {"id_type": pd.Series(dtype=str), "key": pd.Series(dtype=np.int64),
            "n_groups": pd.Series(dtype=np.int64), "reason": pd.Series(dtype=str)}
    ref = pd.concat(refused, ignore_index=True) if refused else pd.DataFrame(cols)
    return GraphResult(label, ref, stats)

