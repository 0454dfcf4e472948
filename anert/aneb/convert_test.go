package aneb

import (
	"math/rand/v2"
	"testing"

	"github.com/anelab/anelab/anert/mil"
	"github.com/anelab/anelab/anert/mil/fp16"
)

// encodeT/decodeT against the definition, element by element, with padding (T < S), a scale,
// channel counts that are not multiples of the tile, and several goroutines.
func TestTransposeConvert(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct{ T, S, C, w int }{{5, 16, 3, 1}, {37, 48, 600, 3}, {64, 64, 768, 2}, {1, 32, 33, 4}} {
		x := make([]float32, c.T*c.C)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		blk := make([]uint16, c.C*c.S)
		for i := range blk {
			blk[i] = 0x3c00 // 1.0: padding must be overwritten with 0
		}
		encodeT(blk, x, c.T, c.S, c.C, 4, c.w)
		for ch := range c.C {
			for tk := range c.S {
				want := uint16(0)
				if tk < c.T {
					want = fp16.FromFloat32(4 * x[tk*c.C+ch])
				}
				if blk[ch*c.S+tk] != want {
					t.Fatalf("%+v: blk[%d][%d] = %#x, want %#x", c, ch, tk, blk[ch*c.S+tk], want)
				}
			}
		}
		y := make([]float32, c.T*c.C)
		decodeT(y, blk, c.T, c.S, c.C, 0.25, c.w)
		for i := range y {
			if want := fp16.Round(4*x[i]) / 4; y[i] != want {
				t.Fatalf("%+v: decode[%d] = %g, want %g", c, i, y[i], want)
			}
		}
	}
}

// The tiled, parallel conversion against mil.Field.Pack (the element-wise reference) on an
// activation of the original's size: [512][768] → [768][512].
func BenchmarkEncodeT(b *testing.B) {
	const S, C = 512, 768
	x := make([]float32, S*C)
	for i := range x {
		x[i] = float32(i%97) / 97
	}
	blk := make([]uint16, C*S)
	b.Run("encodeT-w1", func(b *testing.B) {
		for b.Loop() {
			encodeT(blk, x, S, S, C, 1, 1)
		}
	})
	b.Run("encodeT-w2", func(b *testing.B) {
		for b.Loop() {
			encodeT(blk, x, S, S, C, 1, 2)
		}
	})
	f := mil.Field{Channels: C, Cols: S, Width: S, Transposed: true}
	b.Run("Field.Pack", func(b *testing.B) {
		for b.Loop() {
			f.Pack(blk, x)
		}
	})
}
