package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/ckpt"
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/cuda"
)

// --backend cuda without a GPU is an error that names the missing driver, not a silent CPU run.
func TestCUDABackendWithoutGPUIsAnError(t *testing.T) {
	if cuda.Available() == nil {
		t.Skip("a CUDA GPU is present")
	}
	cfg := tinyConfig()
	cfg.Backend = "cuda"
	_, err := Run(context.Background(), cfg, Options{DataDir: tinyData(t)})
	if err == nil {
		t.Fatal("backend cuda ran without a GPU")
	}
	if !errors.Is(err, cuda.ErrNoDriver) || !strings.Contains(err.Error(), "backend cuda") {
		t.Fatalf("error %q should wrap cuda.ErrNoDriver and name the backend", err)
	}
	// auto without a GPU trains on the CPU.
	cfg.Backend, cfg.Train.Steps = "auto", 2
	res, err := Run(context.Background(), cfg, Options{DataDir: tinyData(t)})
	if err != nil || res.Backend != "cpu" {
		t.Fatalf("auto without a GPU: backend %q, error %v", res.Backend, err)
	}
}

// cpuReference skips t without a GPU; else it trains the tiny config, changed by edits, for steps
// updates on the CPU: the run a GPU run is compared with (same config, same data dir).
func cpuReference(t *testing.T, steps int, edits ...func(*config.Config)) (config.Config, string, Result) {
	t.Helper()
	if err := cuda.Available(); err != nil {
		t.Skipf("needs an NVIDIA GPU with its driver (libcuda.so.1), cuBLAS and NVRTC: %v", err)
	}
	cfg := tinyConfig()
	for _, e := range edits {
		e(&cfg)
	}
	cfg.Train.Steps = steps
	dir := tinyData(t)
	res, err := Run(context.Background(), cfg, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, dir, res
}

// tracksCPU reports every update whose loss on the GPU is more than rel (relative) from the CPU's,
// runCheckpointed runs cfg on the data in dir, saving its checkpoint in a temporary folder, and
// returns the result and the checkpoint's path (the run's output in the failure message).
func runCheckpointed(t *testing.T, cfg config.Config, dir string) (Result, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gpu.ckpt")
	var out bytes.Buffer
	res, err := Run(context.Background(), cfg, Options{DataDir: dir, Checkpoint: path, Out: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	return res, path
}

// and a val loss that is; what names the run in the messages.
func tracksCPU(t *testing.T, what string, gpu, cpu Result, rel float64) {
	t.Helper()
	for i, p := range gpu.Curve {
		if c := cpu.Curve[i].Loss; math.Abs(p.Loss-c) > rel*c {
			t.Errorf("%s: update %d: loss %.5f on the GPU, %.5f on the CPU", what, p.Step, p.Loss, c)
		}
	}
	if math.Abs(gpu.ValLoss-cpu.ValLoss) > rel*cpu.ValLoss {
		t.Errorf("%s: val loss %.5f on the GPU, %.5f on the CPU", what, gpu.ValLoss, cpu.ValLoss)
	}
}

// On a GPU: a short fp32 run's curve tracks the CPU's step for step (same data, same init), its
// checkpoint holds the device's weights and optimizer state, and a run resumed from it on the GPU
// continues.
func TestCUDARunTracksCPUAndCheckpoints(t *testing.T) {
	cfg, dir, cpuRes := cpuReference(t, 30)
	cfg.Backend = "cuda-fp32"
	gpuRes, path := runCheckpointed(t, cfg, dir)
	if gpuRes.Backend != "cuda-fp32" || gpuRes.Device == "" {
		t.Errorf("result says backend %q on %q", gpuRes.Backend, gpuRes.Device)
	}
	t.Logf("30 updates: final train loss GPU %.5f CPU %.5f; val loss GPU %.5f CPU %.5f",
		gpuRes.TrainLoss, cpuRes.TrainLoss, gpuRes.ValLoss, cpuRes.ValLoss)
	tracksCPU(t, "fp32, 30 updates", gpuRes, cpuRes, 2e-3)
	c, err := ckpt.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Counters.Step != 30 || len(c.WithPrefix(ckpt.OptimPrefix)) == 0 {
		t.Fatalf("checkpoint at step %d with %d optimizer tensors", c.Counters.Step, len(c.WithPrefix(ckpt.OptimPrefix)))
	}
	cfg.Train.Steps = 5
	res2, err := Run(context.Background(), cfg, Options{DataDir: dir, Resume: path})
	if err != nil {
		t.Fatal(err)
	}
	if !(res2.ValLoss < gpuRes.ValLoss*1.05) {
		t.Errorf("resumed run: val loss %.4f after 5 more updates, %.4f at the checkpoint", res2.ValLoss, gpuRes.ValLoss)
	}
}

// On a GPU: --attention flash (Options.Attention) runs the fused attention, says so in the
// output and the result (kernel_variants), and its fp32 curve and val loss track the CPU's.
func TestCUDARunFlashAttention(t *testing.T) {
	cfg, dir, cpuRes := cpuReference(t, 20)
	cfg.Backend = "cuda-fp32"
	var out bytes.Buffer
	res, err := Run(context.Background(), cfg, Options{DataDir: dir, Out: &out, Attention: "flash"})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.KernelVariants != "attention=flash" || !strings.Contains(out.String(), "flash attention") {
		t.Errorf("kernel_variants %q; output:\n%s", res.KernelVariants, out.String())
	}
	tracksCPU(t, "flash attention", res, cpuRes, 2e-3)
	// A bad value is refused by name.
	_, err = Run(context.Background(), cfg, Options{DataDir: dir, Attention: "fused"})
	if err == nil || !strings.Contains(err.Error(), `--attention = "fused"`) {
		t.Errorf("attention fused: %v", err)
	}
}

// On a GPU: --backend cuda (bf16 operands) trains as the CPU does within bf16 tolerance (a
// 30-update curve within 2% per update, the val loss within 2%); $ANELAB_CUDA_GEMM=fast16bf runs
// the earlier bf16 mode and says so in kernel_variants; a bad value is refused by name.
func TestCUDABF16RunTracksCPU(t *testing.T) {
	cfg, dir, cpuRes := cpuReference(t, 30)
	cfg.Backend = "cuda"
	for _, g := range []struct{ env, variants, says string }{
		{"", "attention=gemm", "bf16 GEMMs"},
		{"fast16bf", "attention=gemm,gemm=bf16-fast16bf", "bf16-fast16bf GEMMs"},
	} {
		t.Setenv("ANELAB_CUDA_GEMM", g.env)
		var out bytes.Buffer
		res, err := Run(context.Background(), cfg, Options{DataDir: dir, Out: &out, Attention: "gemm"})
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		if res.KernelVariants != g.variants || !strings.Contains(out.String(), g.says) {
			t.Errorf("ANELAB_CUDA_GEMM=%q: kernel_variants %q; output:\n%s", g.env, res.KernelVariants, out.String())
		}
		t.Logf("ANELAB_CUDA_GEMM=%q: val loss GPU %.5f CPU %.5f", g.env, res.ValLoss, cpuRes.ValLoss)
		tracksCPU(t, "ANELAB_CUDA_GEMM="+g.env, res, cpuRes, 2e-2)
	}
	t.Setenv("ANELAB_CUDA_GEMM", "fp8")
	if _, err := Run(context.Background(), cfg, Options{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "ANELAB_CUDA_GEMM") {
		t.Errorf("ANELAB_CUDA_GEMM=fp8: %v", err)
	}
}

// Options.GEMMPrecision is checked before the GPU is touched (so this runs everywhere): a bad
// value names --gemm-precision and the choices; cuda-fp32 refuses it (its GEMMs are fp32).
func TestGEMMPrecisionOption(t *testing.T) {
	t.Setenv("ANELAB_CUDA_GEMM", "")
	cfg := tinyConfig()
	dir := tinyData(t)
	cfg.Backend = "cuda"
	_, err := Run(context.Background(), cfg, Options{DataDir: dir, GEMMPrecision: "fp8"})
	if err == nil || !strings.Contains(err.Error(), `--gemm-precision = "fp8"`) || !strings.Contains(err.Error(), "fast16bf") {
		t.Errorf("backend cuda, GEMMPrecision fp8: %v", err)
	}
	cfg.Backend = "cuda-fp32"
	_, err = Run(context.Background(), cfg, Options{DataDir: dir, GEMMPrecision: "fast16bf"})
	if err == nil || !strings.Contains(err.Error(), "--gemm-precision") || !strings.Contains(err.Error(), "cuda-fp32") {
		t.Errorf("backend cuda-fp32, GEMMPrecision fast16bf: %v", err)
	}
}
