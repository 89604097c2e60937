#!/usr/bin/env python3
"""Writes the cross-check inputs: 48 rows of 512 float32 values (adversarial blocks first, then random)
and a positive importance vector of 512 values. Deterministic (random.Random(2024))."""
import random, struct, sys, math
out = sys.argv[1]
rng = random.Random(2024)
N, ROWS = 512, 48
rows = []
def block_pattern(f):  # one row made of 32-blocks produced by f(block_index, j)
    return [f(b, j) for b in range(N // 32) for j in range(32)]
rows.append([0.0] * N)                                                   # all zeros
rows.append([0.0] * 100 + [7.25] + [0.0] * (N - 101))                    # single outlier
rows.append([1.0] * N)                                                   # equal positive
rows.append([-3.5] * N)                                                  # equal negative
rows.append(block_pattern(lambda b, j: (j - 16) * 0.5))                  # exact half steps (rounding ties)
rows.append(block_pattern(lambda b, j: 8.0 if j == 0 else (-8.0 if j == 1 else (j % 17) - 8.5)))  # +max/-max tie, .5 values
rows.append(block_pattern(lambda b, j: -8.0 if j == 3 else 8.0 * ((j * 7) % 16 - 8) / 8.0))
rows.append(block_pattern(lambda b, j: (j - 15.5) / 15.5 * (b + 1)))     # symmetric ramp
rows.append([1e-30 * (i % 7 - 3) for i in range(N)])                     # tiny
rows.append([1e-40 * (i % 5 - 2) for i in range(N)])                     # denormal
rows.append([1e30 * (i % 9 - 4) for i in range(N)])                      # huge (fp16 scale overflows)
rows.append([65504.0 * (1 if i % 2 else -1) for i in range(N)])          # fp16 max
rows.append(block_pattern(lambda b, j: 0.0 if j < 31 else 1.0))          # one nonzero per block
rows.append(block_pattern(lambda b, j: 1.0 + j * 1e-7))                  # nearly equal
rows.append(block_pattern(lambda b, j: (j * 0.125) - 2.0))               # exact multiples
rows.append([math.sin(i * 0.37) * 3 for i in range(N)])
while len(rows) < ROWS:
    kind = len(rows) % 3
    if kind == 0: rows.append([rng.gauss(0, 1) for _ in range(N)])
    elif kind == 1: rows.append([rng.uniform(-2, 5) for _ in range(N)])
    else: rows.append([rng.gauss(0, 0.02) * (10 if rng.random() < 0.01 else 1) for _ in range(N)])
with open(out + "/rows.f32", "wb") as f:
    for r in rows: f.write(struct.pack("<%df" % N, *r))
with open(out + "/importance.f32", "wb") as f:
    f.write(struct.pack("<%df" % N, *[rng.uniform(0.01, 4.0) ** 2 for _ in range(N)]))
