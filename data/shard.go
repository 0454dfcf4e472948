package data

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FormatVersion is the manifest format this package writes and reads.
const FormatVersion = 1

// File names in a prepared dataset folder.
const (
	ManifestFile  = "manifest.json"
	TrainFile     = "train.bin"
	ValFile       = "val.bin"
	BPEFile       = "tokenizer.json"
	Llama2TokFile = "tokenizer.bin"
)

// TokenizerInfo names the tokenizer that made the shards.
type TokenizerInfo struct {
	Kind string `json:"kind"` // "bpe" or "llama2"
	File string `json:"file"` // beside the manifest
}

// SplitInfo describes one shard.
type SplitInfo struct {
	File          string  `json:"file"`
	Tokens        int64   `json:"tokens"`     // including the BOS token that starts every document
	Docs          int64   `json:"docs"`       // documents (stories, paragraphs) in it
	TextBytes     int64   `json:"text_bytes"` // UTF-8 bytes of those documents
	BytesPerToken float64 `json:"bytes_per_token"`
	SHA256        string  `json:"sha256"` // hex, of the file
}

// Manifest is manifest.json.
type Manifest struct {
	Format    int           `json:"format"`
	Name      string        `json:"name"`           // "default", "text", "tinystories"
	Source    string        `json:"source"`         // where the text came from, in words
	Args      string        `json:"args,omitempty"` // the preparation's parameters (a rerun with the same ones is skipped)
	Tokenizer TokenizerInfo `json:"tokenizer"`
	VocabSize int           `json:"vocab_size"`
	BOS       int           `json:"bos"` // id that starts every document, -1 if none
	Train     SplitInfo     `json:"train"`
	Val       SplitInfo     `json:"val"`
	// BytesPerToken is the validation split's: val_bpb = val_loss / ln 2 / BytesPerToken.
	BytesPerToken float64 `json:"bytes_per_token"`
	// UnigramBPB is a baseline: the cross-entropy of the validation tokens under the train split's
	// token frequencies (add-one smoothed over the seen ids), in bits per byte.
	UnigramBPB float64 `json:"unigram_bpb"`
	// Seen lists the ids present in train or val, as ranges: "0-3,7,9-12".
	Seen IDSet `json:"seen"`
}

// BPB converts a loss in nats per token into bits per UTF-8 byte of text.
func (m *Manifest) BPB(nats float64) float64 { return nats / math.Ln2 / m.BytesPerToken }

// IDSet is a sorted set of token ids, written in JSON as a compact range string.
type IDSet []int

// maxIDs bounds the ids an IDSet reads: shards hold uint16 ids. Without it a manifest's "0-4000000000"
// asked for a 32 GB list.
const maxIDs = 1 << 16

// MarshalJSON writes "a-b,c,…".
func (s IDSet) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(s[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(s[j]))
		}
		i = j + 1
	}
	return json.Marshal(b.String())
}

// UnmarshalJSON reads the range string.
func (s *IDSet) UnmarshalJSON(data []byte) error {
	var str string
	if err := json.Unmarshal(data, &str); err != nil {
		return fmt.Errorf("seen: %w", err)
	}
	*s = nil
	if str == "" {
		return nil
	}
	for _, part := range strings.Split(str, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return fmt.Errorf("seen: bad id %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return fmt.Errorf("seen: bad range %q", part)
			}
		}
		if a < 0 || b >= maxIDs {
			return fmt.Errorf("seen: %q is outside the token ids 0..%d", part, maxIDs-1)
		}
		if n := len(*s); n > 0 && a <= (*s)[n-1] {
			return fmt.Errorf("seen: ids not ascending at %q", part)
		}
		for v := a; v <= b; v++ {
			*s = append(*s, v)
		}
	}
	return nil
}

// WriteShard writes tokens as little-endian uint16 to path (via a temporary file and rename)
// and returns the file's SHA-256 in hex.
func WriteShard(path string, tokens []uint16) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name()) // after a successful rename this is a no-op
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", err
	}
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(tmp, h), 1<<20)
	var buf [2]byte
	for _, t := range tokens {
		binary.LittleEndian.PutUint16(buf[:], t)
		w.Write(buf[:])
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ReadShard reads a whole shard file.
func ReadShard(path string) ([]uint16, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b)%2 != 0 {
		return nil, fmt.Errorf("%s: %d bytes is not a whole number of uint16 tokens", path, len(b))
	}
	return decodeLE(b), nil
}

