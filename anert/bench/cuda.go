package bench

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/anelab/anelab/anert/cuda"
	"github.com/anelab/anelab/anert/cudab"
	"github.com/anelab/anelab/anert/model"
	"github.com/anelab/anelab/anert/optim"
)

// CUDAOptions are the settings of the GPU benchmark (anebench --backend cuda).
type CUDAOptions struct {
	Configs []string
	// Precisions are measured in turn for each config and attention (nil: cuda.BF16).
	Precisions []cuda.Precision
	// Attentions are measured in turn for each config (nil: cudab.DefaultAttention).
	Attentions []cudab.Attention
	Batch      map[string]int // per config: sequences per step (default: GPUBatch)
	Warmup     int            // untimed steps (0: 3)
	Steps      int            // timed steps (0: 20)
	Benchstat  string         // file the benchstat lines are appended to ("" none)
}

// GPUBatch is the GPU-sized batch of each config: 16,384 tokens per step for both (64 × 256 and
// 32 × 512), the batches the PyTorch GPU reference is measured at (issue 13).
var GPUBatch = map[string]int{"default": 64, "original": 32}

// CUDAResult is one config's GPU measurement.
type CUDAResult struct {
	Name, Precision, Attention string
	Batch, TokensPerStep       int
	TokensPerS, MsPerStep      float64
	ModelTFLOPS, PeakTFLOPS    float64 // model FLOP rate (6·P + attention, FLOPsPerToken) and cuBLAS GEMM peak
}

// RunCUDA times whole optimizer steps (micro-step, unscale + clip, update: the loop's work) on
// random tokens on the GPU for each config, and prints a table (and benchstat lines). The step
// time is the median of the timed steps, each ending with the device synchronised.
func RunCUDA(w io.Writer, o CUDAOptions) error {
	if err := cuda.Available(); err != nil {
		return fmt.Errorf("bench --backend cuda: %w", err)
	}
	attns := o.Attentions
	if len(attns) == 0 {
		attns = []cudab.Attention{cudab.DefaultAttention}
	}
	// A failing row (say, a kernel that does not compile on this GPU) does not lose the others:
	// the table has every row that ran, and the errors come after it.
	precs := o.Precisions
	if len(precs) == 0 {
		precs = []cuda.Precision{cuda.BF16}
	}
	var rs []CUDAResult
	var errs []error
	for _, a := range attns { // one attention's rows after the other: a kernel fault in one cannot cost the rows before
		for _, name := range o.Configs {
			for _, p := range precs {
				r, err := runCUDA(name, a, p, o)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s, %s attention, %s GEMMs: %w", name, a, p, err))
					continue
				}
				rs = append(rs, r)
			}
		}
	}
	fmt.Fprintf(w, "\n| config | backend | attention | batch × seq | tok/s | ms/step | model TFLOP/s | cuBLAS peak TFLOP/s | MFU |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | cuda %s | %s | %d × %d | %.0f | %.1f | %.1f | %.0f | %.1f%% |\n", r.Name, r.Precision, r.Attention, r.Batch,
			r.TokensPerStep/r.Batch, r.TokensPerS, r.MsPerStep, r.ModelTFLOPS, r.PeakTFLOPS, 100*r.ModelTFLOPS/r.PeakTFLOPS)
	}
	if o.Benchstat != "" {
		f, err := os.OpenFile(o.Benchstat, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		for _, r := range rs {
			name := fmt.Sprintf("BenchmarkStep/config=%s/backend=cuda-%s", r.Name, r.Precision)
			if r.Attention != string(cudab.AttentionGEMM) { // the GEMM path keeps its earlier name
				name += "/attention=" + r.Attention
			}
			fmt.Fprintf(f, "%s 1 %.0f ns/op %.0f tok/s\n", name, r.MsPerStep*1e6, r.TokensPerS)
		}
	}
	return errors.Join(errs...)
}

func runCUDA(name string, attn cudab.Attention, prec cuda.Precision, o CUDAOptions) (CUDAResult, error) {
	spec, err := SpecByName(name)
	if err != nil {
		return CUDAResult{}, err
	}
	cfg := spec.Config
	cfg.Train.Batch = GPUBatch[name]
	if b := o.Batch[name]; b > 0 {
		cfg.Train.Batch = b
	}
	if cfg.Train.Batch == 0 {
		cfg.Train.Batch = 32
	}
	m, err := model.New(cfg.Model, 1, nil)
	if err != nil {
		return CUDAResult{}, err
	}
	opt, err := optim.New(cfg.Optim, m.Params())
	if err != nil {
		return CUDAResult{}, err
	}
	t, err := cudab.New(cfg, m, opt, nil, prec, attn)
	if err != nil {
		return CUDAResult{}, err
	}
	defer t.Close()
	peak, err := t.PeakGFLOPS()
	if err != nil {
		return CUDAResult{}, err
	}
	B, T, V := cfg.Train.Batch, cfg.Model.Seq, cfg.Model.Vocab
	rng := rand.New(rand.NewPCG(1, 2))
	in, tgt := make([]uint16, B*T), make([]uint16, B*T)
	gs := float32(optim.GradScale(cfg.Optim))
	step := func() error {
		for i := range in {
			in[i], tgt[i] = uint16(rng.IntN(V)), uint16(rng.IntN(V))
		}
		if _, err := t.ForwardBackward(in, tgt, B, gs); err != nil {
			return err
		}
		if _, err := t.PrepareGrads(1); err != nil {
			return err
		}
		if err := t.Update(1e-4); err != nil {
			return err
		}
		return t.Sync()
	}
	warm, steps := o.Warmup, o.Steps
	if warm <= 0 {
		warm = 3
	}
	if steps <= 0 {
		steps = 20
	}
	for range warm {
		if err := step(); err != nil {
			return CUDAResult{}, err
		}
	}
	var ms []float64
	for range steps {
		t0 := time.Now()
		if err := step(); err != nil {
			return CUDAResult{}, err
		}
		ms = append(ms, time.Since(t0).Seconds()*1e3)
	}
	slices.Sort(ms)
	med := ms[len(ms)/2]
	tok := float64(B * T)
	return CUDAResult{Name: name, Precision: prec.String(), Attention: string(t.Attention()), Batch: B, TokensPerStep: B * T,
		TokensPerS: tok / (med / 1e3), MsPerStep: med, ModelTFLOPS: m.FLOPsPerToken() * tok / (med / 1e3) / 1e12,
		PeakTFLOPS: peak / 1e3}, nil
}
