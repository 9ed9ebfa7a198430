"""Compiled 64-bit record keys for :mod:`features.identity.hashing` (numba; optional).

A record key indexes ``(source, record_id)``; it is not secret, so it needs no HMAC:
FNV-1a over ``source + '\\x1f' + record_id`` followed by the murmur3 64-bit finalizer,
one value per task on both cores (about 30 ns per record instead of two SHA-256
compressions). :func:`features.identity.hashing.record_keys` has the same function in
numpy (small inputs, or numba missing) and :func:`features.identity.hashing.record_key`
in plain Python (lookups); the tests check all three agree.
"""

from __future__ import annotations

import numba as nb
import numpy as np

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)


@nb.njit(cache=True, inline="always")
def _fmix(h):
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


@nb.njit(parallel=True, cache=True)
def record_key_kernel(s_off, s_data, r_off, r_data, out):
    n = len(r_off) - 1
    for i in nb.prange(n):
        h = FNV_OFFSET
        for p in range(s_off[i], s_off[i + 1]):
            h = (h ^ np.uint64(s_data[p])) * FNV_PRIME
        h = (h ^ np.uint64(0x1F)) * FNV_PRIME
        for p in range(r_off[i], r_off[i + 1]):
            h = (h ^ np.uint64(r_data[p])) * FNV_PRIME
        out[i] = _fmix(h)


@nb.njit(parallel=True, cache=True)
def member_kernel(col, sorted_keys, bits, shift, out):
    """out[i] = col[i] is a non-zero key in ``sorted_keys``; a bitmap of the keys' hashes skips most searches."""
    n = len(col)
    m = len(sorted_keys)
    for i in nb.prange(n):
        k = col[i]
        out[i] = False
        if k == 0:
            continue
        h = (np.uint64(k) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(shift)
        if (bits[h >> np.uint64(3)] >> (h & np.uint64(7))) & np.uint8(1) == 0:
            continue
        lo, hi = 0, m
        while lo < hi:
            mid = (lo + hi) >> 1
            if sorted_keys[mid] < k:
                lo = mid + 1
            else:
                hi = mid
        out[i] = lo < m and sorted_keys[lo] == k


@nb.njit(parallel=True, cache=True)
def format_kernel(nums, prefix, width, out):
    """Fixed-width ``prefix`` + zero-padded decimal of each number, into ``out`` (n * width bytes)."""
    npre = len(prefix)
    for i in nb.prange(len(nums)):
        at = i * width
        for j in range(npre):
            out[at + j] = prefix[j]
        v = nums[i]
        for j in range(width - 1, npre - 1, -1):
            out[at + j] = 48 + v % 10
            v //= 10
