package train

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/anelab/anelab/anert/ckpt"
	"github.com/anelab/anelab/anert/cuda"
	"github.com/anelab/anelab/internal/num"
)

// On a GPU, Muon (optim.name = muon) on cuda-fp32: a 20-update run's curve and val loss track
// the CPU's (same data, same init); the checkpoint's optimizer state has the CPU's buffers (names,
// lengths: the momentum for the matrices, AdamW's m and v for the rest) and values (≤ 1e-2
// relative after 20 updates on each side: a mislaid buffer is off by ~1); and a run resumed from
// the CPU's checkpoint on the GPU tracks the same run resumed on the CPU (the state uploaded).
func TestCUDAMuonRunTracksCPUAndResumes(t *testing.T) {
	if err := cuda.Available(); err != nil {
		t.Skipf("needs an NVIDIA GPU with its driver (libcuda.so.1), cuBLAS and NVRTC: %v", err)
	}
	cfg := tinyConfig()
	cfg.Optim.Name = "muon"
	cfg.Train.Steps = 20
	dir := tinyData(t)
	tmp := t.TempDir()
	run := func(backend, ck, resume string, steps int) Result {
		t.Helper()
		c := cfg
		c.Backend, c.Train.Steps = backend, steps
		var out bytes.Buffer
		res, err := Run(context.Background(), c, Options{DataDir: dir, Checkpoint: ck, Resume: resume, Out: &out})
		if err != nil {
			t.Fatalf("%s: %v\n%s", backend, err, out.String())
		}
		return res
	}
	tracks := func(what string, gpu, cpu Result) {
		t.Helper()
		if len(gpu.Curve) != len(cpu.Curve) || len(gpu.Curve) == 0 {
			t.Fatalf("%s: %d updates on the GPU, %d on the CPU", what, len(gpu.Curve), len(cpu.Curve))
		}
		tracksCPU(t, what, gpu, cpu, 2e-3)
		t.Logf("%s: val loss GPU %.5f CPU %.5f", what, gpu.ValLoss, cpu.ValLoss)
	}
	cpuCk, gpuCk := filepath.Join(tmp, "cpu.ckpt"), filepath.Join(tmp, "gpu.ckpt")
	cpuRes := run("cpu", cpuCk, "", 20)
	gpuRes := run("cuda-fp32", gpuCk, "", 20)
	tracks("20 updates", gpuRes, cpuRes)

	a, err := ckpt.Load(cpuCk)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ckpt.Load(gpuCk)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{}
	for _, s := range a.WithPrefix(ckpt.OptimPrefix) {
		want[s.Name] = s.Data
	}
	got := b.WithPrefix(ckpt.OptimPrefix)
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("the GPU's checkpoint has %d optimizer tensors, the CPU's %d", len(got), len(want))
	}
	for _, s := range got {
		w, ok := want[s.Name]
		if !ok || len(w) != len(s.Data) {
			t.Fatalf("the GPU's checkpoint has %s (%d values), the CPU's %d values (present: %v)", s.Name, len(s.Data), len(w), ok)
		}
		if e := num.RelErr(s.Data, w); e > 1e-2 || math.IsNaN(e) {
			t.Errorf("optimizer state %s: relative error %.3g between the GPU's and the CPU's checkpoints", s.Name, e)
		}
	}

	// Resume the CPU's checkpoint for 5 updates on each backend.
	tracks("resumed, 5 updates", run("cuda-fp32", "", cpuCk, 5), run("cpu", "", cpuCk, 5))
}
