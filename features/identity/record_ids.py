"""Record ids that are phone numbers or emails: replaced by their keyed hash before anything is stored.

A mini-program or web shop often keys its customers by phone or email, so ``record_id`` can
itself be personal data. Such a record id (one that normalizes as a valid phone or email
with :mod:`features.identity.normalize`) becomes ``hashed-phone-<32 hex>`` /
``hashed-email-<32 hex>``: the identifier hash of :func:`~features.identity.hashing.hash_identifier`
(the same HMAC key, so the first 16 hex digits are that phone's ``id_hash``). Other record ids
are kept as they are. The replacement happens in :func:`features.identity.prepare.hash_records`
(and for profiles), so record_map, the state (record keys and strings), dropped, explain and the
changelog only ever see the hash; lookups by ``source:<raw record_id>`` and the feature build's
join of the raw fact tables hash the same way (:func:`protect_one`, :func:`fact_id_mapper`).

Only the phone/email validity rules are used, never the blocked lists (a placeholder record id
is harmless and must stay joinable); they are stored in the state's meta so every reader hashes
exactly as the resolve run did, whatever rules file it was given.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.identity.config import Rules
from features.identity.hashing import MissingKeyError, hash_identifier, hmac128, key_fingerprint, require_key, to_hex
from features.identity.normalize import normalize_one, normalize_values

TYPES = ("phone", "email")  # identifier types a record id is checked against, in this order
PREFIX = "hashed-"  # "hashed-phone-<32 hex>": recognisable in record_map and explain output
# what a phone (digits, + and separators) or an email ('@') can look like, full-width forms included
CANDIDATE = r"^[\s0-9+\-().０-９＋－（）．]+$|[@＠]"


def rid_rules(rules: Rules) -> Rules:
    """The validity part of ``rules`` (country code, phone and email patterns), without blocked lists."""
    return Rules(priority=TYPES, limits={}, source_priority=(), phone_country_code=rules.phone_country_code,
                 phone_valid=rules.phone_valid, email_valid=rules.email_valid)


def meta_entry(rules: Rules, hashed: int) -> dict:
    """What the state's meta.json keeps: the rules used and how many distinct record ids were hashed."""
    r = rid_rules(rules)
    return {"phone_country_code": r.phone_country_code, "phone_valid": r.phone_valid,
            "email_valid": r.email_valid, "hashed": int(hashed)}


def rules_of_meta(entry: dict | None, fallback: Rules) -> Rules:
    """The rules a state was hashed with (``fallback`` for states written before record ids were hashed)."""
    if not entry:
        return rid_rules(fallback)
    return Rules(priority=TYPES, limits={}, source_priority=(), phone_country_code=str(entry["phone_country_code"]),
                 phone_valid=str(entry["phone_valid"]), email_valid=str(entry["email_valid"]))


def protect(record_id: pa.Array | pa.ChunkedArray, rules: Rules, key: bytes) -> tuple[pa.Array, int]:
    """(record ids with phones/emails replaced by their hash, number of distinct ids replaced); no nulls."""
    if isinstance(record_id, pa.ChunkedArray):
        record_id = record_id.combine_chunks() if record_id.num_chunks else pa.array([], pa.string())
    if not len(record_id):
        return record_id, 0
    rr = rid_rules(rules)
    # one cheap pass over the raw ids first: only ids of digits and phone punctuation, or with an '@',
    # can normalize as a phone or an email (10M member-style ids: 0.7 s; dictionary-encoding them all
    # first cost 2.9 s); the normalizers' several regexes then run once per distinct candidate
    maybe = pc.fill_null(pc.match_substring_regex(record_id, CANDIDATE), False)
    if not pc.any(maybe).as_py():
        return record_id, 0
    rows = np.flatnonzero(maybe.to_numpy(zero_copy_only=False))
    enc = pc.dictionary_encode(record_id.take(pa.array(rows)))
    cand = enc.dictionary.cast(pa.string())
    hashed = pa.nulls(len(cand), pa.string())  # per candidate: its hashed form, null while not a phone/email
    for t in TYPES:
        norm, _ = normalize_values(cand, t, rr)
        hit = pc.and_(pc.is_valid(norm), pc.is_null(hashed))
        if not pc.any(hit).as_py():
            continue
        k1, k2 = hmac128(pc.filter(norm, hit), t, key)
        hashed = pc.replace_with_mask(hashed, hit, pc.binary_join_element_wise(pa.scalar(f"{PREFIX}{t}-"),
                                                                               to_hex(k1, k2), ""))
    done = pc.is_valid(hashed).to_numpy(zero_copy_only=False)
    if not done.any():
        return record_id, 0
    idx = enc.indices.to_numpy(zero_copy_only=False)
    changed = done[idx]  # per candidate row: its id was a phone/email
    mask = np.zeros(len(record_id), bool)
    mask[rows[changed]] = True
    values = hashed.take(pa.array(idx[changed])).cast(record_id.type)
    return pc.replace_with_mask(record_id, pa.array(mask), values), int(done.sum())


