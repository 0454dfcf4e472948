package train

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestArchOptionsAndMuonTrain: a model with every architecture option, trained by Muon, learns
// (loss falls as in TestShortRunLossFalls), checkpoints its new parameters and Muon's state, resumes
// from them, and a resume into a model without QK-norm is refused naming the field.
func TestArchOptionsAndMuonTrain(t *testing.T) {
	dir := tinyData(t)
	cfg := tinyConfig()
	cfg.Model.KVHeads, cfg.Model.QKNorm, cfg.Model.UntiedHead, cfg.Model.ZeroInit = 2, true, true, true
	cfg.Model.Act, cfg.Model.FFN = "relu2", cfg.Model.FFNFromRatio(4)
	cfg.Optim.Name, cfg.Optim.MuonLR = "muon", 0.02
	ck := filepath.Join(t.TempDir(), "a.ckpt")
	res, err := Run(context.Background(), cfg, Options{DataDir: dir, Checkpoint: ck})
	if err != nil {
		t.Fatal(err)
	}
	first := (res.Curve[0].Loss + res.Curve[1].Loss + res.Curve[2].Loss) / 3
	if res.Status != StatusOK || res.TrainLoss > first-1 || !(res.ValLoss < first-1) {
		t.Fatalf("status %s: loss %.3f → train %.3f, val %.3f in %d steps", res.Status, first, res.TrainLoss, res.ValLoss, res.Steps)
	}
	cfg.Train.Steps = 3
	b, err := Run(context.Background(), cfg, Options{DataDir: dir, Resume: ck})
	if err != nil {
		t.Fatal(err)
	}
	if b.Curve[0].Loss > res.Curve[len(res.Curve)-1].Loss+0.5 {
		t.Errorf("resumed loss %.3f vs %.3f at the end of the first run: weights not restored", b.Curve[0].Loss, res.Curve[len(res.Curve)-1].Loss)
	}
	cfg.Model.QKNorm = false
	if _, err := Run(context.Background(), cfg, Options{DataDir: dir, Resume: ck}); err == nil || !strings.Contains(err.Error(), "model.qk_norm") {
		t.Errorf("resume without QK-norm: err = %v, want it to name model.qk_norm", err)
	}
}
