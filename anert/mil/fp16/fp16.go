// Package fp16 converts between IEEE 754 binary32 (float32) and binary16 (fp16, stored as uint16),
// the ANE's storage type.
//
// FromFloat32 rounds to nearest, ties to even (as the NEON vcvt the original uses), produces fp16
// subnormals, overflows to ±Inf (|x| ≥ 65520), and keeps NaN a NaN (quiet, payload's top bits kept).
// ToFloat32 is exact (every fp16 value is a float32 value). Round(x) = ToFloat32(FromFloat32(x)).
package fp16

import "math"

// Max is the largest finite fp16 value.
const Max = 65504

var table [1 << 16]float32

func init() {
	for i := range table {
		table[i] = decode(uint16(i))
	}
}

// decode is the exact fp16 → float32 conversion (table builder).
func decode(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // Inf, NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0: // ±0
		return math.Float32frombits(sign)
	default: // subnormal: mant · 2^-24
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
}

// ToFloat32 returns the float32 value of the fp16 bits h (exact).
func ToFloat32(h uint16) float32 { return table[h] }

// FromFloat32 rounds f to the nearest fp16 (ties to even) and returns its bits.
func FromFloat32(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff { // Inf or NaN
		if mant == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7e00 | uint16(mant>>13) // quiet NaN, top payload bits kept
	}
	e := exp - 127 + 15 // fp16 biased exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 { // fp16 subnormal or zero: value = M·2^(e-14-24+...) → r = M >> (14-e)
		if e < -10 {
			return sign // below half the smallest subnormal: rounds to ±0
		}
		m := mant | 0x800000
		shift := uint(14 - e)
		r := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++ // may carry into the smallest normal, which is the right answer
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // a carry out of the mantissa bumps the exponent; 0x7bff+1 = 0x7c00 = Inf
	}
	return sign | uint16(r)
}

// Round returns f rounded to the nearest fp16 value, as a float32.
func Round(f float32) float32 { return table[FromFloat32(f)] }

// RoundSlice rounds every element of x to fp16 in place.
func RoundSlice(x []float32) {
	for i, v := range x {
		x[i] = table[FromFloat32(v)]
	}
}

// Encode converts src to fp16 bits in dst (len(dst) ≥ len(src)).
func Encode(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = FromFloat32(v)
	}
}

// Decode converts fp16 bits in src to float32 in dst (len(dst) ≥ len(src)).
func Decode(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = table[h]
	}
}

// IsNaN reports whether h is an fp16 NaN.
func IsNaN(h uint16) bool { return h&0x7c00 == 0x7c00 && h&0x3ff != 0 }
