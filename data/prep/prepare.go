package prep

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"time"

	"github.com/anelab/anelab/data"
	"github.com/anelab/anelab/data/bpe"
	"github.com/anelab/anelab/data/stories"
	"github.com/anelab/anelab/internal/par"
)

// Defaults of `anelab data default`.
const (
	DefaultDir         = "data/out/default"
	DefaultVocab       = 4096
	DefaultTrainTokens = 20_000_000 // ≈ 80 MB of stories; several 5-minute runs of a small model
	// BOSToken is the BPE special token that starts every document.
	BOSToken = "<|bos|>"

	tokenizerSampleBytes = 10 << 20 // BPE is trained on at most this much text
)

// split is one tokenized split before it is written.
type split struct {
	tokens    []uint16
	docs      int64
	textBytes int64
}

// PrepareDefault writes the default dataset into dir: synthetic children's stories
// (data/stories; train seeds 0, 1, 2, …, validation seeds from stories.ValSeedBase), a BPE
// tokenizer of vocab tokens (its last id is BOSToken, put before every story) trained on the first
// ~10 MB of training stories, at least trainTokens train tokens, about a tenth of that of
// validation tokens, and the manifest. It prints progress to log (nil: quiet).
func PrepareDefault(dir string, vocab, trainTokens int, log io.Writer) error {
	if vocab < 258 || vocab > 1<<16 {
		return fmt.Errorf("vocab %d: must be between 258 (256 bytes, a merge, BOS) and 65536 (uint16 shards)", vocab)
	}
	if trainTokens < 1000 {
		return fmt.Errorf("train tokens %d: must be at least 1000", trainTokens)
	}
	log = orDiscard(log)
	args := fmt.Sprintf("vocab=%d train_tokens=%d stories_version=%d", vocab, trainTokens, stories.Version)
	if m, err := data.ReadManifest(dir); err == nil && m.Name == "default" && m.Args == args {
		if _, err := data.Open(dir); err == nil {
			fmt.Fprintf(log, "%s already holds the default stories (%s); delete it to prepare again\n", dir, args)
			return nil
		}
	}
	start := time.Now()
	fmt.Fprintf(log, "preparing synthetic stories in %s: vocab %d, %s train tokens\n", dir, vocab, commas(int64(trainTokens)))
	return build(dir, log, func(tmp string) error {
		// 1. the tokenizer, on the first stories
		t0 := time.Now()
		tr := bpe.NewTrainer()
		sample := min(tokenizerSampleBytes, 5*trainTokens)
		var n, nb int
		for ; nb < sample; n++ {
			s := stories.Story(uint64(n))
			tr.Add([]byte(s))
			nb += len(s)
		}
		tok, bos, err := trainBPE(tr, vocab, tmp)
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "tokenizer: %d tokens, trained on %d stories (%.1f MB) in %.1fs\n",
			tok.VocabSize(), n, float64(nb)/1e6, time.Since(t0).Seconds())
		if tok.VocabSize() < vocab {
			fmt.Fprintf(log, "  (the stories ran out of pairs to merge before %d tokens)\n", vocab)
		}

		// 2. the splits
		story := func(base uint64) func(int) ([]byte, bool) {
			return func(i int) ([]byte, bool) { return []byte(stories.Story(base + uint64(i))), true }
		}
		train := encodeDocs(tok, bos, story(0), int64(trainTokens), progress(log, "train", int64(trainTokens)))
		valTarget := int64(max(trainTokens/10, 20_000))
		val := encodeDocs(tok, bos, story(stories.ValSeedBase), valTarget, progress(log, "val", valTarget))

		m := data.Manifest{
			Name: "default",
			Source: fmt.Sprintf("synthetic children's stories from anelab's data/stories generator: train seeds [0, %d), "+
				"val seeds [2^40, 2^40+%d)", train.docs, val.docs),
			Args:      args,
			Tokenizer: data.TokenizerInfo{Kind: data.KindBPE, File: data.BPEFile},
			VocabSize: tok.VocabSize(),
			BOS:       bos,
		}
		return finishDataset(tmp, dir, &m, train, val, start, log)
	})
}

// trainBPE learns tr's BPE tokenizer of vocab tokens (BOSToken last) and saves it in dir as
// BPEFile; it returns the tokenizer and BOSToken's id.
func trainBPE(tr *bpe.Trainer, vocab int, dir string) (*bpe.Tokenizer, int, error) {
	tok, err := tr.Train(vocab, []string{BOSToken})
	if err != nil {
		return nil, 0, err
	}
	bos, _ := tok.SpecialID(BOSToken)
	if err := tok.Save(filepath.Join(dir, data.BPEFile)); err != nil {
		return nil, 0, err
	}
	return tok, bos, nil
}

