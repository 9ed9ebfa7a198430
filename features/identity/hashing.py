"""Keyed hashing of identifiers: HMAC-SHA256, vectorized over Arrow string arrays.

Every identifier leaves the identity step only as ``id_hash``: the first 64 bits
(16 hex characters, :func:`hex64`) of ``HMAC-SHA256(key, "<id_type>:<normalized value>")``;
the type prefix keeps a phone and a member id with the same digits apart. 64 bits keep
the graph on int64 keys; the chance of any collision among 10M values of one type is
about 3e-6 (n^2 / 2^65), and without the key a hash cannot be reversed by enumerating
phone numbers. :func:`hash_identifier` is the reference one-value form (its first 16
characters are the id_hash); :func:`hmac128` computes millions of them with a
compiled SHA-256 (numba, both cores: :mod:`._sha256_lanes`), because Python's ``hmac``
costs about 3 us per value (1.2 us with pre-keyed ``hashlib`` copies, the fallback when
numba is unavailable). Measured on 1.2M values: kernel 0.39 s, hashlib copies 1.41 s,
``hmac.new`` 3.30 s; callers hash each *distinct* normalized value once. The kernel is
compiled on first use (20-45 s on this machine, then cached by numba next to the module),
so inputs under :data:`SMALL` values (tests, the demo) take the hashlib path.

The key comes from ``PORTRAIT_HMAC_KEY`` (read by the CLI, passed down here as
text). :func:`require_key` refuses to run without one, unless the caller opts in
to :data:`DEMO_HMAC_KEY` explicitly (``portrait demo`` does; it is public, so
hashes made with it protect nothing), and refuses a key under :data:`MIN_KEY_BYTES` bytes
(:func:`check_key`): whoever guesses the key can hash every mobile number and reverse them all.
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pyarrow as pa

DEMO_HMAC_KEY = "portrait-demo-key-not-secret"  # public; only for `portrait demo` and tests

MIN_KEY_BYTES = 16  # 128 bits: `secrets.token_hex(32)` gives 32 bytes; "x" or "secret" can be brute-forced
GENERATE = 'python -c "import secrets; print(secrets.token_hex(32))"'


class MissingKeyError(RuntimeError):
    """No HMAC key was configured and the demo key was not asked for."""


class WeakKeyError(MissingKeyError):
    """The configured HMAC key is too short or too repetitive to keep identifiers secret."""


def check_key(key: str) -> bytes:
    """The key as bytes, or :class:`WeakKeyError` (one line: what is wrong and how to make a good one).

    A short key can be guessed, and with the key every phone number can be hashed and matched.
    """
    raw = key.encode("utf-8")
    if len(raw) < MIN_KEY_BYTES or len(set(raw)) < 6:
        what = f"{len(raw)} bytes" if len(raw) < MIN_KEY_BYTES else f"only {len(set(raw))} distinct characters"
        raise WeakKeyError(f"PORTRAIT_HMAC_KEY is too weak ({what}; need at least {MIN_KEY_BYTES} random bytes, "
                           f"e.g. 32 hex characters); generate one with: {GENERATE}")
    return raw


def require_key(key: str | None, demo: bool = False) -> bytes:
    """Return the HMAC key as bytes; a clear error when it is missing outside the demo or too weak."""
    if key:
        return check_key(key)
    if demo:
        return DEMO_HMAC_KEY.encode("utf-8")
    raise MissingKeyError(
        f"no HMAC key: set PORTRAIT_HMAC_KEY to a secret (generate one with: {GENERATE}); "
        "identifiers are hashed with it and never stored raw. Use --demo-key only for throw-away demo data."
    )


def key_fingerprint(key: bytes) -> str:
    """A short tag of the key, stored with the state so a run with another key is refused."""
    return hmac.new(key, b"portrait:key-check", hashlib.sha256).hexdigest()[:16]


def hash_identifier(id_type: str, value: str, key: bytes) -> str:
    """The reference hash of one *normalized* identifier (32 hex characters)."""
    return hmac.new(key, f"{id_type}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def string_buffers(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(int64 offsets, uint8 data) of a null-free Arrow string array, without copying values."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.string())
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if arr.null_count:
        raise ValueError("string_buffers: array has nulls")
    arr = arr.cast(pa.large_string())
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset: arr.offset + len(arr) + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None and bufs[2].size else np.zeros(1, np.uint8)
    return offsets, data


SMALL = 50_000  # below this many values hashlib (< 0.1 s) beats loading the kernel (compiling it, once, takes 20-45 s)


def _kernel():
    try:
        from features.identity import _sha256_lanes
    except ImportError:  # numba missing: the hashlib path is correct, only slower
        return None
    return _sha256_lanes


def hmac128(values: pa.Array | pa.ChunkedArray, id_type: str | None, key: bytes,
            engine: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """128-bit HMAC-SHA256 of ``"<id_type>:<value>"`` per value, as two uint64 arrays (big-endian halves).

    ``id_type=None`` hashes the values as they are (callers that already joined the type prefix).
    ``engine``: ``"auto"`` (compiled kernel for large inputs when numba is importable),
    ``"kernel"`` or ``"hashlib"``.
    """
    offsets, data = string_buffers(values)
    n = len(offsets) - 1
    k1, k2 = np.empty(n, np.uint64), np.empty(n, np.uint64)
    prefix = f"{id_type}:".encode() if id_type is not None else b""
    lengths = np.diff(offsets) + len(prefix)
    lanes = _kernel() if engine == "kernel" or (engine == "auto" and n >= SMALL) else None
    if engine == "kernel" and lanes is None:
        raise RuntimeError("hmac128(engine='kernel'): numba is not installed")
    slow = np.arange(n)
    if lanes is not None:
        block = (key if len(key) <= 64 else hashlib.sha256(key).digest()).ljust(64, b"\0")
        inner0 = lanes._midstate(bytes(b ^ 0x36 for b in block))
        outer0 = lanes._midstate(bytes(b ^ 0x5C for b in block))
        lanes._hmac_kernel(offsets, data, np.frombuffer(prefix, dtype=np.uint8), inner0, outer0, k1, k2)
        slow = np.flatnonzero(lengths > 55)
    if len(slow):
        raw = data.tobytes()
        inner = hmac.new(key, prefix, hashlib.sha256)  # keyed once; copies continue from the prefix
        out = bytearray()
        for i in slow.tolist():
            h = inner.copy()
            h.update(raw[offsets[i]:offsets[i + 1]])
            out += h.digest()[:16]
        halves = np.frombuffer(bytes(out), dtype=">u8").reshape(-1, 2)
        k1[slow], k2[slow] = halves[:, 0], halves[:, 1]
    return k1, k2


def hash64(k1: np.ndarray) -> np.ndarray:
    """The first 64 bits of each hash as int64: the key the graph and the state use (0 = no value)."""
    return np.asarray(k1, np.uint64).view(np.int64)


_HEX2 = np.array([ord(f"{b:02x}"[0]) | ord(f"{b:02x}"[1]) << 8 for b in range(256)], dtype="<u2")  # byte -> 2 hex chars


def to_hex(k1: np.ndarray, k2: np.ndarray) -> pa.Array:
    """32-character lowercase hex strings of the (k1, k2) hash halves."""
    raw = np.empty((len(k1), 16), np.uint8)
    raw[:, :8] = np.asarray(k1, ">u8").view(np.uint8).reshape(-1, 8)
    raw[:, 8:] = np.asarray(k2, ">u8").view(np.uint8).reshape(-1, 8)
    return fixed_width_strings(_HEX2[raw].view(np.uint8).reshape(-1), 32)


def fixed_width_strings(data: np.ndarray, width: int) -> pa.Array:
    """An Arrow string array over ``data`` cut into equal ``width``-byte pieces (no per-value work)."""
    n = len(data) // width
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data)).cast(pa.string())


def from_hex(hexes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`to_hex` for a few values (lookups); invalid hex raises ValueError."""
    vals = [int(h, 16) for h in hexes]
    return (np.array([v >> 64 for v in vals], dtype=np.uint64),
            np.array([v & ((1 << 64) - 1) for v in vals], dtype=np.uint64))


