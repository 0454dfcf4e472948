package train

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
)

// WriteSummary prints the human summary block in the original's style, then the ###JSON### marker
// and one JSON line. Non-finite numbers never reach the JSON: they are written as 0 and the status
// says why.
func WriteSummary(w io.Writer, r Result, unigramBPB float64) {
	fmt.Fprintln(w, "---")
	if r.Status != StatusOK {
		fmt.Fprintf(w, "status:           %s\n", r.Status)
		if r.Error != "" {
			fmt.Fprintf(w, "error:            %s\n", r.Error)
		}
	}
	fmt.Fprintf(w, "val_loss:         %.6f\n", r.ValLoss)
	fmt.Fprintf(w, "val_bpb:          %.6f\n", r.ValBPB)
	if unigramBPB > 0 {
		fmt.Fprintf(w, "unigram_bpb:      %.6f   (entropy of the corpus's token frequencies: the bar a model must beat)\n", unigramBPB)
	}
	fmt.Fprintf(w, "train_loss:       %.6f\n", r.TrainLoss)
	fmt.Fprintf(w, "steps:            %d\n", r.Steps)
	fmt.Fprintf(w, "budget:           %s\n", budgetLine(r))
	fmt.Fprintf(w, "tokens:           %d\n", r.Tokens)
	fmt.Fprintf(w, "tokens_per_s:     %.0f\n", r.TokensPerS)
	fmt.Fprintf(w, "ms_per_step:      %.1f\n", r.MsPerStep)
	fmt.Fprintf(w, "wall_time_s:      %.1f\n", r.WallTimeS)
	fmt.Fprintf(w, "startup_s:        %.1f\n", r.StartupS)
	fmt.Fprintf(w, "backend:          %s (%s)\n", r.Backend, r.Device)
	fmt.Fprintf(w, "compile_time_s:   %.1f\n", r.CompileTimeS)
	if r.EvalsPerStep > 0 {
		fmt.Fprintf(w, "kernel_evals:     %d per step\n", r.EvalsPerStep)
	}
	if r.KernelVariants != "" {
		fmt.Fprintf(w, "kernel_variants:  %s\n", r.KernelVariants)
	}
	if r.KernelFallback != "" {
		fmt.Fprintf(w, "kernel_fallback:  %s\n", r.KernelFallback)
	}
	fmt.Fprintf(w, "util_pct:         %.1f\n", r.UtilPct)
	if r.BLAS != "" {
		pin := ""
		if r.BLASEnvCore != "" {
			pin = " (OPENBLAS_CORETYPE=" + r.BLASEnvCore + " from the environment"
			if r.BLASCoreFits != "" {
				pin += "; this CPU's AVX-512 fits " + r.BLASCoreFits
			}
			pin += ")"
		}
		fmt.Fprintf(w, "blas:             %s core %s%s, sgemm %.0f GFLOP/s on %d threads\n", r.BLAS, r.BLASCore, pin, r.SgemmGFLOPS, r.Threads)
	} else { // a GPU backend: the rate is its GEMM peak measured at startup (sgemm_gflops in the JSON)
		fmt.Fprintf(w, "gemm_peak:        %.0f GFLOP/s (measured at startup on the %s backend)\n", r.SgemmGFLOPS, r.Backend)
	}
	if r.Warning != "" {
		fmt.Fprintf(w, "warning:          %s\n", r.Warning)
	}
	fmt.Fprintf(w, "peak_mem_mb:      %.0f\n", r.PeakMemMB)
	fmt.Fprintf(w, "params:           %d\n", r.Params)
	fmt.Fprintln(w, "###JSON###")
	b, _ := json.Marshal(sanitize(r))
	fmt.Fprintln(w, string(b))
}

// budgetLine is the budget kind and amount with what was spent, e.g.
// "compute 300 s (3.00e+13 FLOPs at 100 GFLOP/s), spent 2.99e+13 FLOPs".
func budgetLine(r Result) string {
	switch r.BudgetKind {
	case BudgetCompute:
		return fmt.Sprintf("compute %g s (%.3g FLOPs at %g GFLOP/s), spent %.3g FLOPs", r.Budget, r.BudgetFLOPs, r.ComputeGFLOPS, r.FLOPs)
	case BudgetWall:
		return fmt.Sprintf("wall %g s, spent %.3g FLOPs (%.1f s of compute at %g GFLOP/s)", r.Budget, r.FLOPs, r.ComputeS, r.ComputeGFLOPS)
	}
	return fmt.Sprintf("steps %g, spent %.3g FLOPs (%.1f s of compute at %g GFLOP/s)", r.Budget, r.FLOPs, r.ComputeS, r.ComputeGFLOPS)
}

// sanitize replaces non-finite floats by 0 and marks the run diverged.
func sanitize(r Result) Result {
	for _, f := range []*float64{&r.ValLoss, &r.ValBPB, &r.TrainLoss, &r.TokensPerS, &r.MsPerStep,
		&r.WallTimeS, &r.StartupS, &r.CompileTimeS, &r.UtilPct, &r.PeakMemMB, &r.FLOPs, &r.ComputeS, &r.SgemmGFLOPS} {
		if math.IsNaN(*f) || math.IsInf(*f, 0) {
			*f = 0
			if r.Status == StatusOK {
				r.Status = StatusDiverged
			}
		}
	}
	return r
}
