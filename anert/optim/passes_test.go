package optim

import (
	"math"

	"github.com/anelab/anelab/anert/tensor"
	"github.com/anelab/anelab/internal/num"
)

// The separate passes that Update folds into one (Prepare + Update): the tests' reference for it,
// and the plain update the optimizer tests drive.

// updater is every optimizer's update on the gradients as given (zero: write 0 over each after).
type updater interface {
	update(ps []*tensor.Param, lr float64, p Prep, zero bool)
}

// plainStep applies one update of o on G as it is, leaving the gradients as they are.
func plainStep(o Optimizer, ps []*tensor.Param, lr float64) { o.(updater).update(ps, lr, AsIs, false) }

// zeroGrads sets every gradient to 0.
func zeroGrads(ps []*tensor.Param) {
	for _, p := range ps {
		clear(p.G)
	}
}

// gradNorm is the global L2 norm √(Σ g²) over every gradient element, accumulated in float64.
func gradNorm(ps []*tensor.Param, threads int) float64 {
	return math.Sqrt(sumSquares(ps, 1, threads))
}

// clipGradNorm scales all gradients by max/norm when their global L2 norm exceeds max
// (max ≤ 0 disables clipping) and returns the pre-clip norm. A non-finite norm is returned
// without touching the gradients.
func clipGradNorm(ps []*tensor.Param, max float64, threads int) (norm float64) {
	norm = gradNorm(ps, threads)
	if max > 0 && num.Finite(norm) && norm > max {
		unscale(ps, float32(max/norm), threads)
	}
	return norm
}
