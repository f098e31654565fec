#!/usr/bin/env python3
"""Independent numpy reference for the T1.3 SageAttention emulation (techniques.md §1.6).

Usage: t13_reference.py N D SEED

Regenerates the synthetic Q/K/V of `passes/src/quantize_attention/t13.rs` (SplitMix64 +
Box-Muller, the same draw order) and recomputes, with numpy only, a few configurations of
the report as the semantics of `attn.quantized_sdpa` define them (dialects/src/interp/attn/
quant.rs doc): symmetric group quantization with round-half-to-even, K smoothing over
all keys, Q smoothing over 128-query blocks with ΔS = scale · q̄ · K'ᵀ added in full
precision, normalized softmax or blocked online P̃, P/V in f16 or e4m3 (P scaled by 448,
V per channel by max/448).

The quantization groups are written from the granularity table of techniques.md §1.2, not
from the Rust code: per-block = 128 consecutive queries / 64 consecutive keys; per-warp =
32 consecutive queries (WARP_Q) / keys per block; per-thread = inside each 32-query slab
the 8 groups {g, g+8, g+16, g+24}, inside each 64-key block the 4 groups
{8j+2t, 8j+2t+1 : j = 0..7}; per-token = one row. Online P̃ (T1.3): 64-key blocks, running
max, P̃ = e4m3(448·exp(S - m)), accumulator and denominator rescaled when the max grows,
denominator = sum of the quantized P̃ (FP8 path). Prints one line per (configuration, scenario): `name|scenario|cos|rel_l1|rmse`.
"""
import math
import sys

import numpy as np

MASK = (1 << 64) - 1


class Gen:
    def __init__(self, seed):
        self.s = seed & MASK

    def next_u64(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self):
        return ((self.next_u64() >> 11) + 1) / float(1 << 53)

    def normal(self):
        u, v = self.uniform(), self.uniform()
        return math.sqrt(-2.0 * math.log(u)) * math.cos(2.0 * math.pi * v)

    def channels(self, d, count):
        idx = list(range(d))
        for i in range(min(count, d)):
            j = i + self.next_u64() % (d - i)
            idx[i], idx[j] = idx[j], idx[i]
        return [(c, 1.0 if self.next_u64() & 1 == 0 else -1.0) for c in idx[:count]]


def inputs(n, d, seed):
    g = Gen(seed)
    q, k, v = (np.array([g.normal() for _ in range(n * d)]).reshape(n, d) for _ in range(3))
    k_out, q_out = g.channels(d, 8), g.channels(d, 8)
    k8 = k.copy()
    for c, s in k_out:
        k8[:, c] += 8.0 * s
    q4 = q.copy()
    for c, s in q_out:
        q4[:, c] += 4.0 * s
    return [(q, k, v), (q, k8, v), (q4, k8, v)]


def e4m3(x):
    a = np.abs(x)
    e = np.maximum(np.floor(np.log2(np.where(a > 0, a, 1.0))), -6.0)
    step = 2.0 ** (e - 3.0)
    return np.sign(x) * np.minimum(np.round(a / step) * step, 448.0)


def consecutive(n, size):
    """Groups of `size` consecutive rows (per-block, per-warp, per-token)."""
    return [list(range(s, min(s + size, n))) for s in range(0, n, size)]


