#!/usr/bin/env python3
"""One training step of the same encoder classifier in attnsvm-nn (burn, flex CPU backend) and in
PyTorch on CPU, on the same shapes, in one run (issue 7's benchmark).

    cargo build --release -p attnsvm-nn --example step_bench
    ~/peer-env/bin/python bench/nn_step_vs_torch.py [--steps 50] [--threads 2] [--rounds 3]

The PyTorch model mirrors `attnsvm_nn::model`: Linear(F→D) + learned positions, L pre-norm blocks
(x + MHA(LN x) with separate q/k/v/o projections and softmax(QKᵀ/√d_k), x + Linear→GELU→Linear(LN x)
with width 2D), a final LayerNorm, mean pooling and a Linear head; cross-entropy; AdamW(lr 1e-3).
Both time forward + backward + optimizer step, each step on its own after 5 warm-up steps, float32;
the table shows medians (per-step medians of each run, then the median over rounds that alternate
the two sides), which a noisy shared machine shifts less than means. Both use `--threads` threads
(torch.set_num_threads, RAYON_NUM_THREADS).
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import time

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "examples", "step_bench")


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x):
        b, n, d = x.shape
        z = self.n1(x)
        split = lambda t: t.view(b, n, self.h, d // self.h).transpose(1, 2)
        q, k, v = split(self.q(z)), split(self.k(z)), split(self.v(z))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.h), dim=-1)
        x = x + self.o((att @ v).transpose(1, 2).reshape(b, n, d))
        return x + self.ff(self.n2(x))


class Classifier(nn.Module):
    def __init__(self, f, n, d, h, layers, classes=10):
        super().__init__()
        self.embed, self.pos = nn.Linear(f, d), nn.Embedding(n, d)
        self.blocks = nn.ModuleList(Block(d, h) for _ in range(layers))
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, classes)

    def forward(self, x):
        h = self.embed(x) + self.pos.weight[: x.shape[1]]
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.norm(h).mean(dim=1))


def torch_ms(batch, n, f, d, h, layers, steps):
    """Median milliseconds per step (after 5 warm-up steps)."""
    torch.manual_seed(0)
    model = Classifier(f, n, d, h, layers)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, n, f)
    y = torch.arange(batch) % 10
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    for _ in range(5):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="alternating runs of each side per shape")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not os.path.exists(BIN):
        raise SystemExit(f"{BIN} missing: cargo build --release -p attnsvm-nn --example step_bench")
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    # (batch, tokens, features, d_model, heads, layers): digits with 2x2 patches, JapaneseVowels,
    # and a long synthetic sequence.
    shapes = [(64, 16, 4, 32, 4, 2), (64, 29, 12, 32, 4, 2), (16, 256, 8, 64, 4, 2), (8, 1024, 8, 64, 4, 1)]
    print(f"{args.threads} thread(s); median ms per step over {args.rounds} alternating rounds")
    print("| batch, N, F, D, H, L | attnsvm-nn (burn flex) ms/step | PyTorch ms/step | PyTorch / burn |")
    print("|---|---|---|---|")
    for s in shapes:
        steps = max(5, args.steps // (1 + s[1] // 128))
        burn, torch_ = [], []
        # Alternate the two sides so that a slow spell of a shared machine hits both.
        for _ in range(args.rounds):
            out = subprocess.run([BIN, *map(str, s), str(steps)], capture_output=True, text=True, check=True, env=env)
            burn.append(json.loads(out.stdout)["median_ms"])
            torch_.append(torch_ms(*s, steps))
        b_ms, t_ms = statistics.median(burn), statistics.median(torch_)
        print(f"| {s} | {b_ms:.2f} | {t_ms:.2f} | {t_ms / b_ms:.2f} |", flush=True)


if __name__ == "__main__":
    main()
