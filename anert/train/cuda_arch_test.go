package train

import (
	"context"
	"math"
	"testing"

	"github.com/anelab/anelab/anert/ckpt"
	"github.com/anelab/anelab/anert/config"
)

// On a GPU: a short fp32 run with the architecture options (gelu, qk_norm, untied_head) tracks
// the CPU's run of the same config step for step; its checkpoint holds the QK-norm gains and the
// untied head with their optimizer state; and the checkpoint resumed on the CPU and on the GPU
// gives the same val loss after 5 more updates (the new parameters went to the host and back).
func TestCUDARunArchTracksCPUAndCheckpoints(t *testing.T) {
	cfg, dir, cpuRes := cpuReference(t, 20, func(c *config.Config) {
		c.Model.Act, c.Model.QKNorm, c.Model.UntiedHead = "gelu", true, true
	})
	cfg.Backend = "cuda-fp32"
	gpuRes, path := runCheckpointed(t, cfg, dir)
	if gpuRes.Backend != "cuda-fp32" {
		t.Fatalf("ran on %q", gpuRes.Backend)
	}
	tracksCPU(t, "gelu, qk_norm, untied head", gpuRes, cpuRes, 2e-3)
	c, err := ckpt.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"head", "layers.0.q_norm", "layers.1.k_norm"} {
		if _, ok := c.Get(ckpt.ModelPrefix + name); !ok {
			t.Errorf("the checkpoint has no %s", ckpt.ModelPrefix+name)
		}
		if _, ok := c.Get(ckpt.OptimPrefix + name + ".m"); !ok {
			t.Errorf("the checkpoint has no %s", ckpt.OptimPrefix+name+".m")
		}
	}
	cfg.Train.Steps = 5
	onGPU, err := Run(context.Background(), cfg, Options{DataDir: dir, Resume: path})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Backend = "cpu"
	onCPU, err := Run(context.Background(), cfg, Options{DataDir: dir, Resume: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("20 updates: val loss GPU %.5f CPU %.5f; resumed for 5 more: GPU %.5f CPU %.5f",
		gpuRes.ValLoss, cpuRes.ValLoss, onGPU.ValLoss, onCPU.ValLoss)
	if math.Abs(onGPU.ValLoss-onCPU.ValLoss) > 2e-3*onCPU.ValLoss {
		t.Errorf("resumed from the GPU's checkpoint: val loss %.5f on the GPU, %.5f on the CPU", onGPU.ValLoss, onCPU.ValLoss)
	}
}
