"""Normalization of raw identifiers, one canonical form per type, vectorized with Arrow.

Each column is dictionary-encoded first, so the string work runs once per *distinct*
raw value. Per type:

- ``phone``: spaces, dashes, dots and brackets removed; a ``+86`` / ``0086`` prefix
  (the configured country code) removed, and a bare ``86`` prefix when what remains is a
  valid number; then checked against ``phone.valid`` (default: 11-digit mainland mobile).
- ``email``: trimmed, lowercased, checked against ``email.valid``.
- ``device_id``: trimmed, lowercased (UUIDs are case-insensitive).
- ``member_id``, ``unionid``, ``openid``, ``cookie_id``: trimmed (case kept: WeChat ids are
  case-sensitive); values with inner whitespace or over 200 characters are invalid.

Values matching the blocked lists of the rules (placeholders such as ``null``,
``00000000000``, ``test@test.com``) are dropped with reason ``blocked``, malformed ones with
``invalid``; both are counted, neither stops the run.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.identity.config import Rules

MAX_LEN = 200  # longer identifiers are treated as garbage
# full-width digits and ＠ from a CJK input method (a phone pasted into explain or an --ids file) are the
# same phone/email; imports fold them already, lookups and hand-written Parquet did not
_FOLDED = ("phone", "email")
_REASONS = np.array([None, "blocked", "invalid"], dtype=object)


@dataclass
class NormalizedColumn:
    values: pa.Array  # the distinct normalized values (no nulls): variants of one value are one entry
    indices: np.ndarray  # int64 per record: raw dictionary entry, -1 when the raw value is null/blank
    reasons: dict[str, int]  # dropped records by reason, e.g. {"blocked": 12, "invalid": 3}
    entry_reason: np.ndarray  # object: "blocked" / "invalid" / None per raw dictionary entry
    codes: np.ndarray  # int64 per record: position in ``values``, -1 when missing, blocked or invalid


def _combine(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.string())
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_null(arr.type):
        arr = arr.cast(pa.string())
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    return arr


def _any_match(values: pa.Array, patterns: tuple[str, ...]) -> pa.Array:
    out = pa.array(np.zeros(len(values), bool))
    for pat in patterns:
        out = pc.or_(out, pc.fill_null(pc.match_substring_regex(values, pat), False))
    return out


def _phone(trimmed: pa.Array, rules: Rules) -> pa.Array:
    plain = pc.fill_null(pc.match_substring_regex(trimmed, rules.phone_valid), False)
    if pc.all(plain).as_py() is not False:
        return trimmed
    rest = pc.filter(trimmed, pc.invert(plain))  # only formatted values need the regex work
    fixed = _phone_formatted(rest, rules)
    out = pc.replace_with_mask(trimmed, pc.invert(plain), fixed) if len(rest) else trimmed
    return out


def _phone_formatted(trimmed: pa.Array, rules: Rules) -> pa.Array:
    digits = pc.replace_substring_regex(trimmed, r"[\s\-().]", "")
    cc = rules.phone_country_code
    prefixed = pc.replace_substring_regex(digits, rf"^(\+|00){cc}", "")
    bare = pc.replace_substring_regex(digits, rf"^{cc}", "")
    use_bare = pc.and_(pc.match_substring_regex(bare, rules.phone_valid),
                       pc.invert(pc.match_substring_regex(prefixed, rules.phone_valid)))
    return pc.if_else(use_bare, bare, prefixed)


def normalize_values(values: pa.Array, id_type: str, rules: Rules) -> tuple[pa.Array, pa.Array]:
    """Normalize distinct raw values; returns (normalized or null, reason or null) per value."""
    if id_type in _FOLDED and pc.all(pc.string_is_ascii(values)).as_py() is False:  # ASCII: nothing to fold
        values = pc.utf8_normalize(values, form="NFKC")
    trimmed = pc.utf8_trim_whitespace(values)
    lowered = pc.utf8_lower(trimmed)
    if id_type == "phone":
        norm = _phone(trimmed, rules)
        valid = pc.match_substring_regex(norm, rules.phone_valid)
    elif id_type == "email":
        norm = lowered
        valid = pc.match_substring_regex(norm, rules.email_valid)
    else:
        norm = lowered if id_type == "device_id" else trimmed
        valid = pc.and_(pc.invert(pc.match_substring_regex(norm, r"\s")),
                        pc.less_equal(pc.utf8_length(norm), MAX_LEN))
    blocked = pc.is_in(lowered, value_set=pa.array(list(rules.blocked_any), pa.string()))
    blocked = pc.or_(blocked, pc.is_in(norm, value_set=pa.array(list(rules.blocked_values.get(id_type, ())), pa.string())))
    blocked = pc.or_(blocked, _any_match(norm, rules.blocked_patterns.get(id_type, ())))
    blocked = pc.fill_null(blocked, False)
    valid = pc.fill_null(valid, False)
    reason = pc.if_else(blocked, "blocked", pc.if_else(valid, pa.scalar(None, pa.string()), "invalid"))
    keep = pc.and_(pc.invert(blocked), valid)
    return pc.if_else(keep, norm, pa.scalar(None, pa.string())), reason


def normalize_column(raw: pa.Array | pa.ChunkedArray, id_type: str, rules: Rules) -> NormalizedColumn:
    """Normalize one identifier column of the identity records (see the module docstring)."""
    arr = _combine(raw)
    enc = pc.dictionary_encode(arr)
    indices = enc.indices.to_numpy(zero_copy_only=False)
    indices = np.where(enc.is_null().to_numpy(zero_copy_only=False), -1, indices).astype(np.int64)
    norm, reason = normalize_values(enc.dictionary, id_type, rules)
    # blank raw strings are "missing", not "blocked": do not count them
    blank = pc.equal(pc.utf8_trim_whitespace(enc.dictionary), "").to_numpy(zero_copy_only=False)
    counts = np.bincount(indices[indices >= 0], minlength=len(enc.dictionary))
    reasons: dict[str, int] = {}
    code = np.zeros(len(enc.dictionary), np.int8)  # 0 kept, 1 blocked, 2 invalid (no Python string per value)
    for c, label in ((1, "blocked"), (2, "invalid")):
        hit = pc.fill_null(pc.equal(reason, label), False).to_numpy(zero_copy_only=False)
        code[hit] = c
        n = int(counts[hit & ~blank].sum())
        if n:
            reasons[label] = n
    if blank.any():  # blank strings become missing values
        indices = np.where(blank[np.maximum(indices, 0)] & (indices >= 0), -1, indices)
    distinct = pc.dictionary_encode(norm)  # raw variants of one value share a code: hash each value once
    entry_code = np.append(pc.fill_null(distinct.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64), -1)
    return NormalizedColumn(distinct.dictionary, indices, reasons, _REASONS[code], entry_code[indices])


@lru_cache(maxsize=64)
def _re(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _one(value: str, id_type: str, rules: Rules) -> tuple[str, str, bool] | None:
    """(lowered trimmed value, normalized value, valid) of one non-null value; None when blank."""
    if id_type in _FOLDED:
        value = unicodedata.normalize("NFKC", value)
    trimmed = value.strip()
    lowered = trimmed.lower()
    if not trimmed:
        return None
    if id_type == "phone":
        digits = re.sub(r"[\s\-().]", "", trimmed)
        cc = rules.phone_country_code
        prefixed = re.sub(rf"^(\+|00){cc}", "", digits, count=1)
        bare = re.sub(rf"^{cc}", "", digits, count=1)
        valid = _re(rules.phone_valid)
        norm = bare if valid.search(bare) and not valid.search(prefixed) else prefixed
        ok = bool(valid.search(norm))
    elif id_type == "email":
        norm = lowered
        ok = bool(_re(rules.email_valid).search(norm))
    else:
        norm = lowered if id_type == "device_id" else trimmed
        ok = not re.search(r"\s", norm) and len(norm) <= MAX_LEN
    return lowered, norm, ok


def blocked_by(value: str | None, id_type: str, rules: Rules) -> tuple[str, str, bool] | None:
    """(the value as compared, the rule, well-formed) when ``value`` is on the rules' blocked lists as
    ``id_type``, else None.

    The rule reads as in rules.yaml: ``blocked.any``, ``blocked.<type>.values`` or
    ``blocked.<type>.patterns '<regex>'``; well-formed says whether the value would otherwise be a
    valid ``id_type`` (a zero UUID is a device id, not a phone). Same steps as :func:`normalize_one`
    (``identity explain`` says why a placeholder names nobody).
    """
    one = None if value is None else _one(value, id_type, rules)
    if one is None:
        return None
    lowered, norm, ok = one
    if lowered in rules.blocked_any:
        return lowered, "blocked.any", ok
    if norm in rules.blocked_values.get(id_type, ()):
        return norm, f"blocked.{id_type}.values", ok
    for p in rules.blocked_patterns.get(id_type, ()):
        if _re(p).search(norm):
            return norm, f"blocked.{id_type}.patterns '{p}'", ok
    return None


def normalize_one(value: str | None, id_type: str, rules: Rules) -> str | None:
    """Normalize a single value (lookups), the same rules as :func:`normalize_values` in plain Python.

    Returns None when the value is blank, blocked or invalid. Equivalence with the vectorized
    form is tested on generated identifiers.
    """
    one = None if value is None else _one(value, id_type, rules)
    if one is None:
        return None
    lowered, norm, ok = one
    if lowered in rules.blocked_any:
        return None
    if norm in rules.blocked_values.get(id_type, ()) or any(_re(p).search(norm) for p in rules.blocked_patterns.get(id_type, ())):
        return None
    return norm if ok else None
