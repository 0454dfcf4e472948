package llama2

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
)

// FuzzRead: no tokenizer.bin makes Read panic or allocate beyond its size; what reads writes back
// to a file that reads the same, and encodes and decodes without panicking, giving ids in range.
func FuzzRead(f *testing.F) {
	var b bytes.Buffer
	if err := small().Write(&b); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add(b.Bytes()[:b.Len()/2])
	f.Add([]byte{})
	f.Add(binary.LittleEndian.AppendUint32(nil, 1<<31-1))
	f.Add(append(binary.LittleEndian.AppendUint32(nil, 4), 0, 0, 0xc0, 0x7f, 0xff, 0xff, 0xff, 0x7f)) // NaN score, huge length
	f.Fuzz(func(t *testing.T, in []byte) {
		tok, err := Read(bytes.NewReader(in))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := tok.Write(&out); err != nil {
			t.Fatal(err)
		}
		back, err := Read(&out)
		if err != nil {
			t.Fatalf("a tokenizer that read does not read back: %v", err)
		}
		if !reflect.DeepEqual(back.Pieces, tok.Pieces) || !reflect.DeepEqual(back.Scores, tok.Scores) {
			t.Fatal("read back differently")
		}
		for _, s := range []string{"Once upon a time", "é\x00\xff", ""} {
			ids := tok.Encode(s)
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("Encode(%q) gave id %d of %d", s, id, tok.VocabSize())
				}
			}
			tok.Decode(ids)
			u := make([]uint16, 0, len(ids))
			for _, id := range ids {
				u = append(u, uint16(id))
			}
			if tok.VocabSize() <= 1<<16 {
				tok.TextBytes(u)
			}
		}
	})
}
