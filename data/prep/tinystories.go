package prep

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/anelab/anelab/data"
	"github.com/anelab/anelab/data/llama2"
)

// Where `anelab data tinystories` downloads from, and the environment variables that override it.
const (
	DefaultTinyStoriesDir = "data/out/tinystories"
	TinyStoriesURL        = "https://huggingface.co/datasets/enio/TinyStories/resolve/main/tok32000/TinyStories_tok32000.tar.gz"
	Llama2TokenizerURL    = "https://github.com/karpathy/llama2.c/raw/master/tokenizer.bin"
	EnvTinyStoriesURL     = "ANELAB_TINYSTORIES_URL"
	EnvLlama2TokenizerURL = "ANELAB_LLAMA2_TOKENIZER_URL"

	tinyStoriesShard = "data00.bin" // the one shard the original trains on
)

// TinyStoriesSource says where to get the pretokenized TinyStories archive and llama2.c's tokenizer.
type TinyStoriesSource struct {
	ArchiveURL   string
	TokenizerURL string
	Client       *http.Client // nil: http.DefaultClient
}

// DefaultTinyStoriesSource is the original's source, unless ANELAB_TINYSTORIES_URL or
// ANELAB_LLAMA2_TOKENIZER_URL say otherwise.
func DefaultTinyStoriesSource() TinyStoriesSource {
	s := TinyStoriesSource{ArchiveURL: TinyStoriesURL, TokenizerURL: Llama2TokenizerURL}
	if u := os.Getenv(EnvTinyStoriesURL); u != "" {
		s.ArchiveURL = u
	}
	if u := os.Getenv(EnvLlama2TokenizerURL); u != "" {
		s.TokenizerURL = u
	}
	return s
}

// DownloadTinyStories prepares the original's data in dir from DefaultTinyStoriesSource.
func DownloadTinyStories(dir string, log io.Writer) error {
	return DefaultTinyStoriesSource().Download(dir, log)
}

// Download prepares the original's data in dir: it streams the pretokenized (Llama-2 32K)
// TinyStories archive, extracts data00.bin only (and stops downloading once it has it), splits it
// as the original does (train = the first ⌊0.9·n⌋ tokens, val = the rest), and fetches llama2.c's
// tokenizer.bin for decoding. Partial files are named *.part and removed on failure. A folder that
// is already prepared is left as it is.
func (s TinyStoriesSource) Download(dir string, log io.Writer) error {
	log = orDiscard(log)
	if d, err := data.Open(dir); err == nil && d.Manifest.Name == "tinystories" {
		fmt.Fprintf(log, "%s already holds TinyStories (%s train tokens); delete it to download again\n", dir, commas(d.Manifest.Train.Tokens))
		return nil
	}
	start := time.Now()
	return build(dir, log, func(tmp string) error {
		tokPath := filepath.Join(tmp, data.Llama2TokFile)
		tok, err := reuseTokenizer(filepath.Join(dir, data.Llama2TokFile), tokPath)
		if err != nil {
			if err := s.fetch(s.TokenizerURL, tokPath, log); err != nil {
				return err
			}
			if tok, err = llama2.Load(tokPath); err != nil {
				return fmt.Errorf("downloaded %s, but: %w", s.TokenizerURL, err)
			}
		}
		part := filepath.Join(tmp, tinyStoriesShard+".part")
		defer os.Remove(part)
		if err := s.extract(s.ArchiveURL, tinyStoriesShard, part, log); err != nil {
			return err
		}
		toks, err := data.ReadShard(part)
		if err != nil {
			return err
		}
		for i, t := range toks {
			if int(t) >= tok.VocabSize() {
				return fmt.Errorf("%s: token id %d at position %d, but llama2.c's tokenizer has %d tokens", tinyStoriesShard, t, i, tok.VocabSize())
			}
		}
		valStart := int(float64(len(toks)) * 0.9)
		train, val := toks[:valStart], toks[valStart:]
		mk := func(t []uint16) split {
			var docs int64
			for _, id := range t {
				if id == llama2.BOS {
					docs++
				}
			}
			return split{tokens: t, docs: docs, textBytes: tok.TextBytes(t)}
		}
		m := data.Manifest{
			Name: "tinystories",
			Source: fmt.Sprintf("TinyStories pretokenized with Llama-2's 32K tokenizer (%s, %s), split 90/10 "+
				"at token %d as the original does", s.ArchiveURL, tinyStoriesShard, valStart),
			Tokenizer: data.TokenizerInfo{Kind: data.KindLlama2, File: data.Llama2TokFile},
			VocabSize: tok.VocabSize(),
			BOS:       llama2.BOS,
		}
		return finishDataset(tmp, dir, &m, mk(train), mk(val), start, log)
	})
}

