// Package train runs the budgeted training loop: fresh windows from the run's seed, optimizer
// updates until the wall-clock budget or step limit, a fixed validation pass, checkpoints and the
// summary + ###JSON### output contract.
package train

// Status values of a finished run.
const (
	StatusOK       = "ok"
	StatusDiverged = "diverged" // a non-finite loss or gradient stopped the run
	// StatusInterrupted: Options.Stop ended the run early (Ctrl-C or SIGTERM in `anelab train`); its
	// checkpoint holds the updates done, to continue with --resume. Not evaluated.
	StatusInterrupted = "interrupted"
)

// Result is what one run reports. Non-finite values never appear: a diverged run sets Status.
type Result struct {
	Status       string  `json:"status"`
	Error        string  `json:"error,omitempty"`
	ValLoss      float64 `json:"val_loss"`   // nats/token on the fixed validation windows
	ValBPB       float64 `json:"val_bpb"`    // bits per UTF-8 byte
	TrainLoss    float64 `json:"train_loss"` // mean over the last updates
	Steps        int     `json:"steps"`      // optimizer updates this run
	MicroSteps   int     `json:"micro_steps"`
	Tokens       int64   `json:"tokens"`
	TokensPerS   float64 `json:"tokens_per_s"`
	MsPerStep    float64 `json:"ms_per_step"` // per optimizer update, optimizer included
	WallTimeS    float64 `json:"wall_time_s"` // training + validation, startup excluded
	StartupS     float64 `json:"startup_s"`   // data loading, init, compilation
	CompileTimeS float64 `json:"compile_time_s"`
	UtilPct      float64 `json:"util_pct"` // model FLOP/s against the device's peak
	PeakMemMB    float64 `json:"peak_mem_mb"`
	Params       int     `json:"params"`
	Backend      string  `json:"backend"`
	Device       string  `json:"device"`
	// The BLAS the CPU work runs on: library, kernel set (OpenBLAS's core) and the sgemm rate
	// measured at startup (512³ products on the run's threads), which util_pct divides by.
	BLAS         string  `json:"blas"`
	BLASCore     string  `json:"blas_core"`
	BLASEnvCore  string  `json:"blas_env_core,omitempty"`  // OPENBLAS_CORETYPE from the environment (blas.Info.EnvCore)
	BLASCoreFits string  `json:"blas_core_fits,omitempty"` // the faster core the CPU allows when the pinned one leaves AVX-512 unused
	SgemmGFLOPS  float64 `json:"sgemm_gflops"`
	Threads      int     `json:"threads"`
	Warning      string  `json:"warning,omitempty"` // e.g. an sgemm rate far below what the CPU's features imply
	EvalsPerStep int     `json:"kernel_evals_per_step,omitempty"`
	Checkpoint   string  `json:"checkpoint,omitempty"`
	// ANE backend: the variant each fused kernel ran as ("sdpaWoFwd=fused sdpaBwd2=cpu-rope"), and
	// why a conservative variant ran instead of the fused kernel (anert/aneb variants.go). cuda
	// backend: the attention that ran ("attention=flash" or "attention=gemm").
	KernelVariants string `json:"kernel_variants,omitempty"`
	KernelFallback string `json:"kernel_fallback,omitempty"`

	// The budget: compare val_bpb only between runs of one budget kind (and amount).
	BudgetKind    string  `json:"budget_kind"`    // "compute", "wall" or "steps" (BudgetCompute, …)
	Budget        float64 `json:"budget"`         // its amount: seconds (compute: at compute_gflops; wall) or updates (steps)
	BudgetFLOPs   float64 `json:"budget_flops"`   // compute: the budget in model FLOPs (budget × compute_gflops × 1e9); else 0
	ComputeGFLOPS float64 `json:"compute_gflops"` // the reference rate compute is charged at
	FLOPs         float64 `json:"flops"`          // model FLOPs spent training (model.FLOPsPerToken × tokens)
	ComputeS      float64 `json:"compute_s"`      // flops ÷ compute_gflops: the run's compute in reference seconds, any kind
	Curve         []Point `json:"-"`              // per-update loss curve (written to the run folder, not the JSON line)
}

// Point is one optimizer update on the loss curve.
type Point struct {
	Step   int     `json:"step"`
	Loss   float64 `json:"loss"`
	LR     float64 `json:"lr"`
	TimeS  float64 `json:"time_s"` // seconds since training started
	Tokens int64   `json:"tokens"`
	// Progress is the fraction of the run's budget (or step limit) spent after this update: the
	// schedule's position; exactly 1 at the last update.
	Progress float64 `json:"progress"`
}

// Event is sent to Options.OnStep after every optimizer update.
type Event struct {
	Point
	BudgetKind string  // "compute", "wall" or "steps"
	BudgetS    float64 // the run's budget in seconds of its kind (0: none); Progress says how far it is
	MaxSteps   int     // the run's step limit (0: none)
	TokensPerS float64
}
