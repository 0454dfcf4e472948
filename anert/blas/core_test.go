package blas

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestWantCore(t *testing.T) {
	for _, c := range []struct {
		core string
		s    simd
		want string
	}{
		{"Prescott", simdAVX512, "SKYLAKEX"}, // Debian's 0.3.21 on Emerald Rapids
		{"Prescott", simdAVX2, "HASWELL"},
		{"Nehalem", simdAVX2, "HASWELL"},
		{"Sandybridge", simdAVX512, "SKYLAKEX"},
		{"Prescott", simdOther, ""}, // a CPU without AVX2: generic is right
		{"Haswell", simdAVX512, ""}, // an AVX2 core: kept (a measured choice, not a fallback)
		{"Zen", simdAVX2, ""},
		{"SkylakeX", simdAVX512, ""},
		{"Cooperlake", simdAVX512, ""},
		{"", simdAVX512, ""}, // not OpenBLAS
	} {
		if got := wantCore(c.core, c.s); got != c.want {
			t.Errorf("wantCore(%q, %d) = %q, want %q", c.core, c.s, got, c.want)
		}
	}
}

// TestCoreFitsCPU: on a CPU with AVX2, the OpenBLAS core this process runs is not a generic
// fallback (package init re-executed the test binary if the library chose one).
func TestCoreFitsCPU(t *testing.T) {
	i := Describe()
	t.Logf("BLAS: %s; config: %s", i, Config())
	if Backend != "openblas" {
		t.Skipf("BLAS is %s, not OpenBLAS", Backend)
	}
	if s := cpuSIMD(); s != simdAVX2 && s != simdAVX512 {
		t.Skipf("CPU has no AVX2 (%s): a generic core is right", i.Features)
	}
	if !avx2Cores[strings.ToLower(i.Core)] {
		t.Fatalf("OpenBLAS runs core %s on a CPU with %s: a generic fallback", i.Core, i.Features)
	}
}

// TestEnvCoreNamed: a core pinned by OPENBLAS_CORETYPE from the environment is kept, and the
// BLAS line says so, and names the faster core when the pinned one leaves AVX-512 unused. (Only
// the environment's own pin, Haswell, is loaded: this project's machines pin it on CPUs where
// older OpenBLAS builds fail, and tests do not change it.)
func TestEnvCoreNamed(t *testing.T) {
	if os.Getenv("ANELAB_TEST_PRINT_CORE") == "1" {
		os.Stdout.WriteString(Describe().String() + "\n")
		return
	}
	if Backend != "openblas" || (cpuSIMD() != simdAVX2 && cpuSIMD() != simdAVX512) {
		t.Skip("needs OpenBLAS on a CPU with AVX2")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestEnvCoreNamed$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ANELAB_TEST_PRINT_CORE=1", "OPENBLAS_CORETYPE=HASWELL", "ANELAB_BLAS_CORE=", reexecEnv+"=")
	out, err := cmd.CombinedOutput()
	line := strings.SplitN(string(out), "\n", 2)[0]
	want := "openblas core Haswell (OPENBLAS_CORETYPE=HASWELL from the environment"
	if cpuSIMD() == simdAVX512 {
		want += "; this CPU's AVX-512 fits SkylakeX"
	} else {
		want += ")"
	}
	if err != nil || !strings.HasPrefix(line, want) {
		t.Fatalf("child reports %q (%v), want it to start %q", line, err, want)
	}
}

// TestReexecReplacesGenericCore forces OpenBLAS onto its generic Prescott kernels in a child
// process (ANELAB_BLAS_CORE=auto corrects even a user's OPENBLAS_CORETYPE) and checks that the
// child re-executed itself onto a core that fits the CPU, and says so.
func TestReexecReplacesGenericCore(t *testing.T) {
	if os.Getenv("ANELAB_TEST_PRINT_CORE") == "1" {
		i := Describe()
		os.Stdout.WriteString("core=" + i.Core + " selected=" + i.Selected + " from=" + i.From + "\n")
		return
	}
	if Backend != "openblas" {
		t.Skipf("BLAS is %s, not OpenBLAS", Backend)
	}
	s := cpuSIMD()
	if s != simdAVX2 && s != simdAVX512 {
		t.Skip("CPU has no AVX2")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReexecReplacesGenericCore$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ANELAB_TEST_PRINT_CORE=1", "OPENBLAS_CORETYPE=PRESCOTT", "ANELAB_BLAS_CORE=auto", reexecEnv+"=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	want := map[simd]string{simdAVX2: "core=Haswell selected=HASWELL from=Prescott",
		simdAVX512: "core=SkylakeX selected=SKYLAKEX from=Prescott"}[s]
	if !strings.Contains(string(out), want) {
		t.Fatalf("child reports %q, want %q", out, want)
	}
	// ANELAB_BLAS_CORE=keep leaves the generic core alone.
	cmd = exec.Command(os.Args[0], "-test.run=^TestReexecReplacesGenericCore$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ANELAB_TEST_PRINT_CORE=1", "OPENBLAS_CORETYPE=PRESCOTT", "ANELAB_BLAS_CORE=keep")
	if out, err = cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "core=Prescott selected= from=") {
		t.Fatalf("with ANELAB_BLAS_CORE=keep the child reports %q (%v), want core=Prescott unchanged", out, err)
	}
}

func TestRateWarning(t *testing.T) {
	floor := MinGFLOPSPerThread()
	if floor == 0 {
		t.Skip("no rate expectation for this CPU")
	}
	if w := RateWarning(floor*4*0.5, 4); !strings.Contains(w, "WARNING") {
		t.Errorf("half the floor gives no warning: %q", w)
	}
	if w := RateWarning(floor*4*1.5, 4); w != "" {
		t.Errorf("above the floor gives a warning: %q", w)
	}
}

// TestOneDNNISAFitsCPU: a build on oneDNN (the onednn tag) runs kernels of the CPU's vector class
// — AVX-512 kernels on an AVX-512 CPU, AVX2 ones on an AVX2 CPU — whatever OPENBLAS_CORETYPE says
// (this project's machines pin OpenBLAS to Haswell on AVX-512 CPUs).
func TestOneDNNISAFitsCPU(t *testing.T) {
	if Backend != "onednn" {
		t.Skipf("BLAS is %s, not oneDNN", Backend)
	}
	i := Describe()
	want := map[simd]string{simdAVX512: "avx512", simdAVX2: "avx2"}[cpuSIMD()]
	if want == "" {
		t.Skipf("CPU has no AVX2 (%s)", i.Features)
	}
	if !strings.HasPrefix(i.Core, want) {
		t.Fatalf("oneDNN runs %q kernels on a CPU with %s (%s)", i.Core, i.Features, i)
	}
	if i.EnvCore != "" || strings.Contains(i.String(), "OPENBLAS_CORETYPE") {
		t.Fatalf("the BLAS line names OpenBLAS's pin, which oneDNN does not read: %s", i)
	}
}
