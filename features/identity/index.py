"""IdentityIndex: map any identifier a caller holds to a one_id (for serving and the CLI).

Accepted inputs, tried in this order:

1. a one_id (``OID0000000042``; an alias left by a merge maps to the surviving id);
2. ``source:record_id`` of a known source (``crm:C0918680385090``; a record id that is a phone or
   email is hashed first, as the resolve run stored it: :mod:`features.identity.record_ids`);
3. a raw identifier in any variant (``+86 154-7800-8866``, `` Foo@Bar.COM``, ``M1610771097``):
   normalized and hashed with the same key as the resolve run, then looked up per type in
   priority order. A value held by several persons (a refused, shared value) resolves to the
   person who used it most recently, except where one person's data is shown (``personal=True``,
   the 360 profile): there it raises :class:`SharedIdentifier`, since whoever holds a kiosk's
   device id must not see its last shopper's profile.

Nothing raw is kept: the index holds int64 hash keys and id numbers only (sorted arrays,
binary search; about 30 bytes per record and per identifier).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from features.identity.config import Rules, load_rules
from features.identity.hashing import hash_key, key_fingerprint, keys_of_hex, record_key, require_key
from features.identity.normalize import normalize_one
from features.identity.record_ids import protect_one, rules_of_meta
from features.identity.stable import format_ids, parse_id, parse_ids
from features.identity.state import FORMAT, StateError, has_state, live_ids, load_state, state_dir
from features.identity.store import aliases_frame
from features.identity.tables import read_identity_table


def _lookup(sorted_keys: np.ndarray, values: np.ndarray, key: int) -> int | None:
    i = int(np.searchsorted(sorted_keys, key))
    if i < len(sorted_keys) and sorted_keys[i] == key:
        return int(values[i])
    return None


class SharedIdentifier(LookupError):
    """The identifier is held by several people (a family phone, a store device): it names no one person."""

    def __init__(self, id_type: str) -> None:
        super().__init__(f"this {id_type} is shared by several people")
        self.id_type = id_type


@dataclass
class IdentityIndex:
    key: bytes
    rules: Rules
    people: np.ndarray  # sorted one_num of every current person
    aliases: dict[int, int]  # merged-away one_num -> surviving one_num
    record_keys: np.ndarray  # sorted rkey
    record_people: np.ndarray  # one_num per rkey
    ident: dict[str, tuple[np.ndarray, np.ndarray]]  # id_type -> (sorted key, one_num)
    sources: frozenset[str]
    shared: dict[str, np.ndarray] | None = None  # id_type -> sorted keys held by more than one person
    rid_rules: Rules | None = None  # how the resolve run recognised phone/email record ids (hashed, record_ids.py)

    @classmethod
    def load(cls, identity_dir: Path | str, hmac_key: str | None, demo_key: bool = False,
             rules_path: Path | None = None) -> IdentityIndex:
        """Load from an identity directory written by ``portrait identity resolve`` (same key)."""
        import json

        identity_dir = Path(identity_dir)
        if not has_state(identity_dir):
            raise StateError(f"{identity_dir}: no identity state; run `portrait identity resolve` first")
        key = require_key(hmac_key, demo_key)
        sd = state_dir(identity_dir)
        meta = json.loads((sd / "meta.json").read_text())
        if meta.get("key_fingerprint") != key_fingerprint(key):
            raise StateError(f"{identity_dir}: built with another HMAC key; lookups would find nothing")
        if meta.get("format") != FORMAT:
            raise StateError(f"{identity_dir}: identity state written by an older version; run `portrait identity resolve`")
        st = load_state(identity_dir)
        rk, rn = live_ids(st)  # live records, sorted by record key
        it = read_identity_table(identity_dir, "identifiers")
        ids = pd.DataFrame({"id_type": it.column("id_type").to_pandas(), "key": keys_of_hex(it.column("id_hash")),
                            "one_num": parse_ids(it.column("one_id")), "n_records": it.column("n_records").to_numpy(),
                            "last_seen": it.column("last_seen").to_numpy()})
        ident, shared = {}, {}
        for t, g in ids.groupby("id_type", sort=False):
            people = g.groupby("key", sort=True)["one_num"].nunique()
            shared[str(t)] = people.index[people.to_numpy() > 1].to_numpy(np.int64)
            g = g.sort_values(["key", "last_seen", "n_records"], kind="stable").drop_duplicates("key", keep="last")
            ident[str(t)] = (g["key"].to_numpy(np.int64), g["one_num"].to_numpy(np.int64))
        al = aliases_frame(read_identity_table(identity_dir, "aliases"))
        golden = parse_ids(read_identity_table(identity_dir, "golden", columns=["one_id"]).column("one_id"))
        sources = set()
        for seg in st.segments:
            sources |= set(pa.compute.unique(seg.strings().column("source")).to_pylist())
        return cls(key, load_rules(rules_path), np.sort(golden),
                   dict(zip(al["alias_num"].tolist(), al["one_num"].tolist())), rk, rn, ident,
                   frozenset(str(s) for s in sources), shared, rules_of_meta(meta.get("record_ids"), load_rules(rules_path)))

    def __len__(self) -> int:
        return len(self.people)

    def resolve_num(self, text: str, personal: bool = False) -> int | None:
        """The one_id number for ``text`` (see the module docstring), or None.

        With ``personal``, a raw identifier shared by several people raises :class:`SharedIdentifier`.
        """
        if not isinstance(text, str) or not text.strip():
            return None
        num = parse_id(text)
        if num is not None:
            num = self.aliases.get(num, num)
            return num if _lookup(self.people, self.people, num) is not None else None
        head, sep, tail = text.strip().partition(":")
        if sep and head not in self.sources:  # "POS:…" for source pos: a source name's case is not information
            same = [s for s in self.sources if s.lower() == head.strip().lower()]
            head = same[0] if len(same) == 1 else head
        if sep and head in self.sources and tail:
            # a phone/email record id is stored as its hash: look it up the same way
            rid = protect_one(tail, self.rid_rules or self.rules, self.key)
            found = _lookup(self.record_keys, self.record_people, record_key(head, rid))
            if found is not None:
                return found
        for t in self.rules.priority:
            if t not in self.ident:
                continue
            norm = normalize_one(text, t, self.rules)
            if norm is None:
                continue
            key = hash_key(norm, t, self.key)
            found = _lookup(*self.ident[t], key)
            if found is not None:
                held = (self.shared or {}).get(t)
                if personal and held is not None and _lookup(held, held, key) is not None:
                    raise SharedIdentifier(t)
                return found
        return None

    def resolve(self, text: str, personal: bool = False) -> str | None:
        """The one_id for a one_id, ``source:record_id`` or raw identifier; None when unknown."""
        num = self.resolve_num(text, personal)
        return None if num is None else format_ids(np.array([num]))[0].as_py()

    def resolve_many(self, texts: list[str]) -> list[str | None]:
        return [self.resolve(t) for t in texts]
