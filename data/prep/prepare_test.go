package prep

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anelab/anelab/data"
	"github.com/anelab/anelab/data/bpe"
	"github.com/anelab/anelab/data/stories"
)

// docsOf splits a shard at the BOS token and decodes every document.
func docsOf(t *testing.T, tok data.Tokenizer, toks []uint16, bos int) []string {
	t.Helper()
	if len(toks) == 0 || int(toks[0]) != bos {
		t.Fatalf("split does not start with BOS %d", bos)
	}
	var docs []string
	start := 1
	for i := 1; i <= len(toks); i++ {
		if i == len(toks) || int(toks[i]) == bos {
			docs = append(docs, data.DecodeTokens(tok, toks[start:i]))
			start = i + 1
		}
	}
	return docs
}

func TestPrepareDefault(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "default")
	var log bytes.Buffer
	if err := PrepareDefault(dir, 400, 30_000, &log); err != nil {
		t.Fatal(err)
	}
	d, err := data.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := d.Manifest
	if m.VocabSize != 400 || m.BOS != 399 || m.Tokenizer.Kind != data.KindBPE {
		t.Errorf("manifest: vocab %d, bos %d, tokenizer %v", m.VocabSize, m.BOS, m.Tokenizer)
	}
	if m.Train.Tokens < 30_000 || m.Val.Tokens < 3_000 {
		t.Errorf("train %d tokens (want ≥ 30000), val %d", m.Train.Tokens, m.Val.Tokens)
	}
	tok, err := d.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	if p, err := d.TokenizerFile(); err != nil || filepath.Base(p) != data.BPEFile {
		t.Errorf("TokenizerFile = %q, %v", p, err)
	}
	// every document decodes to exactly the story of its seed, and the byte counts add up
	for _, sp := range []struct {
		toks []uint16
		info data.SplitInfo
		base uint64
	}{{d.Train, m.Train, 0}, {d.Val, m.Val, stories.ValSeedBase}} {
		docs := docsOf(t, tok, sp.toks, m.BOS)
		if int64(len(docs)) != sp.info.Docs {
			t.Fatalf("%d documents, manifest says %d", len(docs), sp.info.Docs)
		}
		var n int64
		for i, doc := range docs {
			if want := stories.Story(sp.base + uint64(i)); doc != want {
				t.Fatalf("document %d decodes to\n%q\nwant the story of seed %d\n%q", i, doc, sp.base+uint64(i), want)
			}
			n += int64(len(doc))
		}
		if n != sp.info.TextBytes {
			t.Errorf("text bytes %d, manifest says %d", n, sp.info.TextBytes)
		}
	}
	if m.UnigramBPB <= 0 || m.UnigramBPB > 8 {
		t.Errorf("unigram_bpb = %v", m.UnigramBPB)
	}
	if !strings.Contains(log.String(), "train:") || !strings.Contains(log.String(), "done in") {
		t.Errorf("no progress in the log:\n%s", log.String())
	}
	// the same arguments give the same files
	dir2 := filepath.Join(t.TempDir(), "again")
	if err := PrepareDefault(dir2, 400, 30_000, nil); err != nil {
		t.Fatal(err)
	}
	m2, _ := data.ReadManifest(dir2)
	if m2.Train.SHA256 != m.Train.SHA256 || m2.Val.SHA256 != m.Val.SHA256 {
		t.Error("PrepareDefault is not deterministic")
	}
	// a rerun with the same arguments keeps the folder
	log.Reset()
	if err := PrepareDefault(dir, 400, 30_000, &log); err != nil || !strings.Contains(log.String(), "already holds") {
		t.Errorf("rerun: err %v, log %q", err, log.String())
	}
	if err := PrepareDefault(dir2, 100, 30_000, nil); err == nil || !strings.Contains(err.Error(), "vocab 100") {
		t.Errorf("vocab 100: err = %v", err)
	}
}

