package cudab

import (
	"fmt"
	"os"
	"strings"

	"github.com/anelab/anelab/anert/cuda"
)

// GEMMEnv names the environment variable that chooses how --backend cuda's bf16 GEMMs get their
// operands when no flag does (it reaches the supervised children of `anelab run` and workers).
const GEMMEnv = "ANELAB_CUDA_GEMM"

// GEMM precision names: bf16 operands in device memory (the default), or the earlier fp32
// tensors rounded to bf16 by cuBLAS as it loads them.
const (
	GEMMBF16     = "bf16"
	GEMMFast16BF = "fast16bf"
)

// ParseGEMMPrecision is the precision of --backend cuda (bf16 mode): flag ("" when not given),
// else $ANELAB_CUDA_GEMM, else bf16. A bad value is an error naming where it came from.
func ParseGEMMPrecision(flag string) (cuda.Precision, error) {
	v, from := flag, "--gemm-precision"
	if v == "" {
		v, from = os.Getenv(GEMMEnv), GEMMEnv
	}
	switch strings.TrimSpace(v) {
	case "", GEMMBF16:
		return cuda.BF16, nil
	case GEMMFast16BF:
		return cuda.BF16Fast, nil
	}
	return 0, fmt.Errorf("%s = %q: must be %q (bf16 operands) or %q (fp32 tensors rounded on load)", from, v, GEMMBF16, GEMMFast16BF)
}
