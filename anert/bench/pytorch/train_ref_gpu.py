#!/usr/bin/env python3
"""PyTorch GPU reference for anelab's CUDA backend (issue 13): the same model and update as
train_ref.py (and anelab's Go trainer), on an NVIDIA GPU, the way the field trains it:

  bf16 autocast (tensor-core matmuls, fp32 master weights), fused causal SDPA attention, Lion
  (beta1 0.9, beta2 0.99, weight decay 0.1 on the matrices), global-norm clip 1.0, soft-cap 30,
  one update per step of B sequences x T tokens; eager, or with --compile torch.compile.

The shape comes from --config (a preset) with any field overridden by its flag, so it can follow
anelab's config.Default(). Timed on random token ids; each step ends with a synchronisation.
Prints one JSON line.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F

CONFIGS = {
    # name: dim, layers, heads, ffn, seq, vocab, batch (GPU-sized: 16,384 tokens per step)
    "default": dict(dim=256, layers=6, heads=4, ffn=768, seq=256, vocab=4096, batch=64),  # config.Default()
    "dim288": dict(dim=288, layers=6, heads=6, ffn=768, seq=256, vocab=4096, batch=64),  # the default until 29 Nov
    "original": dict(dim=768, layers=6, heads=12, ffn=2048, seq=512, vocab=9216, batch=32),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="default", choices=sorted(CONFIGS))
    for k in ("dim", "layers", "heads", "ffn", "seq", "vocab", "batch"):
        p.add_argument("--" + k, type=int, default=0, help=f"override the preset's {k}")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--fp32", action="store_true", help="no autocast: fp32 matmuls (TF32 off)")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


class Model(torch.nn.Module):
    def __init__(self, dim, layers, heads, ffn, seq, vocab, std=0.02, eps=1e-5, theta=10000.0):
        super().__init__()
        self.dim, self.heads, self.hd, self.eps = dim, heads, dim // heads, eps
        self.alpha = 1.0 / math.sqrt(2 * layers)
        P = torch.nn.Parameter
        self.embed = P(torch.randn(vocab, dim) * std)
        self.blocks = torch.nn.ModuleList()
        for _ in range(layers):
            b = torch.nn.Module()
            b.attn_norm, b.ffn_norm = P(torch.ones(dim)), P(torch.ones(dim))
            b.wqkv = P(torch.randn(3 * dim, dim) * dim ** -0.5)
            b.w13 = P(torch.randn(2 * ffn, dim) * dim ** -0.5)
            b.wo = P(torch.randn(dim, dim) * dim ** -0.5 * self.alpha)
            b.w2 = P(torch.randn(dim, ffn) * ffn ** -0.5 * self.alpha)
            self.blocks.append(b)
        self.final_norm = P(torch.ones(dim))
        inv = theta ** (-torch.arange(0, self.hd, 2, dtype=torch.float64) / self.hd)
        ang = torch.outer(torch.arange(seq, dtype=torch.float64), inv)
        self.register_buffer("cos", ang.cos().float().unsqueeze(1), persistent=False)
        self.register_buffer("sin", ang.sin().float().unsqueeze(1), persistent=False)

    def matrices(self):
        return [p for n, p in self.named_parameters() if n.startswith("blocks.") and not n.endswith("_norm")]

    def rmsnorm(self, x, g):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * g

    def rope(self, x):  # [B, T, H, hd]: rotate adjacent pairs (2i, 2i+1)
        T = x.shape[1]
        c, s = self.cos[:T], self.sin[:T]
        x = x.unflatten(-1, (-1, 2))
        x0, x1 = x[..., 0], x[..., 1]
        return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)

    def forward(self, idx, targets):
        B, T = idx.shape
        H, hd, D = self.heads, self.hd, self.dim
        x = F.embedding(idx, self.embed)
        for b in self.blocks:
            h = self.rmsnorm(x, b.attn_norm)
            q, k, v = F.linear(h, b.wqkv).split(D, dim=-1)
            q = self.rope(q.view(B, T, H, hd)).transpose(1, 2)
            k = self.rope(k.view(B, T, H, hd)).transpose(1, 2)
            v = v.view(B, T, H, hd).transpose(1, 2)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.alpha * F.linear(a.transpose(1, 2).reshape(B, T, D), b.wo)
            h = self.rmsnorm(x, b.ffn_norm)
            g, u = F.linear(h, b.w13).chunk(2, dim=-1)
            x = x + self.alpha * F.linear(F.silu(g) * u, b.w2)
        xf = self.rmsnorm(x, self.final_norm)
        z = 30.0 * torch.tanh(F.linear(xf, self.embed).float() / 30.0)
        return F.cross_entropy(z.view(-1, z.shape[-1]), targets.reshape(-1))


class Lion:
    """w -= lr·(sign(b1·m + (1−b1)·g) + wd·w);  m = b2·m + (1−b2)·g (foreach ops)."""

    def __init__(self, params, decay, lr, b1=0.9, b2=0.99, wd=0.1):
        ids = {id(p) for p in decay}
        self.dec = [p for p in params if id(p) in ids]
        self.params, self.lr, self.b1, self.b2, self.wd = list(params), lr, b1, b2, wd
        self.m = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self):
        gs = [p.grad for p in self.params]
        torch._foreach_mul_(self.dec, 1 - self.lr * self.wd)
        c = torch._foreach_lerp(self.m, gs, 1 - self.b1)
        torch._foreach_sign_(c)
        torch._foreach_add_(self.params, c, alpha=-self.lr)
        torch._foreach_lerp_(self.m, gs, 1 - self.b2)


def main(a):
    cfg = dict(CONFIGS[a.config])
    for k in cfg:
        if getattr(a, k):
            cfg[k] = getattr(a, k)
    B, T = cfg.pop("batch"), cfg["seq"]
    dev = torch.device("cuda")
    torch.manual_seed(a.seed)
    torch.backends.cuda.matmul.allow_tf32 = False
    model = Model(**cfg).to(dev)
    params = list(model.parameters())
    opt = Lion(params, model.matrices(), lr=a.lr)
    fwd = torch.compile(model) if a.compile else model
    g = torch.Generator(device=dev).manual_seed(a.seed)

    def step():
        ids = torch.randint(0, cfg["vocab"], (B, T + 1), generator=g, device=dev)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=not a.fp32):
            loss = fwd(ids[:, :-1], ids[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        for p in params:
            p.grad = None
        return loss

    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        loss = step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    n = sum(p.numel() for p in params)
    L, D, F_, V = cfg["layers"], cfg["dim"], cfg["ffn"], cfg["vocab"]
    flops_tok = 6 * (L * (4 * D * D + 3 * D * F_) + V * D) + 6 * L * D * (T + 1)
    print(json.dumps({
        "config": a.config, "shape": cfg, "batch": B, "compile": a.compile, "bf16": not a.fp32,
        "tokens_per_s": round(B * T / med), "ms_per_step_median": round(1000 * med, 2),
        "model_tflops": round(flops_tok * B * T / med / 1e12, 1), "params": n,
        "loss": round(loss.item(), 4), "torch": torch.__version__, "gpu": torch.cuda.get_device_name(),
    }), flush=True)


if __name__ == "__main__":
    main(parse_args())