func TestPrepareText(t *testing.T) {
	tmp := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var paras []string
	for i := 0; i < 40; i++ {
		paras = append(paras, stories.Story(uint64(i)))
	}
	a := write("a.txt", strings.Join(paras[:25], "\n\n")+"\n")
	b := write("b.txt", "\n\n"+strings.Join(paras[25:], "\n \n\n")+"\n\n")
	dir := filepath.Join(tmp, "out")
	if err := PrepareText(dir, []string{a, b}, 300, 0.1, nil); err != nil {
		t.Fatal(err)
	}
	d, err := data.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := d.Tokenizer()
	// stories' own paragraphs are documents too; collect all paragraphs and check the partition
	var all []string
	for _, p := range paras {
		all = append(all, strings.Split(p, "\n\n")...)
	}
	train, val := docsOf(t, tok, d.Train, d.Manifest.BOS), docsOf(t, tok, d.Val, d.Manifest.BOS)
	if len(train)+len(val) != len(all) {
		t.Fatalf("%d + %d documents, want %d", len(train), len(val), len(all))
	}
	inTrain := map[string]bool{}
	for _, x := range train {
		inTrain[x] = true
	}
	for _, x := range val {
		if inTrain[x] {
			t.Errorf("document in both splits: %q", x)
		}
	}
	// document i is val when ⌊(i+1)/10⌋ > ⌊i/10⌋: i = 9, 19, 29, …
	if want := len(all) / 10; len(val) != want || val[0] != all[9] {
		t.Errorf("%d val documents (want %d), first %q (want document 9)", len(val), want, val[0])
	}

	for _, tc := range []struct {
		files []string
		want  string
	}{
		{nil, "no text files"},
		{[]string{filepath.Join(tmp, "nope.txt")}, "nope.txt does not exist"},
		{[]string{write("empty.txt", " \n\n\t\n")}, "empty.txt is empty"},
		{[]string{write("one.txt", "just one line")}, "need at least 2"},
	} {
		if err := PrepareText(filepath.Join(tmp, "bad"), tc.files, 300, 0.1, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("files %v: err = %v, want %q", tc.files, err, tc.want)
		}
	}
	if err := PrepareText(filepath.Join(tmp, "bad"), []string{a}, 300, 1.5, nil); err == nil {
		t.Error("val fraction 1.5: no error")
	}
}

func TestSplitDocs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"a\nb\n\nc\n", []string{"a\nb", "c"}},
		{"one\ntwo\nthree\n", []string{"one", "two", "three"}}, // no blank line: by lines
		{"\n\n  only  \n\n", []string{"only"}},
		{"x\r\n\r\ny\r\n", []string{"x", "y"}},
		{"", nil},
	} {
		var got []string
		for _, d := range splitDocs([]byte(tc.in)) {
			got = append(got, string(d))
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("splitDocs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEncodeDocsMatchesSequential(t *testing.T) {
	tok, err := bpe.Train([]string{stories.Story(1), stories.Story(2)}, 300, []string{BOSToken})
	if err != nil {
		t.Fatal(err)
	}
	bos, _ := tok.SpecialID(BOSToken)
	doc := func(i int) ([]byte, bool) { return []byte(stories.Story(uint64(i))), i < 1500 }
	got := encodeDocs(tok, bos, doc, 0, func(int64, int64) {})
	var want []uint16
	for i := 0; i < 1500; i++ {
		want = append(want, uint16(bos))
		for _, id := range tok.Encode(stories.Story(uint64(i))) {
			want = append(want, uint16(id))
		}
	}
	if got.docs != 1500 || len(got.tokens) != len(want) {
		t.Fatalf("%d docs, %d tokens; want 1500, %d", got.docs, len(got.tokens), len(want))
	}
	for i := range want {
		if got.tokens[i] != want[i] {
			t.Fatalf("token %d differs", i)
		}
	}
	// a target stops right after the document that reaches it
	cut := encodeDocs(tok, bos, doc, 1000, func(int64, int64) {})
	if len(cut.tokens) < 1000 || !bytes.Equal(u16bytes(cut.tokens), u16bytes(want[:len(cut.tokens)])) ||
		want[len(cut.tokens)] != uint16(bos) {
		t.Errorf("target 1000: %d tokens, not a whole-document prefix", len(cut.tokens))
	}
}

func u16bytes(s []uint16) []byte {
	b := make([]byte, 2*len(s))
	for i, v := range s {
		b[2*i], b[2*i+1] = byte(v), byte(v>>8)
	}
	return b
}

func TestUnigramBPB(t *testing.T) {
	// train [0 0 1], 2 seen ids: p(0) = 3/5, p(1) = 2/5; val [0 1] over 4 bytes:
	// −(log2 0.6 + log2 0.4)/4
	got := unigramBPB([]uint16{0, 0, 1}, []uint16{0, 1}, 2, 8, 4)
	want := -(math.Log2(0.6) + math.Log2(0.4)) / 4
	if math.Abs(got-want) > 1e-12 {
		t.Errorf("unigramBPB = %v, want %v", got, want)
	}
}
