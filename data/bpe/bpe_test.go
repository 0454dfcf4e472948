package bpe

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"Once upon a time", []string{"Once", " upon", " a", " time"}},
		{"Hi, Tom!\" she said.", []string{"Hi", ",", " Tom", "!\"", " she", " said", "."}},
		{"a  b", []string{"a", " ", " b"}},
		{"end.\n\nNext", []string{"end", ".", "\n\n", "Next"}},
		{"x \n y", []string{"x", " \n", " y"}},
		{"don't 42 apples", []string{"don", "'t", " 42", " apples"}},
		{"'quoted'", []string{"'", "quoted", "'"}},
		{"café naïve", []string{"café", " naïve"}},
		{"hi 🙂🙂 ok", []string{"hi", " 🙂🙂", " ok"}},
		{"trailing  ", []string{"trailing", "  "}},
		{"\xff\xfeab", []string{"\xff\xfe", "ab"}},
	} {
		var got []string
		Split([]byte(tc.in), func(p []byte) { got = append(got, string(p)) })
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Split(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestTrainHandWorked checks merges against the textbook example worked by hand.
//
// "aaabdaaabac" is one pre-token. Pair counts: aa 4, ab 2, bd 1, da 1, ba 1, ac 1.
//  1. merge (a,a) → 256: left to right, "aaa" → [256 a], so the word is 256 a b d 256 a b a c.
//     Counts: (256,a) 2, (a,b) 2, others 1. Tie: (97,98) < (256,97), so
//  2. merge (a,b) → 257: 256 257 d 256 257 a c. Counts: (256,257) 2, others 1.
//  3. merge (256,257) → 258: 258 d 258 a c. Every pair now occurs once: stop.
func TestTrainHandWorked(t *testing.T) {
	for _, tc := range []struct {
		name   string
		corpus []string
		vocab  int
		want   [][2]int
		encode string
		ids    []int
	}{
		{"textbook", []string{"aaabdaaabac"}, 1000,
			[][2]int{{'a', 'a'}, {'a', 'b'}, {256, 257}}, "aaabdaaabac", []int{258, 'd', 258, 'a', 'c'}},
		// pieces "ab" ×1, " ab" ×2, " cd" ×1: (a,b) 3 → 256; then (' ',256) 2 → 257; then all 1: stop.
		{"pieces", []string{"ab ab ab cd"}, 1000,
			[][2]int{{'a', 'b'}, {' ', 256}}, "ab ab cd", []int{256, 257, ' ', 'c', 'd'}},
		// the vocab size caps the merges: 256 bytes + 1 merge + 1 special
		{"capped", []string{"aaabdaaabac"}, 258,
			[][2]int{{'a', 'a'}}, "aaab", []int{256, 'a', 'b'}},
		// counts add up across documents: "xy" ×2 beats "ab" ×1 even though "ab" comes first
		{"across docs", []string{"ab", "xy", "xy"}, 1000,
			[][2]int{{'x', 'y'}}, "xyab", []int{256, 'a', 'b'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			special := []string{"<|bos|>"}
			if tc.name != "capped" {
				special = nil
			}
			tok, err := Train(tc.corpus, tc.vocab, special)
			if err != nil {
				t.Fatal(err)
			}
			if got := tok.Merges(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("merges = %v, want %v", got, tc.want)
			}
			if got := tok.Encode(tc.encode); !reflect.DeepEqual(got, tc.ids) {
				t.Errorf("Encode(%q) = %v, want %v", tc.encode, got, tc.ids)
			}
			if want := 256 + len(tc.want) + len(special); tok.VocabSize() != want {
				t.Errorf("VocabSize = %d, want %d", tok.VocabSize(), want)
			}
		})
	}
}

func corpus() []string {
	var docs []string
	words := strings.Fields("the cat sat on a mat and the dog ran to the park where a bird sang happy songs " +
		"Lily and Tom played with their red ball until the sun went down over the quiet little town")
	for i := 0; i < 300; i++ {
		var b strings.Builder
		for j := 0; j < 40; j++ {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[(i*7+j*j+j*i)%len(words)])
			if j%9 == 8 {
				b.WriteString(".")
			}
		}
		docs = append(docs, b.String())
	}
	return docs
}

func TestVocabSizeHonoured(t *testing.T) {
	docs := corpus()
	for _, v := range []int{257, 260, 300, 350} {
		tok, err := Train(docs, v, []string{"<|bos|>"})
		if err != nil {
			t.Fatal(err)
		}
		if tok.VocabSize() != v {
			t.Errorf("vocab %d: got %d", v, tok.VocabSize())
		}
		if id, ok := tok.SpecialID("<|bos|>"); !ok || id != v-1 || !tok.IsSpecial(id) || tok.TokenBytes(id) != nil {
			t.Errorf("vocab %d: special id %d %v", v, id, ok)
		}
	}
	if _, err := Train(docs, 256, []string{"<|bos|>"}); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Errorf("vocab 256 with a special token: err = %v", err)
	}
	if _, err := Train(docs, 70000, nil); err == nil {
		t.Error("vocab 70000: no error")
	}
}

