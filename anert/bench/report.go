package bench

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/anelab/anelab/anert/blas"
	"github.com/anelab/anelab/anert/model"
)

// Summary is a Result reduced to the figures the report prints: over the steps that followed a
// step, as in training (all of them if every step came right after a burst, Options.Group 1).
type Summary struct {
	MedianStepMs, BestStepMs   float64 // over those steps
	AfterBurstMs               float64 // median over the steps right after a burst (0: none apart)
	TokensPerS, BestTokensPerS float64 // at the median and at the fastest step
	ModelGFLOPS                float64 // model FLOP rate at the median step
	Sgemm, BestSgemm           float64 // median over steps of Result.Sgemm; Result.BestSgemm
	MFU                        float64 // median over steps of the step's MFU (Result.MFU), percent
	BestMFU                    float64 // fastest step's FLOP rate over the fastest sgemm product, percent
	// Mean time per step by phase, in ms; Other is the rest of the step.
	Forward, Backward, WeightGrad, Optimizer, Other float64
	Loops                                           float64 // mean parallel loops per step (Step.Loops)
}

// Summarize reduces one config's rounds (each step's MFU is taken within its own round).
func Summarize(runs ...Result) Summary {
	var s Summary
	var ns, mfus, sgemm, cold []float64
	var fwd, bwd, wg, opt, total, loops float64
	best := math.Inf(1)
	var r0 Result
	warm := false // some step followed a step: the steps right after a burst are then apart
	for _, r := range runs {
		warm = warm || r.afterSteps()
	}
	for _, r := range runs {
		if len(r.Steps) == 0 {
			continue
		}
		r0 = r
		for i, st := range r.Steps {
			if warm && st.AfterBurst {
				cold = append(cold, float64(st.Ns))
				continue
			}
			ns = append(ns, float64(st.Ns))
			mfus = append(mfus, r.MFU(i))
			sgemm = append(sgemm, r.Sgemm(i))
			best = min(best, float64(st.Ns))
			fwd, bwd, wg, opt = fwd+float64(st.Forward), bwd+float64(st.Backward), wg+float64(st.WeightGrad), opt+float64(st.Optimizer)
			total += float64(st.Ns)
			loops += float64(st.Loops)
		}
		s.BestSgemm = max(s.BestSgemm, r.BestSgemm())
	}
	if len(ns) == 0 {
		return s
	}
	n := float64(len(ns))
	s.MedianStepMs, s.BestStepMs = median(ns)/1e6, best/1e6
	if len(cold) > 0 {
		s.AfterBurstMs = median(cold) / 1e6
	}
	s.TokensPerS = float64(r0.Tokens()) / (s.MedianStepMs / 1e3)
	s.BestTokensPerS = float64(r0.Tokens()) / (s.BestStepMs / 1e3)
	s.ModelGFLOPS = r0.FLOPsPerToken * s.TokensPerS / 1e9
	s.Sgemm = median(sgemm)
	s.MFU = median(mfus)
	s.BestMFU = 100 * r0.FLOPsPerToken * s.BestTokensPerS / 1e9 / s.BestSgemm
	s.Forward, s.Backward, s.WeightGrad, s.Optimizer = fwd/n/1e6, bwd/n/1e6, wg/n/1e6, opt/n/1e6
	s.Other = total/n/1e6 - s.Forward - s.Backward - s.WeightGrad - s.Optimizer
	s.Loops = loops / n
	return s
}

// afterSteps reports whether some step of r followed a step (Options.Group > 1).
func (r Result) afterSteps() bool {
	for _, st := range r.Steps {
		if !st.AfterBurst {
			return true
		}
	}
	return false
}

// TorchSummary reduces a config's PyTorch runs, given the model's FLOPs per token.
type TorchSummary struct {
	Version                    string
	TokensPerS, BestTokensPerS float64 // median over runs of the run's median-step rate; fastest step
	MFU                        float64 // median over runs: FLOP rate at the median step ÷ the sgemm bursts around the run
}

