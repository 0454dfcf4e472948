package nb

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/anelab/anelab/anert/sample"
	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/kernel/ledger"
)

// Sample shows text generated from a run's checkpoint (name as Get takes it: an id, "best",
// "best:notebook", …), continuing prompt for up to tokens tokens at temperature 0.8, top-k 40.
// Only kept runs keep a checkpoint: sample from a lineage's best.
//
//	nb.Sample("best:notebook", "Once upon a time", 200)
func Sample(name, prompt string, tokens int) string {
	text, err := sampleRun(name, prompt, tokens)
	check(err)
	return text
}

func sampleRun(name, prompt string, tokens int) (string, error) {
	l, err := ledger.Open(LabDir())
	if err != nil {
		return "", err
	}
	r, err := resolve(l, name)
	l.Close()
	if err != nil {
		return "", err
	}
	if r.Checkpoint == "" {
		return "", fmt.Errorf("run %s (%s) kept no checkpoint: only kept runs do; sample from a lineage's best, e.g. \"best:%s\"",
			r.ID, r.Mark(), r.Lineage)
	}
	path := filepath.Join(LabDir(), r.Checkpoint)
	text, err := train.Sample(path, prompt, sample.Options{Tokens: tokens, Temperature: 0.8, TopK: 40, Seed: 1})
	if err != nil {
		return "", err
	}
	gen := strings.TrimPrefix(text, prompt)
	h := fmt.Sprintf(`<div><small>sample from run %s (val_loss %s), %d tokens, temperature 0.8, top-k 40</small>`+
		`<pre style="white-space:pre-wrap;font-family:serif;font-size:110%%"><b>%s</b>%s</pre></div>`,
		esc(r.ID), Num(r.ValLoss), tokens, esc(prompt), esc(gen))
	out.HTML(h, fmt.Sprintf("--- sample from run %s ---\n%s", r.ID, text))
	out.Sync()
	return text, nil
}
