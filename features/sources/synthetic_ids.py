"""Deterministic ids and fast string columns for the synthetic generator.

Ids must be unique across blocks that are generated independently (possibly in
other processes), so they come from *bijections* of a global counter: a
SplitMix64 finalizer on 64 bits, an odd-multiply/xorshift mix on 40 bits, or an
affine map modulo ``m``. A bijection never collides, and its output does not
reveal which person a record belongs to.

Strings are built without Python objects: digits or hex nibbles go into a
``(n, width)`` byte matrix that becomes an Arrow ``StringArray`` zero-copy, and
variable-length variants use ``pyarrow.compute``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_PAIRS = np.stack([np.repeat(_HEX, 16), np.tile(_HEX, 16)], axis=1)  # byte -> its two hex digits
_M40 = np.uint64((1 << 40) - 1)


def mix64(x: np.ndarray, salt: int = 0) -> np.ndarray:
    """SplitMix64 finalizer of ``x ^ salt``: a bijection of uint64."""
    z = np.asarray(x, dtype=np.uint64) ^ np.uint64(salt)
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def mix40(x: np.ndarray, salt: int = 0) -> np.ndarray:
    """A bijection of ``[0, 2**40)`` (odd multiplies and xorshifts modulo 2**40)."""
    z = (np.asarray(x, dtype=np.uint64) ^ np.uint64(salt)) & _M40
    z = (z * np.uint64(0x9E3779B97F4B)) & _M40
    z ^= z >> np.uint64(19)
    z = (z * np.uint64(0x5DEECE66D)) & _M40
    z ^= z >> np.uint64(21)
    return z


def affine(x: np.ndarray, m: int, a: int, b: int = 0) -> np.ndarray:
    """``(a*x + b) mod m``: a bijection of ``[0, m)`` when gcd(a, m) == 1 (caller's duty)."""
    x = np.asarray(x, dtype=np.uint64)
    return (x * np.uint64(a) + np.uint64(b)) % np.uint64(m)


def digits(x: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of ``x`` as an ``(n, width)`` ASCII byte matrix."""
    x = np.asarray(x, dtype=np.uint64)
    powers = np.uint64(10) ** np.arange(width - 1, -1, -1, dtype=np.uint64)
    return ((x[:, None] // powers) % np.uint64(10)).astype(np.uint8) + np.uint8(48)


def hexdigits(x: np.ndarray, width: int = 16) -> np.ndarray:
    """Lower-case hex digits of the low ``4*width`` bits of ``x`` as an ``(n, width)`` byte matrix."""
    x = np.asarray(x, dtype=np.uint64)
    big_endian = x.astype(">u8").view(np.uint8).reshape(-1, 8)
    return _HEX_PAIRS[big_endian].reshape(-1, 16)[:, 16 - width:]


def strings(n: int, *parts: bytes | np.ndarray) -> pa.StringArray:
    """Concatenate fixed-width parts (literal bytes or byte matrices) into ``n`` strings."""
    cols = [
        np.broadcast_to(np.frombuffer(p, dtype=np.uint8), (n, len(p))) if isinstance(p, bytes) else p
        for p in parts
    ]
    mat = np.ascontiguousarray(np.concatenate(cols, axis=1), dtype=np.uint8)
    width = mat.shape[1]
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(mat)).cast(pa.string())


def join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of string arrays and literals (nulls propagate)."""
    return pc.binary_join_element_wise(*[pa.scalar(p) if isinstance(p, str) else p for p in parts], "")


def where(mask: np.ndarray, values: pa.Array, other: pa.Array | str | None = None) -> pa.Array:
    """``values`` where ``mask`` else ``other`` (a literal, an array or null)."""
    if other is None:
        other = pa.scalar(None, type=values.type)
    elif isinstance(other, str):
        other = pa.scalar(other, type=values.type)
    return pc.if_else(pa.array(mask, type=pa.bool_()), values, other)


def pick(labels: tuple[str, ...] | list[str], codes: np.ndarray) -> pa.Array:
    """Strings ``labels[codes]`` (negative codes give null)."""
    codes = np.asarray(codes)
    idx = pa.array(codes, mask=codes < 0, type=pa.int32())
    return pa.array(list(labels), type=pa.string()).take(idx)


def coded(labels: tuple[str, ...] | list[str] | pa.Array, codes: np.ndarray) -> pa.DictionaryArray:
    """Dictionary-encoded ``labels[codes]`` (negative codes give null) without copying any string."""
    codes = np.asarray(codes)
    dictionary = labels if isinstance(labels, pa.Array) else pa.array(list(labels), type=pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0, type=pa.int32()), dictionary)