// SummarizeTorch reduces runs (nil if there are none).
func SummarizeTorch(flopsPerToken float64, runs []TorchRun) *TorchSummary {
	if len(runs) == 0 {
		return nil
	}
	var t TorchSummary
	var tps, mfus []float64
	for _, r := range runs {
		t.Version = r.Version
		tps = append(tps, r.MedianTokensPerS())
		t.BestTokensPerS = max(t.BestTokensPerS, r.BestTokensPerS())
		mfus = append(mfus, 100*flopsPerToken*r.MedianTokensPerS()/1e9/((r.Sgemm[0].Mean+r.Sgemm[1].Mean)/2))
	}
	t.TokensPerS, t.MFU = median(tps), median(mfus)
	return &t
}

const mb = 1 << 20

// WriteReport prints the readable tables: speed and MFU, sgemm rates, time by phase, memory, and
// the ratios to PyTorch where it was run.
func WriteReport(w io.Writer, ms []Measured) {
	if len(ms) == 0 || len(ms[0].Runs) == 0 {
		return
	}
	r0 := ms[0].Runs[0]
	fmt.Fprintf(w, "anelab CPU training benchmark: %s/%s, %d threads, %s, element-wise kernels %s\nBLAS: %s\nCPU step scheduling: %s\n",
		runtime.GOOS, runtime.GOARCH, r0.Threads, cpuName(), r0.Kernels, r0.Core, model.TuneString())
	for _, m := range ms {
		if warn := blas.RateWarning(Summarize(m.Runs...).BestSgemm, r0.Threads); warn != "" {
			fmt.Fprintf(w, "\n*** %s ***\n\n", warn)
			break
		}
	}
	fmt.Fprintf(w, "one step = forward + backward + Lion update (clip 1.0) on random tokens. MFU = model FLOPs/s "+
		"(6·params·tokens + attention) ÷ sgemm GFLOP/s\n(%d³ products in this process at %d threads: one per goroutine "+
		"in bursts before and after each group of steps,\nor BLAS-threaded before and after all steps if faster); median over "+
		"the steps that followed a step, as in training\n(\"after a burst\": the median of each group's first step, its data "+
		"displaced from the caches by the burst); \"best\": fastest step ÷ fastest product\n\n", r0.SgemmN, r0.Threads)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "config\tparams\ttokens/step\tms/step\tafter a burst\ttokens/s\tbest tokens/s\tmodel GFLOP/s\tsgemm GFLOP/s\tbest sgemm\tMFU %\tbest MFU %\t")
	for _, m := range ms {
		r, s := m.Runs[0], Summarize(m.Runs...)
		cold := "-"
		if s.AfterBurstMs > 0 {
			cold = fmt.Sprintf("%.1f", s.AfterBurstMs)
		}
		fmt.Fprintf(tw, "%s\t%.2fM\t%d\t%.1f\t%s\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", m.Name, float64(r.Params)/1e6,
			r.Tokens(), s.MedianStepMs, cold, s.TokensPerS, s.BestTokensPerS, s.ModelGFLOPS, s.Sgemm, s.BestSgemm, s.MFU, s.BestMFU)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nsgemm GFLOP/s (%d³, mean of each burst): BLAS-threaded before and after the steps; per-goroutine bursts (median)\n", r0.SgemmN)
	for _, m := range ms {
		for i, r := range m.Runs {
			var par []float64
			for _, st := range r.Steps {
				par = append(par, st.Sgemm.Mean)
			}
			par = append(par, r.SgemmAfter.Mean)
			fmt.Fprintf(w, "  %-9s round %d: threaded %.1f / %.1f   per-goroutine %.1f\n", m.Name, i+1, r.Threaded[0].Mean, r.Threaded[1].Mean, median(par))
		}
	}

	fmt.Fprintln(w, "\ntime per step by phase (ms, mean over steps; weight-grad = the dW GEMMs that run apart, not counted in")
	fmt.Fprintln(w, "backward: the classifier's — the layers' run inside the backward pass's loops and count there;")
	fmt.Fprintln(w, "on 8 threads or more all of them are deferred work, and weight-grad is what the backward waited for at its fences;")
	fmt.Fprintln(w, "loops = parallel loops per step, each ending in a wait for its slowest part)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "config\tforward\tbackward\tweight-grad\toptimizer\tstep\tloops\t")
	for _, m := range ms {
		s := Summarize(m.Runs...)
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\t\n", m.Name, s.Forward, s.Backward, s.WeightGrad,
			s.Optimizer, s.Forward+s.Backward+s.WeightGrad+s.Optimizer+s.Other, s.Loops)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nmemory (MiB): analytic need = weights + gradients (a set for each share of a split step) + optimizer state + saved activations")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "config\tweights\tgrads\toptim\tactivations\tneed\tpeak RSS\tRSS/need\t")
	for _, m := range ms {
		var rss int64
		for _, r := range m.Runs {
			rss = max(rss, r.PeakRSS)
		}
		n := m.Runs[0].Need
		ratio := "?"
		if rss > 0 {
			ratio = fmt.Sprintf("%.2f", float64(rss)/float64(n.Total()))
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t\n", m.Name, float64(n.Weights)/mb, float64(n.Grads)/mb,
			float64(n.OptState)/mb, float64(n.Activations)/mb, float64(n.Total())/mb, float64(rss)/mb, ratio)
	}
	tw.Flush()

	var version string
	for _, m := range ms {
		if t := SummarizeTorch(m.Runs[0].FLOPsPerToken, m.Torch); t != nil {
			version = t.Version
		}
	}
	if version == "" {
		return
	}
	fmt.Fprintf(w, "\nPyTorch %s CPU reference (anert/bench/pytorch: same model, Lion, clip 1.0, %d threads), run right after\n"+
		"anelab on each config, between two sgemm bursts; tokens/s at the median step (median over rounds), and MFU\n"+
		"(the same model FLOPs ÷ the sgemm rate around each run), whose ratio discounts contention that hit one side only\n", version, r0.Threads)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "config\ttorch tokens/s\tanelab tokens/s\tratio\ttorch best\tanelab best\tratio\ttorch MFU %\tanelab MFU %\tMFU ratio\t")
	for _, m := range ms {
		t := SummarizeTorch(m.Runs[0].FLOPsPerToken, m.Torch)
		if t == nil {
			continue
		}
		s := Summarize(m.Runs...)
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2fx\t%.0f\t%.0f\t%.2fx\t%.1f\t%.1f\t%.2fx\t\n", m.Name, t.TokensPerS, s.TokensPerS,
			s.TokensPerS/t.TokensPerS, t.BestTokensPerS, s.BestTokensPerS, s.BestTokensPerS/t.BestTokensPerS, t.MFU, s.MFU, s.MFU/t.MFU)
	}
	tw.Flush()
}

