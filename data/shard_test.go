package data

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestShardLittleEndian(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.bin")
	toks := []uint16{0x0102, 0, 65535, 7}
	sum, err := WriteShard(path, toks)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if want := []byte{0x02, 0x01, 0, 0, 0xff, 0xff, 7, 0}; !reflect.DeepEqual(raw, want) {
		t.Fatalf("file bytes % x, want % x", raw, want)
	}
	if len(sum) != 64 {
		t.Errorf("checksum %q is not hex SHA-256", sum)
	}
	back, err := ReadShard(path)
	if err != nil || !reflect.DeepEqual(back, toks) {
		t.Fatalf("ReadShard = %v, %v", back, err)
	}
}

func TestIDSetJSON(t *testing.T) {
	for _, tc := range []struct {
		ids  IDSet
		json string
	}{
		{nil, `""`},
		{IDSet{5}, `"5"`},
		{IDSet{0, 1, 2, 3, 7, 9, 10, 11, 12}, `"0-3,7,9-12"`},
		{IDSet{1, 3, 5}, `"1,3,5"`},
	} {
		b, err := json.Marshal(tc.ids)
		if err != nil || string(b) != tc.json {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tc.ids, b, err, tc.json)
		}
		var back IDSet
		if err := json.Unmarshal(b, &back); err != nil || len(back) != len(tc.ids) || (len(back) > 0 && !reflect.DeepEqual(back, tc.ids)) {
			t.Errorf("Unmarshal(%s) = %v, %v", b, back, err)
		}
	}
	for _, bad := range []string{`"3-1"`, `"x"`, `"5,2"`, `7`, `"0-4000000000"`, `"65536"`} {
		var s IDSet
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("Unmarshal(%s): no error", bad)
		}
	}
}

// writeTest writes a dataset with the given splits (tokenizer file absent: Open does not need it),
// as data/prep does: both shards, then the manifest with their checksums and the seen ids.
func writeTest(t testing.TB, train, val []uint16, vocab int) string {
	t.Helper()
	dir := t.TempDir()
	m := Manifest{Format: FormatVersion, Name: "test", Tokenizer: TokenizerInfo{Kind: KindBPE, File: BPEFile},
		VocabSize: vocab, BOS: -1, BytesPerToken: 3} // val: 3 bytes a token, train 2
	present := make([]bool, vocab)
	for _, s := range []struct {
		file string
		toks []uint16
		bpt  float64
		info *SplitInfo
	}{{TrainFile, train, 2, &m.Train}, {ValFile, val, 3, &m.Val}} {
		sum, err := WriteShard(filepath.Join(dir, s.file), s.toks)
		if err != nil {
			t.Fatal(err)
		}
		*s.info = SplitInfo{File: s.file, Tokens: int64(len(s.toks)), Docs: 1, TextBytes: int64(s.bpt) * int64(len(s.toks)),
			BytesPerToken: s.bpt, SHA256: sum}
		for _, id := range s.toks {
			present[id] = true
		}
	}
	for id, ok := range present {
		if ok {
			m.Seen = append(m.Seen, id)
		}
	}
	if err := WriteManifest(dir, &m); err != nil {
		t.Fatal(err)
	}
	return dir
}

func seq16(n int) []uint16 {
	s := make([]uint16, n)
	for i := range s {
		s[i] = uint16(i % 50)
	}
	return s
}

func TestOpen(t *testing.T) {
	dir := writeTest(t, seq16(100), seq16(30), 64)
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d.Train, seq16(100)) || !reflect.DeepEqual(d.Val, seq16(30)) {
		t.Fatal("splits differ from what was written")
	}
	if want := seq16(50); len(d.Seen()) != 50 || d.Seen()[49] != int(want[49]) {
		t.Errorf("Seen = %v", d.Seen())
	}
	m := d.Manifest
	if m.Train.Tokens != 100 || m.Val.Tokens != 30 || m.BytesPerToken != 3 || m.Train.BytesPerToken != 2 {
		t.Errorf("manifest counts: %+v", m)
	}
	// val_bpb = loss/ln2/bytes_per_token: 3·ln2 nats/token over 3 bytes/token is 1 bit/byte
	if got := d.BPB(3 * math.Ln2); math.Abs(got-1) > 1e-12 {
		t.Errorf("BPB = %v, want 1", got)
	}
}

