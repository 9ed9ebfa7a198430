"""Feast's online response assembled from stored protobuf bytes (the read side of the wide layout).

``get_online_features`` spends most of its time after the store read, in
``feast.utils._populate_response_from_feature_data``: one ``FeatureVector`` Python object
per feature, built from ``ValueProto`` objects. The wide SQLite layout stores a view's
features of one entity as a serialized ``feast.types.RepeatedValue``, whose entries
(field 1, length-delimited ``Value``) are byte for byte what a ``FeatureVector`` stores
in its own field 1 (``values``). So the response's ``results`` can be written as bytes,
slicing the stored payloads, and parsed once in C (``MergeFromString``).

The result is the same message the stock path builds (tests/feast compare them): per
requested feature, one value, one status (``PRESENT``, or ``NOT_FOUND`` with an empty
value) and one event timestamp (empty when not found) per output row.
"""

from __future__ import annotations

from typing import Optional, Sequence

_VARINT1 = [bytes((i,)) for i in range(128)]
_PRESENT, _NOT_FOUND = 1, 3  # feast.serving.FieldStatus
_NULL_VALUE = b"\x0a\x00"  # FeatureVector.values entry holding an empty Value
_NULL_TS = b"\x1a\x00"  # FeatureVector.event_timestamps entry holding an empty Timestamp

# An output row: None (entity not found) or (event time in UTC microseconds, RepeatedValue bytes, feature names).
Row = Optional[tuple[int, bytes, Sequence[str]]]


def varint(n: int) -> bytes:
    """Protobuf varint of a non-negative int."""
    if n < 128:
        return _VARINT1[n]
    out = bytearray()
    while n > 127:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def split_repeated(payload: bytes) -> list[bytes]:
    """The ``val`` entries of a serialized ``RepeatedValue``, each with its tag and length prefix."""
    out, i, n = [], 0, len(payload)
    while i < n:
        size = payload[i + 1]
        if size < 128:  # one-byte length: nearly every scalar value
            end = i + 2 + size
        else:
            j, size, shift = i + 1, 0, 0
            while True:
                b = payload[j]
                j += 1
                size |= (b & 0x7F) << shift
                shift += 7
                if b < 128:
                    break
            end = j + size
        out.append(payload[i:end])
        i = end
    return out


def _timestamp_entry(us: int) -> bytes:
    """A ``FeatureVector.event_timestamps`` entry (field 3) for UTC microseconds."""
    seconds, micros = divmod(us, 1_000_000)
    body = b""
    if seconds:
        body += b"\x08" + varint(seconds if seconds > 0 else seconds + (1 << 64))
    if micros:
        body += b"\x10" + varint(micros * 1000)
    return b"\x1a" + varint(len(body)) + body


def feature_vectors(requested: Sequence[str], rows: Sequence[Row]) -> tuple[bytes, int]:
    """``GetOnlineFeaturesResponse.results`` entries (field 2), one per requested feature, as bytes.

    ``rows`` has one entry per output row; rows of the same entity may share one tuple.
    Also returns the number of present values (for Feast's status metrics).
    """
    n = len(rows)
    if n == 1:  # one customer: the serving case
        return _one_row(requested, rows[0])
    found: dict[int, dict[str, bytes]] = {}
    per_row: list[Optional[dict[str, bytes]]] = []
    for row in rows:
        if row is None:
            per_row.append(None)
            continue
        key = id(row)
        if key not in found:
            found[key] = dict(zip(row[2], split_repeated(row[1])))
        per_row.append(found[key])
    stamps = b"".join(_NULL_TS if r is None else _timestamp_entry(r[0]) for r in rows)
    status_head = b"\x12" + varint(n)  # packed statuses (field 2), one byte each
    all_present = status_head + bytes((_PRESENT,)) * n + stamps
    out, present = [], 0
    for name in requested:
        values = [None if d is None else d.get(name) for d in per_row]
        if None in values:
            status = bytes(_NOT_FOUND if v is None else _PRESENT for v in values)
            present += status.count(_PRESENT)
            body = b"".join(_NULL_VALUE if v is None else v for v in values) + status_head + status + stamps
        else:
            body = b"".join(values) + all_present
            present += n
        out.append(b"\x12" + varint(len(body)) + body)
    return b"".join(out), present


_MISSING_ONE = _NULL_VALUE + b"\x12\x01" + bytes((_NOT_FOUND,))


def _one_row(requested: Sequence[str], row: Row) -> tuple[bytes, int]:
    """:func:`feature_vectors` for a single output row."""
    if row is None:
        body = _MISSING_ONE + _NULL_TS
        return (b"\x12" + varint(len(body)) + body) * len(requested), 0
    us, payload, names = row
    segments = split_repeated(payload)
    tail = b"\x12\x01" + bytes((_PRESENT,)) + _timestamp_entry(us)
    missing = _MISSING_ONE + tail[3:]  # a feature the stored row lacks: not found, at the row's time
    missing = b"\x12" + varint(len(missing)) + missing
    extra = len(tail)
    if len(requested) == len(names) and list(requested) == list(names):  # the whole view, in stored order
        values = segments
    else:
        values = list(map(dict(zip(names, segments)).get, requested))
    out = [missing if v is None else b"\x12" + varint(len(v) + extra) + v + tail for v in values]
    return b"".join(out), len(values) - values.count(None)
