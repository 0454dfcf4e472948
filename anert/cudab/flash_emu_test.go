package cudab

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/cuda"
)

// The emulation header and harness are embedded, so the test binary runs from any folder.
var (
	//go:embed testdata/flash_emu.h
	flashEmuHeader string
	//go:embed testdata/flash_emu_main.cpp
	flashEmuMain string
)

// flashCase is one attention problem: BH heads of T rows, head dim HD.
type flashCase struct{ BH, T, HD int }

// flashCases cover every head dim, one row, exact tiles and partial tiles of every kernel
// (forward/dQ blocks of 64 rows and 32-key tiles, dK/dV blocks of 64 keys and 16-row tiles).
var flashCases = []flashCase{
	{2, 1, 32},   // one row: P = 1, O = V
	{3, 77, 16},  // 64 + 13 rows; 2·32 + 13 keys
	{2, 37, 8},   // one partial block
	{2, 64, 64},  // exact tiles
	{2, 130, 48}, // 3 blocks, the last of 2 rows
	{1, 200, 64}, // 4 blocks, 7 key tiles, partial everywhere
}

// flashData is a case's inputs (float32) and outputs.
type flashData struct {
	Q, K, V, dO        []float32 // [BH, T, HD]
	O, dQ, dK, dV, lse []float32
}

// newFlashData draws inputs with scores of a few units (q, k ~ N(0, 1.5²)·√HD^½), large
// enough that the running maximum changes across key tiles and the rescaling matters.
func newFlashData(c flashCase, seed uint64) *flashData {
	r := rand.New(rand.NewPCG(seed, uint64(c.T)))
	n := c.BH * c.T * c.HD
	f := func(std float64) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(std * r.NormFloat64())
		}
		return x
	}
	return &flashData{Q: f(1.5), K: f(1.5), V: f(1), dO: f(1)}
}

// flashReference is causal attention and its gradients in float64 (the textbook form, P
// materialised): S = scale·Q·Kᵀ (s ≤ t), P = softmax(S), O = P·V, lse = log Σ exp S;
// dP = dO·Vᵀ, dS = P∘(dP − rowsum(P∘dP)), dQ = scale·dS·K, dK = scale·dSᵀ·Q, dV = Pᵀ·dO.
func flashReference(c flashCase, d *flashData) (O, dQ, dK, dV, lse []float64) {
	T, HD := c.T, c.HD
	n := c.BH * T * HD
	O, dQ, dK, dV, lse = make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, c.BH*T)
	scale := 1 / math.Sqrt(float64(HD))
	at := func(x []float32, b, i, k int) float64 { return float64(x[(b*T+i)*HD+k]) }
	P, dP := make([]float64, T), make([]float64, T)
	for b := range c.BH {
		for i := range T {
			m := math.Inf(-1)
			for j := 0; j <= i; j++ {
				s := 0.0
				for k := range HD {
					s += at(d.Q, b, i, k) * at(d.K, b, j, k)
				}
				P[j] = scale * s
				m = math.Max(m, P[j])
			}
			sum := 0.0
			for j := 0; j <= i; j++ {
				P[j] = math.Exp(P[j] - m)
				sum += P[j]
			}
			lse[b*T+i] = m + math.Log(sum)
			dot := 0.0
			for j := 0; j <= i; j++ {
				P[j] /= sum
				dP[j] = 0
				for k := range HD {
					O[(b*T+i)*HD+k] += P[j] * at(d.V, b, j, k)
					dP[j] += at(d.dO, b, i, k) * at(d.V, b, j, k)
				}
				dot += P[j] * dP[j]
			}
			for j := 0; j <= i; j++ {
				ds := P[j] * (dP[j] - dot)
				for k := range HD {
					dQ[(b*T+i)*HD+k] += scale * ds * at(d.K, b, j, k)
					dK[(b*T+j)*HD+k] += scale * ds * at(d.Q, b, i, k)
					dV[(b*T+j)*HD+k] += P[j] * at(d.dO, b, i, k)
				}
			}
		}
	}
	return
}

// relErr64 is ‖got − want‖ / ‖want‖ against a float64 reference.
func relErr64(got []float32, want []float64) float64 {
	var d, n float64
	for i, w := range want {
		e := float64(got[i]) - w
		d += e * e
		n += w * w
	}
	if n == 0 {
		return math.Sqrt(d)
	}
	return math.Sqrt(d / n)
}

// flashTol is the relative error allowed against the float64 reference: fp32 sums of up to
// T·HD products. A wrong mask, tile edge, rescaling or lse gives errors of order 1.
const flashTol = 2e-5

// compareFlash checks a case's outputs against the float64 reference within tol; it returns the worst error.
func compareFlash(t *testing.T, where string, c flashCase, d *flashData, tol float64) float64 {
	t.Helper()
	O, dQ, dK, dV, lse := flashReference(c, d)
	worst := 0.0
	for _, x := range []struct {
		name string
		got  []float32
		want []float64
	}{{"O", d.O, O}, {"lse", d.lse, lse}, {"dQ", d.dQ, dQ}, {"dK", d.dK, dK}, {"dV", d.dV, dV}} {
		e := relErr64(x.got, x.want)
		worst = max(worst, e)
		if !(e <= tol) {
			t.Errorf("%s BH=%d T=%d HD=%d: %s relative error %.3g > %g", where, c.BH, c.T, c.HD, x.name, e, tol)
		}
	}
	return worst
}