func TestOpenErrors(t *testing.T) {
	corrupt := func(name string, edit func(dir string)) (string, string) {
		dir := writeTest(t, seq16(100), seq16(30), 64)
		edit(dir)
		return name, dir
	}
	for _, tc := range []struct {
		name, dir string
		want      []string
	}{
		{"no manifest", t.TempDir(), []string{"anelab data default", "make run", "manifest.json"}},
	} {
		if _, err := Open(tc.dir); err == nil || !containsAll(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	cases := []struct {
		name, dir string
		want      []string
	}{}
	add := func(name string, edit func(string), want ...string) {
		n, d := corrupt(name, edit)
		cases = append(cases, struct {
			name, dir string
			want      []string
		}{n, d, want})
	}
	add("truncated", func(dir string) { os.Truncate(filepath.Join(dir, TrainFile), 150) },
		"train.bin", "truncated", "150 bytes", "100 tokens")
	add("corrupt", func(dir string) {
		p := filepath.Join(dir, ValFile)
		b, _ := os.ReadFile(p)
		b[3] ^= 1
		os.WriteFile(p, b, 0o644)
	}, "val.bin", "corrupt", "SHA-256")
	add("missing val", func(dir string) { os.Remove(filepath.Join(dir, ValFile)) }, "val.bin", "missing")
	add("id over vocab", func(dir string) {
		m, _ := ReadManifest(dir)
		m.VocabSize, m.Seen = 40, nil
		WriteManifest(dir, m)
	}, "train.bin", "token id 40", "position 40", "vocab size is 40")
	add("old format", func(dir string) {
		m, _ := ReadManifest(dir)
		m.Format = 0
		WriteManifest(dir, m)
	}, "format 0")
	add("bos beyond the vocab", func(dir string) { // issue 10, defect 10: a bos of 99999 trained
		m, _ := ReadManifest(dir)
		m.BOS = 99999
		WriteManifest(dir, m)
	}, "bos 99999", "below vocab_size 64")
	add("bad json", func(dir string) { os.WriteFile(filepath.Join(dir, ManifestFile), []byte("{"), 0o644) }, "manifest.json")
	for _, tc := range cases {
		if _, err := Open(tc.dir); err == nil || !containsAll(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

func containsAll(s string, subs []string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

func TestSampleBatch(t *testing.T) {
	toks := make([]uint16, 50)
	for i := range toks {
		toks[i] = uint16(i)
	}
	const seq, batch = 8, 4
	in, tg := make([]uint16, seq*batch), make([]uint16, seq*batch)
	rng := rand.New(rand.NewPCG(1, 2))
	starts := map[int]int{}
	for it := 0; it < 1000; it++ {
		if err := SampleBatch(toks, seq, batch, rng, in, tg); err != nil {
			t.Fatal(err)
		}
		for b := 0; b < batch; b++ {
			row, trow := in[b*seq:(b+1)*seq], tg[b*seq:(b+1)*seq]
			starts[int(row[0])]++
			for i := range row {
				if row[i] != row[0]+uint16(i) || trow[i] != row[i]+1 {
					t.Fatalf("row %v targets %v: not a window with targets shifted by one", row, trow)
				}
			}
		}
	}
	// every start in [0, 50−8−1] = [0, 41] occurs, none beyond
	if len(starts) != 42 {
		t.Errorf("%d distinct starts, want 42 (0..41)", len(starts))
	}
	for s := range starts {
		if s > 41 {
			t.Errorf("start %d leaves no room for the last target", s)
		}
	}
	// the same seed gives the same batches
	a, b := make([]uint16, seq*batch), make([]uint16, seq*batch)
	SampleBatch(toks, seq, batch, rand.New(rand.NewPCG(7, 7)), a, tg)
	SampleBatch(toks, seq, batch, rand.New(rand.NewPCG(7, 7)), b, tg)
	if !reflect.DeepEqual(a, b) {
		t.Error("same seed, different batches")
	}
	if err := SampleBatch(toks[:8], 8, 1, rng, in, tg); err == nil || !containsAll(err.Error(), []string{"8 tokens", "seq 8", "9"}) {
		t.Errorf("short split: err = %v", err)
	}
	if err := SampleBatch(toks, seq, batch, rng, in[:3], tg); err == nil {
		t.Error("short inputs: no error")
	}
}

func TestDatasetWindows(t *testing.T) {
	d, err := Open(writeTest(t, seq16(100), seq16(30), 64))
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.Windows(rand.New(rand.NewPCG(1, 1)), 16, 2)
	if err != nil {
		t.Fatal(err)
	}
	in, tg := make([]uint16, 32), make([]uint16, 32)
	s.Next(in, tg)
	if _, err := d.Windows(rand.New(rand.NewPCG(1, 1)), 100, 2); err == nil || !containsAll(err.Error(), []string{"train split", "100 tokens", "101"}) {
		t.Errorf("seq = len(train): err = %v", err)
	}
	if _, err := d.ValWindows(30, 4); err == nil || !containsAll(err.Error(), []string{"val split", "30 tokens"}) {
		t.Errorf("seq = len(val): err = %v", err)
	}
}

func TestValWindows(t *testing.T) {
	for _, tc := range []struct {
		n, seq, count int
		want          []int
	}{
		{100, 9, 10, []int{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}}, // last start 90 = 100−9−1
		{20, 4, 3, []int{0, 8, 15}},                                // round(7.5) = 8
		{20, 4, 1, []int{0}},
		{10, 9, 2, []int{0, 0}}, // exactly seq+1 tokens: one possible window
	} {
		got, err := ValWindows(make([]uint16, tc.n), tc.seq, tc.count)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ValWindows(len %d, seq %d, n %d) = %v, %v; want %v", tc.n, tc.seq, tc.count, got, err, tc.want)
		}
	}
	if _, err := ValWindows(make([]uint16, 5), 8, 2); err == nil || !strings.Contains(err.Error(), "val split has 5 tokens") {
		t.Errorf("short val: err = %v", err)
	}
}