// WriteBenchstat writes one benchmark line per timed step (and one per PyTorch run), in the format
// of `go test -bench`, so that benchstat can compare two runs.
func WriteBenchstat(w io.Writer, ms []Measured) {
	fmt.Fprintf(w, "goos: %s\ngoarch: %s\npkg: github.com/anelab/anelab/anert/bench\n", runtime.GOOS, runtime.GOARCH)
	if c := cpuName(); c != "" {
		fmt.Fprintf(w, "cpu: %s\n", c)
	}
	for _, m := range ms {
		for _, r := range m.Runs {
			fmt.Fprintf(w, "# %s: %s sgemm (%s), %s kernels, %d params, %d tokens/step\n", r.Name, r.BLAS, r.Core, r.Kernels, r.Params, r.Tokens())
			warm := r.afterSteps()
			for i, st := range r.Steps {
				name := "Train"
				if warm && st.AfterBurst {
					name = "TrainAfterBurst" // apart, so that benchstat compares like with like
				}
				fmt.Fprintf(w, "Benchmark%s/config=%s-%d \t1\t%d ns/op\t%.1f tokens/s\t%.2f mfu_pct\t%.1f sgemm_GFLOP/s"+
					"\t%.2f fwd_ms/op\t%.2f bwd_ms/op\t%.2f wgrad_ms/op\t%.2f optim_ms/op\t%.1f peak_rss_MiB\n",
					name, r.Name, r.Threads, st.Ns, r.TokensPerS(st), r.MFU(i), r.Sgemm(i),
					float64(st.Forward)/1e6, float64(st.Backward)/1e6, float64(st.WeightGrad)/1e6,
					float64(st.Optimizer)/1e6, float64(r.PeakRSS)/mb)
			}
		}
		for _, t := range m.Torch {
			fmt.Fprintf(w, "BenchmarkTorch/config=%s-%d \t%d\t%.0f ns/op\t%.1f tokens/s\t%.2f mfu_pct\n", m.Name, t.Threads, t.Steps,
				t.MsPerStepMed*1e6, t.MedianTokensPerS(),
				100*m.Runs[0].FLOPsPerToken*t.MedianTokensPerS()/1e9/((t.Sgemm[0].Mean+t.Sgemm[1].Mean)/2))
		}
	}
}

