#!/usr/bin/python3
"""PyTorch reference trainer for anelab's CPU speed comparison (issue 6).

The same model and update as anelab's Go trainer, timed on random token ids:

  pre-norm Llama-style transformer, embedding E[V,D] tied to the classifier;
  per block:
    h   = RMSNorm(x)                  (eps 1e-5, learned gain)
    q,k,v = Wq h, Wk h, Wv h          (D->D each, no bias)
    q,k = RoPE(q), RoPE(k)            (adjacent pairs (2i,2i+1), theta_i = pos * 10000^(-2i/hd))
    a   = softmax(q k^T / sqrt(hd) + causal mask) v     (per head)
    x   = x + alpha * Wo a            (alpha = 1/sqrt(2 * layers))
    x   = x + alpha * W2(silu(W1 RMSNorm(x)) * W3 RMSNorm(x))
  xf = RMSNorm(x); l = xf E^T; z = 30 tanh(l/30); loss = mean cross-entropy(z, next token)

  Lion (beta1 0.9, beta2 0.99), decoupled weight decay 0.1 on the matrices only
  (not the embedding, not the norm gains), global-norm gradient clip 1.0 (anelab's default;
  --grad-clip 0 disables), one update per micro-step of B sequences x T tokens.

Wq|Wk|Wv and W1|W3 are stored as one concatenated matrix each, which is the same model
(same parameters, same elementwise update) with fewer, larger matmuls; --no-fuse keeps them apart.

Only Debian's python3-torch (1.13) and the standard library: run with /usr/bin/python3.
Prints one JSON line.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

CONFIGS = {
    # name: dim, layers, heads, ffn, seq, vocab, batch
    "default": dict(dim=288, layers=6, heads=6, ffn=768, seq=256, vocab=4096, batch=4),
    "original": dict(dim=768, layers=6, heads=12, ffn=2048, seq=512, vocab=9216, batch=1),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="default", choices=sorted(CONFIGS))
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="compute threads (default: all cores)")
    p.add_argument("--steps", type=int, default=20, help="timed optimizer steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    p.add_argument("--batch", type=int, default=0, help="sequences per step (0: the config's)")
    p.add_argument("--seq", type=int, default=0, help="tokens per sequence (0: the config's)")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--grad-clip", type=float, default=1.0, help="global L2 norm clip; 0 disables")
    p.add_argument("--no-fuse", action="store_true", help="separate Wq/Wk/Wv and W1/W3 matmuls")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    for name in ("threads", "steps"):
        if getattr(a, name) < 1:
            p.error(f"--{name} = {getattr(a, name)}: must be at least 1")
    if a.warmup < 0 or a.batch < 0 or a.seq < 0:
        p.error("--warmup, --batch and --seq must be >= 0")
    return a


def set_thread_env(threads):
    """Thread settings that must be in the environment before torch (OpenMP) and OpenBLAS load.

    Debian's torch does its matmuls in OpenBLAS (pthreads), which torch.set_num_threads does not
    reach, and its elementwise ops in OpenMP. Both pools spin while idle by default, and on a
    machine with as many cores as threads each steals the other's cores: OMP_WAIT_POLICY=PASSIVE
    makes the OpenMP workers sleep instead (about 2x faster at 2 threads on 2 cores).
    Values already in the environment win, so other settings can be tried from outside.
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


