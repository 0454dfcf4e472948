package aneb

import "github.com/anelab/anelab/anert/model"

// AttnForward runs sdpaWoFwd on each sequence: xn → O = A·Woᵀ, A, Q and K (after RoPE), V.
func (b *Backend) AttnForward(l int, s model.Shape, w *model.Layer, a *model.LayerActs) error {
	if err := b.check(l, s); err != nil {
		return err
	}
	if b.split {
		return b.attnForwardSplit(l, s, w, a)
	}
	in, err := b.input(l, kAttnFwd, w)
	if err != nil {
		return err
	}
	k := b.ks[kAttnFwd]
	for q := range s.B {
		if err := b.put(in, k.Input("xn"), a.Xn, q, s.T, 1); err != nil {
			return err
		}
		if err := b.eval(kAttnFwd, in); err != nil {
			return err
		}
		if err := b.get(kAttnFwd, q, s.T, 1, into{"o", a.O}, into{"a", a.A}, into{"q", a.Q}, into{"k", a.K}, into{"v", a.V}); err != nil {
			return err
		}
	}
	return nil
}

// attnForwardSplit is AttnForward's "split" variant: qkvFwd (xn → Q, K, V), RoPE on Q and K on
// the CPU (fp32, in place), then sdpaWo (Q, K, V → O, A).
func (b *Backend) attnForwardSplit(l int, s model.Shape, w *model.Layer, a *model.LayerActs) error {
	inP, err := b.input(l, kQKVFwd, w)
	if err != nil {
		return err
	}
	inA, err := b.input(l, kSdpaWo, w)
	if err != nil {
		return err
	}
	kp, ka := b.ks[kQKVFwd], b.ks[kSdpaWo]
	D, T := s.D, s.T
	for q := range s.B {
		if err := b.put(inP, kp.Input("xn"), a.Xn, q, T, 1); err != nil {
			return err
		}
		if err := b.eval(kQKVFwd, inP); err != nil {
			return err
		}
		if err := b.get(kQKVFwd, q, T, 1, into{"q", a.Q}, into{"k", a.K}, into{"v", a.V}); err != nil {
			return err
		}
		if s.Cos != nil {
			model.RoPERows(rows(a.Q, q, T, D), T, 0, T, D, s.HD, s.Cos, s.Sin, 1)
			model.RoPERows(rows(a.K, q, T, D), T, 0, T, D, s.HD, s.Cos, s.Sin, 1)
		}
		for _, f := range []struct {
			name string
			x    []float32
		}{{"q", a.Q}, {"k", a.K}, {"v", a.V}} {
			if err := b.put(inA, ka.Input(f.name), f.x, q, T, 1); err != nil {
				return err
			}
		}
		if err := b.eval(kSdpaWo, inA); err != nil {
			return err
		}
		if err := b.get(kSdpaWo, q, T, 1, into{"o", a.O}, into{"a", a.A}); err != nil {
			return err
		}
	}
	return nil
}

// AttnBackward runs, per sequence, with the gradient scaled by g = gradScale(DO):
//
//	wotBwd    g·DA = Woᵀ·(g·DO)
//	sdpaBwd1  g·DV, P, g·dP from Q, K, V and g·DA (raw fp16 from wotBwd)
//	sdpaBwd2  g·DQ, g·DK (before RoPE) from P, g·dP (raw) and Q, K
//	qkvBwd    g·DXn = Wqᵀ·(g·DQ) + Wkᵀ·(g·DK) + Wvᵀ·(g·DV) (all raw)
//
// and divides DA, DV, DQ, DK and DXn by g.
func (b *Backend) AttnBackward(l int, s model.Shape, w *model.Layer, a *model.LayerActs) error {
	if err := b.check(l, s); err != nil {
		return err
	}
	inWo, err := b.input(l, kWoBwd, w)
	if err != nil {
		return err
	}
	inQKV, err := b.input(l, kQKVBwd, w)
	if err != nil {
		return err
	}
	bwd2 := kAttnBwd2
	if b.rawBwd2 {
		bwd2 = kAttnBwd2Raw // the cpu-rope variant: dq, dk of the rotated q, k
	}
	in1, in2 := b.free[kAttnBwd1], b.free[bwd2]
	kWo, k1, k2, kQKV := b.ks[kWoBwd], b.ks[kAttnBwd1], b.ks[bwd2], b.ks[kQKVBwd]
	D, T := s.D, s.T
	for q := range s.B {
		g := gradScale(rows(a.DO, q, T, D))
		if err := b.put(inWo, kWo.Input("dy"), a.DO, q, T, g); err != nil {
			return err
		}
		if err := b.eval(kWoBwd, inWo); err != nil {
			return err
		}
		if err := b.get(kWoBwd, q, T, 1/g, into{"da", a.DA}); err != nil {
			return err
		}

		for _, f := range []struct {
			name string
			x    []float32
		}{{"q", a.Q}, {"k", a.K}, {"v", a.V}} {
			if err := b.put(in1, k1.Input(f.name), f.x, q, T, 1); err != nil {
				return err
			}
		}
		if err := b.hand(in1, k1.Input("da"), kWoBwd, "da"); err != nil {
			return err
		}
		if err := b.eval(kAttnBwd1, in1); err != nil {
			return err
		}
		if err := b.get(kAttnBwd1, q, T, 1/g, into{"dv", a.DV}); err != nil {
			return err
		}

		for _, n := range []string{"P", "dP"} {
			if err := b.hand(in2, k2.Input(n), kAttnBwd1, n); err != nil {
				return err
			}
		}
		if err := b.put(in2, k2.Input("q"), a.Q, q, T, 1); err != nil {
			return err
		}
		if err := b.put(in2, k2.Input("k"), a.K, q, T, 1); err != nil {
			return err
		}
		if err := b.eval(bwd2, in2); err != nil {
			return err
		}
		if err := b.get(bwd2, q, T, 1/g, into{"dq", a.DQ}, into{"dk", a.DK}); err != nil {
			return err
		}

		if b.rawBwd2 {
			// cpu-rope: undo the rotation in fp32, then stage g·DQ, g·DK for qkvBwd.
			if s.Cos != nil {
				model.RoPERows(rows(a.DQ, q, T, D), T, 0, T, D, s.HD, s.Cos, s.Sin, -1)
				model.RoPERows(rows(a.DK, q, T, D), T, 0, T, D, s.HD, s.Cos, s.Sin, -1)
			}
			if err := b.put(inQKV, kQKV.Input("dq"), a.DQ, q, T, g); err != nil {
				return err
			}
			if err := b.put(inQKV, kQKV.Input("dk"), a.DK, q, T, g); err != nil {
				return err
			}
		} else {
			for _, n := range []string{"dq", "dk"} {
				if err := b.hand(inQKV, kQKV.Input(n), bwd2, n); err != nil {
					return err
				}
			}
		}
		if err := b.hand(inQKV, kQKV.Input("dv"), kAttnBwd1, "dv"); err != nil {
			return err
		}
		if err := b.eval(kQKVBwd, inQKV); err != nil {
			return err
		}
		if err := b.get(kQKVBwd, q, T, 1/g, into{"dx", a.DXn}); err != nil {
			return err
		}
	}
	return nil
}

