package llama2

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// small builds a vocabulary laid out like Llama-2's: unk, BOS, EOS, the 256 byte pieces, then
// a few text pieces whose scores (higher merges first) are chosen by hand.
func small() *Tokenizer {
	pieces := []string{"<unk>", "\n<s>\n", "\n</s>\n"}
	scores := []float32{0, 0, 0}
	for b := 0; b < 256; b++ {
		pieces = append(pieces, fmt.Sprintf("<0x%02X>", b))
		scores = append(scores, 0)
	}
	for _, p := range []struct {
		s     string
		score float32
	}{{" ", -5}, {"a", -6}, {"b", -7}, {"c", -8}, {"é", -9}, {"ab", -1}, {" ab", -2}, {" c", -3}} {
		pieces = append(pieces, p.s)
		scores = append(scores, p.score)
	}
	t, err := New(pieces, scores)
	if err != nil {
		panic(err)
	}
	return t
}

func TestReadWrite(t *testing.T) {
	tok := small()
	var buf bytes.Buffer
	if err := tok.Write(&buf); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	// header: max_token_length = 6 ("<0x00>"), then the first record: score 0, len 5, "<unk>"
	if want := []byte{6, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, '<', 'u', 'n', 'k', '>'}; !bytes.Equal(raw[:17], want) {
		t.Fatalf("file starts % x, want % x", raw[:17], want)
	}
	path := filepath.Join(t.TempDir(), "tokenizer.bin")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Pieces, tok.Pieces) || !reflect.DeepEqual(back.Scores, tok.Scores) || back.VocabSize() != 267 {
		t.Fatal("pieces or scores differ after a round trip")
	}
	for _, n := range []int{2, 9, 14, len(raw) - 1} {
		_, err := Read(bytes.NewReader(raw[:n]))
		if err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
			t.Errorf("file cut at %d bytes: err = %v", n, err)
		}
	}
	if _, err := Read(bytes.NewReader([]byte{0, 0, 0, 0})); err == nil {
		t.Error("max_token_length 0: no error")
	}
}

func TestEncodeDecode(t *testing.T) {
	tok := small()
	id := func(p string) int { return tok.lookup[p] }
	byteID := func(b byte) int { return 3 + int(b) }
	for _, tc := range []struct {
		text string
		want []int
	}{
		{"", nil},
		// " "+a+b+c → merge "ab" (score −1) → " ", "ab", "c" → merge " ab" (−2); " abc" is absent
		{"abc", []int{id(" ab"), id("c")}},
		// " "+c → " c" (−3)
		{"c", []int{id(" c")}},
		// "z" is not a piece: byte fallback; "é" is a piece; "ü" falls back to its two UTF-8 bytes
		{"zéü", []int{id(" "), byteID('z'), id("é"), byteID(0xC3), byteID(0xBC)}},
	} {
		got := tok.Encode(tc.text)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Encode(%q) = %v, want %v", tc.text, got, tc.want)
		}
		if tc.text != "" {
			if dec := tok.Decode(got); dec != " "+tc.text {
				t.Errorf("Decode(Encode(%q)) = %q (with the dummy prefix)", tc.text, dec)
			}
			withBOS := append([]int{BOS}, got...)
			if dec := tok.Decode(withBOS); dec != "\n<s>\n"+tc.text {
				t.Errorf("after BOS, Decode = %q, want the prefix space dropped", dec)
			}
			u := make([]uint16, len(withBOS))
			for i, v := range withBOS {
				u[i] = uint16(v)
			}
			if n := tok.TextBytes(u); n != int64(len(tc.text)) {
				t.Errorf("TextBytes(BOS+Encode(%q)) = %d, want %d", tc.text, n, len(tc.text))
			}
		}
	}
	if tok.TokenBytes(BOS) != nil || tok.TokenBytes(UNK) != nil || !bytes.Equal(tok.TokenBytes(byteID(0x41)), []byte("A")) {
		t.Error("TokenBytes of control or byte tokens is wrong")
	}
}
