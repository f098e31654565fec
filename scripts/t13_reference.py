#!/usr/bin/env python3
"""Independent numpy reference for the T1.3 SageAttention emulation (techniques.md §1.6).

Usage: t13_reference.py N D SEED

Regenerates the synthetic Q/K/V of `passes/src/quantize_attention/t13.rs` (SplitMix64 +
Box-Muller, the same draw order) and recomputes, with numpy only, a few configurations of
the report as the semantics of `attn.quantized_sdpa` define them (dialects/src/interp/attn/
quant.rs doc): symmetric per-block quantization with round-half-to-even, K smoothing over
all keys, Q smoothing over 128-query blocks with ΔS = scale · q̄ · K'ᵀ added in full
precision, normalized softmax, P/V in f16 or e4m3 (P scaled by 448, V per channel by
max/448). Prints one line per (configuration, scenario): `name|scenario|cos|rel_l1|rmse`.
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


def quant_blocks(x, block, r):
    """Dequantized per-block symmetric quantization (values times their block scale)."""
    out = np.empty_like(x)
    for s in range(0, x.shape[0], block):
        b = x[s:s + block]
        amax = np.abs(b).max()
        delta = 1.0 if amax == 0 else amax / r
        out[s:s + block] = np.clip(np.round(b / delta), -r, r) * delta
    return out


def attention(q, k, v, scale, qk_range, q_block, k_block, smooth_k, smooth_q_block, pv):
    ds = 0.0
    if smooth_k:
        k = k - k.mean(axis=0)
    if smooth_q_block:
        n, d = q.shape
        mean = q.reshape(n // smooth_q_block, smooth_q_block, d).mean(axis=1)
        qbar = np.repeat(mean, smooth_q_block, axis=0)
        q = q - qbar
        ds = scale * (qbar @ k.T)
    s = scale * (quant_blocks(q, q_block, qk_range) @ quant_blocks(k, k_block, qk_range).T) + ds
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    if pv == "f16":
        return p.astype(np.float16).astype(np.float64) @ v.astype(np.float16).astype(np.float64)
    dv = np.abs(v).max(axis=0) / 448.0
    return (e4m3(448.0 * p) / 448.0) @ e4m3(v / dv) * dv


# name -> (qk range, q_block, k_block, smooth_k, smooth-q block, pv); names as in t13.rs.
CONFIGS = {
    "int8 per-block, no smoothing, pv f16": (127, 128, 64, False, None, "f16"),
    "int8 per-block, smooth K, pv f16 (v1)": (127, 128, 64, True, None, "f16"),
    "int8 per-block, smooth K, pv f8": (127, 128, 64, True, None, "f8"),
    "int4 per-token, no smoothing, pv f8": (7, 1, 1, False, None, "f8"),
    "int4 per-token, smooth Q+K, pv f8": (7, 1, 1, True, 128, "f8"),
}


def main():
    n, d, seed = (int(a) for a in sys.argv[1:4])
    scale = 1.0 / math.sqrt(d)
    for si, (q, k, v) in enumerate(inputs(n, d, seed)):
        p = np.exp(scale * q @ k.T - (scale * q @ k.T).max(axis=1, keepdims=True))
        ref = (p / p.sum(axis=1, keepdims=True)) @ v
        for name, (r, qb, kb, sk, sq, pv) in CONFIGS.items():
            x = attention(q, k, v, scale, r, qb, kb, sk, min(sq, n) if sq else None, pv)
            cos = (x * ref).sum() / math.sqrt((x * x).sum() * (ref * ref).sum())
            rel = np.abs(x - ref).sum() / np.abs(ref).sum()
            rmse = math.sqrt(((x - ref) ** 2).mean())
            print(f"{name}|{si}|{cos:.12f}|{rel:.12f}|{rmse:.12e}")


if __name__ == "__main__":
    main()
