// Package verdict decides whether an experiment beat its lineage's head, given the noise of the
// measurement. It is pure: numbers in, a decision and the numbers behind it out. Lower is better
// (val_bpb).
//
// The rule, in order (the first that applies decides, and the Verdict names it):
//
//  1. first: the lineage has no head yet; the candidate is kept.
//  2. k-sigma: the lab's noise floor is known (a pooled within-config standard deviation σ with at
//     least MinDoF degrees of freedom, measured from repeats of identical configs). The difference
//     of two means of n_c and n_h runs has standard error SE = σ·√(1/n_c + 1/n_h); the candidate is
//     kept when head − candidate > K·SE, discarded when it is worse by more than K·SE, and otherwise
//     "within-noise". K = 2 by default (a one-sided false-keep rate of about 2.3% for normal noise).
//  3. welch: no floor yet, but both sides have ≥ 2 runs: Welch's unequal-variance t-test, one-sided at
//     level Alpha in each direction (keep if the candidate is significantly lower, discard if
//     significantly higher, otherwise within-noise).
//  4. strict: nothing to estimate noise from (one run each, no floor): the old strict comparison,
//     flagged as such so an agent knows the verdict is unguarded.
//
// The floor decides over Welch when both apply: it pools many more degrees of freedom than two
// small groups, so its margin is the steadier of the two.
package verdict

import (
	"fmt"
	"math"
)

// Decisions. An ok run gets exactly one of them.
const (
	Keep        = "keep"
	Discard     = "discard"
	WithinNoise = "within-noise"
)

// Tests: which rule decided.
const (
	TestFirst  = "first"
	TestKSigma = "k-sigma"
	TestWelch  = "welch"
	TestStrict = "strict"
)

// Sample is the summary of one config's runs: how many, their mean and sample standard
// deviation (n−1 in the denominator; 0 when N < 2).
type Sample struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	SD   float64 `json:"sd"`
}

// Summarize returns the Sample of xs.
func Summarize(xs []float64) Sample {
	s := Sample{N: len(xs)}
	if s.N == 0 {
		return s
	}
	for _, x := range xs {
		s.Mean += x
	}
	s.Mean /= float64(s.N)
	if s.N > 1 {
		var ss float64
		for _, x := range xs {
			ss += (x - s.Mean) * (x - s.Mean)
		}
		s.SD = math.Sqrt(ss / float64(s.N-1))
	}
	return s
}

// Noise is a pooled within-config standard deviation: the seed-to-seed spread of one measurement.
type Noise struct {
	SD     float64 `json:"sd"`     // √(Σ(n_i−1)s_i² / Σ(n_i−1))
	DoF    int     `json:"dof"`    // Σ(n_i−1)
	Groups int     `json:"groups"` // configs with ≥ 2 runs that contributed
	Runs   int     `json:"runs"`   // runs in those configs
}

// Known reports whether n has enough degrees of freedom to decide with.
func (n Noise) Known() bool { return n.DoF >= MinDoF }

// MinDoF is the fewest degrees of freedom a noise floor needs before it decides (3 repeats of
// one config give 2).
const MinDoF = 2

// Pool pools the within-group variance of groups of repeated measurements (each group one
// config, different seeds). Groups with fewer than 2 values carry no information and are skipped.
func Pool(groups [][]float64) Noise {
	var n Noise
	var ss float64
	for _, g := range groups {
		if len(g) < 2 {
			continue
		}
		s := Summarize(g)
		ss += float64(s.N-1) * s.SD * s.SD
		n.DoF += s.N - 1
		n.Groups++
		n.Runs += s.N
	}
	if n.DoF > 0 {
		n.SD = math.Sqrt(ss / float64(n.DoF))
	}
	return n
}

// Rule holds the thresholds.
type Rule struct {
	K     float64 `json:"k"`     // margin in standard errors for k-sigma (0: 2)
	Alpha float64 `json:"alpha"` // one-sided level of the Welch test (0: 0.05)
}

// DefaultRule is K = 2, Alpha = 0.05.
var DefaultRule = Rule{K: 2, Alpha: 0.05}

func (r Rule) norm() Rule {
	if r.K <= 0 {
		r.K = DefaultRule.K
	}
	if r.Alpha <= 0 || r.Alpha >= 0.5 {
		r.Alpha = DefaultRule.Alpha
	}
	return r
}

// Verdict is a decision and everything it was decided from.
type Verdict struct {
	Decision string  `json:"decision"`
	Test     string  `json:"test"`
	Cand     Sample  `json:"cand"`
	Head     Sample  `json:"head"`
	Noise    Noise   `json:"noise"`
	Rule     Rule    `json:"rule"`
	Delta    float64 `json:"delta"`        // head mean − candidate mean: > 0 means the candidate is better
	SE       float64 `json:"se"`           // standard error of Delta under the deciding test (0 for first/strict)
	Margin   float64 `json:"margin"`       // how much better the candidate had to be to be kept
	T        float64 `json:"t,omitempty"`  // Welch: t statistic (Delta/SE)
	DF       float64 `json:"df,omitempty"` // Welch: Welch–Satterthwaite degrees of freedom
	P        float64 `json:"p,omitempty"`  // Welch: one-sided p-value of "the candidate is no better"
}