if __name__ == "__main__":
    args = parse_args()
    set_thread_env(args.threads)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class Model(torch.nn.Module):
    def __init__(self, dim, layers, heads, ffn, seq, vocab, fuse=True, std=0.02, eps=1e-5, theta=10000.0):
        super().__init__()
        assert dim % heads == 0 and (dim // heads) % 2 == 0, "dim/heads must be even"
        self.dim, self.layers, self.heads, self.hd, self.eps, self.fuse = dim, layers, heads, dim // heads, eps, fuse
        self.alpha = 1.0 / math.sqrt(2 * layers)
        P = torch.nn.Parameter

        def mat(o, i):
            return P(torch.randn(o, i) * std)

        self.embed = P(torch.randn(vocab, dim) * std)
        self.blocks = torch.nn.ModuleList()
        for _ in range(layers):
            b = torch.nn.Module()
            b.attn_norm = P(torch.ones(dim))
            b.ffn_norm = P(torch.ones(dim))
            if fuse:
                b.wqkv = mat(3 * dim, dim)
                b.w13 = mat(2 * ffn, dim)
            else:
                b.wq, b.wk, b.wv = mat(dim, dim), mat(dim, dim), mat(dim, dim)
                b.w1, b.w3 = mat(ffn, dim), mat(ffn, dim)
            b.wo = mat(dim, dim)
            b.w2 = mat(dim, ffn)
            self.blocks.append(b)
        self.final_norm = P(torch.ones(dim))
        # RoPE tables, [seq, 1, hd/2]: angle = pos * theta^(-2i/hd)
        inv = theta ** (-torch.arange(0, self.hd, 2, dtype=torch.float64) / self.hd)
        ang = torch.outer(torch.arange(seq, dtype=torch.float64), inv)
        self.register_buffer("cos", ang.cos().float().unsqueeze(1), persistent=False)
        self.register_buffer("sin", ang.sin().float().unsqueeze(1), persistent=False)
        self.register_buffer("mask", torch.full((seq, seq), float("-inf")).triu(1), persistent=False)

    def matrices(self):
        """Parameters in the Matrix group (weight decay); the rest are the embedding and gains."""
        return [p for n, p in self.named_parameters() if n.startswith("blocks.") and not n.endswith("_norm")]

    def rmsnorm(self, x, g):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * g

    def rope(self, x):  # x [B, T, H, hd]; rotate adjacent pairs (2i, 2i+1)
        T = x.shape[1]
        c, s = self.cos[:T], self.sin[:T]
        x = x.unflatten(-1, (-1, 2))
        x0, x1 = x[..., 0], x[..., 1]
        return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)

    def attention(self, b, x):
        B, T, D = x.shape
        H, hd = self.heads, self.hd
        h = self.rmsnorm(x, b.attn_norm)
        if self.fuse:
            q, k, v = F.linear(h, b.wqkv).split(D, dim=-1)
        else:
            q, k, v = F.linear(h, b.wq), F.linear(h, b.wk), F.linear(h, b.wv)
        q = self.rope(q.view(B, T, H, hd)).transpose(1, 2).reshape(B * H, T, hd)
        k = self.rope(k.view(B, T, H, hd)).transpose(1, 2).reshape(B * H, T, hd)
        v = v.view(B, T, H, hd).transpose(1, 2).reshape(B * H, T, hd)
        # scores = mask + (q k^T)/sqrt(hd) in one call; torch 1.13 has no scaled_dot_product_attention
        s = torch.baddbmm(self.mask[:T, :T], q, k.transpose(1, 2), alpha=1.0 / math.sqrt(hd))
        a = torch.bmm(torch.softmax(s, dim=-1), v)
        a = a.view(B, H, T, hd).transpose(1, 2).reshape(B, T, D)
        return F.linear(a, b.wo)

    def ffn(self, b, x):
        h = self.rmsnorm(x, b.ffn_norm)
        if self.fuse:
            g, u = F.linear(h, b.w13).chunk(2, dim=-1)
        else:
            g, u = F.linear(h, b.w1), F.linear(h, b.w3)
        return F.linear(F.silu(g) * u, b.w2)

    def forward(self, idx, targets):
        x = F.embedding(idx, self.embed)
        for b in self.blocks:
            x = x + self.alpha * self.attention(b, x)
            x = x + self.alpha * self.ffn(b, x)
        xf = self.rmsnorm(x, self.final_norm)
        z = 30.0 * torch.tanh(F.linear(xf, self.embed) / 30.0)
        return F.cross_entropy(z.view(-1, z.shape[-1]), targets.reshape(-1))


class Lion:
    """Lion: c = sign(b1 m + (1-b1) g); w -= lr (c + wd w); m = b2 m + (1-b2) g."""

    def __init__(self, params, decay, lr, b1=0.9, b2=0.99, wd=0.1):
        self.params, self.lr, self.b1, self.b2 = list(params), lr, b1, b2
        ids = {id(p) for p in decay}
        self.wd = [wd if id(p) in ids else 0.0 for p in self.params]
        self.m = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self):
        for p, m, wd in zip(self.params, self.m, self.wd):
            g = p.grad
            c = torch.lerp(m, g, 1 - self.b1).sign_()
            if wd:
                p.mul_(1 - self.lr * wd)
            p.add_(c, alpha=-self.lr)
            m.lerp_(g, 1 - self.b2)


def expected_params(dim, layers, ffn, vocab, **_):
    return layers * (4 * dim * dim + 3 * dim * ffn + 2 * dim) + vocab * dim + dim


def main(args):
    cfg = dict(CONFIGS[args.config])
    B = args.batch or cfg["batch"]
    T = args.seq or cfg["seq"]
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = Model(cfg["dim"], cfg["layers"], cfg["heads"], cfg["ffn"], T, cfg["vocab"], fuse=not args.no_fuse)
    params = list(model.parameters())
    n = sum(p.numel() for p in params)
    want = expected_params(**cfg)
    if n != want:
        sys.exit(f"train_ref: model has {n} parameters, the formula says {want}")
    opt = Lion(params, model.matrices(), lr=args.lr)
    g = torch.Generator().manual_seed(args.seed)

    def step():
        ids = torch.randint(0, cfg["vocab"], (B, T + 1), generator=g)
        loss = model(ids[:, :-1], ids[:, 1:])
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
        opt.step()
        for p in params:
            p.grad = None
        return loss.item()

    for _ in range(args.warmup):
        step()
    times, loss = [], float("nan")
    t0 = time.perf_counter()
    for _ in range(args.steps):
        t = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t)
    wall = time.perf_counter() - t0
    out = {
        "config": args.config, "threads": args.threads, "batch": B, "seq": T,
        "tokens_per_s": round(B * T * args.steps / wall, 1),
        "ms_per_step": round(1000 * wall / args.steps, 2),
        "ms_per_step_min": round(1000 * min(times), 2),
        "ms_per_step_median": round(1000 * statistics.median(times), 2),
        "params": n, "torch_version": torch.__version__,
        "steps": args.steps, "warmup": args.warmup, "fused": not args.no_fuse,
        "grad_clip": args.grad_clip, "loss": round(loss, 4),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(args)