// reuseTokenizer copies llama2.c's tokenizer from an earlier (perhaps interrupted) download at
// old to dst when it loads, so that preparing again does not download it again.
func reuseTokenizer(old, dst string) (*llama2.Tokenizer, error) {
	b, err := os.ReadFile(old)
	if err != nil {
		return nil, err
	}
	tok, err := llama2.Read(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return tok, os.WriteFile(dst, b, 0o644)
}

// get starts a download, turning a transport failure into the "needs the internet" error.
func (s TinyStoriesSource) get(rawURL string) (*http.Response, error) {
	c := s.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Get(rawURL)
	if err != nil {
		host := rawURL
		if u, perr := url.Parse(rawURL); perr == nil && u.Host != "" {
			host = u.Host
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("cannot reach %s: %v — this command needs the internet; use `anelab data default` for the offline corpus", host, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", rawURL, resp.Status)
	}
	return resp, nil
}

// fetch downloads rawURL to dst (through dst.part).
func (s TinyStoriesSource) fetch(rawURL, dst string, log io.Writer) error {
	resp, err := s.get(rawURL)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	part := dst + ".part"
	f, err := os.Create(part)
	if err != nil {
		return err
	}
	defer os.Remove(part)
	body := newMeter(resp.Body, resp.ContentLength, "downloading "+path.Base(rawURL), log)
	_, err = io.Copy(f, body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download of %s failed after %s bytes: %w", rawURL, commas(body.n), err)
	}
	body.done()
	return os.Rename(part, dst)
}

// extract streams a .tar.gz from rawURL and writes the entry named name (in any folder) to dst.
// It stops reading the archive once the entry is out.
func (s TinyStoriesSource) extract(rawURL, name, dst string, log io.Writer) error {
	resp, err := s.get(rawURL)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body := newMeter(resp.Body, resp.ContentLength, "downloading "+path.Base(rawURL), log)
	fail := func(err error) error {
		return fmt.Errorf("download of %s failed after %s bytes: %w", rawURL, commas(body.n), err)
	}
	zr, err := gzip.NewReader(body)
	if err != nil {
		return fail(err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%s has no %s", rawURL, name)
		}
		if err != nil {
			return fail(err)
		}
		if path.Base(hdr.Name) != name || hdr.Typeflag != tar.TypeReg {
			continue
		}
		f, err := os.Create(dst)
		if err != nil {
			return err
		}
		n, err := io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil && n != hdr.Size {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return fail(err)
		}
		body.done()
		fmt.Fprintf(log, "extracted %s (%.1f MB); the rest of the archive is not needed\n", name, float64(n)/1e6)
		return nil
	}
}

// meter counts bytes read and prints progress about once a second.
type meter struct {
	r           io.Reader
	n, total    int64
	what        string
	log         io.Writer
	start, last time.Time
}

func newMeter(r io.Reader, total int64, what string, log io.Writer) *meter {
	now := time.Now()
	return &meter{r: r, total: total, what: what, log: log, start: now, last: now}
}

func (m *meter) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.n += int64(n)
	if now := time.Now(); now.Sub(m.last) >= time.Second {
		m.last = now
		m.print(now)
	}
	return n, err
}

func (m *meter) done() { m.print(time.Now()) }

func (m *meter) print(now time.Time) {
	rate := float64(m.n) / 1e6 / max(now.Sub(m.start).Seconds(), 1e-3)
	if m.total > 0 {
		fmt.Fprintf(m.log, "  %s: %.1f / %.1f MB (%.0f%%), %.1f MB/s\n", m.what, float64(m.n)/1e6, float64(m.total)/1e6,
			100*float64(m.n)/float64(m.total), rate)
	} else {
		fmt.Fprintf(m.log, "  %s: %.1f MB, %.1f MB/s\n", m.what, float64(m.n)/1e6, rate)
	}
}
