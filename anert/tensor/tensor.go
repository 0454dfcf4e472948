// Package tensor names the trainable parameters shared by the model, the optimizers and checkpoints.
package tensor

// Group decides a parameter's learning-rate scale and weight decay.
type Group int

const (
	Matrix Group = iota // linear weights: LR × matrix scale, weight decay
	Embed               // tied embedding/classifier: LR × embed scale, no decay
	Norm                // RMSNorm gains: LR, no decay
)

func (g Group) String() string {
	switch g {
	case Matrix:
		return "matrix"
	case Embed:
		return "embed"
	case Norm:
		return "norm"
	}
	return "unknown"
}

// Param is one trainable tensor: its values W, its gradient G (same length), its shape and group.
type Param struct {
	Name  string
	Shape []int
	W, G  []float32
	Group Group
}

// Size is the number of elements the shape describes.
func (p *Param) Size() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}
