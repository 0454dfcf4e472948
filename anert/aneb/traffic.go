package aneb

import (
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/device"
)

// Path is the data path a Backend runs: the variant of each slot with one (Fused, Split, CPURope)
// and whether outputs reach Go whole (Options.WholeOutputs) or field by field with the
// intermediates kept on the device.
type Path struct {
	AttnFwd      string // Fused or Split
	AttnBwd2     string // Fused or CPURope (a NoPE config has only the one sdpaBwd2: Fused)
	WholeOutputs bool
}

// Path is the data path this backend runs.
func (b *Backend) Path() Path {
	p := Path{AttnFwd: Fused, AttnBwd2: Fused, WholeOutputs: b.opts.WholeOutputs}
	if b.split {
		p.AttnFwd = Split
	}
	if b.rawBwd2 {
		p.AttnBwd2 = CPURope
	}
	return p
}

// StepTraffic is the bytes one optimizer step of cfg moves between Go and the device's surfaces
// and between surfaces, on path p, in the steady state (every step after the first, which also
// stages each layer's weights at first use). With n = batch·accum sequences of S = seq tokens, L
// layers, D = dim, F = ffn, H = heads, in fp16 values (×2 bytes):
//
//	weights  W = L·(8D² + 6DF)    Wq Wk Wv Wo twice (forward, backward), W1 W3 W2 twice, once per step
//	fields, per layer and sequence, S·(…):
//	             Go → surface                     surface → Go      surface → surface
//	  new path   9D + 2F [+3D split] [+2D cpu-rope]  12D + 4F          2D + 2HS [+2D unless cpu-rope]
//	  whole      13D + 2F + 2HS [+3D split]          12D + 4F + 2HS    0
//
// Go → surface: xn, x2n, dffn, dy, q k v (sdpaBwd1), q k (sdpaBwd2) = 9D and dh1, dh3 = 2F; the split
// forward writes q, k, v again for sdpaWo (+3D); cpu-rope writes dq, dk after rotating them (+2D).
// Surface → Go: o a q k v (5D), x_next (D) h1 h3 gate (3F), dsilu (F), dx2n (D), da (D), dv (D),
// dq dk (2D), dxn (D). Surface → surface: da and dv (2D), P and dP (2HS), dq and dk (2D, fused
// sdpaBwd2). The whole-output path reads every output surface (sdpaBwd1's includes P and dP, 2HS)
// and writes da, dv, P, dP and dq, dk back from Go. At the default config (dim 256, 6 layers,
// 4 heads, ffn 768, seq 256, batch 4) that is 206.0 MB whole and 180.9 MB on the new path, of
// which 143.1 MB between Go and the surfaces and 37.7 MB surface to surface.
func StepTraffic(cfg config.Config, p Path) device.Traffic {
	m := cfg.Model
	n := int64(max(cfg.Train.Batch, 1)) * int64(max(cfg.Optim.Accum, 1))
	L, D, F, H, S := int64(m.Layers), int64(m.Dim), int64(m.FFN), int64(m.Heads), int64(m.Seq)
	split, raw := int64(0), int64(0)
	if p.AttnFwd == Split {
		split = 1
	}
	if p.AttnBwd2 == CPURope {
		raw = 1
	}
	var in, out, cp int64 // per layer and sequence, over S
	if p.WholeOutputs {
		in = 13*D + 2*F + 2*H*S + 3*D*split
		out = 12*D + 4*F + 2*H*S
	} else {
		in = 9*D + 2*F + 3*D*split + 2*D*raw
		out = 12*D + 4*F
		cp = 2*D + 2*H*S + 2*D*(1-raw)
	}
	seqs := n * L * S
	return device.Traffic{In: 2 * (L*(8*D*D+6*D*F) + seqs*in), Out: 2 * seqs * out, Copy: 2 * seqs * cp}
}
