package train

import (
	"io"

	"github.com/anelab/anelab/anert/device"
)

// Options are what a caller (CLI, experiment harness, notebook) passes to Run beside the config.
type Options struct {
	DataDir string // folder with the token shards and manifest (data.Open)
	Resume  string // checkpoint to continue from; the config's LR and schedule stay in effect
	// AllowDataChange lets Resume continue on data or a tokenizer other than the checkpoint's
	// (refused otherwise: the checkpoint records their checksums).
	AllowDataChange bool
	Checkpoint      string    // where to write the final checkpoint ("" to skip)
	Out             io.Writer // summary and step lines (nil: discard)

	// Stop, when closed, ends the run after the update in progress: Run returns a Result with
	// Status "interrupted", the curve so far and (when Checkpoint is set and an update was done) a
	// checkpoint to resume from; it skips the validation pass. Cancelling the context instead
	// abandons the run with an error and saves nothing.
	Stop <-chan struct{}

	// OnStep is called after every optimizer update. A panic in it ends the run with an error.
	OnStep func(Event)
	// LR, when set, overrides the schedule: the learning rate for optimizer update step (0-based),
	// given the schedule's own value. A panic in it ends the run with an error.
	LR func(step int, scheduled float64) float64
	// Attention is the cuda backend's attention: "flash" or "gemm" ("": $ANELAB_CUDA_ATTENTION,
	// else cudab.DefaultAttention). Ignored on other backends.
	Attention string
	// GEMMPrecision is --backend cuda's GEMM operands: "bf16" (bf16 operands) or "fast16bf" (fp32
	// tensors rounded on load; "": $ANELAB_CUDA_GEMM, else bf16). Ignored on other backends.
	GEMMPrecision string
	// Device, when set, is the device the ane backend runs on instead of device.Open(cfg.Device)
	// (tests use fault-injecting devices); the run closes it.
	Device device.Device
}
