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


def test_entity_key_bytes_match_feast():
    ids = ["c1", "c0000001", "é", "x" * 300]
    want = [serialize_entity_key(EntityKey(join_keys=["one_id"], entity_values=[ValueProto(string_val=i)]), 3)
            for i in ids]
    assert entity_key_bytes("one_id", pa.array(ids)).to_pylist() == want
    big = pa.array([f"c{i}" for i in np.arange(1000)])
    assert entity_key_bytes("one_id", big)[999].as_py() == serialize_entity_key(
        EntityKey(join_keys=["one_id"], entity_values=[ValueProto(string_val="c999")]), 3)
