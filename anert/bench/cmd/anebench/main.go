// Command anebench is `make bench`: the CPU training benchmark of anert/bench. For each config
// (default, original) it prints tokens/s, ms per optimizer step, the time by phase, peak memory
// against the analytic need, and MFU against the sgemm throughput measured in the same process;
// it writes benchstat lines to --out, and with --torch (or TORCH=1) runs the PyTorch reference
// right after anelab on each config and prints the tokens/s and MFU ratios. Each config runs in a child process of this command
// (anebench --child NAME), so that its peak RSS is its own.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/anelab/anelab/anert/bench"
	"github.com/anelab/anelab/anert/cuda"
	"github.com/anelab/anelab/anert/cudab"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "anebench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("anebench", flag.ContinueOnError)
	var o bench.RunOptions
	configs := fs.String("configs", "default,original", "comma-separated configs: default, original")
	fs.IntVar(&o.Threads, "threads", 0, "cores to use: goroutines and BLAS threads (0: all)")
	fs.IntVar(&o.Warmup, "warmup", 0, "untimed steps per config (0: 2)")
	fs.IntVar(&o.Steps, "steps", 0, "timed optimizer steps per config (0: 16 for default, 8 for original)")
	fs.IntVar(&o.Group, "group", 0, "timed steps back to back after each sgemm measurement (0: 4); the first of each is reported apart (after a burst), 1: every step right after one")
	fs.DurationVar(&o.PeakDur, "peak-dur", 0, "sgemm measurement before each group of steps (0: 250ms)")
	fs.IntVar(&o.PeakN, "peak-n", 0, "size n of the sgemm measurement's n×n×n products (0: 1024)")
	fs.BoolVar(&o.ProfileLoops, "profile-loops", false, "after the timed steps, profile a few more loop by loop (wall, busy, BLAS per site; also into --out's .loops.txt)")
	fs.StringVar(&o.Trace, "trace", "", "with --profile-loops: write the profiled steps' timeline (every loop and part: goroutine, start, end) to PREFIX.<config>.txt")
	fs.StringVar(&o.Alt, "alt", "", "a second CPU step scheduling (ANELAB_CPU_TUNE's key=value,…): every other group of steps runs with it, twice the steps, and the report compares the two group by group")
	fs.IntVar(&o.Rounds, "rounds", 0, "times each config is measured, in turn (0: 1, or 2 with --torch)")
	fs.StringVar(&o.Benchstat, "out", "bench.txt", "file for the benchstat lines (empty: none)")
	fs.BoolVar(&o.Torch, "torch", os.Getenv("TORCH") == "1", "also run the PyTorch reference and print the ratios (or TORCH=1)")
	fs.StringVar(&o.TorchScript, "torch-script", "anert/bench/pytorch/run.sh", "the PyTorch reference's runner")
	backend := fs.String("backend", "cpu", "cpu, or cuda / cuda-fp32: time whole steps on an NVIDIA GPU at a GPU-sized batch")
	batches := fs.String("batch", "", "sequences per step per config, e.g. default=8 (cpu: default each config's own; cuda: default=64,original=32)")
	attention := fs.String("attention", "", "with --backend cuda: flash, gemm, or both (flash,gemm) measured in turn (default: $ANELAB_CUDA_ATTENTION, else gemm)")
	gemmPrec := fs.String("gemm-precision", "", "with --backend cuda: bf16 (bf16 operands), fast16bf (fp32 tensors rounded on load), or both (bf16,fast16bf) measured in turn (default: $ANELAB_CUDA_GEMM, else bf16)")
	child := fs.String("child", "", "measure this one config and print its result as JSON (internal)")
	cpuprofile := fs.String("cpuprofile", "", "with --child: write a CPU profile of the measurement to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	batch, err := bench.ParseBatch(*batches)
	if err != nil {
		return err
	}
	o.Batch = batch
	if *child != "" {
		if *cpuprofile != "" {
			f, err := os.Create(*cpuprofile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		return bench.Child(os.Stdout, *child, o.Options)
	}
	if *backend == "cuda" || *backend == "cuda-fp32" {
		co := bench.CUDAOptions{Configs: strings.Split(*configs, ","), Batch: map[string]int{},
			Warmup: o.Warmup, Steps: o.Steps, Benchstat: o.Benchstat}
		if *backend == "cuda-fp32" {
			if *gemmPrec != "" {
				return fmt.Errorf("--gemm-precision applies to --backend cuda (bf16), not cuda-fp32")
			}
			co.Precisions = []cuda.Precision{cuda.FP32}
		} else {
			for _, g := range strings.Split(*gemmPrec, ",") {
				if g == "" && *gemmPrec != "" {
					continue
				}
				p, err := cudab.ParseGEMMPrecision(strings.TrimSpace(g))
				if err != nil {
					return err
				}
				co.Precisions = append(co.Precisions, p)
			}
		}
		for _, a := range strings.Split(*attention, ",") {
			if a == "" && *attention != "" {
				continue
			}
			at, err := cudab.ParseAttention(strings.TrimSpace(a))
			if err != nil {
				return err
			}
			co.Attentions = append(co.Attentions, at)
		}
		co.Batch = batch
		return bench.RunCUDA(os.Stdout, co)
	} else if *backend != "cpu" {
		return fmt.Errorf("--backend %q: want cpu, cuda or cuda-fp32", *backend)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	o.Self = []string{exe}
	o.Configs = strings.Split(*configs, ",")
	return bench.Run(os.Stdout, o)
}