// Decide compares a candidate config's runs with the head config's runs under noise and rule.
func Decide(cand, head Sample, noise Noise, rule Rule) Verdict {
	rule = rule.norm()
	v := Verdict{Cand: cand, Head: head, Noise: noise, Rule: rule}
	if head.N == 0 {
		v.Decision, v.Test = Keep, TestFirst
		return v
	}
	v.Delta = head.Mean - cand.Mean
	switch {
	case noise.Known():
		v.Test = TestKSigma
		v.SE = noise.SD * math.Sqrt(1/float64(cand.N)+1/float64(head.N))
		v.Margin = rule.K * v.SE
	case cand.N >= 2 && head.N >= 2:
		vc, vh := cand.SD*cand.SD/float64(cand.N), head.SD*head.SD/float64(head.N)
		v.SE = math.Sqrt(vc + vh)
		if v.SE == 0 { // both groups exactly repeatable: there is no noise to guard against
			v.Test = TestStrict
			break
		}
		v.Test = TestWelch
		v.T = v.Delta / v.SE
		v.DF = (vc + vh) * (vc + vh) / (vc*vc/float64(cand.N-1) + vh*vh/float64(head.N-1))
		v.P = StudentTSF(v.T, v.DF)
		v.Margin = StudentTQuantile(1-rule.Alpha, v.DF) * v.SE
	default:
		v.Test = TestStrict
	}
	switch {
	case v.Delta > v.Margin:
		v.Decision = Keep
	case v.Delta < -v.Margin:
		v.Decision = Discard
	default:
		v.Decision = WithinNoise
	}
	return v
}

// String is the one-line reason: which test decided, with its numbers.
func (v Verdict) String() string {
	side := func(s Sample) string {
		if s.N > 1 {
			return fmt.Sprintf("%.4f±%.4f (n=%d)", s.Mean, s.SD, s.N)
		}
		return fmt.Sprintf("%.4f (n=%d)", s.Mean, s.N)
	}
	switch v.Test {
	case TestFirst:
		return fmt.Sprintf("%s: first ok run of the lineage, %s", v.Decision, side(v.Cand))
	case TestKSigma:
		return fmt.Sprintf("%s by k-sigma: gain %+.4f (head %s − this %s), margin %.1f·SE=%.4f, SE=σ·√(1/%d+1/%d), noise floor σ=%.4f (dof %d)",
			v.Decision, v.Delta, side(v.Head), side(v.Cand), v.Rule.K, v.Margin, v.Cand.N, v.Head.N, v.Noise.SD, v.Noise.DoF)
	case TestWelch:
		return fmt.Sprintf("%s by welch: gain %+.4f (head %s − this %s), t=%.2f, df=%.1f, one-sided p=%.3g (α=%.2g), margin %.4f",
			v.Decision, v.Delta, side(v.Head), side(v.Cand), v.T, v.DF, v.P, v.Rule.Alpha, v.Margin)
	}
	return fmt.Sprintf("%s by strict comparison (no noise estimate: run repeats, e.g. scripts/noise.go): gain %+.4f (head %s − this %s)",
		v.Decision, v.Delta, side(v.Head), side(v.Cand))
}

// StudentTSF is P(T > t) for Student's t with df degrees of freedom (df may be fractional):
// ½·I_{df/(df+t²)}(df/2, ½) for t ≥ 0, and 1 − P(T > −t) below.
func StudentTSF(t, df float64) float64 {
	if math.IsNaN(t) || df <= 0 {
		return math.NaN()
	}
	if math.IsInf(t, 1) {
		return 0
	}
	if math.IsInf(t, -1) {
		return 1
	}
	tail := 0.5 * RegIncBeta(df/2, 0.5, df/(df+t*t))
	if t >= 0 {
		return tail
	}
	return 1 - tail
}

// StudentTQuantile is the t with P(T ≤ t) = p, by bisection on StudentTSF (monotone).
func StudentTQuantile(p, df float64) float64 {
	if p <= 0 || p >= 1 || df <= 0 {
		return math.NaN()
	}
	lo, hi := -1.0, 1.0
	for 1-StudentTSF(lo, df) > p {
		lo *= 2
	}
	for 1-StudentTSF(hi, df) < p {
		hi *= 2
	}
	for i := 0; i < 200 && hi-lo > 1e-12*math.Max(1, math.Abs(hi)); i++ {
		mid := (lo + hi) / 2
		if 1-StudentTSF(mid, df) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// RegIncBeta is the regularized incomplete beta function I_x(a, b), by the continued fraction
// of Numerical Recipes §6.4 (Lentz's method), using the symmetry I_x(a,b) = 1 − I_{1−x}(b,a)
// where the fraction converges slowly.
func RegIncBeta(a, b, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	la, _ := math.Lgamma(a + b)
	lb, _ := math.Lgamma(a)
	lc, _ := math.Lgamma(b)
	front := math.Exp(la - lb - lc + a*math.Log(x) + b*math.Log(1-x))
	if x < (a+1)/(a+b+2) {
		return front * betaCF(a, b, x) / a
	}
	return 1 - front*betaCF(b, a, 1-x)/b
}

func betaCF(a, b, x float64) float64 {
	const tiny = 1e-300
	qab, qap, qam := a+b, a+1, a-1
	c, d := 1.0, 1-qab*x/qap
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	for m := 1; m <= 500; m++ {
		fm := float64(m)
		m2 := 2 * fm
		aa := fm * (b - fm) * x / ((qam + m2) * (a + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		h *= d * c
		aa = -(a + fm) * (qab + fm) * x / ((a + m2) * (qap + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-15 {
			break
		}
	}
	return h
}
