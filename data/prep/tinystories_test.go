package prep

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/anelab/anelab/data"
	"github.com/anelab/anelab/data/llama2"
)

// fakeTokenizer is a llama2-layout vocabulary: unk, BOS, EOS, 256 bytes, then " a", "b", " cat".
func fakeTokenizer(t *testing.T) (*llama2.Tokenizer, []byte) {
	pieces := []string{"<unk>", "\n<s>\n", "\n</s>\n"}
	for b := 0; b < 256; b++ {
		pieces = append(pieces, fmt.Sprintf("<0x%02X>", b))
	}
	pieces = append(pieces, " a", "b", " cat")
	tok, err := llama2.New(pieces, make([]float32, len(pieces)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tok.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return tok, buf.Bytes()
}

// fakeArchive is a .tar.gz with a README, data00.bin (in a folder, as in the real archive) and data01.bin.
func fakeArchive(t *testing.T, shard []uint16) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	raw := make([]byte, 2*len(shard))
	for i, v := range shard {
		binary.LittleEndian.PutUint16(raw[2*i:], v)
	}
	for _, f := range []struct {
		name string
		body []byte
	}{{"tok32000/README", []byte("hello")}, {"tok32000/data00.bin", raw}, {"tok32000/data01.bin", make([]byte, 4000)}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.body)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// fakeShard: 50 stories of BOS " a" "b" " cat" (text "ab cat", 6 bytes, 4 tokens each).
func fakeShard() []uint16 {
	var s []uint16
	for i := 0; i < 50; i++ {
		s = append(s, llama2.BOS, 259, 260, 261)
	}
	return s
}

func serve(t *testing.T, files map[string][]byte, hits *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("cut") != "" { // promise everything, send half, then hang up
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.Write(b[:len(b)/2])
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestDownloadTinyStories(t *testing.T) {
	tok, tokBin := fakeTokenizer(t)
	shard := fakeShard()
	var hits atomic.Int32
	srv := serve(t, map[string][]byte{"/ts.tar.gz": fakeArchive(t, shard), "/tokenizer.bin": tokBin}, &hits)
	src := TinyStoriesSource{ArchiveURL: srv.URL + "/ts.tar.gz", TokenizerURL: srv.URL + "/tokenizer.bin"}
	dir := filepath.Join(t.TempDir(), "ts")
	var log bytes.Buffer
	if err := src.Download(dir, &log); err != nil {
		t.Fatal(err)
	}
	d, err := data.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// the original's split: train = first ⌊0.9·200⌋ = 180 tokens
	if len(d.Train) != 180 || len(d.Val) != 20 || d.Train[0] != llama2.BOS || d.Val[19] != shard[199] {
		t.Fatalf("split %d/%d, want 180/20", len(d.Train), len(d.Val))
	}
	m := d.Manifest
	if m.Tokenizer.Kind != data.KindLlama2 || m.VocabSize != tok.VocabSize() || m.BOS != llama2.BOS {
		t.Errorf("manifest tokenizer %v, vocab %d, bos %d", m.Tokenizer, m.VocabSize, m.BOS)
	}
	// 45 train stories of "ab cat" (6 bytes, the dummy-prefix space after BOS is not text)
	if m.Train.Docs != 45 || m.Train.TextBytes != 45*6 || m.Val.TextBytes != 5*6 || m.BytesPerToken != 1.5 {
		t.Errorf("train docs %d, bytes %d; val bytes %d; bytes/token %v", m.Train.Docs, m.Train.TextBytes, m.Val.TextBytes, m.BytesPerToken)
	}
	dt, err := d.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	if got := data.DecodeTokens(dt, d.Train[:8]); got != "\n<s>\nab cat\n<s>\nab cat" {
		t.Errorf("decoded %q", got)
	}
	if got := d.Seen(); len(got) != 4 {
		t.Errorf("seen %v, want the 4 ids used", got)
	}
	if !strings.Contains(log.String(), "extracted data00.bin") || !strings.Contains(log.String(), "MB") {
		t.Errorf("log lacks progress:\n%s", log.String())
	}
	noPart(t, dir)

	// a second call finds the folder prepared and does not download
	before := hits.Load()
	if err := src.Download(dir, nil); err != nil || hits.Load() != before {
		t.Errorf("second download: err %v, %d new requests", err, hits.Load()-before)
	}
}

func TestDownloadTinyStoriesFailures(t *testing.T) {
	_, tokBin := fakeTokenizer(t)
	var hits atomic.Int32
	srv := serve(t, map[string][]byte{
		"/ts.tar.gz":     fakeArchive(t, fakeShard()),
		"/tokenizer.bin": tokBin,
	}, &hits)
	// an archive without data00.bin
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "README", Size: 2, Mode: 0o644, Typeflag: tar.TypeReg})
	tw.Write([]byte("hi"))
	tw.Close()
	zw.Close()
	srv2 := serve(t, map[string][]byte{"/nodata.tar.gz": buf.Bytes(), "/tokenizer.bin": tokBin}, &hits)

	closed := httptest.NewServer(http.NotFoundHandler())
	offline := closed.URL
	closed.Close() // nothing listens there now

	for _, tc := range []struct {
		name string
		src  TinyStoriesSource
		want []string
	}{
		{"offline", TinyStoriesSource{offline + "/ts.tar.gz", offline + "/tokenizer.bin", nil},
			[]string{"cannot reach " + strings.TrimPrefix(offline, "http://"), "needs the internet", "anelab data default"}},
		{"not found", TinyStoriesSource{srv.URL + "/missing.tar.gz", srv.URL + "/tokenizer.bin", nil},
			[]string{"GET " + srv.URL + "/missing.tar.gz", "404"}},
		{"cut off", TinyStoriesSource{srv.URL + "/ts.tar.gz?cut=1", srv.URL + "/tokenizer.bin", nil},
			[]string{"failed after", "ts.tar.gz"}},
		{"tokenizer cut off", TinyStoriesSource{srv.URL + "/ts.tar.gz", srv.URL + "/tokenizer.bin?cut=1", nil},
			[]string{"tokenizer.bin"}},
		{"no data00.bin", TinyStoriesSource{srv2.URL + "/nodata.tar.gz", srv2.URL + "/tokenizer.bin", nil},
			[]string{"has no data00.bin"}},
	} {
		dir := filepath.Join(t.TempDir(), "ts")
		err := tc.src.Download(dir, nil)
		t.Logf("%s: %v", tc.name, err)
		if err == nil || !containsAll(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
		// A failed preparation leaves nothing: no folder, no half-built sibling.
		if left, _ := os.ReadDir(filepath.Dir(dir)); len(left) > 0 {
			t.Errorf("%s: left behind %v", tc.name, left)
		}
	}
}

func noPart(t *testing.T, dir string) {
	t.Helper()
	parts, _ := filepath.Glob(filepath.Join(dir, "*.part"))
	tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp"))
	if len(parts)+len(tmps) > 0 {
		t.Errorf("left behind: %v %v", parts, tmps)
	}
}

func TestTinyStoriesSourceEnv(t *testing.T) {
	t.Setenv(EnvTinyStoriesURL, "http://127.0.0.1:9/a.tar.gz")
	t.Setenv(EnvLlama2TokenizerURL, "")
	s := DefaultTinyStoriesSource()
	if s.ArchiveURL != "http://127.0.0.1:9/a.tar.gz" || s.TokenizerURL != Llama2TokenizerURL {
		t.Errorf("source %+v", s)
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