func TestRoundTrip(t *testing.T) {
	tok, err := Train(corpus(), 400, []string{"<|bos|>"})
	if err != nil {
		t.Fatal(err)
	}
	enc := tok.NewEncoder()
	for _, s := range []string{
		"",
		"the cat sat on a mat.",
		"Plain ASCII with  double  spaces,\ttabs\nand newlines\n\n",
		"multi-byte UTF-8: café, naïve, Ærøskøbing, 日本語のテキスト, Ελληνικά",
		"emoji 🙂👍🏽 and 👨‍👩‍👧 families",
		"invalid \xff\xfe\xc3 bytes \x80 and a lone surrogate \xed\xa0\x80",
		"<|bos|> is ordinary text here",
		strings.Repeat("a", 300),
		string([]byte{0, 1, 2, 255, 254}),
	} {
		ids := tok.Encode(s)
		if got := tok.Decode(ids); got != s {
			t.Errorf("round trip %q → %v → %q", s, ids, got)
		}
		if got := enc.Append(nil, []byte(s)); !reflect.DeepEqual(got, ids) && !(len(got) == 0 && len(ids) == 0) {
			t.Errorf("Encoder.Append(%q) = %v, Encode = %v", s, got, ids)
		}
		var cat []byte
		for _, id := range ids {
			cat = append(cat, tok.TokenBytes(id)...)
		}
		if !bytes.Equal(cat, []byte(s)) {
			t.Errorf("TokenBytes do not concatenate to %q", s)
		}
	}
	// merges actually compress the training text
	if n, m := len(tok.Encode(corpus()[0])), len(corpus()[0]); n*2 > m {
		t.Errorf("%d tokens for %d bytes: merges are not being used", n, m)
	}
}

func TestSaveLoad(t *testing.T) {
	tok, err := Train(corpus(), 350, []string{"<|bos|>", "<|eot|>"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := tok.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Merges(), tok.Merges()) || !reflect.DeepEqual(back.Special(), tok.Special()) ||
		back.VocabSize() != tok.VocabSize() {
		t.Fatal("loaded tokenizer differs")
	}
	for id := 0; id < tok.VocabSize(); id++ {
		if !bytes.Equal(back.TokenBytes(id), tok.TokenBytes(id)) {
			t.Fatalf("token %d differs", id)
		}
	}
	s := "the happy bird sang over the town"
	if !reflect.DeepEqual(back.Encode(s), tok.Encode(s)) {
		t.Error("encodings differ after load")
	}

	for _, bad := range []struct{ json, want string }{
		{`{"format":"other"}`, "not an anelab BPE"},
		{`{"format":"anelab-bpe","version":9,"pretokenizer":"anelab-split-v1"}`, "version"},
		{`{"format":"anelab-bpe","version":1,"pretokenizer":"anelab-split-v1","vocab_size":257,"merges":[[300,1]]}`, "does not exist"},
		{`{"format":"anelab-bpe","version":1,"pretokenizer":"anelab-split-v1","vocab_size":999,"merges":[[1,1]]}`, "vocab_size"},
	} {
		if _, err := Read(strings.NewReader(bad.json)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Read(%s): err = %v, want it to mention %q", bad.json, err, bad.want)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("Load of a missing file: no error")
	}
}

func BenchmarkTrain(b *testing.B) {
	docs := corpus()
	for i := 0; i < b.N; i++ {
		if _, err := Train(docs, 1000, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// naiveMerges is the definition of training, recounting every pair after every merge.
func naiveMerges(docs []string, n int) [][2]int {
	counts := map[string]int{}
	for _, d := range docs {
		Split([]byte(d), func(p []byte) { counts[string(p)]++ })
	}
	type word struct {
		syms []int
		f    int
	}
	var words []word
	for k, c := range counts {
		s := make([]int, len(k))
		for i := range k {
			s[i] = int(k[i])
		}
		words = append(words, word{s, c})
	}
	var merges [][2]int
	for len(merges) < n {
		pc := map[[2]int]int{}
		for _, w := range words {
			for i := 0; i+1 < len(w.syms); i++ {
				pc[[2]int{w.syms[i], w.syms[i+1]}] += w.f
			}
		}
		best, bc := [2]int{}, 1
		for p, c := range pc {
			if c > bc || (c == bc && bc > 1 && (p[0] < best[0] || p[0] == best[0] && p[1] < best[1])) {
				best, bc = p, c
			}
		}
		if bc < 2 {
			break
		}
		z := 256 + len(merges)
		merges = append(merges, best)
		for i := range words {
			words[i].syms = mergeAll(words[i].syms, best[0], best[1], z)
		}
	}
	return merges
}

func TestTrainMatchesNaive(t *testing.T) {
	docs := corpus()
	docs = append(docs, "aaaa aaaaa abababab 1234 12 123 xx!! ?? ...", "banana bandana cabana ananas")
	tok, err := Train(docs, 256+120, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := naiveMerges(docs, 120); !reflect.DeepEqual(tok.Merges(), want) {
		t.Fatalf("incremental merges differ from the naive recount:\n got %v\nwant %v", tok.Merges(), want)
	}
}

func TestTrainStopsWhenPairsRunOut(t *testing.T) {
	tok, err := Train([]string{"ab ab"}, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	// (a,b) ×2 → 256; then " "+256 occurs once: stop
	if tok.VocabSize() != 257 {
		t.Errorf("VocabSize = %d, want 257", tok.VocabSize())
	}
}
