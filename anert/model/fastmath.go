package model

import "math"

// expf returns eˣ in float32 within 4·10⁻⁷ relative error (a few ulp; the Cephes expf scheme):
// x = n·ln2 + r with |r| ≤ ln2/2, eʳ by a degree-7 polynomial (in Estrin's form, for a short
// dependency chain), 2ⁿ built from exponent bits. It is about twice as fast as
// float32(math.Exp(float64(x))); every softmax, sigmoid and tanh here uses it.
// Range: x < −87.33 gives 0 (e⁻⁸⁷·³ is the smallest normal float32); x > 88 gives +Inf (the true
// value is ≥ 1.6·10³⁸; harmless for the softmax, sigmoid and tanh uses here); NaN gives NaN.
func expf(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		ln2Hi = 0.693359375
		ln2Lo = -2.12194440e-4
		magic = 0x1.8p23 // adding it rounds a float32 in (−2²², 2²²) to an integer
	)
	if !(x >= -87.33654 && x <= 88) { // also catches NaN
		if x > 88 {
			return float32(math.Inf(1))
		}
		if x < 0 {
			return 0
		}
		return x
	}
	t := x*log2e + magic
	n := t - magic // round(x·log2 e)
	r := x - n*ln2Hi - n*ln2Lo
	r2 := r * r
	p := (5.0000001201e-1 + 1.6666665459e-1*r) + r2*(4.1665795894e-2+8.3334519073e-3*r) +
		r2*r2*(1.3981999507e-3+1.9875691500e-4*r)
	p = p*r2 + r + 1
	return p * math.Float32frombits(uint32(int32(math.Float32bits(t))-0x4B400000+127)<<23)
}

// tanhf returns tanh(x) in float32 within 4·10⁻⁷ relative error (Cephes tanhf): an odd polynomial for |x| < 0.625,
// otherwise 1 − 2/(e^{2|x|} + 1) with the sign of x.
func tanhf(x float32) float32 {
	a := x
	if a < 0 {
		a = -a
	}
	if a < 0.625 {
		s := x * x
		return ((((-5.70498872745e-3*s+2.06390887954e-2)*s-5.37397155531e-2)*s+1.33314422036e-1)*s-
			3.33332819422e-1)*s*x + x
	}
	if a > 9 { // tanh(9) = 1 − 3·10⁻⁸ rounds to 1
		return float32(math.Copysign(1, float64(x)))
	}
	z := 1 - 2/(expf(2*a)+1)
	if x < 0 {
		return -z
	}
	return z
}

// sigmoidf is σ(x) = 1/(1 + e⁻ˣ).
func sigmoidf(x float32) float32 { return 1 / (1 + expf(-x)) }
