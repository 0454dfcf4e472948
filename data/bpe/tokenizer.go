package bpe

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Tokenizer is a trained byte-level BPE. Token ids: 0..255 are the bytes, 256+i is the result of
// merge i (in the order they were learnt), and the special tokens follow the merges.
// A Tokenizer is read-only after Train or Load and safe for concurrent use; for bulk encoding,
// NewEncoder gives a faster, cached, single-goroutine encoder.
type Tokenizer struct {
	merges  [][2]int
	special []string

	vocab     [][]byte         // id → bytes (special tokens: their name)
	ranks     map[uint64]int32 // pair → merge index
	specialID map[string]int
}

// Bounds on what New accepts. Trained tokens are words and pieces of words (tens of bytes);
// without the bounds, a tokenizer.json whose merges double one token 40 times asked for a 2^41-byte
// token (found by FuzzRead).
const (
	MaxVocab      = 1 << 16  // shards hold uint16 ids
	MaxTokenBytes = 64 << 10 // one token's text
	maxVocabBytes = 64 << 20 // all tokens' text together
)

func pairKey(a, b int) uint64 { return uint64(a)<<32 | uint64(uint32(b)) }

// New builds a tokenizer from its merges (each a pair of existing ids; merge i makes id 256+i)
// and special token names. It checks that every merge refers to ids that exist before it.
func New(merges [][2]int, special []string) (*Tokenizer, error) {
	t := &Tokenizer{
		merges:    append([][2]int(nil), merges...),
		special:   append([]string(nil), special...),
		vocab:     make([][]byte, 0, 256+len(merges)+len(special)),
		ranks:     make(map[uint64]int32, len(merges)),
		specialID: make(map[string]int, len(special)),
	}
	if n := 256 + len(merges) + len(special); n > MaxVocab {
		return nil, fmt.Errorf("bpe: %d merges and %d special tokens make %d tokens, more than %d (token ids are uint16)",
			len(merges), len(special), n, MaxVocab)
	}
	for b := 0; b < 256; b++ {
		t.vocab = append(t.vocab, []byte{byte(b)})
	}
	total := 256
	for i, m := range merges {
		id := 256 + i
		if m[0] < 0 || m[0] >= id || m[1] < 0 || m[1] >= id {
			return nil, fmt.Errorf("bpe: merge %d = %v refers to a token that does not exist yet (ids must be < %d)", i, m, id)
		}
		k := pairKey(m[0], m[1])
		if _, dup := t.ranks[k]; dup {
			return nil, fmt.Errorf("bpe: merge %d = %v appears twice", i, m)
		}
		t.ranks[k] = int32(i)
		n := len(t.vocab[m[0]]) + len(t.vocab[m[1]])
		if n > MaxTokenBytes {
			return nil, fmt.Errorf("bpe: merge %d = %v makes a token of %d bytes, more than %d: not a tokenizer anelab trained "+
				"(merges that keep doubling a token would ask for terabytes)", i, m, n, MaxTokenBytes)
		}
		if total += n; total > maxVocabBytes {
			return nil, fmt.Errorf("bpe: the merges up to %d make tokens of %d bytes in all, more than %d", i, total, maxVocabBytes)
		}
		tok := append(append([]byte(nil), t.vocab[m[0]]...), t.vocab[m[1]]...)
		t.vocab = append(t.vocab, tok)
	}
	for _, s := range special {
		if s == "" {
			return nil, fmt.Errorf("bpe: empty special token name")
		}
		if _, dup := t.specialID[s]; dup {
			return nil, fmt.Errorf("bpe: special token %q appears twice", s)
		}
		t.specialID[s] = len(t.vocab)
		t.vocab = append(t.vocab, []byte(s))
	}
	return t, nil
}

// VocabSize is 256 + merges + special tokens.
func (t *Tokenizer) VocabSize() int { return len(t.vocab) }

// Merges returns the learnt merges in order (merge i made token 256+i).
func (t *Tokenizer) Merges() [][2]int { return append([][2]int(nil), t.merges...) }

// Special returns the special token names in id order.
func (t *Tokenizer) Special() []string { return append([]string(nil), t.special...) }

// SpecialID returns the id of a special token.
func (t *Tokenizer) SpecialID(name string) (int, bool) {
	id, ok := t.specialID[name]
	return id, ok
}

// IsSpecial reports whether id is a special token.
func (t *Tokenizer) IsSpecial(id int) bool { return id >= 256+len(t.merges) && id < len(t.vocab) }

// TokenBytes returns the text bytes that token id stands for. Special tokens stand for no text
// (nil): bits-per-byte counts the bytes of the documents, not of separators. Out-of-range ids give nil.
func (t *Tokenizer) TokenBytes(id int) []byte {
	if id < 0 || id >= len(t.vocab) || t.IsSpecial(id) {
		return nil
	}
	return t.vocab[id]
}

// Encode tokenizes text. Special token names in text are ordinary text (they are never produced
// by Encode); insert special ids yourself.
func (t *Tokenizer) Encode(text string) []int {
	var out []int
	Split([]byte(text), func(p []byte) { out = t.encodePiece(out, p) })
	return out
}

