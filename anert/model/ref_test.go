package model

import (
	"math"

	"github.com/anelab/anelab/anert/config"
)

// refModel is an independent float64 implementation of the loss, written naively from the
// formulas in the package doc (loops, no BLAS, no shared code with the model). The whole-model
// gradient checks take central differences of it and compare with the model's backward pass.
type refModel struct {
	cfg    config.Model
	p      map[string][]float64
	active []int // classes in order (all ids without compaction)
}

func newRef(m *Model) *refModel {
	r := &refModel{cfg: m.cfg, p: map[string][]float64{}}
	for _, p := range m.Params() {
		w := make([]float64, len(p.W))
		for i, v := range p.W {
			w[i] = float64(v)
		}
		r.p[p.Name] = w
	}
	if m.cfg.Compact && m.active != nil {
		for _, id := range m.active {
			r.active = append(r.active, int(id))
		}
	} else {
		for id := range m.cfg.Vocab {
			r.active = append(r.active, id)
		}
	}
	return r
}

func refRMSNorm(x, g []float64, eps float64) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	r := 1 / math.Sqrt(ss/float64(len(x))+eps)
	out := make([]float64, len(x))
	for i := range x {
		out[i] = g[i] * x[i] * r
	}
	return out
}

// matvec is W·x for W [out, in].
func matvec(w, x []float64, out int) []float64 {
	in := len(x)
	y := make([]float64, out)
	for o := range out {
		for i := range in {
			y[o] += w[o*in+i] * x[i]
		}
	}
	return y
}

// forward returns, for one sequence, the final normed states xf[t] (after all layers).
func (r *refModel) forward(ids []uint16) [][]float64 {
	c := r.cfg
	D, H, F, T := c.Dim, c.Heads, c.FFN, len(ids)
	hd := D / H
	KV := c.KV() // query head h reads key/value head h/(H/KV)
	G := H / KV
	alpha := 1 / math.Sqrt(2*float64(c.Layers))
	E := r.p["embed"]
	x := make([][]float64, T)
	for t, id := range ids {
		x[t] = append([]float64(nil), E[int(id)*D:(int(id)+1)*D]...)
	}
	for l := range c.Layers {
		P := func(s string) []float64 { return r.p["layers."+itoa(l)+"."+s] }
		q, k, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for t := range T {
			xn := refRMSNorm(x[t], P("attn_norm"), c.NormEps)
			q[t], k[t], v[t] = matvec(P("wq"), xn, D), matvec(P("wk"), xn, KV*hd), matvec(P("wv"), xn, KV*hd)
			if c.QKNorm { // RMSNorm of each head's slice, gains shared by the heads
				for _, u := range []struct {
					x     []float64
					g     string
					heads int
				}{{q[t], "q_norm", H}, {k[t], "k_norm", KV}} {
					for h := range u.heads {
						copy(u.x[h*hd:(h+1)*hd], refRMSNorm(u.x[h*hd:(h+1)*hd], P(u.g), c.NormEps))
					}
				}
			}
			if c.Pos == "rope" {
				for h := range H {
					for i := range hd / 2 {
						th := float64(t) * math.Pow(c.RopeTheta, -2*float64(i)/float64(hd))
						us := [][]float64{q[t]}
						if h < KV {
							us = append(us, k[t])
						}
						for _, u := range us {
							a, b := u[h*hd+2*i], u[h*hd+2*i+1]
							u[h*hd+2*i], u[h*hd+2*i+1] = a*math.Cos(th)-b*math.Sin(th), a*math.Sin(th)+b*math.Cos(th)
						}
					}
				}
			}
		}
		for t := range T {
			att := make([]float64, D)
			for h := range H {
				s := make([]float64, t+1)
				var z float64
				g := h / G
				for j := range s {
					for i := range hd {
						s[j] += q[t][h*hd+i] * k[j][g*hd+i]
					}
					s[j] = math.Exp(s[j] / math.Sqrt(float64(hd)))
					z += s[j]
				}
				for j := range s {
					for i := range hd {
						att[h*hd+i] += s[j] / z * v[j][g*hd+i]
					}
				}
			}
			o := matvec(P("wo"), att, D)
			x2 := make([]float64, D)
			for i := range D {
				x2[i] = x[t][i] + alpha*o[i]
			}
			x2n := refRMSNorm(x2, P("ffn_norm"), c.NormEps)
			h1, h3 := matvec(P("w1"), x2n, F), []float64(nil)
			if c.Gated() {
				h3 = matvec(P("w3"), x2n, F)
			}
			gate := make([]float64, F)
			for i, u := range h1 {
				switch c.Activation() {
				case "swiglu":
					gate[i] = u / (1 + math.Exp(-u)) * h3[i]
				case "relu2":
					gate[i] = max(u, 0) * max(u, 0)
				case "gelu":
					gate[i] = 0.5 * u * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(u+0.044715*u*u*u)))
				default:
					panic("ref: activation " + c.Act)
				}
			}
			y := matvec(P("w2"), gate, D)
			for i := range D {
				x2[i] += alpha * y[i]
			}
			x[t] = x2 // safe: later positions of this layer read only q, k, v
		}
	}
	for t := range T {
		x[t] = refRMSNorm(x[t], r.p["final_norm"], c.NormEps)
	}
	return x
}

// logits returns the (soft-capped) logits of the classes for one final state.
func (r *refModel) logits(xf []float64) []float64 {
	D, E := r.cfg.Dim, r.p["embed"]
	if r.cfg.UntiedHead {
		E = r.p["head"]
	}
	z := make([]float64, len(r.active))
	for ci, id := range r.active {
		for i := range D {
			z[ci] += E[id*D+i] * xf[i]
		}
		if c := r.cfg.Softcap; c > 0 {
			z[ci] = c * math.Tanh(z[ci]/c)
		}
	}
	return z
}

// loss is the mean CE over all batch·T tokens.
func (r *refModel) loss(inputs, targets []uint16, batch int) float64 {
	T := len(inputs) / batch
	var sum float64
	for b := range batch {
		xf := r.forward(inputs[b*T : (b+1)*T])
		for t := range T {
			z := r.logits(xf[t])
			m := math.Inf(-1)
			for _, v := range z {
				m = max(m, v)
			}
			var s float64
			for _, v := range z {
				s += math.Exp(v - m)
			}
			tc := -1
			for ci, id := range r.active {
				if id == int(targets[b*T+t]) {
					tc = ci
				}
			}
			sum += m + math.Log(s) - z[tc]
		}
	}
	return sum / float64(len(inputs))
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
