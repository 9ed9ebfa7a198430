"""Vectorized encoding of Arrow columns into Feast's protobuf wire format.

Stock materialization builds one Python ``ValueProto`` per cell
(``feast.utils._convert_arrow_to_proto``) and serializes it again inside the online
store: at ~100 features that is ~100 Python objects per customer, the bulk of the
time. Here the bytes are produced with numpy instead. Each column becomes a few
*segments*: a byte matrix with one row per entity plus the number of bytes of each row
that are used (a tag, a varint, a fixed-width payload, a padded string). A message is
the concatenation of its segments' used bytes, so a whole batch of messages is one
boolean-mask gather over the side-by-side matrices. The output is byte-identical to
``ValueProto.SerializeToString()`` (tests/feast compare the two), so readers stay plain
protobuf:

- :func:`value_bytes` - one serialized ``feast.types.Value`` per row (Redis layout).
- :func:`repeated_value_bytes` - one serialized ``feast.types.RepeatedValue`` per row
  holding every feature of a view in order (the wide SQLite layout).
- :func:`entity_key_bytes` - ``serialize_entity_key`` (v3) for single-key entities.

Types without a vectorized encoder (lists, bytes, timestamps...) fall back to Feast's
own per-value conversion, so every Feast type still works, only slower.
"""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# feast.types.Value field numbers (Value.proto)
_FIELD = {"DOUBLE": 5, "FLOAT": 6, "INT32": 3, "INT64": 4, "BOOL": 7, "STRING": 2}
_STRING_TYPE = 2  # ValueType.STRING, used in entity keys
_REPEATED_VAL = (1 << 3) | 2  # RepeatedValue.val: field 1, length-delimited

Segment = tuple[np.ndarray, np.ndarray]  # (n x width uint8 matrix, bytes used per row)


def _varint(v: np.ndarray) -> Segment:
    """Protobuf varints of uint64 ``v``."""
    v = v.astype(np.uint64, copy=True)
    mat = np.zeros((len(v), 10), dtype=np.uint8)
    length = np.ones(len(v), dtype=np.int64)
    for i in range(10):
        mat[:, i] = (v & np.uint64(0x7F)).astype(np.uint8)
        v >>= np.uint64(7)
        more = v != 0
        if not more.any():
            return mat[:, : i + 1], length
        mat[more, i] |= 0x80
        length += more
    return mat, length


def _const(byte: int, n: int) -> Segment:
    return np.full((n, 1), byte, dtype=np.uint8), np.ones(n, dtype=np.int64)


def _padded(values: pa.Array) -> Segment:
    """The bytes of each binary/string value, left-aligned in a matrix as wide as the longest."""
    values = values.cast(pa.large_binary())
    n = len(values)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64, count=n + 1, offset=values.offset * 8)
    data = values.buffers()[2]
    data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    lens = np.diff(offsets)
    width = int(lens.max()) if n else 0
    if width == 0:
        return np.zeros((n, 0), dtype=np.uint8), lens
    idx = offsets[:-1, None] + np.arange(width)
    used = np.arange(width) < lens[:, None]
    mat = np.zeros((n, width), dtype=np.uint8)
    mat[used] = data[idx[used]]
    return mat, lens


def _gather(segments: list[Segment]) -> pa.Array:
    """A binary array whose row i concatenates the used bytes of every segment's row i."""
    n = len(segments[0][1])
    mats = [m for m, _ in segments]
    used = [np.arange(m.shape[1]) < ln[:, None] for m, ln in segments]
    data = np.hstack(mats)[np.hstack(used)]  # row-major, so each row's bytes stay contiguous
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sum(ln for _, ln in segments), out=offsets[1:])
    if offsets[-1] < 2**31:
        return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)])
    return pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _fallback(col: pa.Array, value_type) -> list[Segment]:
    from feast.type_map import python_values_to_proto_values

    protos = python_values_to_proto_values(col.to_pylist(), value_type)
    return [_padded(pa.array([p.SerializeToString() for p in protos], pa.binary()))]


