package bpe

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// A tokenizer.json whose merges double one token (merge i = (256+i−1, 256+i−1)) asked New for a
// token of 2^(merges+1) bytes; it is refused with what is wrong, before allocating.
func TestDoublingMergesRefused(t *testing.T) {
	merges := [][2]int{{97, 97}}
	for i := 1; i < 41; i++ {
		merges = append(merges, [2]int{255 + i, 255 + i})
	}
	b, _ := json.Marshal(fileFormat{formatName, formatVer, pretokenizer, 256 + len(merges), nil, merges})
	_, err := Read(bytes.NewReader(b))
	if err == nil || !strings.Contains(err.Error(), "makes a token of 131072 bytes, more than 65536") || !strings.Contains(err.Error(), "merge 16 ") {
		t.Errorf("doubling merges: %v", err)
	}
	// Up to a 64 KiB token it is still a tokenizer.
	b, _ = json.Marshal(fileFormat{formatName, formatVer, pretokenizer, 256 + 16, nil, merges[:16]})
	tok, err := Read(bytes.NewReader(b))
	if err != nil || len(tok.TokenBytes(256+15)) != MaxTokenBytes {
		t.Errorf("a 64 KiB token: %v", err)
	}
	// More ids than uint16 shards hold.
	many := make([][2]int, MaxVocab-256+1)
	for i := range many {
		many[i] = [2]int{i % 256, i / 256}
	}
	if _, err := New(many, nil); err == nil || !strings.Contains(err.Error(), "more than 65536") {
		t.Errorf("%d tokens: %v", 256+len(many), err)
	}
}

// FuzzRead: no tokenizer.json makes Read panic or allocate without bound; whatever reads saves
// and reads back the same, and decodes what it encodes to the same text.
func FuzzRead(f *testing.F) {
	tok, err := Train(corpus(), 300, []string{"<|bos|>"})
	if err != nil {
		f.Fatal(err)
	}
	b, _ := tok.MarshalJSON()
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte(`{"format":"anelab-bpe","version":1,"pretokenizer":"anelab-split-v1","vocab_size":258,"merges":[[97,97],[256,256]]}`))
	f.Add([]byte(`{"format":"anelab-bpe","version":1,"pretokenizer":"anelab-split-v1","vocab_size":257,"special":[""]}`))
	f.Add([]byte(`{"format":"anelab-bpe","version":1,"pretokenizer":"anelab-split-v1","vocab_size":256,"merges":null} x`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := Read(bytes.NewReader(b))
		if err != nil {
			return
		}
		again, err := tok.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Read(bytes.NewReader(again))
		if err != nil {
			t.Fatalf("a tokenizer that read does not read back: %v", err)
		}
		if !reflect.DeepEqual(back.Merges(), tok.Merges()) || !reflect.DeepEqual(back.Special(), tok.Special()) {
			t.Fatal("read back differently")
		}
		for _, s := range []string{"the happy bird sang", "a\x00\xff é 🐦 <|bos|>", ""} {
			ids := tok.Encode(s)
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("Encode(%q) gave id %d of %d", s, id, tok.VocabSize())
				}
			}
			if got := tok.Decode(ids); got != s {
				t.Fatalf("Decode(Encode(%q)) = %q", s, got)
			}
		}
	})
}
