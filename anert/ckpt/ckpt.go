// Package ckpt writes and reads training checkpoints: one self-describing file holding the run's
// full config, every tensor (weights and optimizer state) by name and shape, the RNG state, the
// progress counters and free-form metadata.
//
// File layout (version 1), all integers little-endian:
//
//	offset  size  field
//	0       8     magic "ANELABCK"
//	8       4     version (uint32) = 1
//	12      4     header length H (uint32), in bytes
//	16      8     data length D (uint64), in bytes
//	24      4     CRC-32 (IEEE) of bytes 0..23 followed by the header
//	28      H     header: JSON (config, counters, rng, meta, tensor table), space-padded so that
//	              the data starts at a multiple of 64 bytes
//	28+H    D     data: each tensor's elements as little-endian float32, in table order, contiguous
//
// The tensor table gives each tensor's name, shape, byte offset within the data and the CRC-32
// (IEEE) of its bytes, so a damaged file names the damaged tensor. The file's size is exactly
// 28+H+D; anything else is reported as truncation (or trailing garbage).
//
// Names are free, but the convention is ModelPrefix + parameter name for weights ("model/layers.0.wq")
// and OptimPrefix + state name for optimizer state ("optim/layers.0.wq.m"), so Restore can check
// that the model's parameters and the checkpoint's model tensors are the same set.
//
// Save writes a temporary file in the destination's folder, syncs it and renames it over the
// destination, so a killed run leaves either the old checkpoint or the new one, never half of one.
package ckpt

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/tensor"
)

// Conventional name prefixes of the two kinds of tensor.
const (
	ModelPrefix = "model/"
	OptimPrefix = "optim/"
)

// Magic opens every checkpoint file; Version is the layout this package writes and reads.
const (
	Magic   = "ANELABCK"
	Version = 1
)

// Errors that Load wraps (test with errors.Is); the message names the file and the detail.
var (
	ErrNotCheckpoint = errors.New("not an anelab checkpoint")
	ErrVersion       = errors.New("unsupported checkpoint version")
	ErrTruncated     = errors.New("checkpoint truncated")
	ErrCorrupt       = errors.New("checkpoint corrupt")
)

// Counters is how far a run (or lineage) has come.
type Counters struct {
	Step    int64   `json:"step"`    // optimizer updates completed
	Micro   int64   `json:"micro"`   // micro-steps (forward+backward passes) completed
	Tokens  int64   `json:"tokens"`  // training tokens seen
	Seconds float64 `json:"seconds"` // elapsed training wall time, in seconds
}

// Tensor is one named float32 array. len(Data) is the product of Shape.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// Checkpoint is everything a run needs to continue.
type Checkpoint struct {
	Path     string // the file Load read it from (for messages); not saved
	Config   config.Config
	Counters Counters
	RNG      []byte            // the caller's RNG state, opaque here
	Meta     map[string]string // free-form: commit, lineage, run id, created…
	Tensors  []Tensor          // weights and optimizer state, in file order
}

// Add appends a tensor. Data is kept by reference, not copied: leave it unchanged until Save
// returns. Shape must describe len(data) elements (Save checks).
func (c *Checkpoint) Add(name string, shape []int, data []float32) {
	c.Tensors = append(c.Tensors, Tensor{Name: name, Shape: slices.Clone(shape), Data: data})
}

// AddParams adds every parameter's weights as prefix + its name (data by reference, as Add).
func (c *Checkpoint) AddParams(prefix string, ps []*tensor.Param) {
	for _, p := range ps {
		c.Add(prefix+p.Name, p.Shape, p.W)
	}
}

// Get returns the tensor called name.
func (c *Checkpoint) Get(name string) (*Tensor, bool) {
	for i := range c.Tensors {
		if c.Tensors[i].Name == name {
			return &c.Tensors[i], true
		}
	}
	return nil, false
}

// WithPrefix returns the tensors whose names start with prefix, the prefix removed (data shared).
func (c *Checkpoint) WithPrefix(prefix string) []Tensor {
	var out []Tensor
	for _, t := range c.Tensors {
		if name, ok := strings.CutPrefix(t.Name, prefix); ok {
			t.Name = name
			out = append(out, t)
		}
	}
	return out
}

// numel is the product of shape, or -1 if a dimension is negative or the product exceeds limit.
func numel(shape []int, limit int64) int64 {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return -1
		}
		if d != 0 && n > limit/int64(d) {
			return -1
		}
		n *= int64(d)
	}
	return n
}

// check reports the first problem that would make c unwritable or unreadable.
func (c *Checkpoint) check() error {
	seen := make(map[string]bool, len(c.Tensors))
	for _, t := range c.Tensors {
		if t.Name == "" {
			return fmt.Errorf("a tensor has an empty name")
		}
		if seen[t.Name] {
			return fmt.Errorf("tensor %s appears twice", t.Name)
		}
		seen[t.Name] = true
		if n := numel(t.Shape, 1<<62); n != int64(len(t.Data)) {
			return fmt.Errorf("tensor %s: shape %v describes %d elements, data has %d", t.Name, t.Shape, n, len(t.Data))
		}
	}
	return nil
}