func decodeLE(b []byte) []uint16 {
	t := make([]uint16, len(b)/2)
	for i := range t {
		t[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return t
}

// WriteManifest writes manifest.json into dir (atomically).
func WriteManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, ManifestFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadManifest reads dir/manifest.json.
func ReadManifest(dir string) (*Manifest, error) { return readManifest(os.DirFS(dir), dir) }

// readManifest reads manifest.json from fsys, the folder dir (named in errors).
func readManifest(fsys fs.FS, dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	b, err := fs.ReadFile(fsys, ManifestFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no prepared dataset in %s (%s is missing): prepare one with `anelab data default` "+
			"(offline synthetic stories; `make run` does it for you), `anelab data text FILE…` or `anelab data tinystories`",
			dir, ManifestFile)
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w (delete the folder and prepare it again)", path, err)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("%s: format %d, but this anelab reads format %d: prepare the dataset again", path, m.Format, FormatVersion)
	}
	return &m, nil
}

// Dataset is a prepared, checked dataset in memory.
type Dataset struct {
	Dir        string
	Manifest   Manifest
	Train, Val []uint16

	seen []int
	tok  Tokenizer
}

// Open loads dir's manifest and both splits and checks them: every file present, each shard's
// size matches its token count, its SHA-256 matches, and every id is below the vocab size.
func Open(dir string) (*Dataset, error) { return open(os.DirFS(dir), dir) }

// open is Open on the folder fsys (dir names it in errors and becomes Dataset.Dir).
func open(fsys fs.FS, dir string) (*Dataset, error) {
	m, err := readManifest(fsys, dir)
	if err != nil {
		return nil, err
	}
	mpath := filepath.Join(dir, ManifestFile)
	if m.VocabSize <= 0 || m.VocabSize > 1<<16 {
		return nil, fmt.Errorf("%s: vocab_size %d is outside 1..65536", mpath, m.VocabSize)
	}
	if m.Tokenizer.Kind != KindBPE && m.Tokenizer.Kind != KindLlama2 {
		return nil, fmt.Errorf("%s: unknown tokenizer kind %q", mpath, m.Tokenizer.Kind)
	}
	if !(m.BytesPerToken > 0 && m.BytesPerToken <= 1<<20) { // false for NaN
		return nil, fmt.Errorf("%s: bytes_per_token %v must be a finite number > 0", mpath, m.BytesPerToken)
	}
	if m.BOS < -1 || m.BOS >= m.VocabSize {
		return nil, fmt.Errorf("%s: bos %d must be -1 (none) or an id below vocab_size %d: prepare the dataset again", mpath, m.BOS, m.VocabSize)
	}
	for _, f := range []string{m.Tokenizer.File, m.Train.File, m.Val.File} {
		if f != "" && (f != filepath.Base(f) || f == "." || f == "..") {
			return nil, fmt.Errorf("%s: file %q must be a plain name inside the dataset folder", mpath, f)
		}
	}
	d := &Dataset{Dir: dir, Manifest: *m}
	present := make([]bool, m.VocabSize)
	for _, s := range []struct {
		name string
		info SplitInfo
		dst  *[]uint16
	}{{"train", m.Train, &d.Train}, {"val", m.Val, &d.Val}} {
		toks, err := readChecked(fsys, dir, s.name, s.info, m.VocabSize, present)
		if err != nil {
			return nil, err
		}
		*s.dst = toks
	}
	for id, ok := range present {
		if ok {
			d.seen = append(d.seen, id)
		}
	}
	if len(m.Seen) > 0 && !equalInts(m.Seen, d.seen) {
		return nil, fmt.Errorf("%s: the seen ids do not match the shards (%d listed, %d present): prepare the dataset again",
			mpath, len(m.Seen), len(d.seen))
	}
	return d, nil
}

func readChecked(fsys fs.FS, dir, split string, info SplitInfo, vocab int, present []bool) ([]uint16, error) {
	if info.File == "" {
		return nil, fmt.Errorf("%s: the manifest names no %s file", filepath.Join(dir, ManifestFile), split)
	}
	path := filepath.Join(dir, info.File)
	st, err := fs.Stat(fsys, info.File)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s split: %s is missing: prepare the dataset again", split, path)
	}
	if err != nil {
		return nil, err
	}
	if info.Tokens <= 0 {
		return nil, fmt.Errorf("%s split: the manifest says %d tokens: it is empty; prepare the dataset with more text", split, info.Tokens)
	}
	if want := 2 * info.Tokens; st.Size() != want {
		return nil, fmt.Errorf("%s split: %s is %d bytes but the manifest says %d tokens (%d bytes): the file is truncated "+
			"or from another preparation; prepare the dataset again", split, path, st.Size(), info.Tokens, want)
	}
	b, err := fs.ReadFile(fsys, info.File)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != info.SHA256 {
		return nil, fmt.Errorf("%s split: %s is corrupt: SHA-256 %s, manifest says %s; prepare the dataset again",
			split, path, got, info.SHA256)
	}
	toks := decodeLE(b)
	for i, t := range toks {
		if int(t) >= vocab {
			return nil, fmt.Errorf("%s split: %s has token id %d at position %d, but the vocab size is %d", split, path, t, i, vocab)
		}
		present[t] = true
	}
	return toks, nil
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Seen returns the ids present in train or val, ascending (for vocabulary compaction).
func (d *Dataset) Seen() []int { return append([]int(nil), d.seen...) }

// VocabSize is the tokenizer's vocabulary size.
func (d *Dataset) VocabSize() int { return d.Manifest.VocabSize }

// BPB converts a loss in nats per token into bits per byte of validation text.
func (d *Dataset) BPB(nats float64) float64 { return d.Manifest.BPB(nats) }

// TokenizerFile returns the path of the tokenizer file named in the manifest, checking it exists.
func (d *Dataset) TokenizerFile() (string, error) {
	p := filepath.Join(d.Dir, d.Manifest.Tokenizer.File)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("tokenizer of %s: %w", d.Dir, err)
	}
	return p, nil
}

// Tokenizer loads (once) the tokenizer named in the manifest.
func (d *Dataset) Tokenizer() (Tokenizer, error) {
	if d.tok == nil {
		t, err := LoadTokenizer(d.Manifest.Tokenizer.Kind, filepath.Join(d.Dir, d.Manifest.Tokenizer.File))
		if err != nil {
			return nil, err
		}
		if t.VocabSize() > d.Manifest.VocabSize {
			return nil, fmt.Errorf("%s: tokenizer has %d tokens but the manifest says vocab_size %d",
				d.Dir, t.VocabSize(), d.Manifest.VocabSize)
		}
		d.tok = t
	}
	return d.tok, nil
}
