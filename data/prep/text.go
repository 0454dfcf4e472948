package prep

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/anelab/anelab/data"
	"github.com/anelab/anelab/data/bpe"
)

// DefaultTextDir is where `anelab data text` writes.
const DefaultTextDir = "data/out/text"

// PrepareText writes a dataset made from text files into dir. Each file is cut into documents at
// blank lines (a file without blank lines is cut at line ends instead, and a one-line file is one
// document). Documents, in file order, go to validation evenly — document i is a val document when
// ⌊(i+1)·valFrac⌋ > ⌊i·valFrac⌋ — and all others to train, so the splits share no document and
// val is spread over the whole corpus. The BPE tokenizer (vocab tokens, BOSToken last) is learnt
// on train only.
func PrepareText(dir string, files []string, vocab int, valFrac float64, log io.Writer) error {
	if len(files) == 0 {
		return errors.New("no text files given: usage `anelab data text FILE…`")
	}
	if vocab < 258 || vocab > 1<<16 {
		return fmt.Errorf("vocab %d: must be between 258 and 65536", vocab)
	}
	if !(valFrac > 0 && valFrac < 1) {
		return fmt.Errorf("val fraction %v: must be between 0 and 1 (e.g. 0.1)", valFrac)
	}
	log = orDiscard(log)
	start := time.Now()

	var docs [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("text file %s does not exist", f)
		}
		if err != nil {
			return fmt.Errorf("text file %s: %w", f, err)
		}
		d := splitDocs(b)
		if len(d) == 0 {
			return fmt.Errorf("text file %s is empty (no text besides white space)", f)
		}
		fmt.Fprintf(log, "%s: %d bytes, %d documents\n", f, len(b), len(d))
		docs = append(docs, d...)
	}
	var train, val [][]byte
	for i, d := range docs {
		if int(float64(i+1)*valFrac) > int(float64(i)*valFrac) {
			val = append(val, d)
		} else {
			train = append(train, d)
		}
	}
	if len(val) == 0 && len(docs) > 1 {
		train, val = docs[:len(docs)-1], docs[len(docs)-1:]
	}
	if len(train) == 0 || len(val) == 0 {
		return fmt.Errorf("the text has %d document(s): need at least 2 to keep train and val apart "+
			"(separate documents by a blank line, or give several files)", len(docs))
	}
	return build(dir, log, func(tmp string) error {
		t0 := time.Now()
		tr := bpe.NewTrainer()
		var nb int
		step := 1
		var total int
		for _, d := range train {
			total += len(d)
		}
		if total > tokenizerSampleBytes {
			step = (total + tokenizerSampleBytes - 1) / tokenizerSampleBytes // every step-th document
		}
		for i := 0; i < len(train); i += step {
			tr.Add(train[i])
			nb += len(train[i])
		}
		tok, bos, err := trainBPE(tr, vocab, tmp)
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "tokenizer: %d tokens, trained on %.1f MB in %.1fs\n", tok.VocabSize(), float64(nb)/1e6, time.Since(t0).Seconds())
		if tok.VocabSize() < vocab {
			fmt.Fprintf(log, "  (the text ran out of pairs to merge before %d tokens)\n", vocab)
		}

		list := func(ds [][]byte) func(int) ([]byte, bool) {
			return func(i int) ([]byte, bool) {
				if i >= len(ds) {
					return nil, false
				}
				return ds[i], true
			}
		}
		trainSplit := encodeDocs(tok, bos, list(train), 0, progress(log, "train", 0))
		valSplit := encodeDocs(tok, bos, list(val), 0, progress(log, "val", 0))
		m := data.Manifest{
			Name:      "text",
			Source:    fmt.Sprintf("text files %q, %d documents (%d train, %d val)", files, len(docs), len(train), len(val)),
			Tokenizer: data.TokenizerInfo{Kind: data.KindBPE, File: data.BPEFile},
			VocabSize: tok.VocabSize(),
			BOS:       bos,
		}
		return finishDataset(tmp, dir, &m, trainSplit, valSplit, start, log)
	})
}

// splitDocs cuts text into documents at blank lines (lines of only white space); text without a
// blank line is cut at line ends. Documents keep their inner line breaks and lose the white space
// around them.
func splitDocs(b []byte) [][]byte {
	lines := bytes.SplitAfter(b, []byte("\n"))
	var docs [][]byte
	var cur []byte
	for _, l := range lines {
		if len(bytes.TrimSpace(l)) == 0 {
			if t := bytes.TrimSpace(cur); len(t) > 0 {
				docs = append(docs, t)
			}
			cur = cur[:0:0]
			continue
		}
		cur = append(cur, l...)
	}
	if t := bytes.TrimSpace(cur); len(t) > 0 {
		docs = append(docs, t)
	}
	if len(docs) == 1 {
		docs = docs[:0]
		for _, l := range lines {
			if t := bytes.TrimSpace(l); len(t) > 0 {
				docs = append(docs, t)
			}
		}
	}
	return docs
}
