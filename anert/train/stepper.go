package train

import (
	"fmt"
	"io"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/cuda"
	"github.com/anelab/anelab/anert/cudab"
	"github.com/anelab/anelab/anert/model"
	"github.com/anelab/anelab/anert/optim"
	"github.com/anelab/anelab/anert/tensor"
)

// stepper is what the loop drives: micro-steps, evaluation and optimizer updates. On the host it
// is the model and the optimizer (hostStepper, whatever model.Backend runs the layers); the cuda
// backend replaces the whole step (anert/cudab), keeping weights, gradients and optimizer state
// on the GPU, and ToHost brings them into the host model and optimizer for checkpoints.
type stepper interface {
	ForwardBackward(in, tgt []uint16, batch int, gradScale float32) (float64, error)
	Loss(in, tgt []uint16, batch int) (float64, error)
	// PrepareGrads prepares the gradients of micro micro-steps for the next Update (unscaling and
	// clipping, optim.Prepare) and returns their pre-clip norm.
	PrepareGrads(micro int) (float64, error)
	// Update is one optimizer step with learning rate lr on the prepared gradients, leaving them 0.
	Update(lr float64) error
	// ToHost makes the host model's Params and the host optimizer's state current.
	ToHost() error
	Close() error
}

// hostStepper is the model and optimizer on the host.
type hostStepper struct {
	m       *model.Model
	opt     optim.Optimizer
	o       config.Optim
	ps      []*tensor.Param
	threads int        // the run's thread budget, for the gradient norm
	prep    optim.Prep // the last PrepareGrads', which Update applies as it reads each gradient
}

func (h *hostStepper) ForwardBackward(in, tgt []uint16, batch int, gs float32) (float64, error) {
	return h.m.ForwardBackward(in, tgt, batch, gs)
}

func (h *hostStepper) Loss(in, tgt []uint16, batch int) (float64, error) {
	return h.m.Loss(in, tgt, batch)
}

// PrepareGrads reads the gradients only (their norm); Update unscales and clips each as it reads
// it, and zeroes it: one pass over the parameters instead of four (optim's grads.go).
func (h *hostStepper) PrepareGrads(micro int) (float64, error) {
	h.m.FinishUpdate()
	h.prep = optim.Prepare(h.ps, h.o, micro, h.threads)
	return h.prep.Norm, nil
}

// Update runs the update in place, or on many cores hands it to the model, which runs it in the
// next forward pass (Model.DeferUpdate): ToHost and Close finish it.
func (h *hostStepper) Update(lr float64) error {
	if !optim.UpdateOrDefer(h.opt, h.ps, lr, h.prep, h.m) {
		h.m.WeightsChanged()
	}
	return nil
}

func (h *hostStepper) ToHost() error { h.m.FinishUpdate(); return nil }
func (h *hostStepper) Close() error  { h.m.FinishUpdate(); return nil }

// cudaPrecision maps a cuda backend name to its GEMM precision: "cuda" is bf16 tensor-core
// GEMMs with fp32 accumulation and fp32 master weights, "cuda-fp32" fp32 throughout.
func cudaPrecision(backend string) (cuda.Precision, bool) {
	switch backend {
	case "cuda":
		return cuda.BF16, true
	case "cuda-fp32":
		return cuda.FP32, true
	}
	return 0, false
}

// autoPicksCUDA reports whether backend auto runs on the GPU: a CUDA GPU is present and the
// config has nothing the cuda backend lacks. It says why on out either way when a GPU is there.
func autoPicksCUDA(cfg config.Config, out io.Writer) bool {
	if cfg.Backend != "auto" || cuda.Available() != nil {
		return false
	}
	if err := cudab.Supported(cfg); err != nil {
		fmt.Fprintf(out, "backend auto: a CUDA GPU is present but %v\n", err)
		return false
	}
	return true
}

// newCUDAStepper uploads the model and optimizer state to the GPU. attention is
// Options.Attention (flag, else $ANELAB_CUDA_ATTENTION, else the default); gemm is
// Options.GEMMPrecision (flag, else $ANELAB_CUDA_GEMM, else bf16), for backend cuda.
func newCUDAStepper(cfg config.Config, m *model.Model, opt optim.Optimizer, active []int, prec cuda.Precision, attention, gemm string, out io.Writer) (*cudab.Trainer, error) {
	attn, err := cudab.ParseAttention(attention)
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", cfg.Backend, err)
	}
	if prec == cuda.FP32 && gemm != "" {
		return nil, fmt.Errorf("backend %s: --gemm-precision %q applies to backend cuda (bf16); cuda-fp32 runs fp32 GEMMs", cfg.Backend, gemm)
	}
	if prec == cuda.BF16 { // bf16 operands, or fast16bf for the earlier fp32 tensors
		if prec, err = cudab.ParseGEMMPrecision(gemm); err != nil {
			return nil, fmt.Errorf("backend %s: %w", cfg.Backend, err)
		}
	}
	t, err := cudab.New(cfg, m, opt, active, prec, attn)
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", cfg.Backend, err)
	}
	fmt.Fprintf(out, "backend cuda on %s: whole step on the GPU, %s GEMMs, %s attention (%s)\n", t.DeviceName(), prec, attn, t.Ctx().Versions())
	return t, nil
}
