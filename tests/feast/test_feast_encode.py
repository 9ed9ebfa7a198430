"""The vectorized encoder writes exactly the bytes Feast's own protobuf conversion writes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import RepeatedValue
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.type_map import python_values_to_proto_values
from feast.value_type import ValueType

from features.feast_ext.encode import entity_key_bytes, repeated_value_bytes, value_bytes

COLUMNS = {
    ValueType.DOUBLE: pa.array([1.5, None, float("nan"), -0.0, 1e300, 0.0], pa.float64()),
    ValueType.FLOAT: pa.array([1.5, None, 3.25, -2.0, 0.0, 7.0], pa.float32()),
    ValueType.INT64: pa.array([0, None, -1, 2**62, 127, 128], pa.int64()),
    ValueType.INT32: pa.array([0, 5, None, -7, 300, 2**31 - 1], pa.int32()),
    ValueType.BOOL: pa.array([True, False, None, True, False, None]),
    ValueType.STRING: pa.array(["", None, "é中", "x" * 200, "active", "x" * 20000]),
    ValueType.UNIX_TIMESTAMP: pa.array([0, None, 10**15, 5, 6, 7], pa.timestamp("us", tz="UTC")),
}


def _feast(col: pa.Array, value_type: ValueType) -> list[ValueProto]:
    values = col.to_pylist()
    protos = python_values_to_proto_values(values, value_type)
    return [ValueProto() if v is None else p for v, p in zip(values, protos)]  # a null is an empty Value


def test_value_bytes_match_feast():
    for value_type, col in COLUMNS.items():
        want = [p.SerializeToString() for p in _feast(col, value_type)]
        assert value_bytes(col, value_type).to_pylist() == want, value_type
        assert value_bytes(col.slice(2), value_type).to_pylist() == want[2:], value_type


def test_repeated_value_bytes_match_feast():
    types = list(COLUMNS)
    got = repeated_value_bytes([COLUMNS[t] for t in types], types).to_pylist()
    per_col = [_feast(COLUMNS[t], t) for t in types]
    want = [RepeatedValue(val=[col[i] for col in per_col]).SerializeToString() for i in range(6)]
    assert got == want
    parsed = RepeatedValue.FromString(got[0]).val
    assert parsed[0].double_val == 1.5 and parsed[5].string_val == ""


def test_a_column_of_nulls_only_is_empty_values_of_any_type():
    """pandas gives an all-None column Arrow's null type (a one-row frame of a customer missing a value)."""
    nulls = pa.nulls(3)
    for value_type in (ValueType.DOUBLE, ValueType.INT64, ValueType.BOOL, ValueType.STRING):
        assert value_bytes(nulls, value_type).to_pylist() == [b""] * 3, value_type


def test_entity_key_bytes_match_feast():
    ids = ["c1", "c0000001", "é", "x" * 300]
    want = [serialize_entity_key(EntityKey(join_keys=["one_id"], entity_values=[ValueProto(string_val=i)]), 3)
            for i in ids]
    assert entity_key_bytes("one_id", pa.array(ids)).to_pylist() == want
    big = pa.array([f"c{i}" for i in np.arange(1000)])
    assert entity_key_bytes("one_id", big)[999].as_py() == serialize_entity_key(
        EntityKey(join_keys=["one_id"], entity_values=[ValueProto(string_val="c999")]), 3)


def test_feature_vectors_match_feasts_response():
    """The response written from stored bytes equals Feast's ``_populate_response_from_feature_data``."""
    from datetime import datetime, timedelta, timezone
    from types import SimpleNamespace

    from feast.protos.feast.serving.ServingService_pb2 import GetOnlineFeaturesResponse
    from feast.utils import _populate_response_from_feature_data

    from features.feast_ext.response import feature_vectors

    names = ["a", "b", "s", "n"]
    types = [ValueType.DOUBLE, ValueType.INT64, ValueType.STRING, ValueType.BOOL]
    cols = [pa.array([1.5, None, -2.0]), pa.array([7, 300, None]), pa.array(["x" * 200, "é", None]),
            pa.array([True, None, False])]
    payloads = repeated_value_bytes(cols, types).to_pylist()
    stamps = [1_767_225_600_123_456, -86_400_000_001, 0]  # 2026 with microseconds; before 1970; the epoch
    view = SimpleNamespace(name="v", projection=SimpleNamespace(name_to_use=lambda: "v", name_alias=None, name="v"))
    row_names = [names, names, names[:3]]  # the third row was stored before feature "n" existed
    cases = [  # (requested features, unique entities read: entity index or None, output positions of each)
        (names, [0], [[0]]),
        (["n", "s", "a"], [2], [[0]]),  # a subset, in another order; "n" is not stored for this row
        (names, [None], [[0]]),
        (names, [1, None, 0, 2], [[0, 3], [1], [2], [4]]),  # a duplicate entity and a missing one
        (["b", "n"], [2, 1], [[1], [0]]),
    ]
    for requested, read, idxs in cases:
        read_rows, rows = [], [None] * sum(len(d) for d in idxs)
        for r, dest in zip(read, idxs):
            if r is None:
                read_rows.append((None, None))
                continue
            stored = RepeatedValue.FromString(payloads[r]).val
            when = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=stamps[r])
            read_rows.append((when, dict(zip(row_names[r], stored))))
            row = (stamps[r], payloads[r], row_names[r])
            for i in dest:
                rows[i] = row
        want = GetOnlineFeaturesResponse()
        _populate_response_from_feature_data(requested, read_rows, idxs, want, False, view, len(rows))
        got = GetOnlineFeaturesResponse()
        results, present = feature_vectors(requested, rows)
        got.MergeFromString(results)
        assert list(got.results) == list(want.results), (requested, read)
        assert present == sum(s == 1 for fv in want.results for s in fv.statuses)


def test_resp_pack_matches_redis_py():
    """A packed batch is byte for byte what redis-py would send, command after command."""
    from redis.connection import PythonRespSerializer

    from features.feast_ext.resp import pack

    keys = pa.array([b"k", b"", b"x" * 9, b"y" * 10, b"z" * 12345, "é".encode()], pa.binary())
    values = value_bytes(COLUMNS[ValueType.STRING], ValueType.STRING)
    args = [b"HSET", keys, b"_ts:view", values, b"\x00\xff", keys]
    packer = PythonRespSerializer(buffer_cutoff=10**9, encode=lambda v: v)
    want = b"".join(b"".join(packer.pack("HSET", *[a if isinstance(a, bytes) else a[i].as_py() for a in args[1:]]))
                    for i in range(len(keys)))
    assert pack(args, len(keys)).to_pybytes() == want
    assert pack([b"HGET", keys.slice(2), b"f"], 4).to_pybytes() == b"".join(
        b"*3\r\n$4\r\nHGET\r\n$%d\r\n%s\r\n$1\r\nf\r\n" % (len(k), k) for k in keys.slice(2).to_pylist())
