"""Checks train_ref.py's model and Lion against the math (run: /usr/bin/python3 -m unittest -v test_train_ref)."""
import cmath
import math
import unittest

import torch

import train_ref as tr

torch.set_num_threads(1)


def tiny(fuse=True, seq=8):
    torch.manual_seed(0)
    return tr.Model(dim=16, layers=2, heads=2, ffn=24, seq=seq, vocab=32, fuse=fuse)


class TestModel(unittest.TestCase):
    def test_param_count(self):
        for name, cfg in tr.CONFIGS.items():
            d, L, f, V = cfg["dim"], cfg["layers"], cfg["ffn"], cfg["vocab"]
            want = L * (4 * d * d + 3 * d * f) + V * d + (2 * L + 1) * d
            for fuse in (True, False):
                m = tr.Model(d, L, cfg["heads"], f, 4, V, fuse=fuse)
                with self.subTest(config=name, fuse=fuse):
                    self.assertEqual(sum(p.numel() for p in m.parameters()), want)
        self.assertEqual(tr.expected_params(**tr.CONFIGS["default"]), 7155360)

    def test_rope_matches_complex_rotation(self):
        # pair (x[2i], x[2i+1]) as x[2i] + j x[2i+1], rotated by pos * 10000^(-2i/hd)
        m = tiny()
        B, T, H, hd = 1, 8, 2, m.hd
        x = torch.randn(B, T, H, hd)
        got = m.rope(x)
        for t in range(T):
            for h in range(H):
                for i in range(hd // 2):
                    z = complex(x[0, t, h, 2 * i], x[0, t, h, 2 * i + 1])
                    z *= cmath.exp(1j * t * 10000 ** (-2 * i / hd))
                    self.assertAlmostEqual(got[0, t, h, 2 * i].item(), z.real, places=5)
                    self.assertAlmostEqual(got[0, t, h, 2 * i + 1].item(), z.imag, places=5)

    def test_causal(self):
        # hidden states at positions < 5 do not depend on tokens at positions >= 5
        m = tiny()
        ids = torch.randint(0, 32, (1, 9))
        ids2 = ids.clone()
        ids2[0, 5:] = (ids2[0, 5:] + 7) % 32
        x1 = self.hidden(m, ids[:, :-1])
        x2 = self.hidden(m, ids2[:, :-1])
        torch.testing.assert_close(x1[:, :5], x2[:, :5])
        self.assertFalse(torch.allclose(x1[:, 5:], x2[:, 5:]))

    @staticmethod
    def hidden(m, idx):
        x = torch.nn.functional.embedding(idx, m.embed)
        for b in m.blocks:
            x = x + m.alpha * m.attention(b, x)
            x = x + m.alpha * m.ffn(b, x)
        return x

    def test_fused_equals_unfused(self):
        f, u = tiny(True), tiny(False)
        with torch.no_grad():
            u.embed.copy_(f.embed)
            for bf, bu in zip(f.blocks, u.blocks):
                bu.wq.copy_(bf.wqkv[:16]), bu.wk.copy_(bf.wqkv[16:32]), bu.wv.copy_(bf.wqkv[32:])
                bu.w1.copy_(bf.w13[:24]), bu.w3.copy_(bf.w13[24:])
                bu.wo.copy_(bf.wo), bu.w2.copy_(bf.w2)
        ids = torch.randint(0, 32, (2, 9))
        torch.testing.assert_close(f(ids[:, :-1], ids[:, 1:]), u(ids[:, :-1], ids[:, 1:]))

    def test_loss_against_reference_math(self):
        # an independent, loop-per-head forward in float64 from the formulas in the brief
        m = tiny().double()
        ids = torch.randint(0, 32, (2, 9))
        got = m(ids[:, :-1], ids[:, 1:]).item()
        D, H, hd = m.dim, m.heads, m.hd

        def norm(x, g):
            return x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-5) * g

        def rope(v, t):  # v [hd]
            out = v.clone()
            for i in range(hd // 2):
                a = t * 10000 ** (-2 * i / hd)
                out[2 * i] = v[2 * i] * math.cos(a) - v[2 * i + 1] * math.sin(a)
                out[2 * i + 1] = v[2 * i] * math.sin(a) + v[2 * i + 1] * math.cos(a)
            return out

        total = 0.0
        for bi in range(2):
            x = m.embed[ids[bi, :-1]].detach()
            T = x.shape[0]
            for b in m.blocks:
                h = norm(x, b.attn_norm)
                q, k, v = (h @ b.wqkv.T).split(D, -1)
                a = torch.zeros_like(x)
                for hh in range(H):
                    sl = slice(hh * hd, (hh + 1) * hd)
                    for t in range(T):
                        qt = rope(q[t, sl], t)
                        s = torch.stack([qt @ rope(k[u, sl], u) / math.sqrt(hd) for u in range(t + 1)])
                        a[t, sl] = torch.softmax(s, 0) @ v[: t + 1, sl]
                x = x + a @ b.wo.T / math.sqrt(4)
                h = norm(x, b.ffn_norm)
                g, u = (h @ b.w13.T).split(24, -1)
                x = x + (torch.nn.functional.silu(g) * u) @ b.w2.T / math.sqrt(4)
            z = 30 * torch.tanh(norm(x, m.final_norm) @ m.embed.T / 30)
            total += -torch.log_softmax(z, -1)[torch.arange(T), ids[bi, 1:]].sum().item()
        self.assertAlmostEqual(got, total / 16, places=9)

    def test_lion_step(self):
        w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5, 3.0]))
        e = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        opt = tr.Lion([w, e], decay=[w], lr=0.1, b1=0.9, b2=0.99, wd=0.1)
        opt.m[0].copy_(torch.tensor([1.0, 1.0, -1.0, 0.0]))
        w.grad = torch.tensor([-20.0, 0.5, 0.5, -1.0])
        e.grad = torch.tensor([2.0, -3.0])
        opt.step()
        # c = sign(0.9 m + 0.1 g) = sign([-1.1, 0.95, -0.85, -0.1]) = [-1, 1, -1, -1]
        # w = w (1 - 0.1*0.1) - 0.1 c
        want_w = [1.0 * 0.99 + 0.1, -2.0 * 0.99 - 0.1, 0.5 * 0.99 + 0.1, 3.0 * 0.99 + 0.1]
        want_m = [0.99 * 1 + 0.01 * -20, 0.99 * 1 + 0.01 * 0.5, -0.99 + 0.01 * 0.5, 0.01 * -1.0]
        torch.testing.assert_close(w.detach(), torch.tensor(want_w))
        torch.testing.assert_close(opt.m[0], torch.tensor(want_m))
        torch.testing.assert_close(e.detach(), torch.tensor([0.9, -1.9]))  # no decay on embed

    def test_initial_loss_near_log_vocab(self):
        m = tiny()
        ids = torch.randint(0, 32, (4, 9))
        self.assertAlmostEqual(m(ids[:, :-1], ids[:, 1:]).item(), math.log(32), delta=0.1)


if __name__ == "__main__":
    unittest.main()
