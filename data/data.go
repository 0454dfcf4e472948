// Package data prepares and serves the token data of anelab runs: flat little-endian uint16 token
// shards (llama2.c's format, so the pretokenized TinyStories files work as they are) with a JSON
// manifest beside them, the tokenizers that made them, and the samplers that cut training and
// validation windows out of them.
//
// A prepared dataset folder holds
//
//	train.bin, val.bin   uint16 token ids, little-endian, no header (train and val come from disjoint documents)
//	manifest.json        tokenizer, vocab size, per-split counts and checksums, bytes per token, seen ids
//	tokenizer.json       the BPE tokenizer (or tokenizer.bin, llama2.c's, for TinyStories)
//
// Open reads and checks such a folder. Writing one is data/prep's work (PrepareDefault: synthetic
// stories, offline; PrepareText: your own text files; DownloadTinyStories: the original's data),
// kept apart so that the trainer, which imports this package, links no network code.
package data

import (
	"fmt"
	"io"

	"github.com/anelab/anelab/data/bpe"
	"github.com/anelab/anelab/data/llama2"
)

// Tokenizer turns text into token ids and back. Both the BPE tokenizer (data/bpe) and
// llama2.c's (data/llama2) implement it.
type Tokenizer interface {
	Encode(text string) []int
	Decode(ids []int) string
	VocabSize() int
	// TokenBytes is the text a token stands for (nil for control/special tokens).
	TokenBytes(id int) []byte
}

var (
	_ Tokenizer = (*bpe.Tokenizer)(nil)
	_ Tokenizer = (*llama2.Tokenizer)(nil)
)

// Tokenizer kinds in the manifest.
const (
	KindBPE    = "bpe"
	KindLlama2 = "llama2"
)

// LoadTokenizer loads a tokenizer file of the given kind.
func LoadTokenizer(kind, path string) (Tokenizer, error) {
	switch kind {
	case KindBPE:
		return bpe.Load(path)
	case KindLlama2:
		return llama2.Load(path)
	}
	return nil, fmt.Errorf("unknown tokenizer kind %q (want %q or %q)", kind, KindBPE, KindLlama2)
}

// DecodeTokens decodes uint16 ids (as they come from a shard or a window).
func DecodeTokens(t Tokenizer, ids []uint16) string {
	v := make([]int, len(ids))
	for i, id := range ids {
		v[i] = int(id)
	}
	return t.Decode(v)
}

// ReadTokenizer reads a tokenizer of the given kind from r (e.g. one embedded in a checkpoint).
func ReadTokenizer(kind string, r io.Reader) (Tokenizer, error) {
	switch kind {
	case KindBPE:
		return bpe.Read(r)
	case KindLlama2:
		return llama2.Read(r)
	}
	return nil, fmt.Errorf("unknown tokenizer kind %q (want %q or %q)", kind, KindBPE, KindLlama2)
}