// finishDataset writes both shards into tmp, fills in the manifest's split info, seen ids and
// unigram baseline, writes the manifest last and logs the time taken since start. dir is the
// folder tmp will become, for the messages.
func finishDataset(tmp, dir string, m *data.Manifest, train, val split, start time.Time, log io.Writer) error {
	log = orDiscard(log)
	if len(train.tokens) == 0 || len(val.tokens) == 0 {
		return fmt.Errorf("preparing %s: train has %d tokens and val %d; both must be non-empty", dir, len(train.tokens), len(val.tokens))
	}
	m.Format = data.FormatVersion
	for _, s := range []struct {
		file string
		sp   split
		info *data.SplitInfo
	}{{data.TrainFile, train, &m.Train}, {data.ValFile, val, &m.Val}} {
		sum, err := data.WriteShard(filepath.Join(tmp, s.file), s.sp.tokens)
		if err != nil {
			return err
		}
		*s.info = data.SplitInfo{File: s.file, Tokens: int64(len(s.sp.tokens)), Docs: s.sp.docs, TextBytes: s.sp.textBytes,
			BytesPerToken: float64(s.sp.textBytes) / float64(len(s.sp.tokens)), SHA256: sum}
	}
	m.BytesPerToken = m.Val.BytesPerToken
	m.Seen = seenIDs(m.VocabSize, train.tokens, val.tokens)
	m.UnigramBPB = unigramBPB(train.tokens, val.tokens, len(m.Seen), m.VocabSize, val.textBytes)
	if err := data.WriteManifest(tmp, m); err != nil {
		return err
	}
	fmt.Fprintf(log, "wrote %s: train %s tokens (%d docs), val %s tokens (%d docs), %.2f bytes/token, "+
		"%d of %d ids seen, unigram baseline %.3f bits/byte\n", dir, commas(m.Train.Tokens), m.Train.Docs,
		commas(m.Val.Tokens), m.Val.Docs, m.BytesPerToken, len(m.Seen), m.VocabSize, m.UnigramBPB)
	fmt.Fprintf(log, "done in %.1fs\n", time.Since(start).Seconds())
	return nil
}

// unigramBPB is the cross-entropy, in bits per byte, of the val tokens under the train token
// frequencies with add-one smoothing over the nSeen ids in use:
//
//	p(v) = (count_train(v) + 1) / (N_train + nSeen),  bpb = −Σ_{t ∈ val} log2 p(t) / valBytes.
func unigramBPB(train, val []uint16, nSeen, vocab int, valBytes int64) float64 {
	ct := make([]int64, vocab)
	for _, t := range train {
		ct[t]++
	}
	cv := make([]int64, vocab)
	for _, t := range val {
		cv[t]++
	}
	denom := float64(len(train) + nSeen)
	bits := 0.0
	for id, c := range cv {
		if c > 0 {
			bits -= float64(c) * math.Log2(float64(ct[id]+1)/denom)
		}
	}
	return bits / float64(valBytes)
}

// encodeDocs tokenizes documents doc(0), doc(1), … as [bos] + tokens, in parallel blocks, until
// doc says there are no more or at least target tokens are done (target ≤ 0: no limit). The
// result is the same as a sequential pass; it stops right after the document that reaches target.
func encodeDocs(tok *bpe.Tokenizer, bos int, doc func(i int) ([]byte, bool), target int64, report func(tokens, docs int64)) split {
	const block = 256
	workers := par.Threads(0) // data preparation is a step of its own: all cores
	encs := make([]*bpe.Encoder, workers)
	for i := range encs {
		encs[i] = tok.NewEncoder()
	}
	type result struct {
		tokens []uint16
		ends   []int   // token offset after each doc
		bytes  []int64 // text bytes of each doc
		more   bool    // doc did not run out in this block
	}
	var out split
	for next := 0; ; next += workers * block {
		res := make([]result, workers)
		par.Each(workers, workers, func(k, w int) { // block w of this round, on goroutine k
			r := &res[w]
			r.more = true
			var ids []int
			for i := next + w*block; i < next+(w+1)*block; i++ {
				text, ok := doc(i)
				if !ok {
					r.more = false
					return
				}
				ids = append(ids[:0], bos)
				ids = encs[k].Append(ids, text)
				for _, id := range ids {
					r.tokens = append(r.tokens, uint16(id))
				}
				r.ends = append(r.ends, len(r.tokens))
				r.bytes = append(r.bytes, int64(len(text)))
			}
		})
		for _, r := range res {
			prev := 0
			for k, end := range r.ends {
				out.tokens = append(out.tokens, r.tokens[prev:end]...)
				out.docs++
				out.textBytes += r.bytes[k]
				prev = end
				if target > 0 && int64(len(out.tokens)) >= target {
					report(int64(len(out.tokens)), out.docs)
					return out
				}
			}
			if !r.more {
				report(int64(len(out.tokens)), out.docs)
				return out
			}
		}
		report(int64(len(out.tokens)), out.docs)
	}
}

// progress returns a reporter that prints at most about once a second, and always at the end.
func progress(log io.Writer, name string, target int64) func(tokens, docs int64) {
	start := time.Now()
	last := start
	return func(tokens, docs int64) {
		done := target > 0 && tokens >= target
		if now := time.Now(); done || now.Sub(last) >= time.Second {
			last = now
			pct := ""
			if target > 0 {
				pct = fmt.Sprintf(" / %s (%.0f%%)", commas(target), 100*float64(min(tokens, target))/float64(target))
			}
			fmt.Fprintf(log, "  %s: %s tokens%s, %s docs, %.1fs\n", name, commas(tokens), pct, commas(docs), now.Sub(start).Seconds())
		}
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// commas formats 12345678 as "12,345,678".
func commas(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + commas(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// seenIDs lists the ids present in any of the token slices.
func seenIDs(vocab int, splits ...[]uint16) data.IDSet {
	present := make([]bool, vocab)
	for _, s := range splits {
		for _, t := range s {
			present[t] = true
		}
	}
	var ids data.IDSet
	for id, ok := range present {
		if ok {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	return ids
}
