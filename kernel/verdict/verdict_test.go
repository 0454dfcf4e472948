package verdict

import (
	"math"
	"strings"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestStudentT(t *testing.T) {
	// Closed forms: df=1 is Cauchy, P(T>t) = ½ − atan(t)/π; df=2 gives ½ − t/(2√(2+t²)).
	for _, x := range []float64{-3, -0.5, 0, 0.3, 1, 2.5, 10} {
		if got, want := StudentTSF(x, 1), 0.5-math.Atan(x)/math.Pi; !near(got, want, 1e-12) {
			t.Errorf("SF(%v, 1) = %v, want %v", x, got, want)
		}
		if got, want := StudentTSF(x, 2), 0.5-x/(2*math.Sqrt(2+x*x)); !near(got, want, 1e-12) {
			t.Errorf("SF(%v, 2) = %v, want %v", x, got, want)
		}
	}
	// Table quantiles (any statistics table; 6 digits).
	for _, c := range []struct{ p, df, want float64 }{
		{0.95, 1, 6.313752}, {0.95, 4, 2.131847}, {0.975, 10, 2.228139}, {0.95, 30, 1.697261},
		{0.99, 5, 3.364930}, {0.95, 1e7, 1.644854}, {0.05, 4, -2.131847},
	} {
		if got := StudentTQuantile(c.p, c.df); !near(got, c.want, 2e-6) {
			t.Errorf("quantile(%v, df %v) = %.6f, want %.6f", c.p, c.df, got, c.want)
		}
	}
}

func TestSummarizeAndPool(t *testing.T) {
	s := Summarize([]float64{2, 4, 6})
	if s.N != 3 || s.Mean != 4 || !near(s.SD, 2, 1e-15) {
		t.Fatalf("Summarize = %+v, want n 3 mean 4 sd 2", s)
	}
	if s := Summarize([]float64{7}); s.N != 1 || s.Mean != 7 || s.SD != 0 {
		t.Fatalf("Summarize one = %+v", s)
	}
	// [1,3]: Σ(x−x̄)² = 2 (dof 1); [2,4,6]: 8 (dof 2); [5] carries nothing. σ² = 10/3.
	n := Pool([][]float64{{1, 3}, {2, 4, 6}, {5}})
	if n.DoF != 3 || n.Groups != 2 || n.Runs != 5 || !near(n.SD, math.Sqrt(10.0/3), 1e-15) {
		t.Fatalf("Pool = %+v, want dof 3, 2 groups, 5 runs, sd √(10/3)", n)
	}
	if n := Pool([][]float64{{1}, {2}}); n.Known() || n.SD != 0 {
		t.Fatalf("Pool of singletons = %+v, want unknown", n)
	}
}

func TestDecide(t *testing.T) {
	one := func(m float64) Sample { return Sample{N: 1, Mean: m} }
	floor := Noise{SD: 0.01, DoF: 4, Groups: 1, Runs: 5}
	se11 := 0.01 * math.Sqrt2 // σ·√(1/1+1/1)
	se44 := 0.01 * math.Sqrt(0.5)
	sd3 := Sample{N: 3, Mean: 1.00, SD: 0.01}
	// Welch for two groups of 3 with sd 0.01: SE = √(2·0.01²/3); df = 4 exactly.
	seW := math.Sqrt(2 * 0.0001 / 3)
	for _, c := range []struct {
		name       string
		cand, head Sample
		noise      Noise
		decision   string
		test       string
		margin     float64
	}{
		{"no head: first run kept", one(1.3), Sample{}, Noise{}, Keep, TestFirst, 0},
		{"floor: better by 5σ at n=1", one(1.00), one(1.05), floor, Keep, TestKSigma, 2 * se11},
		{"floor: better by 2σ at n=1 is within noise", one(1.00), one(1.02), floor, WithinNoise, TestKSigma, 2 * se11},
		{"floor: worse by 2σ is within noise, not discard", one(1.02), one(1.00), floor, WithinNoise, TestKSigma, 2 * se11},
		{"floor: worse by 5σ is discarded", one(1.05), one(1.00), floor, Discard, TestKSigma, 2 * se11},
		{"floor: same 2σ gain is kept with 4 repeats a side", Sample{N: 4, Mean: 1.00}, Sample{N: 4, Mean: 1.02}, floor, Keep, TestKSigma, 2 * se44},
		{"floor beats welch when both apply", sd3, Sample{N: 3, Mean: 1.02, SD: 0.01}, Noise{SD: 0.03, DoF: 10}, WithinNoise, TestKSigma, 2 * 0.03 * math.Sqrt(2.0/3)},
		{"welch: clearly better", sd3, Sample{N: 3, Mean: 1.10, SD: 0.01}, Noise{}, Keep, TestWelch, 2.131847 * seW},
		{"welch: clearly worse", Sample{N: 3, Mean: 1.10, SD: 0.01}, sd3, Noise{}, Discard, TestWelch, 2.131847 * seW},
		{"welch: overlapping", sd3, Sample{N: 3, Mean: 1.01, SD: 0.01}, Noise{}, WithinNoise, TestWelch, 2.131847 * seW},
		{"floor with 1 dof is not enough: welch", sd3, Sample{N: 3, Mean: 1.10, SD: 0.01}, Noise{SD: 1, DoF: 1}, Keep, TestWelch, 2.131847 * seW},
		{"no noise estimate: strict better", one(1.00), one(1.0001), Noise{}, Keep, TestStrict, 0},
		{"no noise estimate: strict worse", one(1.0001), one(1.00), Noise{}, Discard, TestStrict, 0},
		{"no noise estimate: a tie is within noise", one(1.00), one(1.00), Noise{}, WithinNoise, TestStrict, 0},
		{"zero-variance repeats: strict", Sample{N: 2, Mean: 1}, Sample{N: 2, Mean: 1.1}, Noise{}, Keep, TestStrict, 0},
		{"zero noise floor: margin 0", one(1.00), one(1.0001), Noise{SD: 0, DoF: 5}, Keep, TestKSigma, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := Decide(c.cand, c.head, c.noise, Rule{})
			if v.Decision != c.decision || v.Test != c.test {
				t.Fatalf("got %s by %s, want %s by %s: %s", v.Decision, v.Test, c.decision, c.test, v)
			}
			if !near(v.Margin, c.margin, 1e-6) {
				t.Fatalf("margin %v, want %v", v.Margin, c.margin)
			}
			if c.head.N > 0 && !near(v.Delta, c.head.Mean-c.cand.Mean, 1e-15) {
				t.Fatalf("delta %v", v.Delta)
			}
			if s := v.String(); !strings.HasPrefix(s, c.decision) || !strings.Contains(s, c.test) && c.test != TestFirst && c.test != TestStrict {
				t.Fatalf("String() = %q does not name the decision and test", s)
			}
		})
	}
	// Welch's numbers: t = Δ/SE, df 4, p = P(T > t).
	v := Decide(sd3, Sample{N: 3, Mean: 1.01, SD: 0.01}, Noise{}, Rule{})
	if !near(v.T, 0.01/seW, 1e-9) || !near(v.DF, 4, 1e-9) || !near(v.P, StudentTSF(0.01/seW, 4), 1e-12) {
		t.Fatalf("welch numbers t %v df %v p %v", v.T, v.DF, v.P)
	}
	// K and Alpha are honoured.
	if v := Decide(one(1.00), one(1.02), floor, Rule{K: 1}); v.Decision != Keep || !near(v.Margin, se11, 1e-12) {
		t.Fatalf("K=1: %s", v)
	}
}
