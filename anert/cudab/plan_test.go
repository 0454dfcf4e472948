package cudab

import (
	"slices"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/cuda"
)

// The buffer plan, host logic only (no GPU): in bf16 mode exactly the GEMM-only activations and
// gradients are bf16 (2 bytes), everything else keeps its size; the fp32 modes have no bf16
// buffer and no separate dlogits; each buffer goes to its own field; P only for the GEMM
// attention, LSE and D only for flash.
func TestBufferPlan(t *testing.T) {
	bf16Layer := []string{"Xn", "A", "X2n", "H1", "H3", "Gate"}
	bf16Global := []string{"xf", "dlogits", "dy", "dh1", "dh3", "do", "dqkv", "ec"}
	for _, compact := range []bool{false, true} {
		for _, attn := range []Attention{AttentionGEMM, AttentionFlash} {
			for _, prec := range []cuda.Precision{cuda.FP32, cuda.BF16Fast, cuda.BF16} {
				cfg := config.Tiny()
				cfg.Model.Layers = 3
				tr := &Trainer{cfg: cfg, attn: attn, bf: prec == cuda.BF16}
				if compact {
					tr.active = []int32{1, 4, 5}
				}
				var b buffers
				const batch = 3
				plan := tr.bufferPlan(&b, batch)
				mc := cfg.Model
				N, D, F, C := batch*mc.Seq, mc.Dim, mc.FFN, tr.classes()
				seen := map[*cuda.Ptr]string{}
				names := map[string]bufSpec{}
				bytes := map[int]int{}
				for _, s := range plan {
					if o, dup := seen[s.p]; dup {
						t.Fatalf("%s and %s go to one field", o, s.name)
					}
					seen[s.p] = s.name
					names[s.name] = s
					bytes[s.size] += s.n * s.size
					short := s.name
					if i := strings.IndexByte(short, '.'); i >= 0 {
						short = short[i+1:]
					}
					wantBF := tr.bf && (strings.HasPrefix(s.name, "layer") && slices.Contains(bf16Layer, short) ||
						!strings.HasPrefix(s.name, "layer") && slices.Contains(bf16Global, short))
					if got := s.size == sizeBF16; got != wantBF {
						t.Errorf("%s %s compact=%v: %s is %d-byte, want bf16 = %v", prec, attn, compact, s.name, s.size, wantBF)
					}
				}
				for _, c := range []struct {
					name string
					n    int
				}{{"layer0.Xn", N * D}, {"layer2.H3", N * F}, {"layer1.Gate", N * F}, {"logits", N * C}, {"dqkv", 3 * N * D},
					{"qkv", 3 * N * D}, {"dh1", N * F}, {"lossRow", N}, {"xf", N * D}} {
					if s, ok := names[c.name]; !ok || s.n != c.n {
						t.Errorf("%s %s: %s has %d elements, want %d", prec, attn, c.name, s.n, c.n)
					}
				}
				_, hasDL := names["dlogits"]
				if hasDL != tr.bf {
					t.Errorf("%s: dlogits planned = %v", prec, hasDL)
				}
				_, hasEC := names["ec"]
				if hasEC != compact {
					t.Errorf("compact=%v: ec planned = %v", compact, hasEC)
				}
				_, hasP := names["layer1.P"]
				_, hasLSE := names["layer1.LSE"]
				_, hasDvec := names["dvec"]
				if hasP == (attn == AttentionFlash) || hasLSE != (attn == AttentionFlash) || hasDvec != (attn == AttentionFlash) {
					t.Errorf("%s attention: P %v, LSE %v, dvec %v", attn, hasP, hasLSE, hasDvec)
				}
				if tr.bf != (bytes[sizeBF16] > 0) {
					t.Errorf("%s: %d bytes of bf16 buffers", prec, bytes[sizeBF16])
				}
				if len(b.layers) != mc.Layers {
					t.Errorf("%d layers of buffers, want %d", len(b.layers), mc.Layers)
				}
			}
		}
	}
}

// bf16 mode's activation memory at the original shape (batch 32): each GEMM-only buffer takes 2
// bytes an element instead of 4, and dlogits (bf16) is added.
func TestBufferPlanBF16Saves(t *testing.T) {
	cfg := config.Default()
	cfg.Model.Dim, cfg.Model.Layers, cfg.Model.Heads, cfg.Model.FFN, cfg.Model.Seq, cfg.Model.Vocab = 768, 6, 12, 2048, 512, 9216
	total := func(bf bool) int {
		tr := &Trainer{cfg: cfg, attn: AttentionFlash, bf: bf}
		var b buffers
		n := 0
		for _, s := range tr.bufferPlan(&b, 32) {
			n += s.n * s.size
		}
		return n
	}
	f32, bf := total(false), total(true)
	N, D, F, L, C := 32*512, 768, 2048, 6, 9216
	halved := L*(3*N*D+3*N*F) + 3*N*D + 2*N*F + 3*N*D // per layer Xn, A, X2n, H1, H3, Gate; xf, dy, do, dh1, dh3, dQKV
	if want := f32 - 2*halved + 2*N*C; bf != want {
		t.Errorf("bf16 mode plans %d bytes, want %d (fp32's %d − 2·%d + dlogits)", bf, want, f32, halved)
	}
	t.Logf("original shape, batch 32, flash attention: %.2f GiB of buffers in fp32, %.2f GiB in bf16 mode", float64(f32)/(1<<30), float64(bf)/(1<<30))
}

// --gemm-precision, else $ANELAB_CUDA_GEMM, else bf16; a bad value names where it came from.
func TestParseGEMMPrecision(t *testing.T) {
	t.Setenv(GEMMEnv, "")
	for _, c := range []struct {
		flag, env string
		want      cuda.Precision
		err       string
	}{
		{"", "", cuda.BF16, ""},
		{"bf16", "", cuda.BF16, ""},
		{"fast16bf", "", cuda.BF16Fast, ""},
		{"", "fast16bf", cuda.BF16Fast, ""},
		{"bf16", "fast16bf", cuda.BF16, ""},
		{"fp16", "", 0, "--gemm-precision"},
		{"", "tf32", 0, GEMMEnv},
	} {
		t.Setenv(GEMMEnv, c.env)
		got, err := ParseGEMMPrecision(c.flag)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "fast16bf") {
				t.Errorf("flag %q env %q: error %v, want one naming %s and the choices", c.flag, c.env, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("flag %q env %q: %v, %v; want %v", c.flag, c.env, got, err, c.want)
		}
	}
}