// cpuName is the CPU's model name where the system says it ("" otherwise).
func cpuName() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// WriteAB prints, for each config measured with Options.Alt, the two schedulings compared group
// by group: each group run with the alternative against the mean of the groups on either side of
// it (the process's own scheduling, under the same load a second before and after; the one before
// alone for the last), so that a load that drifts steadily cancels. Per group, the ratio of the
// median step times (of the steps that followed a step) and the difference of the median MFUs;
// printed as the median and the range over the groups.
func WriteAB(w io.Writer, ms []Measured) {
	for _, m := range ms {
		var ratios, dmfu []float64
		alt := ""
		for _, r := range m.Runs {
			alt = r.AltTune
			gs := r.groups()
			for k, g := range gs {
				if !r.Steps[g[0]].Alt || k == 0 || r.Steps[gs[k-1][0]].Alt {
					continue
				}
				aNs, aMFU := r.groupMedians(gs[k-1])
				if k+1 < len(gs) && !r.Steps[gs[k+1][0]].Alt {
					n2, m2 := r.groupMedians(gs[k+1])
					aNs, aMFU = (aNs+n2)/2, (aMFU+m2)/2
				}
				ns, mfu := r.groupMedians(g)
				ratios, dmfu = append(ratios, ns/aNs), append(dmfu, mfu-aMFU)
			}
		}
		if len(ratios) == 0 {
			continue
		}
		faster := 0
		for _, x := range ratios {
			if x < 1 {
				faster++
			}
		}
		fmt.Fprintf(w, "\nA/B %s, %d groups with the alternative, each against its neighbours without: ms/step ÷ %.3f (%.3f–%.3f); MFU %+.1f points (%+.1f to %+.1f); faster in %d of %d (sign test p = %.2f)\n  alternative: %s\n",
			m.Name, len(ratios), median(ratios), slices.Min(ratios), slices.Max(ratios), median(dmfu), slices.Min(dmfu), slices.Max(dmfu),
			faster, len(ratios), signTest(faster, len(ratios)), alt)
	}
}

// signTest is the two-sided sign test's p-value for k of n paired comparisons going one way:
// the chance that n fair coins give k or fewer, or n−k or fewer, heads (at most 1). With the
// groups' ratios spreading ±10% on a shared host, it says whether a median below 1 is more than
// the luck of the draw: 7 of 8 groups faster is p = 0.07, all 8 is p = 0.008.
func signTest(k, n int) float64 {
	lo := min(k, n-k)
	tail, c := 0.0, 1.0 // c = C(n, i)
	for i := 0; i <= lo; i++ {
		tail += c
		c = c * float64(n-i) / float64(i+1)
	}
	return min(1, 2*tail/math.Pow(2, float64(n)))
}

// groups are r's groups of steps (each a burst and the steps after it), as step index ranges.
func (r Result) groups() [][2]int {
	var gs [][2]int
	for i, st := range r.Steps {
		if st.AfterBurst || i == 0 {
			gs = append(gs, [2]int{i, i + 1})
		} else {
			gs[len(gs)-1][1] = i + 1
		}
	}
	return gs
}

// groupMedians are the median step time (ns) and MFU of the steps [g[0], g[1]) that followed a
// step, or of all of them if none did (Options.Group 1).
func (r Result) groupMedians(g [2]int) (ns, mfu float64) {
	var t, f []float64
	for i := g[0]; i < g[1]; i++ {
		if r.Steps[i].AfterBurst && g[1]-g[0] > 1 {
			continue
		}
		t, f = append(t, float64(r.Steps[i].Ns)), append(f, r.MFU(i))
	}
	return median(t), median(f)
}
