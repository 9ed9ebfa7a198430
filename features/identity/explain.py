"""Explain a person: which records, which shared identifiers linked them, which links were refused.

Everything is shown as keyed hashes (``id_hash``) and record ids; no raw phone or email
is stored, so none can be shown. The input may be anything :class:`IdentityIndex`
resolves (one_id, ``source:record_id``, raw identifier in any variant).

An identifier blocked from linking gets one line saying so (:func:`blocked`): a placeholder on the
rules' blocked lists (a kiosk's zero device id) names nobody, so it explains no one; a value several
people share (a store's tablet, refused by a limit) explains its latest holder, and says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.identity.hashing import hash_key, hex64
from features.identity.index import IdentityIndex, SharedIdentifier
from features.identity.normalize import blocked_by, normalize_one
from features.identity.stable import format_ids
from features.identity.state import load_state
from features.identity.store import aliases_frame
from features.identity.tables import read_identity_table


def _oid(num: int) -> str:
    return format_ids(np.array([num]))[0].as_py()


def explain(index: IdentityIndex, identity_dir: Path | str, text: str) -> dict | None:
    """A JSON-ready description of the person ``text`` resolves to, or None when it resolves to nobody."""
    num = index.resolve_num(text)
    if num is None:
        return None
    identity_dir = Path(identity_dir)
    st = load_state(identity_dir)
    rows = np.flatnonzero(st.one_num == num)  # only this person's rows are gathered
    rmap = st.strings(rows).to_pandas()
    types = list(index.rules.priority)
    mine = pd.DataFrame({"observed_at": st.values("observed_at", rows).view("datetime64[us]"),
                         **{f"k_{t}": st.values(f"k_{t}", rows) for t in types}})
    records = []
    for i, r in mine.iterrows():  # one person: a handful of rows
        ids = {t: hex64(np.array([r[f"k_{t}"]]))[0].as_py() for t in types if r[f"k_{t}"] != 0}
        records.append({"source": rmap.at[i, "source"], "record_id": rmap.at[i, "record_id"],
                        "observed_at": str(r["observed_at"]), "identifiers": ids})
    links = []
    for t in types:
        col = mine[f"k_{t}"]
        shared = col[col != 0].value_counts()
        for k, n in shared[shared >= 2].items():
            where = mine.index[col == k]
            links.append({"id_type": t, "id_hash": hex64(np.array([k]))[0].as_py(), "records": int(n),
                          "record_ids": [f"{rmap.at[j, 'source']}:{rmap.at[j, 'record_id']}" for j in where]})
    me = _oid(num)
    refused = read_identity_table(identity_dir, "refused").to_pandas()
    mine_ref = refused[refused["one_id"] == me]
    refusals = []
    for _, r in mine_ref.iterrows():
        others = refused[(refused["id_type"] == r["id_type"]) & (refused["id_hash"] == r["id_hash"]) & (refused["one_id"] != me)]
        refusals.append({"id_type": r["id_type"], "id_hash": r["id_hash"], "reason": r["reason"],
                         "also_held_by": others["one_id"].head(20).tolist(), "holders": int(len(others) + 1)})
    golden = read_identity_table(identity_dir, "golden").to_pandas()
    g = golden[golden["one_id"] == me]
    profile = {k: _plain(v) for k, v in g.drop(columns=["one_id"]).iloc[0].items()} if len(g) else {}
    aliases = aliases_frame(read_identity_table(identity_dir, "aliases"))
    return {"one_id": _oid(num), "query_was_alias": text.strip().upper() != _oid(num) and text.strip().upper().startswith("OID"),
            "aliases": [_oid(a) for a in aliases.loc[aliases["one_num"] == num, "alias_num"]],
            "golden": profile, "records": records, "links": links, "refused_links": refusals,
            "blocked": _shared(index, refused, text)}


def _plain(value: object) -> object:
    """A golden field as JSON wants it: numpy numbers as numbers (``n_records`` 2, not "2"), times as text."""
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def blocked(index: IdentityIndex, text: str) -> dict | None:
    """The blocked-list rule a raw identifier hits, or None.

    ``{"id_type", "value", "rule", "line"}``: the value as the rules compare it (a placeholder the
    rules file lists or matches, e.g. ``00000000-0000-0000-0000-000000000000``) and the rule. The
    type is the first in priority order the value is well-formed for (the zero UUID is a device id,
    though its digits also match the phone patterns), else the first that blocks it.
    """
    hits = [(t, hit) for t in index.rules.priority if (hit := blocked_by(text, t, index.rules)) is not None]
    if not hits:
        return None
    t, (value, rule, _) = next((h for h in hits if h[1][2]), hits[0])
    if t in ("phone", "email") and ".patterns" in rule:  # a pattern may match a real person's contact: show a part
        value = shown_in_part(value, t)
    kind = "any identifier" if rule == "blocked.any" else t
    return {"id_type": t, "value": value, "rule": rule,
            "line": f"{kind} '{value}' is on the blocked list ({rule}): it never links records, so it names nobody"}


def shown_in_part(value: str, id_type: str) -> str:
    """A phone or email shown in part (``t***@example.com``, ``138****0000``): enough to recognise, not to use."""
    if id_type == "email":
        user, _, domain = value.partition("@")
        return f"{user[:1]}***@{domain}"
    if len(value) >= 11:  # a mobile: its prefix and last four, four or more digits hidden
        return f"{value[:3]}****{value[-4:]}"
    # shorter (a landline, another country's plan): prefix and last four would leave one or two digits hidden
    return f"****{value[-4:]}" if len(value) >= 8 else "*" * len(value)


def _shared(index: IdentityIndex, refused: pd.DataFrame, text: str) -> dict | None:
    """When ``text`` is a raw identifier several persons hold (a link through it was refused by a limit):
    ``{"id_type", "id_hash", "rule", "holders", "line"}``; None otherwise."""
    try:
        index.resolve_num(text, personal=True)
        return None
    except SharedIdentifier as exc:
        t = exc.id_type
    norm = normalize_one(text, t, index.rules)
    h = hex64(np.array([hash_key(norm, t, index.key)]))[0].as_py()
    rows = refused[(refused["id_type"] == t) & (refused["id_hash"] == h)]
    reasons = sorted(set(rows["reason"].astype(str)))
    rule = ", ".join(f"{r} (limits.{r.split(':', 1)[1]} = {index.rules.limit(r.split(':', 1)[1])})"
                     if r.startswith("limit:") else r for r in reasons) or "a limit"
    holders = int(rows["one_id"].nunique()) if len(rows) else 2
    return {"id_type": t, "id_hash": h, "rule": rule, "holders": holders,
            "line": f"{t} {h} is shared by {holders} persons, blocked from linking by {rule}: "
                    "shown is its most recent holder, not the one person it names"}