def _value_segments(col: pa.Array | pa.ChunkedArray, value_type) -> list[Segment]:
    """The segments of one serialized ``Value`` per row (a null row uses no bytes)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    name, n = value_type.name, len(col)
    if name not in _FIELD:
        return _fallback(col, value_type)
    if pa.types.is_null(col.type):  # a column of nulls only (pandas' None): type it, every row is empty
        col = col.cast({"STRING": pa.string(), "DOUBLE": pa.float64(), "FLOAT": pa.float32(),
                        "BOOL": pa.bool_()}.get(name, pa.int64()))
    if name == "STRING":
        payload = _padded(col.fill_null(""))
        segments = [_const((_FIELD[name] << 3) | 2, n), _varint(payload[1].astype(np.uint64)), payload]
    elif name in ("DOUBLE", "FLOAT"):
        dtype, wire = ("<f8", 1) if name == "DOUBLE" else ("<f4", 5)
        vals = col.fill_null(0).to_numpy(zero_copy_only=False).astype(dtype)
        mat = np.ascontiguousarray(vals).view(np.uint8).reshape(n, -1)
        segments = [_const((_FIELD[name] << 3) | wire, n), (mat, np.full(n, mat.shape[1], dtype=np.int64))]
    else:  # INT64, INT32, BOOL: varints (negative ints as 10-byte two's complement, like protobuf)
        fill = False if name == "BOOL" else 0
        vals = col.fill_null(fill).to_numpy(zero_copy_only=False).astype(np.int64).view(np.uint64)
        segments = [_const(_FIELD[name] << 3, n), _varint(vals)]
    missing = col.null_count or (name in ("DOUBLE", "FLOAT") and bool(pc.any(pc.is_nan(col)).as_py()))
    if missing:  # nulls, and NaN floats as Feast stores them: an empty Value
        valid = col.is_valid()
        if name in ("DOUBLE", "FLOAT"):
            valid = pc.and_(valid, pc.invert(pc.is_nan(col)))
        valid = valid.fill_null(False).to_numpy(zero_copy_only=False)
        segments = [(m, np.where(valid, ln, 0)) for m, ln in segments]
    return segments


def value_bytes(col: pa.Array | pa.ChunkedArray, value_type) -> pa.Array:
    """Serialized ``feast.types.Value`` for each row of ``col`` (nulls -> empty message).

    ``value_type`` is a ``feast.value_type.ValueType``; NaN floats become missing values,
    exactly as Feast's own conversion does.
    """
    return _gather(_value_segments(col, value_type))


def repeated_value_bytes(columns: list[pa.Array], value_types: list) -> pa.Array:
    """Serialized ``feast.types.RepeatedValue`` per row holding ``columns`` in order."""
    if not columns:
        raise ValueError("repeated_value_bytes needs at least one column")
    n = len(columns[0])
    segments: list[Segment] = []
    for col, value_type in zip(columns, value_types):
        value = _value_segments(col, value_type)
        size = sum(ln for _, ln in value)
        segments += [_const(_REPEATED_VAL, n), _varint(size.astype(np.uint64)), *value]
    return _gather(segments)


def entity_key_bytes(join_key: str, values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``serialize_entity_key`` (version 3) of one string join key, for every row of ``values``."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count:
        raise ValueError(f"entity column {join_key!r} holds {values.null_count} null key(s)")
    k = join_key.encode("utf8")
    head = struct.pack("<III", 1, _STRING_TYPE, len(k)) + k + struct.pack("<I", _STRING_TYPE)
    n = len(values)
    payload = _padded(values.cast(pa.string()))
    lens = payload[1].astype("<u4").view(np.uint8).reshape(n, 4)
    prefix = np.broadcast_to(np.frombuffer(head, dtype=np.uint8), (n, len(head)))
    return _gather([(np.ascontiguousarray(prefix), np.full(n, len(head), dtype=np.int64)),
                    (lens, np.full(n, 4, dtype=np.int64)), payload])
