"""Redis commands for a whole batch, packed into RESP bytes with numpy.

redis-py packs each pipelined command in its own call (``hiredis.pack_command``, ~170
arguments for an ``HSET`` of a customer view) and queues a Python object per command;
profiling the bulk Redis write showed that packing and queueing cost more client CPU than
the encoding of the values. Here a batch of ``n`` commands with the same shape is packed at
once, with the segment machinery of :mod:`features.feast_ext.encode`: every argument is
either one constant (the command name, a hash field name) or one value per command (a
binary Arrow array), and each command's bytes are
``*<argc>\\r\\n`` then ``$<len>\\r\\n<arg>\\r\\n`` per argument (the Redis protocol).

:func:`send` writes the packed batch on one connection of a ``redis.Redis`` client and
reads the ``n`` replies back (redis-py's own connection and reply parser).
"""

from __future__ import annotations

from typing import Union

import numpy as np
import pyarrow as pa

from features.feast_ext.encode import Segment, _gather, _padded

Arg = Union[bytes, pa.Array]  # the same bytes in every command, or one value per command


def _constant(data: bytes, n: int) -> Segment:
    row = np.frombuffer(data, dtype=np.uint8)
    return np.broadcast_to(row, (n, len(row))), np.full(n, len(row), dtype=np.int64)


def _decimal(values: np.ndarray) -> Segment:
    """ASCII decimal digits of non-negative ints, most significant first."""
    values = values.astype(np.int64)
    digits = np.ones(len(values), dtype=np.int64)
    bound = 10
    while len(values) and bound <= 10**18 and (values >= bound).any():
        digits += values >= bound
        bound *= 10
    width = int(digits.max()) if len(values) else 1
    mat = np.zeros((len(values), width), dtype=np.uint8)
    for j in range(width):
        power = digits - 1 - j  # the exponent of the digit in column j (negative: unused)
        mat[:, j] = (values // 10 ** np.clip(power, 0, None)) % 10 + ord("0")
    return mat, digits


def pack(args: list[Arg], n: int) -> pa.Buffer:
    """RESP bytes of ``n`` commands made of ``args`` (see module doc), back to back."""
    for a in args:
        if not isinstance(a, bytes) and len(a) != n:
            raise ValueError(f"argument of {len(a)} values for {n} commands")
    segments: list[Segment] = []
    pending = b"*%d\r\n" % len(args)  # constant bytes not yet turned into a segment
    for a in args:
        if isinstance(a, bytes):
            pending += b"$%d\r\n%s\r\n" % (len(a), a)
            continue
        mat, lens = _padded(a)
        segments += [_constant(pending + b"$", n), _decimal(lens), _constant(b"\r\n", n), (mat, lens)]
        pending = b"\r\n"
    segments.append(_constant(pending, n))
    packed = _gather(segments)
    offsets = packed.buffers()[1]
    end = int(np.frombuffer(offsets, dtype=np.int32 if packed.type == pa.binary() else np.int64)[-1])
    return packed.buffers()[2][:end]


def send(client, buffers: list[pa.Buffer], replies: int) -> list:
    """Send packed commands on one connection of ``client``; the ``replies`` replies, in order.

    A server error reply (e.g. ``WRONGTYPE``) is raised after every reply has been read,
    so the connection goes back to the pool in a clean state.
    """
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command([memoryview(b) for b in buffers])
        out, error = [], None
        for _ in range(replies):
            try:
                out.append(conn.read_response())
            except Exception as exc:  # an error reply: keep reading the others
                from redis.exceptions import ResponseError

                if not isinstance(exc, ResponseError):
                    raise
                error = error or exc
                out.append(exc)
    except BaseException:
        conn.disconnect()  # replies may be left unread: never reuse this connection
        raise
    finally:
        pool.release(conn)
    if error is not None:
        raise error
    return out