// encodePiece appends the tokens of one pre-token: start from its bytes and repeatedly apply the
// lowest-ranked (earliest learnt) merge present, at every non-overlapping position left to right.
func (t *Tokenizer) encodePiece(out []int, p []byte) []int {
	if len(p) == 1 {
		return append(out, int(p[0]))
	}
	var buf [64]int
	syms := buf[:0]
	for _, b := range p {
		syms = append(syms, int(b))
	}
	for len(syms) > 1 {
		best, bestRank := -1, int32(1<<31-1)
		for i := 0; i+1 < len(syms); i++ {
			if r, ok := t.ranks[pairKey(syms[i], syms[i+1])]; ok && r < bestRank {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		a, b, z := syms[best], syms[best+1], 256+int(bestRank)
		syms = mergeAll(syms, a, b, z)
	}
	return append(out, syms...)
}

// mergeAll replaces every non-overlapping occurrence (left to right) of the pair (a, b) by z, in place.
func mergeAll(syms []int, a, b, z int) []int {
	w := 0
	for r := 0; r < len(syms); {
		if r+1 < len(syms) && syms[r] == a && syms[r+1] == b {
			syms[w] = z
			r += 2
		} else {
			syms[w] = syms[r]
			r++
		}
		w++
	}
	return syms[:w]
}

// Decode concatenates the tokens' bytes. Special tokens are written as their names. Decode of
// Encode(s) is s, byte for byte.
func (t *Tokenizer) Decode(ids []int) string { return string(t.DecodeBytes(nil, ids)) }

// DecodeBytes appends the bytes of ids to dst (special tokens as their names; invalid ids as U+FFFD).
func (t *Tokenizer) DecodeBytes(dst []byte, ids []int) []byte {
	for _, id := range ids {
		if id < 0 || id >= len(t.vocab) {
			dst = append(dst, "\uFFFD"...)
			continue
		}
		dst = append(dst, t.vocab[id]...)
	}
	return dst
}

// Encoder is a cached encoder for bulk work: pre-tokens repeat a lot in natural text, so each is
// encoded once. Not safe for concurrent use; make one per goroutine.
type Encoder struct {
	t     *Tokenizer
	cache map[string][]int
}

// NewEncoder returns an Encoder with an empty cache.
func (t *Tokenizer) NewEncoder() *Encoder {
	return &Encoder{t: t, cache: make(map[string][]int)}
}

const maxCache = 1 << 20

// Append appends the tokens of text to dst.
func (e *Encoder) Append(dst []int, text []byte) []int {
	Split(text, func(p []byte) {
		if ids, ok := e.cache[string(p)]; ok {
			dst = append(dst, ids...)
			return
		}
		n := len(dst)
		dst = e.t.encodePiece(dst, p)
		if len(e.cache) >= maxCache {
			clear(e.cache)
		}
		e.cache[string(p)] = append([]int(nil), dst[n:]...)
	})
	return dst
}

// fileFormat is tokenizer.json.
type fileFormat struct {
	Format       string   `json:"format"`       // "anelab-bpe"
	Version      int      `json:"version"`      // 1
	Pretokenizer string   `json:"pretokenizer"` // "anelab-split-v1" (Split)
	VocabSize    int      `json:"vocab_size"`   // 256 + len(merges) + len(special)
	Special      []string `json:"special"`      // ids after the merges
	Merges       [][2]int `json:"merges"`       // merge i makes id 256+i
}

const (
	formatName   = "anelab-bpe"
	formatVer    = 1
	pretokenizer = "anelab-split-v1"
)

// MarshalJSON writes the tokenizer.json form.
func (t *Tokenizer) MarshalJSON() ([]byte, error) {
	return json.Marshal(fileFormat{formatName, formatVer, pretokenizer, t.VocabSize(), t.special, t.merges})
}

// UnmarshalJSON reads the tokenizer.json form and checks it.
func (t *Tokenizer) UnmarshalJSON(b []byte) error {
	var f fileFormat
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	if f.Format != formatName {
		return fmt.Errorf("not an anelab BPE tokenizer (format %q, want %q)", f.Format, formatName)
	}
	if f.Version != formatVer {
		return fmt.Errorf("tokenizer format version %d, this anelab reads %d", f.Version, formatVer)
	}
	if f.Pretokenizer != pretokenizer {
		return fmt.Errorf("unknown pretokenizer %q (want %q)", f.Pretokenizer, pretokenizer)
	}
	nt, err := New(f.Merges, f.Special)
	if err != nil {
		return err
	}
	if nt.VocabSize() != f.VocabSize {
		return fmt.Errorf("vocab_size is %d but merges and special tokens give %d", f.VocabSize, nt.VocabSize())
	}
	*t = *nt
	return nil
}

// Save writes tokenizer.json to path (atomically: a temporary file, then rename).
func (t *Tokenizer) Save(path string) error {
	b, err := t.MarshalJSON()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Load reads a tokenizer.json written by Save.
func Load(path string) (*Tokenizer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bpe tokenizer: %w", err)
	}
	defer f.Close()
	t, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("bpe tokenizer %s: %w", path, err)
	}
	return t, nil
}

// Read reads the tokenizer.json form from r.
func Read(r io.Reader) (*Tokenizer, error) {
	var t Tokenizer
	if err := json.NewDecoder(r).Decode(&t); err != nil {
		return nil, err
	}
	return &t, nil
}
