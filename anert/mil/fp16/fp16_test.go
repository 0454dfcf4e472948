package fp16

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestKnownValues(t *testing.T) {
	for _, c := range []struct {
		f    float32
		want uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.5, 0x3800},
		{65504, 0x7bff},                         // largest finite
		{65519, 0x7bff},                         // just below the rounding midpoint
		{65520, 0x7c00},                         // midpoint, odd neighbour 0x7bff → rounds up to Inf
		{1e6, 0x7c00},                           // overflow
		{float32(math.Inf(-1)), 0xfc00},         //
		{1.0 / (1 << 14), 0x0400},               // smallest normal 2^-14
		{1.0 / (1 << 24), 0x0001},               // smallest subnormal 2^-24
		{1.0 / (1 << 25), 0x0000},               // half of it: tie, to even (0)
		{1.5 / (1 << 25), 0x0001},               // above the tie
		{3.0 / (1 << 25), 0x0002},               // 1.5·2^-24: tie between 1 and 2 → 2 (even)
		{1 + 1.0/(1<<11), 0x3c00},               // tie between 1 and 1+2^-10 → 1 (even)
		{1 + 3.0/(1<<11), 0x3c02},               // tie between 1+2^-10 and 1+2^-9 → even 0x3c02
		{1 + 1.0/(1<<11) + 1.0/(1<<20), 0x3c01}, // just above the tie
		{0.1, 0x2e66},                           // 0.0999755859375
		{1023.0 / (1 << 24), 0x03ff},            // largest subnormal
		{(1023.5) / (1 << 24), 0x0400},          // rounds up into the smallest normal
	} {
		if got := FromFloat32(c.f); got != c.want {
			t.Errorf("FromFloat32(%g) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
	if v := ToFloat32(0x7bff); v != 65504 {
		t.Errorf("ToFloat32(0x7bff) = %g", v)
	}
	if v := ToFloat32(0x0001); v != float32(math.Ldexp(1, -24)) {
		t.Errorf("ToFloat32(0x0001) = %g", v)
	}
	if v := ToFloat32(0x2e66); v != float32(0.0999755859375) {
		t.Errorf("ToFloat32(0x2e66) = %g", v)
	}
}

func TestNaN(t *testing.T) {
	n := FromFloat32(float32(math.NaN()))
	if !IsNaN(n) {
		t.Fatalf("NaN → %#04x, not a NaN", n)
	}
	if !math.IsNaN(float64(ToFloat32(n))) {
		t.Fatal("fp16 NaN did not decode to NaN")
	}
	// A NaN whose payload lives only in the low 13 bits must stay a NaN.
	if h := FromFloat32(math.Float32frombits(0x7f800001)); !IsNaN(h) {
		t.Fatalf("low-payload NaN → %#04x", h)
	}
}

// Every fp16 value survives the round trip, and the decoded value matches the definition
// (-1)^s · 2^(e-15) · (1 + m/1024), or m·2^-24 for subnormals.
func TestExhaustiveRoundTrip(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := ToFloat32(h)
		s, e, m := float64(1), int(h>>10)&0x1f, float64(h&0x3ff)
		if h&0x8000 != 0 {
			s = -1
		}
		var want float64
		switch {
		case e == 0x1f && m == 0:
			want = math.Inf(int(s))
		case e == 0x1f:
			if !math.IsNaN(float64(f)) || !IsNaN(FromFloat32(f)) {
				t.Fatalf("%#04x: NaN not kept", h)
			}
			continue
		case e == 0:
			want = s * m * math.Ldexp(1, -24)
		default:
			want = s * (1 + m/1024) * math.Ldexp(1, e-15)
		}
		if float64(f) != want || math.Signbit(float64(f)) != (s < 0) {
			t.Fatalf("ToFloat32(%#04x) = %g, want %g", h, f, want)
		}
		if g := FromFloat32(f); g != h {
			t.Fatalf("FromFloat32(ToFloat32(%#04x)) = %#04x", h, g)
		}
	}
}

// For random float32 inputs the result is a nearest fp16 value, ties to the even one.
func TestNearestEven(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(f float32) {
		h := FromFloat32(f)
		x := float64(f)
		if math.IsNaN(x) {
			return
		}
		got := float64(ToFloat32(h))
		if math.Abs(x) >= 65520 {
			if !math.IsInf(got, 0) || math.Signbit(got) != math.Signbit(x) {
				t.Fatalf("%g → %g, want ±Inf", x, got)
			}
			return
		}
		d := math.Abs(got - x)
		// The two fp16 neighbours of the result on the number line are no nearer.
		up, down := neighbour(h, +1), neighbour(h, -1)
		for _, n := range []uint16{up, down} {
			v := float64(ToFloat32(n))
			if math.IsInf(v, 0) {
				continue
			}
			dn := math.Abs(v - x)
			if dn < d || (dn == d && n&1 == 0 && h&1 == 1 && v != got) {
				t.Fatalf("%g (%#08x) → %#04x (%g), but %#04x (%g) is nearer or the even tie",
					x, math.Float32bits(f), h, got, n, v)
			}
		}
	}
	for i := 0; i < 2_000_000; i++ {
		check(math.Float32frombits(r.Uint32()))
	}
	for i := 0; i < 1_000_000; i++ { // dense in the fp16 range
		check(float32((r.Float64()*2 - 1) * math.Ldexp(1, r.IntN(42)-26)))
	}
}

// neighbour returns the fp16 value next to h on the number line in direction dir (+1 up, -1 down).
func neighbour(h uint16, dir int) uint16 {
	neg := h&0x8000 != 0
	mag := h & 0x7fff
	if mag == 0 {
		if dir > 0 {
			return 0x0001
		}
		return 0x8001
	}
	if (dir > 0) != neg {
		return h + 1
	}
	return h - 1
}

func TestSliceHelpers(t *testing.T) {
	src := []float32{1, -0.1, 70000, 1e-8}
	h := make([]uint16, len(src))
	Encode(h, src)
	back := make([]float32, len(src))
	Decode(back, h)
	RoundSlice(src)
	for i := range src {
		if back[i] != src[i] && !(math.IsInf(float64(back[i]), 1) && math.IsInf(float64(src[i]), 1)) {
			t.Errorf("element %d: Encode/Decode %g, RoundSlice %g", i, back[i], src[i])
		}
	}
	if Round(70000) != float32(math.Inf(1)) {
		t.Errorf("Round(70000) = %g", Round(70000))
	}
}

func BenchmarkFromFloat32(b *testing.B) {
	x := make([]float32, 4096)
	for i := range x {
		x[i] = float32(i) * 0.37
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		RoundSlice(x)
	}
}