// FFNForward runs ffnFused (generated with α = 1 and x2 = 0) on each sequence:
// x2n → Y = Gate·W2ᵀ, H1, H3, Gate = silu(H1)⊙H3.
func (b *Backend) FFNForward(l int, s model.Shape, w *model.Layer, a *model.LayerActs) error {
	if err := b.check(l, s); err != nil {
		return err
	}
	in, err := b.input(l, kFFNFwd, w)
	if err != nil {
		return err
	}
	k := b.ks[kFFNFwd]
	for q := range s.B {
		if err := b.put(in, k.Input("x2n"), a.X2n, q, s.T, 1); err != nil {
			return err
		}
		if err := b.eval(kFFNFwd, in); err != nil {
			return err
		}
		if err := b.get(kFFNFwd, q, s.T, 1, into{"x_next", a.Y}, into{"h1", a.H1}, into{"h3", a.H3}, into{"gate", a.Gate}); err != nil {
			return err
		}
	}
	return nil
}

// FFNBackward runs ffnBwdW2t (DGate = DY·W2, DY scaled by gradScale per sequence), the SwiGLU
// backward on the CPU in fp32 (model.SwiGLUBackward, the CPU backend's kernel, from the forward's H1, H3), then ffnBwdW13t
// (DX2n = DH1·W1 + DH3·W3, DH1 and DH3 scaled together).
func (b *Backend) FFNBackward(l int, s model.Shape, w *model.Layer, a *model.LayerActs) error {
	if err := b.check(l, s); err != nil {
		return err
	}
	in2, err := b.input(l, kFFNBwdW2, w)
	if err != nil {
		return err
	}
	in13, err := b.input(l, kFFNBwdW13, w)
	if err != nil {
		return err
	}
	k2, k13 := b.ks[kFFNBwdW2], b.ks[kFFNBwdW13]
	D, F, T := s.D, s.F, s.T
	for q := range s.B {
		g := gradScale(rows(a.DY, q, T, D))
		if err := b.put(in2, k2.Input("dffn"), a.DY, q, T, g); err != nil {
			return err
		}
		if err := b.eval(kFFNBwdW2, in2); err != nil {
			return err
		}
		if err := b.get(kFFNBwdW2, q, T, 1/g, into{"dsilu", a.DGate}); err != nil {
			return err
		}
	}
	n := s.N * F
	model.SwiGLUBackward(s.Workers, a.DH1[:n], a.DH3[:n], a.DGate[:n], a.H1[:n], a.H3[:n])
	for q := range s.B {
		g := gradScale(rows(a.DH1, q, T, F), rows(a.DH3, q, T, F))
		if err := b.put(in13, k13.Input("dh1"), a.DH1, q, T, g); err != nil {
			return err
		}
		if err := b.put(in13, k13.Input("dh3"), a.DH3, q, T, g); err != nil {
			return err
		}
		if err := b.eval(kFFNBwdW13, in13); err != nil {
			return err
		}
		if err := b.get(kFFNBwdW13, q, T, 1/g, into{"dx", a.DX2n}); err != nil {
			return err
		}
	}
	return nil
}
