"""Golden records: one merged profile per one_id.

Survivorship, per attribute (``birth_year``, ``gender``, ``city``, ``reg_channel``,
``occupation``): the value comes from the person's records of the highest-priority
source that has a non-null value for it (``source_priority`` in the rules: crm, app,
miniprogram, pos, web; unlisted sources rank last); among those records, the most
recently observed wins. ``first_seen``/``last_seen`` are the earliest/latest
``observed_at`` of the person's identity records, ``n_records`` their count and
``sources`` the sorted, comma-joined source names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ATTRS = ("birth_year", "gender", "city", "reg_channel", "occupation")
GOLDEN_COLUMNS = ("one_id", *ATTRS, "first_seen", "last_seen", "n_records", "sources")


def source_rank(sources: pd.Series, priority: tuple[str, ...]) -> np.ndarray:
    """Rank of each source name in ``priority`` (0 = highest); unlisted ones after all listed."""
    cat = pd.Categorical(sources)
    table = np.array([priority.index(c) if c in priority else len(priority) for c in cat.categories] + [len(priority) + 1])
    return table[cat.codes]


def golden_records(records: pd.DataFrame, profiles: pd.DataFrame, priority: tuple[str, ...]) -> pd.DataFrame:
    """Merge per person. ``records``: one_num, source, observed_at (identity records);
    ``profiles``: one_num, source, observed_at and the :data:`ATTRS` (missing ones are null).
    Returns one row per one_num (column ``one_num``; the caller formats ``one_id``)."""
    rec = records[["one_num", "source", "observed_at"]]
    g = rec.groupby("one_num", sort=True)
    out = pd.DataFrame({"first_seen": g["observed_at"].min(), "last_seen": g["observed_at"].max(),
                        "n_records": g.size().astype(np.int64)})
    codes, names = pd.factorize(rec["source"].astype(str), sort=True)
    if len(names) <= 62:
        mask = np.zeros(int(rec["one_num"].max()) + 1 if len(rec) else 0, np.int64)
        np.bitwise_or.at(mask, rec["one_num"].to_numpy(), np.left_shift(1, codes).astype(np.int64))
        uniq, inv = np.unique(mask[out.index.to_numpy()], return_inverse=True)
        text = np.array([",".join(names[i] for i in range(len(names)) if m >> i & 1) for m in uniq.tolist()], dtype=object)
        out["sources"] = text[inv]
    else:  # many sources: slower but general
        out["sources"] = rec.groupby("one_num")["source"].agg(lambda s: ",".join(sorted(set(s))))
    if len(profiles):
        prof = profiles.assign(_rank=source_rank(profiles["source"].astype(str), priority))
        prof = prof.sort_values(["one_num", "_rank", "observed_at"], ascending=[True, True, False], kind="stable")
        attrs = [a for a in ATTRS if a in prof.columns]
        merged = prof.groupby("one_num", sort=True)[attrs].first()
        out = out.join(merged, how="left")
    for a in ATTRS:
        if a not in out.columns:
            out[a] = pd.Series(pd.NA, index=out.index, dtype="string" if a != "birth_year" else "Int64")
    if "birth_year" in out.columns:
        out["birth_year"] = out["birth_year"].astype("Int64")
    out = out.reset_index().rename(columns={"index": "one_num"})
    return out[["one_num", *ATTRS, "first_seen", "last_seen", "n_records", "sources"]]
