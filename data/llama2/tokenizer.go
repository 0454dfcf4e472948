// Package llama2 reads llama2.c's tokenizer.bin (the Llama-2 32K SentencePiece vocabulary as
// exported by llama2.c's tokenizer.py) and encodes/decodes with it as llama2.c's run.c does. It is
// what decodes the pretokenized TinyStories shards.
//
// File format (little-endian): int32 max_token_length, then for every token id in order:
// float32 score, int32 length, length bytes of the piece. The vocabulary size is not stored;
// it is the number of tokens in the file. In the export, SentencePiece's "▁" is already a space,
// BOS (id 1) is "\n<s>\n", EOS (id 2) "\n</s>\n", and bytes are pieces "<0x00>".."<0xFF>" (ids 3..258).
package llama2

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// Llama-2 control token ids.
const (
	UNK = 0
	BOS = 1
	EOS = 2
)

// Tokenizer is a llama2.c vocabulary: pieces with merge scores.
type Tokenizer struct {
	Pieces         []string
	Scores         []float32
	MaxTokenLength int

	lookup  map[string]int
	byteTok [256]int // id of "<0xHH>", or -1
	isByte  []int16  // id → byte value, or -1
	control []bool   // unk, bos, eos: stand for no text
}

// New builds a Tokenizer from pieces and scores (same length).
func New(pieces []string, scores []float32) (*Tokenizer, error) {
	if len(pieces) != len(scores) {
		return nil, fmt.Errorf("llama2 tokenizer: %d pieces but %d scores", len(pieces), len(scores))
	}
	t := &Tokenizer{Pieces: pieces, Scores: scores, lookup: make(map[string]int, len(pieces)),
		isByte: make([]int16, len(pieces)), control: make([]bool, len(pieces))}
	for i := range t.byteTok {
		t.byteTok[i] = -1
	}
	for id, p := range pieces {
		t.MaxTokenLength = max(t.MaxTokenLength, len(p))
		if _, dup := t.lookup[p]; !dup {
			t.lookup[p] = id
		}
		t.isByte[id] = -1
		if b, ok := parseByte(p); ok {
			t.isByte[id] = int16(b)
			if t.byteTok[b] < 0 {
				t.byteTok[b] = id
			}
		}
		switch p {
		case "<unk>", "<s>", "</s>", "\n<s>\n", "\n</s>\n":
			t.control[id] = true
		}
	}
	return t, nil
}