RECORD_KEY_VERSION = "fnv1a64-fmix"  # stored in the state's meta; another version is re-keyed on load
_FNV_OFFSET, _FNV_PRIME, _M64 = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1


def _fmix_np(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def _fnv_np(h: np.ndarray, offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """FNV-1a of each string continued from ``h`` (numpy, one pass per byte position)."""
    lens = np.diff(offsets)
    start = offsets[:-1]
    for p in range(int(lens.max()) if len(lens) else 0):
        live = lens > p
        byte = data[np.where(live, start + p, 0)].astype(np.uint64)
        h = np.where(live, (h ^ byte) * np.uint64(_FNV_PRIME), h)
    return h


def record_keys(source: pa.Array | pa.ChunkedArray, record_id: pa.Array | pa.ChunkedArray,
                engine: str = "auto") -> np.ndarray:
    """int64 key of ``source + '\\x1f' + record_id`` per record, to find records seen before.

    Record ids are not personal data: the key only indexes them (FNV-1a 64 + murmur3 finalizer,
    compiled in :mod:`._fasthash` for large inputs). ``engine``: ``"auto"``, ``"kernel"`` or ``"numpy"``.
    """
    s_off, s_data = string_buffers(source)
    r_off, r_data = string_buffers(record_id)
    n = len(r_off) - 1
    use_kernel = engine == "kernel" or (engine == "auto" and n >= 500_000)  # numpy is quick enough below
    if use_kernel:
        try:
            from features.identity._fasthash import record_key_kernel
        except ImportError:
            if engine == "kernel":
                raise
            use_kernel = False
    if use_kernel:
        out = np.empty(n, np.uint64)
        record_key_kernel(s_off, s_data, r_off, r_data, out)
        return out.view(np.int64)
    with np.errstate(over="ignore"):
        h = _fnv_np(np.full(n, _FNV_OFFSET, np.uint64), s_off, s_data)
        h = (h ^ np.uint64(0x1F)) * np.uint64(_FNV_PRIME)
        return _fmix_np(_fnv_np(h, r_off, r_data)).view(np.int64)


def hex64(keys: np.ndarray) -> pa.Array:
    """16-character lowercase hex ``id_hash`` strings of int64 keys (the first 64 bits of the HMAC)."""
    raw = np.asarray(keys, np.int64).view(np.uint64).astype(">u8").view(np.uint8).reshape(-1, 8)
    return fixed_width_strings(_HEX2[raw].view(np.uint8).reshape(-1), 16)


_NIBBLE = np.full(256, 255, np.uint8)
_NIBBLE[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)


def keys_of_hex(hashes: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """int64 keys of 16-digit ``id_hash`` strings (vectorized inverse of :func:`hex64`)."""
    if len(hashes) == 0:
        return np.zeros(0, np.int64)
    offsets, data = string_buffers(hashes)
    if not (np.diff(offsets) == 16).all():
        raise ValueError("keys_of_hex: not all values are 16-digit id_hashes")
    nib = _NIBBLE[data[offsets[0]:offsets[-1]]].reshape(-1, 16)
    if (nib == 255).any():
        raise ValueError("keys_of_hex: not all values are lowercase hex")
    out = np.zeros(len(nib), np.uint64)
    for i in range(16):
        out = (out << np.uint64(4)) | nib[:, i].astype(np.uint64)
    return out.view(np.int64)


def key_of_hex(text: str) -> int:
    """Inverse of :func:`hex64` for one value (ValueError when not 16 hex digits)."""
    if len(text) != 16:
        raise ValueError(f"not a 16-digit id_hash: {text!r}")
    return int(np.uint64(int(text, 16)).view(np.int64))


def hash_keys(values: pa.Array, id_type: str, key: bytes) -> np.ndarray:
    """int64 keys (first 64 bits of HMAC-SHA256 of ``"<id_type>:<value>"``) of null-free values."""
    return hash64(hmac128(values, id_type, key)[0])


def hash_key(value: str, id_type: str, key: bytes) -> int:
    """:func:`hash_keys` of one normalized value (lookups)."""
    d = hmac.new(key, f"{id_type}:{value}".encode(), hashlib.sha256).digest()
    return int.from_bytes(d[:8], "big", signed=True)


def record_key(source: str, record_id: str) -> int:
    """:func:`record_keys` of one record, as the int64 key the state uses (plain Python, lookups)."""
    h = _FNV_OFFSET
    for b in source.encode() + b"\x1f" + record_id.encode():
        h = ((h ^ b) * _FNV_PRIME) & _M64
    for mult in (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53):
        h = ((h ^ (h >> 33)) * mult) & _M64
    h ^= h >> 33
    return h - (1 << 64) if h >= 1 << 63 else h
