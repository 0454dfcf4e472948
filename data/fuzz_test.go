package data

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

// FuzzOpen: no manifest and shards make Open panic or allocate beyond what they describe (the
// seen-range bound came from here); whatever opens is consistent — every id below the vocab size,
// the splits as long as the manifest says — and can be sampled from.
func FuzzOpen(f *testing.F) {
	dir := writeTest(f, seq16(100), seq16(30), 64)
	seed := map[string][]byte{}
	for _, name := range []string{ManifestFile, TrainFile, ValFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			f.Fatal(err)
		}
		seed[name] = b
	}
	f.Add(seed[ManifestFile], seed[TrainFile], seed[ValFile])
	f.Add(seed[ManifestFile], seed[TrainFile][:10], seed[ValFile])
	f.Add([]byte(`{"format":1,"vocab_size":65536,"bytes_per_token":1,"seen":"0-4000000000"}`), []byte{}, []byte{})
	f.Add([]byte(`{"format":1,"vocab_size":3,"tokenizer":{"kind":"bpe","file":"../x"},"bytes_per_token":1,`+
		`"train":{"file":"train.bin","tokens":1},"val":{"file":"val.bin","tokens":1}}`), []byte{0, 0}, []byte{1, 0})
	f.Add([]byte(`{"format":1,"vocab_size":64,"bos":99999}`), []byte{}, []byte{})
	f.Add([]byte("null"), []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, manifest, train, val []byte) {
		fsys := fstest.MapFS{
			ManifestFile: {Data: manifest},
			TrainFile:    {Data: train},
			ValFile:      {Data: val},
		}
		d, err := open(fsys, "fuzz")
		if err != nil {
			return
		}
		m := d.Manifest
		if int64(len(d.Train)) != m.Train.Tokens || int64(len(d.Val)) != m.Val.Tokens {
			t.Fatalf("opened %d/%d tokens, manifest says %d/%d", len(d.Train), len(d.Val), m.Train.Tokens, m.Val.Tokens)
		}
		for _, s := range [][]uint16{d.Train, d.Val} {
			for _, id := range s {
				if int(id) >= m.VocabSize {
					t.Fatalf("id %d ≥ vocab %d", id, m.VocabSize)
				}
			}
		}
		if m.BOS < -1 || m.BOS >= m.VocabSize || !(m.BytesPerToken > 0) {
			t.Fatalf("bos %d, bytes/token %v accepted", m.BOS, m.BytesPerToken)
		}
		// What opened can be sampled from and written back.
		if seq := min(len(d.Train), len(d.Val)) - 1; seq >= 1 {
			s, err := d.Windows(rand.New(rand.NewPCG(1, 2)), seq, 2)
			if err != nil {
				t.Fatal(err)
			}
			in, tg := make([]uint16, 2*seq), make([]uint16, 2*seq)
			s.Next(in, tg)
			if _, err := d.ValWindows(seq, 3); err != nil {
				t.Fatal(err)
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("an opened manifest does not marshal: %v", err)
		}
		var back Manifest
		if err := json.Unmarshal(b, &back); err != nil || len(back.Seen) != len(m.Seen) {
			t.Fatalf("an opened manifest does not read back (%v): seen %d ids, was %d", err, len(back.Seen), len(m.Seen))
		}
	})
}