// parseByte recognises "<0xHH>".
func parseByte(p string) (byte, bool) {
	if len(p) != 6 || !strings.HasPrefix(p, "<0x") || p[5] != '>' {
		return 0, false
	}
	var v byte
	for _, c := range p[3:5] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | byte(c-'0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | byte(c-'A'+10)
		case c >= 'a' && c <= 'f':
			v = v<<4 | byte(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// maxPiece bounds one piece's length when reading, to refuse garbage files early.
const maxPiece = 1 << 16

// Read parses tokenizer.bin.
func Read(r io.Reader) (*Tokenizer, error) {
	br := bufio.NewReader(r)
	var hdr int32
	if err := binary.Read(br, binary.LittleEndian, &hdr); err != nil {
		return nil, fmt.Errorf("reading max_token_length: %w", eofIsUnexpected(err))
	}
	if hdr <= 0 || hdr > maxPiece {
		return nil, fmt.Errorf("max_token_length = %d: not a llama2.c tokenizer.bin", hdr)
	}
	var pieces []string
	var scores []float32
	for id := 0; ; id++ {
		var rec struct {
			Score float32
			Len   int32
		}
		if err := binary.Read(br, binary.LittleEndian, &rec); err != nil {
			if err == io.EOF {
				break // clean end between records
			}
			return nil, fmt.Errorf("token %d: %w", id, eofIsUnexpected(err))
		}
		if rec.Len < 0 || rec.Len > hdr {
			return nil, fmt.Errorf("token %d: length %d outside 0..max_token_length (%d)", id, rec.Len, hdr)
		}
		if math.IsNaN(float64(rec.Score)) {
			return nil, fmt.Errorf("token %d: score is NaN", id)
		}
		b := make([]byte, rec.Len)
		if _, err := io.ReadFull(br, b); err != nil {
			return nil, fmt.Errorf("token %d: %w", id, eofIsUnexpected(err))
		}
		pieces, scores = append(pieces, string(b)), append(scores, rec.Score)
	}
	if len(pieces) == 0 {
		return nil, errors.New("no tokens")
	}
	t, err := New(pieces, scores)
	if err != nil {
		return nil, err
	}
	t.MaxTokenLength = int(hdr)
	return t, nil
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Load reads a tokenizer.bin file.
func Load(path string) (*Tokenizer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("llama2 tokenizer: %w", err)
	}
	defer f.Close()
	t, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("llama2 tokenizer %s: %w (re-download it with `anelab data tinystories`)", path, err)
	}
	return t, nil
}

// Write writes t in the tokenizer.bin format.
func (t *Tokenizer) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	maxLen := t.MaxTokenLength
	for _, p := range t.Pieces {
		maxLen = max(maxLen, len(p))
	}
	binary.Write(bw, binary.LittleEndian, int32(maxLen))
	for i, p := range t.Pieces {
		binary.Write(bw, binary.LittleEndian, t.Scores[i])
		binary.Write(bw, binary.LittleEndian, int32(len(p)))
		bw.WriteString(p)
	}
	return bw.Flush()
}

// VocabSize is the number of pieces.
func (t *Tokenizer) VocabSize() int { return len(t.Pieces) }

// TokenBytes returns the text bytes of token id: the piece, the byte of a "<0xHH>" piece, or nil
// for the control tokens (unk, BOS, EOS) and out-of-range ids. A piece's leading space after BOS
// is SentencePiece's dummy prefix and not text; TextBytes accounts for it.
func (t *Tokenizer) TokenBytes(id int) []byte {
	if id < 0 || id >= len(t.Pieces) || t.control[id] {
		return nil
	}
	if b := t.isByte[id]; b >= 0 {
		return []byte{byte(b)}
	}
	return []byte(t.Pieces[id])
}

// TextBytes is the number of text bytes that ids decode to, as the stories were before
// tokenization: Σ len(TokenBytes), less the dummy-prefix space of the first piece after each BOS.
func (t *Tokenizer) TextBytes(ids []uint16) int64 {
	lens := make([]int64, len(t.Pieces))
	for id := range lens {
		lens[id] = int64(len(t.TokenBytes(id)))
	}
	var n int64
	prev := -1
	for _, u := range ids {
		id := int(u)
		if id < len(lens) {
			n += lens[id]
			if prev == BOS && t.isByte[id] < 0 && strings.HasPrefix(t.Pieces[id], " ") {
				n--
			}
		}
		prev = id
	}
	return n
}

// Decode follows llama2.c's decode: a piece's leading space is dropped right after BOS, "<0xHH>"
// pieces become that byte, and every other piece (control tokens included) is written as is.
func (t *Tokenizer) Decode(ids []int) string {
	var b strings.Builder
	prev := -1
	for _, id := range ids {
		if id < 0 || id >= len(t.Pieces) {
			b.WriteString("\uFFFD")
			prev = id
			continue
		}
		if c := t.isByte[id]; c >= 0 {
			b.WriteByte(byte(c))
		} else {
			p := t.Pieces[id]
			if prev == BOS && strings.HasPrefix(p, " ") {
				p = p[1:]
			}
			b.WriteString(p)
		}
		prev = id
	}
	return b.String()
}

// Encode follows llama2.c's encode (without BOS/EOS): a dummy-prefix space, then one token per
// UTF-8 character (bytes of a character not in the vocabulary become "<0xHH>" tokens), then
// repeatedly merge the adjacent pair whose concatenation is in the vocabulary with the highest score.
func (t *Tokenizer) Encode(text string) []int {
	if text == "" {
		return nil
	}
	var toks []int
	if id, ok := t.lookup[" "]; ok {
		toks = append(toks, id)
	}
	for i := 0; i < len(text); {
		j := i + 1
		for j < len(text) && j-i < 4 && text[j]&0xC0 == 0x80 {
			j++ // continuation bytes of this character
		}
		if id, ok := t.lookup[text[i:j]]; ok {
			toks = append(toks, id)
		} else {
			for k := i; k < j; k++ {
				if id := t.byteTok[text[k]]; id >= 0 {
					toks = append(toks, id)
				} else {
					toks = append(toks, UNK)
				}
			}
		}
		i = j
	}
	for {
		best, bestID, bestScore := -1, -1, float32(-1e10)
		for i := 0; i+1 < len(toks); i++ {
			if id, ok := t.lookup[t.Pieces[toks[i]]+t.Pieces[toks[i+1]]]; ok && t.Scores[id] > bestScore {
				best, bestID, bestScore = i, id, t.Scores[id]
			}
		}
		if best < 0 {
			break
		}
		toks[best] = bestID
		toks = append(toks[:best+1], toks[best+2:]...)
	}
	return toks
}