// emuCompiler is the g++ that compiles CUDA sources for the CPU over testdata/flash_emu.h; it
// skips t where that cannot run.
func emuCompiler(t *testing.T, what string) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the fiber emulation (flash_emu.h) uses Linux's ucontext")
	}
	gxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skipf("needs g++ (Debian package g++) to compile %s for the CPU", what)
	}
	return gxx
}

// compileEmu writes a CUDA source (src, saved as name), the emulation header and a harness
// (main) into dir and compiles them with gxx and flags; it returns the binary's path.
func compileEmu(gxx, dir, name, src, main string, flags ...string) (string, error) {
	for n, text := range map[string]string{name: src, "flash_emu.h": flashEmuHeader, "main.cpp": main} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(text), 0o644); err != nil {
			return "", err
		}
	}
	bin := filepath.Join(dir, strings.TrimSuffix(name, ".cu")+"_emu")
	args := append([]string{"-O1", "-std=c++17", "-Wall", "-Wno-unknown-pragmas", "-o", bin, "main.cpp"}, flags...)
	cmd := exec.Command(gxx, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("g++ %v: %v\n%s", args, err, out)
	}
	return bin, nil
}

// buildFlashEmu compiles flash.cu as host C++ over testdata/flash_emu.h with the harness
// (testdata/flash_emu_main.cpp), the tile sizes as -D flags as for NVRTC, plus extra flags; it
// skips the test where that cannot run.
func buildFlashEmu(t *testing.T, extra ...string) string {
	t.Helper()
	gxx := emuCompiler(t, "flash.cu")
	bin, err := compileEmu(gxx, t.TempDir(), "flash.cu", flashSrc, flashEmuMain, append(flashDefines(), extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// runFlashEmu runs the emulated kernels (bf16: the tensor-core variant) on the cases, with the
// launch geometry the trainer uses (flashGeometry), and fills each case's outputs.
func runFlashEmu(t *testing.T, bin string, bf16 bool, cases []flashCase, data []*flashData) {
	t.Helper()
	var in bytes.Buffer
	variant := int32(0)
	if bf16 {
		variant = 1
	}
	for ci, c := range cases {
		d := data[ci]
		g := flashGeometry(c.BH, c.T, bf16)
		hdr := []int32{variant, int32(c.BH), int32(c.T), int32(c.HD)}
		for _, l := range []launchDim{g.fwd, g.pre, g.dq, g.dkdv} {
			hdr = append(hdr, int32(l.grid), int32(l.block))
		}
		binary.Write(&in, binary.LittleEndian, hdr)
		for _, x := range [][]float32{d.Q, d.K, d.V, d.dO} {
			binary.Write(&in, binary.LittleEndian, x)
		}
	}
	run := exec.Command(bin)
	run.Stdin = &in
	var out, stderr bytes.Buffer
	run.Stdout, run.Stderr = &out, &stderr
	if err := run.Run(); err != nil {
		t.Fatalf("the emulated kernels failed: %v\n%s", err, stderr.String())
	}
	t.Log(stderr.String())
	for ci, c := range cases {
		d := data[ci]
		n, nr := c.BH*c.T*c.HD, c.BH*c.T
		for _, p := range []*[]float32{&d.O, &d.dQ, &d.dK, &d.dV} {
			*p = make([]float32, n)
		}
		d.lse = make([]float32, nr)
		for _, x := range [][]float32{d.O, d.dQ, d.dK, d.dV, d.lse} {
			if err := binary.Read(&out, binary.LittleEndian, x); err != nil {
				t.Fatalf("case %d: reading the harness's output: %v", ci, err)
			}
		}
	}
	if out.Len() != 0 {
		t.Errorf("the harness wrote %d bytes more than expected", out.Len())
	}
}

// TestFlashEmulated compiles flash.cu as host C++ (testdata/flash_emu.h emulates blocks,
// threads, __syncthreads and shared memory), runs its fp32 forward and backward kernels with the
// launch geometry the trainer uses (flashGeometry, tile sizes as -D flags as for NVRTC), and
// compares O, lse, dQ, dK and dV with a float64 reference. Needs g++; runs in CI without a GPU.
func TestFlashEmulated(t *testing.T) {
	bin := buildFlashEmu(t)
	data := make([]*flashData, len(flashCases))
	for ci, c := range flashCases {
		data[ci] = newFlashData(c, uint64(ci+1))
	}
	runFlashEmu(t, bin, false, flashCases, data)
	for ci, c := range flashCases {
		w := compareFlash(t, "emulated", c, data[ci], flashTol)
		t.Logf("BH=%d T=%d HD=%d: worst relative error %.2g", c.BH, c.T, c.HD, w)
	}
}

// flashBF16Cases cover the bf16 kernels' head dims, one row, exact and partial tiles (blocks of
// 64 rows = 4 warps of 16, 64-key tiles, dK/dV's 32-query halves).
var flashBF16Cases = []flashCase{
	{2, 1, 32},   // one row: one warp with 15 rows past the end
	{3, 77, 16},  // 64 + 13 rows
	{2, 64, 64},  // exact tiles
	{2, 130, 48}, // 3 blocks, the last of 2 rows
	{1, 200, 64}, // 4 blocks, 4 key tiles, partial everywhere
	{1, 96, 32},  // a partial block of whole warps (two of four)
}

// flashBF16Tol is the relative error allowed to the bf16 kernels against the float64 reference
// on bf16-exact inputs: what remains is P and dS rounded to bf16 (8 significant bits, relative
// 2⁻⁹ each) before their products, and fp32 sums. A wrong fragment layout, mask or rescaling
// gives errors of order 1.
const flashBF16Tol = 5e-3

// newFlashDataBF16 is newFlashData with every input rounded to bf16, so the kernels' conversion
// is exact and the reference sees the same numbers.
func newFlashDataBF16(c flashCase, seed uint64) *flashData {
	d := newFlashData(c, seed)
	for _, x := range [][]float32{d.Q, d.K, d.V, d.dO} {
		for i, v := range x {
			x[i] = cuda.FromBF16(cuda.ToBF16(v)) // ties to even, as cvt.rn.bf16x2.f32
		}
	}
	return d
}

// TestFlashBF16Emulated runs the bf16 tensor-core kernels on the emulator (each mma.sync and
// __shfl_xor_sync emulated across the warp's 32 lanes by the PTX ISA's fragment layouts) against
// the float64 reference. Then, with each operand's layout mislaid in the emulator on purpose
// (FLASH_EMU_MISLAYOUT = A, B, C: two groups' rows or two threads' k pairs swapped), the same
// kernels must be far off: the layouts the kernels assume are the ones the emulator reads, not
// just any consistent pair.
func TestFlashBF16Emulated(t *testing.T) {
	bin := buildFlashEmu(t)
	data := make([]*flashData, len(flashBF16Cases))
	for ci, c := range flashBF16Cases {
		data[ci] = newFlashDataBF16(c, uint64(ci+1))
	}
	runFlashEmu(t, bin, true, flashBF16Cases, data)
	for ci, c := range flashBF16Cases {
		w := compareFlash(t, "emulated bf16", c, data[ci], flashBF16Tol)
		t.Logf("BH=%d T=%d HD=%d: worst relative error %.2g", c.BH, c.T, c.HD, w)
	}

	c := flashCase{1, 64, 32}
	for _, op := range []string{"A", "B", "C"} {
		t.Setenv("FLASH_EMU_MISLAYOUT", op)
		d := newFlashDataBF16(c, 9)
		runFlashEmu(t, bin, true, []flashCase{c}, []*flashData{d})
		O, _, _, _, _ := flashReference(c, d)
		if e := relErr64(d.O, O); !(e > 0.1) {
			t.Errorf("with the %s fragment mislaid, O's relative error is %.3g, want > 0.1 (is the mma emulated?)", op, e)
		} else {
			t.Logf("%s fragment mislaid: O relative error %.2g", op, e)
		}
	}
}

// The reference itself: one row gives O = V and lse = its one score; a gradient checked by
// finite differences of L = Σ dO∘O (so a wrong reference cannot hide a wrong kernel).
func TestFlashReference(t *testing.T) {
	c := flashCase{1, 5, 8}
	d := newFlashData(c, 3)
	O, dQ, dK, dV, lse := flashReference(c, d)
	for k := range c.HD {
		if math.Abs(O[k]-float64(d.V[k])) > 1e-12 {
			t.Fatalf("row 0: O = %g, want V = %g", O[k], d.V[k])
		}
	}
	s0 := 0.0
	for k := range c.HD {
		s0 += float64(d.Q[k]) * float64(d.K[k])
	}
	if math.Abs(lse[0]-s0/math.Sqrt(8)) > 1e-12 {
		t.Fatalf("row 0: lse = %g, want its score %g", lse[0], s0/math.Sqrt(8))
	}
	loss := func() float64 {
		O, _, _, _, _ := flashReference(c, d)
		s := 0.0
		for i, o := range O {
			s += o * float64(d.dO[i])
		}
		return s
	}
	for _, g := range []struct {
		name string
		x    []float32
		grad []float64
	}{{"dQ", d.Q, dQ}, {"dK", d.K, dK}, {"dV", d.V, dV}} {
		for _, i := range []int{3, 17, 30} {
			x0 := g.x[i]
			const h = 1e-2
			g.x[i] = x0 + h
			lp := loss()
			g.x[i] = x0 - h
			lm := loss()
			g.x[i] = x0
			num := (lp - lm) / (float64(float32(x0+h)) - float64(float32(x0-h)))
			if math.Abs(num-g.grad[i]) > 1e-3*max(1, math.Abs(num)) {
				t.Errorf("%s[%d] = %.6g, finite difference %.6g", g.name, i, g.grad[i], num)
			}
		}
	}
}
