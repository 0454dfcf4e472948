package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// TorchResult is one JSON line of the PyTorch reference trainer (anert/bench/pytorch/run.sh).
type TorchResult struct {
	Config       string  `json:"config"`
	Threads      int     `json:"threads"`
	Batch        int     `json:"batch"`
	Seq          int     `json:"seq"`
	TokensPerS   float64 `json:"tokens_per_s"`
	MsPerStep    float64 `json:"ms_per_step"`
	MsPerStepMin float64 `json:"ms_per_step_min"`
	MsPerStepMed float64 `json:"ms_per_step_median"`
	Params       int     `json:"params"`
	Version      string  `json:"torch_version"`
	Steps        int     `json:"steps"`
}

// RunTorch runs the PyTorch reference script (bash script threads) for the named configs and
// returns its results by config name. The script's stderr passes through.
func RunTorch(script string, threads int, names []string) (map[string]TorchResult, error) {
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("bench: the PyTorch reference script: %w (run from the repository root, or pass --torch-script)", err)
	}
	cmd := exec.Command("bash", script, strconv.Itoa(threads))
	cmd.Env = append(os.Environ(), "CONFIGS="+strings.Join(names, " "))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("bench: %s %d: %w", script, threads, err)
	}
	res := map[string]TorchResult{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r TorchResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("bench: %s printed a bad JSON line %q: %w", script, line, err)
		}
		res[r.Config] = r
	}
	for _, n := range names {
		if _, ok := res[n]; !ok {
			return nil, fmt.Errorf("bench: %s printed no result for config %q (output %q)", script, n, out)
		}
	}
	return res, nil
}

// MedianTokensPerS is the rate at the script's median step.
func (t TorchResult) MedianTokensPerS() float64 {
	return float64(t.Batch*t.Seq) / (t.MsPerStepMed / 1e3)
}

// BestTokensPerS is the rate at the script's fastest step.
func (t TorchResult) BestTokensPerS() float64 {
	return float64(t.Batch*t.Seq) / (t.MsPerStepMin / 1e3)
}