def thread_q_groups(n, warp_q=32):
    """Per-thread Q groups: in each WARP_Q slab, group g = rows {g, g+8, g+16, g+24}."""
    groups = []
    for slab in range(0, n, warp_q):
        for g in range(8):
            rows = [slab + g + 8 * u for u in range(warp_q // 8) if slab + g + 8 * u < n]
            if rows:
                groups.append(rows)
    return groups


def thread_k_groups(m, block=64):
    """Per-thread K groups: in each 64-key block, group t = keys {8j+2t, 8j+2t+1 : j}."""
    groups = []
    for b in range(0, m, block):
        for t in range(4):
            keys = [b + 8 * j + 2 * t + e for j in range(block // 8) for e in (0, 1)]
            keys = [x for x in keys if x < m]
            if keys:
                groups.append(keys)
    return groups


def granularity_groups(name, n, m):
    """(query groups, key groups) of a granularity of techniques.md §1.2."""
    if name == "block":
        return consecutive(n, 128), consecutive(m, 64)
    if name == "warp":
        return consecutive(n, 32), consecutive(m, 64)
    if name == "thread":
        return thread_q_groups(n), thread_k_groups(m)
    if name == "token":
        return consecutive(n, 1), consecutive(m, 1)
    raise ValueError(name)


def quant_groups(x, groups, r):
    """Dequantized symmetric group quantization (values times their group scale)."""
    out = np.full_like(x, np.nan)
    for rows in groups:
        b = x[rows]
        amax = np.abs(b).max()
        delta = 1.0 if amax == 0 else amax / r
        out[rows] = np.clip(np.round(b / delta), -r, r) * delta
    assert not np.isnan(out).any(), "every row is in a group"
    return out


def online_f8(s, v, block=64):
    """Blocked online softmax·V with P̃ in e4m3 (scaled by 448) and V per channel in e4m3;
    the denominator sums the quantized P̃."""
    n, m = s.shape
    dv = np.abs(v).max(axis=0) / 448.0
    vq = e4m3(v / dv)
    run = np.full(n, -np.inf)
    den = np.zeros(n)
    acc = np.zeros((n, v.shape[1]))
    for b in range(0, m, block):
        blk = s[:, b:b + block]
        new = np.maximum(run, blk.max(axis=1))
        alpha = np.exp(run - new)
        pt = e4m3(448.0 * np.exp(blk - new[:, None]))
        den = den * alpha + pt.sum(axis=1)
        acc = acc * alpha[:, None] + pt @ vq[b:b + block]
        run = new
    return acc / den[:, None] * dv


def attention(q, k, v, scale, qk_range, gran, smooth_k, smooth_q_block, pv):
    ds = 0.0
    if smooth_k:
        k = k - k.mean(axis=0)
    if smooth_q_block:
        n, d = q.shape
        mean = q.reshape(n // smooth_q_block, smooth_q_block, d).mean(axis=1)
        qbar = np.repeat(mean, smooth_q_block, axis=0)
        q = q - qbar
        ds = scale * (qbar @ k.T)
    qg, kg = granularity_groups(gran, q.shape[0], k.shape[0])
    s = scale * (quant_groups(q, qg, qk_range) @ quant_groups(k, kg, qk_range).T) + ds
    if pv == "f8 online":
        return online_f8(s, v)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    if pv == "f16":
        return p.astype(np.float16).astype(np.float64) @ v.astype(np.float16).astype(np.float64)
    dv = np.abs(v).max(axis=0) / 448.0
    return (e4m3(448.0 * p) / 448.0) @ e4m3(v / dv) * dv


# name -> (qk range, granularity, smooth_k, smooth-q block, pv); names as in t13.rs.
CONFIGS = {
    "int8 per-block, no smoothing, pv f16": (127, "block", False, None, "f16"),
    "int8 per-block, smooth K, pv f16 (v1)": (127, "block", True, None, "f16"),
    "int8 per-block, smooth K, pv f8": (127, "block", True, None, "f8"),
    "int8 per-thread, smooth K, pv f8 online (2-8b)": (127, "thread", True, None, "f8 online"),
    "int4 per-warp, smooth Q+K, pv f8": (7, "warp", True, 128, "f8"),
    "int4 per-thread, smooth Q+K, pv f8": (7, "thread", True, 128, "f8"),
    "int4 per-thread, smooth Q+K, pv f8 online (2-4b)": (7, "thread", True, 128, "f8 online"),
    "int4 per-token, no smoothing, pv f8": (7, "token", False, None, "f8"),
    "int4 per-token, smooth Q+K, pv f8": (7, "token", True, 128, "f8"),
}


def main():
    n, d, seed = (int(a) for a in sys.argv[1:4])
    scale = 1.0 / math.sqrt(d)
    for si, (q, k, v) in enumerate(inputs(n, d, seed)):
        p = np.exp(scale * q @ k.T - (scale * q @ k.T).max(axis=1, keepdims=True))
        ref = (p / p.sum(axis=1, keepdims=True)) @ v
        for name, (r, gran, sk, sq, pv) in CONFIGS.items():
            x = attention(q, k, v, scale, r, gran, sk, min(sq, n) if sq else None, pv)
            cos = (x * ref).sum() / math.sqrt((x * x).sum() * (ref * ref).sum())
            rel = np.abs(x - ref).sum() / np.abs(ref).sum()
            rmse = math.sqrt(((x - ref) ** 2).mean())
            print(f"{name}|{si}|{cos:.12f}|{rel:.12f}|{rmse:.12e}")


if __name__ == "__main__":
    main()