def as_identifiers(table: pa.Table, record_id: pa.Array, rules: Rules) -> pa.Table:
    """``table`` with a record id that is a phone (email) filled into its empty ``phone`` (``email``) cell.

    A POS keyed by phone usually exports no separate phone column: its record id is the only
    place the number appears. Left out of the identifiers, such a record would never link to the
    CRM or app record holding the same phone, and that customer's POS orders would count for a
    second, phone-less person. A phone/email cell already filled is kept (a record id is never
    preferred over the column the source meant as the contact).
    """
    rr = rid_rules(rules)
    if not len(record_id):
        return table
    enc = pc.dictionary_encode(record_id)
    dic = enc.dictionary.cast(pa.string())
    maybe = pc.fill_null(pc.match_substring_regex(dic, CANDIDATE), False)
    if not pc.any(maybe).as_py():
        return table
    taken = pa.array(np.zeros(len(dic), bool))
    for t in TYPES:  # phone first, as protect() hashes: an id is filled into one column at most
        if t not in rules.priority:
            continue
        norm, _ = normalize_values(dic, t, rr)
        hit = pc.and_(pc.and_(maybe, pc.is_valid(norm)), pc.invert(taken))
        taken = pc.or_(taken, hit)
        if not pc.any(hit).as_py():
            continue
        per_record = pc.if_else(hit.take(enc.indices), record_id.cast(pa.string()), pa.scalar(None, pa.string()))
        if t in table.column_names:
            col = table.column(t)
            col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) and col.num_chunks else col
            if isinstance(col, pa.ChunkedArray):  # a table of no chunks has no rows either
                col = pa.array([], pa.string())
            if pa.types.is_dictionary(col.type):
                col = col.dictionary_decode()
            col = pc.cast(col, pa.string())
            empty = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(col), ""), True)
            filled = pc.if_else(pc.and_(empty, pc.is_valid(per_record)), per_record, col)
            table = table.set_column(table.column_names.index(t), t, filled)
        else:
            table = table.append_column(t, per_record)
    return table


def protect_one(record_id: str, rules: Rules, key: bytes) -> str:
    """:func:`protect` of one record id (lookups by ``source:record_id``)."""
    rr = rid_rules(rules)
    for t in TYPES:
        norm = normalize_one(record_id, t, rr)
        if norm is not None:
            return f"{PREFIX}{t}-{hash_identifier(t, norm, key)}"
    return record_id


def fact_id_mapper(identity_dir: Path | str, hmac_key: str | None,
                   demo_key: bool = False) -> Callable[[pa.Array], pa.Array] | None:
    """For joining raw fact tables (orders, events) to record_map: raw record id -> stored record id.

    None when the identity run hashed no record id (nothing to map, no key needed). Otherwise the
    same key as the identity run is required (:class:`MissingKeyError` says so).
    """
    meta_path = Path(identity_dir) / "state" / "meta.json"
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    entry = meta.get("record_ids") or {}
    if not entry.get("hashed"):
        return None
    # a state made with the public demo key (`--demo-key`) protects nothing: its key needs no setting
    demo_key = demo_key or (not hmac_key and meta.get("key_fingerprint") == key_fingerprint(require_key(None, True)))
    try:
        key = require_key(hmac_key, demo_key)
    except MissingKeyError as exc:
        raise MissingKeyError(f"{identity_dir}: some record ids are phone numbers or emails, stored hashed; "
                              f"joining orders and events to them needs the identity key. {exc}") from exc
    if meta.get("key_fingerprint") != key_fingerprint(key):
        raise MissingKeyError(f"{identity_dir}: some record ids are stored hashed with another HMAC key; set "
                              "PORTRAIT_HMAC_KEY to the key of `portrait identity resolve`")
    rules = rules_of_meta(entry, Rules(priority=TYPES, limits={}, source_priority=()))
    return lambda ids: protect(ids, rules, key)[0]
