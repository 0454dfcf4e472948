package blas

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/cpu"
)

// Info says which BLAS this process runs and with which kernels, for run summaries and reports.
type Info struct {
	Backend string `json:"blas"`      // Backend: openblas, onednn, accelerate or go
	Core    string `json:"blas_core"` // the kernel set in use (OpenBLAS's core name, oneDNN's ISA; Backend otherwise)
	// Selected is the core anelab asked for with OPENBLAS_CORETYPE because the library had fallen
	// back to a generic one (From), "" when the library's own choice was kept.
	Selected string `json:"blas_selected,omitempty"`
	From     string `json:"blas_fallback,omitempty"`
	Features string `json:"cpu_features"` // the SIMD features the CPU and OS offer: avx512, avx2, neon, …
	// EnvCore is OPENBLAS_CORETYPE when it came from the environment (a user's choice, respected:
	// some environments pin a core because older OpenBLAS builds fail on some CPUs), and Fits the
	// faster core the CPU's features allow when the pinned one does not use them (an AVX2 core on
	// an AVX-512 CPU: half the sgemm rate on this project's 2-core machine, anert/bench/RESULTS.md).
	EnvCore string `json:"blas_env_core,omitempty"`
	Fits    string `json:"blas_core_fits,omitempty"`
}

// String is the one-line form: "openblas core SkylakeX (selected; the library chose Prescott), cpu avx512".
func (i Info) String() string {
	s := i.Backend
	if i.Core != "" && i.Core != i.Backend {
		s += " core " + i.Core
	}
	if i.Selected != "" {
		s += fmt.Sprintf(" (OPENBLAS_CORETYPE=%s set by anelab: the library had fallen back to %s)", i.Selected, i.From)
	}
	if i.EnvCore != "" {
		s += " (OPENBLAS_CORETYPE=" + i.EnvCore + " from the environment"
		if i.Fits != "" {
			s += "; this CPU's AVX-512 fits " + i.Fits + ", about 2× the sgemm rate where measured"
		}
		s += ")"
	}
	return s + ", cpu " + i.Features
}

// Describe reports the BLAS in use, its core and the CPU's features.
func Describe() Info {
	i := Info{Backend: Backend, Core: libCore(), Features: features()}
	if i.Core == "" {
		i.Core = Backend
	}
	if from := os.Getenv(reexecEnv); from != "" {
		i.Selected, i.From = os.Getenv("OPENBLAS_CORETYPE"), from
	} else if env := os.Getenv("OPENBLAS_CORETYPE"); env != "" && Backend == "openblas" {
		i.EnvCore = env
		if cpuSIMD() == simdAVX512 && !avx512Cores[strings.ToLower(i.Core)] {
			i.Fits = "SkylakeX"
		}
	}
	return i
}

// avx512Cores are the OpenBLAS cores whose sgemm kernels use AVX-512.
var avx512Cores = map[string]bool{"skylakex": true, "cooperlake": true, "sapphirerapids": true}

// reexecEnv marks a process that anelab re-executed with OPENBLAS_CORETYPE set; its value is the
// core the library had chosen on its own.
const reexecEnv = "ANELAB_BLAS_FALLBACK"

// simd is the CPU's vector class as far as sgemm kernels care.
type simd int

const (
	simdOther  simd = iota
	simdAVX2        // AVX2 + FMA (x86-64-v3)
	simdAVX512      // AVX-512 F, BW, DQ, VL (x86-64-v4; what OpenBLAS's SkylakeX kernels need)
	simdNEON        // arm64
)

func cpuSIMD() simd {
	switch {
	case cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL && cpu.X86.HasFMA:
		return simdAVX512
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return simdAVX2
	case cpu.ARM64.HasASIMD:
		return simdNEON
	}
	return simdOther
}

func features() string {
	switch cpuSIMD() {
	case simdAVX512:
		return "avx512"
	case simdAVX2:
		return "avx2"
	case simdNEON:
		return "neon"
	}
	return "baseline"
}

// avx2Cores are OpenBLAS's x86-64 cores whose sgemm kernels use AVX2 and FMA (lower case); the
// others (Prescott, Nehalem, Sandybridge, …) are what a DYNAMIC_ARCH build falls back to on a CPU
// model it does not know, and run 4–10× slower on a CPU that has AVX2.
var avx2Cores = map[string]bool{"haswell": true, "zen": true, "skylakex": true, "cooperlake": true, "sapphirerapids": true}

// wantCore is the OPENBLAS_CORETYPE to ask for when OpenBLAS chose core on a CPU of class s, or ""
// when its choice is right: SKYLAKEX with AVX-512 (not COOPERLAKE, which needs AVX-512 BF16 and
// was measured to stall), HASWELL with AVX2.
func wantCore(core string, s simd) string {
	if core == "" || avx2Cores[strings.ToLower(core)] {
		return ""
	}
	switch s {
	case simdAVX512:
		return "SKYLAKEX"
	case simdAVX2:
		return "HASWELL"
	}
	return ""
}

// MinGFLOPSPerThread is the sgemm rate per thread below which this CPU's BLAS is certainly not
// running kernels that fit its features (0: no expectation). The figures are a third or less of
// what AVX-512 or AVX2 kernels reach on one core (100–140 and 50–70 GFLOP/s for 1024³ products):
// generic SSE kernels reach about 10.
func MinGFLOPSPerThread() float64 {
	switch cpuSIMD() {
	case simdAVX512:
		return 30
	case simdAVX2:
		return 15
	}
	return 0
}

// RateWarning returns a loud warning when gflops, an sgemm rate measured on threads threads, is far
// below what the CPU's features imply ("" when it is not).
func RateWarning(gflops float64, threads int) string {
	floor := MinGFLOPSPerThread() * float64(max(threads, 1))
	if floor == 0 || gflops >= floor {
		return ""
	}
	return fmt.Sprintf("WARNING: sgemm runs at %.0f GFLOP/s on %d threads, below the %.0f GFLOP/s that even a loaded "+
		"%s CPU reaches: BLAS (%s) is running kernels that do not fit this CPU, or the cores are heavily shared; "+
		"expect training to be several times slower than it should be",
		gflops, threads, floor, features(), Describe().String())
}
