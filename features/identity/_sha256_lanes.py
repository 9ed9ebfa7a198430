"""Compiled SHA-256 lanes for :mod:`features.identity.hashing` (numba; optional).

HMAC-SHA256 of millions of short strings: the key blocks are pre-compressed once
(``inner0``/``outer0`` mid-states), then each message needs two compressions, done
for ``_LANES`` messages side by side on both cores. Messages longer than one block
(prefix + value > 55 bytes) are skipped here and hashed by the caller with ``hmac``.
Checked against ``hmac`` by ``benchmarks/identity.py`` before it times anything (the tests check the
hashlib path: compiling this kernel takes 20-45 s here, too long for the test budget).
"""

from __future__ import annotations

import numba as nb
import numpy as np

_K = np.array([
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
], dtype=np.uint64)
_IV = np.array([0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19], dtype=np.uint64)


_K32 = _K.astype(np.uint32)
_LANES = 16  # messages hashed side by side; the inner loops over lanes compile to SIMD
_CHUNK = 4096  # values per parallel task


@nb.njit(cache=True, inline="always")
def _rotr32(x, n):
    return (x >> np.uint32(n)) | (x << np.uint32(32 - n))  # callers store into uint32: high bits drop


@nb.njit(cache=True)
def _compress_lanes(S, W, T):
    """SHA-256 compression of ``_LANES`` blocks at once: ``W[:16]`` holds the words, ``S`` the states."""
    for i in range(16, 64):
        for lane in range(_LANES):
            x = W[i - 15, lane]
            y = W[i - 2, lane]
            s0 = _rotr32(x, 7) ^ _rotr32(x, 18) ^ (x >> np.uint32(3))
            s1 = _rotr32(y, 17) ^ _rotr32(y, 19) ^ (y >> np.uint32(10))
            W[i, lane] = W[i - 16, lane] + s0 + W[i - 7, lane] + s1
    T[:, :] = S
    for i in range(64):
        k = _K32[i]
        for lane in range(_LANES):
            a, b, c, d = T[0, lane], T[1, lane], T[2, lane], T[3, lane]
            e, f, g, h = T[4, lane], T[5, lane], T[6, lane], T[7, lane]
            t1 = h + (_rotr32(e, 6) ^ _rotr32(e, 11) ^ _rotr32(e, 25)) + ((e & f) ^ (~e & g)) + k + W[i, lane]
            t2 = (_rotr32(a, 2) ^ _rotr32(a, 13) ^ _rotr32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))
            T[7, lane] = g
            T[6, lane] = f
            T[5, lane] = e
            T[4, lane] = d + t1
            T[3, lane] = c
            T[2, lane] = b
            T[1, lane] = a
            T[0, lane] = t1 + t2
    for j in range(8):
        for lane in range(_LANES):
            S[j, lane] = S[j, lane] + T[j, lane]


@nb.njit(parallel=True, cache=True)
def _hmac_kernel(offsets, data, prefix, inner0, outer0, k1, k2):
    n = len(offsets) - 1
    npre = len(prefix)
    for chunk in nb.prange((n + _CHUNK - 1) // _CHUNK):
        S = np.empty((8, _LANES), np.uint32)
        W = np.empty((64, _LANES), np.uint32)
        T = np.empty((8, _LANES), np.uint32)
        stop = min(n, (chunk + 1) * _CHUNK)
        for g in range(chunk * _CHUNK, stop, _LANES):
            cnt = min(_LANES, stop - g)
            W[:16, :] = 0
            for lane in range(cnt):
                lo, hi = offsets[g + lane], offsets[g + lane + 1]
                m = npre + hi - lo
                if m > 55:
                    continue
                for p in range(npre):
                    W[p >> 2, lane] |= np.uint32(prefix[p]) << np.uint32(24 - 8 * (p & 3))
                for p in range(hi - lo):
                    q = npre + p
                    W[q >> 2, lane] |= np.uint32(data[lo + p]) << np.uint32(24 - 8 * (q & 3))
                W[m >> 2, lane] |= np.uint32(0x80) << np.uint32(24 - 8 * (m & 3))
                W[15, lane] = (64 + m) * 8  # message length in bits, after the 64-byte key block
            for j in range(8):
                S[j, :] = np.uint32(inner0[j])
            _compress_lanes(S, W, T)
            W[:8, :] = S  # outer message: the 32-byte inner digest, padded
            W[8, :] = np.uint32(0x80000000)
            W[9:15, :] = 0
            W[15, :] = (64 + 32) * 8
            for j in range(8):
                S[j, :] = np.uint32(outer0[j])
            _compress_lanes(S, W, T)
            for lane in range(cnt):
                i = g + lane
                lo, hi = offsets[i], offsets[i + 1]
                if npre + hi - lo <= 55:  # longer ones are left to the caller (hmac module)
                    k1[i] = (np.uint64(S[0, lane]) << np.uint64(32)) | np.uint64(S[1, lane])
                    k2[i] = (np.uint64(S[2, lane]) << np.uint64(32)) | np.uint64(S[3, lane])


def _midstate(block: bytes) -> np.ndarray:
    """SHA-256 state after one 64-byte block (the HMAC key block), via the lane kernel."""
    words = np.frombuffer(block, dtype=">u4").astype(np.uint32)
    S = np.repeat(_IV.astype(np.uint32)[:, None], _LANES, axis=1)
    W = np.zeros((64, _LANES), np.uint32)
    W[:16, :] = words[:, None]
    _compress_lanes(S, W, np.empty_like(S))
    return S[:, 0].copy()
