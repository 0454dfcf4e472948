package ckpt

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
)

const (
	preludeLen = 28 // magic, version, header length, data length, header CRC
	dataAlign  = 64 // the data starts at a multiple of this
	format     = "anelab checkpoint"
	maxHeader  = 1<<32 - 1 // the header length is a uint32
	dtypeF32   = "f32"
)

// header is the JSON between the prelude and the data.
type header struct {
	Format   string            `json:"format"`
	Config   json.RawMessage   `json:"config"`
	Counters Counters          `json:"counters"`
	RNG      []byte            `json:"rng,omitempty"` // base64
	Meta     map[string]string `json:"meta,omitempty"`
	Tensors  []entry           `json:"tensors"`
}

// entry is one row of the tensor table.
type entry struct {
	Name   string `json:"name"`
	DType  string `json:"dtype"`
	Shape  []int  `json:"shape"`
	Offset int64  `json:"offset"` // bytes from the start of the data
	CRC32  uint32 `json:"crc32"`  // IEEE, of the tensor's little-endian bytes
}

// Save writes c to path atomically: a temporary file in the same folder is written, synced and
// renamed over path, so path holds either its old content or all of the new one.
func Save(path string, c *Checkpoint) error { return save(path, c, nil) }

// save is Save; wrap, when set, wraps the file writer (tests make it fail midway).
func save(path string, c *Checkpoint, wrap func(io.Writer) io.Writer) (err error) {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("ckpt: save %s: %s", path, fmt.Sprintf(format, a...))
	}
	head, err := encodeHead(c)
	if err != nil {
		return fail("%v", err)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fail("%v (is the folder there and writable?)", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	var fw io.Writer = f
	if wrap != nil {
		fw = wrap(f)
	}
	w := bufio.NewWriterSize(fw, 1<<20)
	if err := writeBody(w, head, c); err != nil {
		return fail("write: %v", err)
	}
	if err := w.Flush(); err != nil {
		return fail("write: %v", err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail("%v", err)
	}
	if err := f.Sync(); err != nil {
		return fail("sync: %v", err)
	}
	if err := f.Close(); err != nil {
		return fail("close: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail("%v", err)
	}
	syncDir(dir) // best effort: make the rename itself durable
	return nil
}

// encode writes c in the file format to w (no temp file, no sync).
func encode(w io.Writer, c *Checkpoint) error {
	head, err := encodeHead(c)
	if err != nil {
		return err
	}
	return writeBody(w, head, c)
}

// encodeHead checks c and returns the prelude followed by the padded header.
func encodeHead(c *Checkpoint) ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(c.Config)
	if err != nil {
		return nil, fmt.Errorf("config: %v", err)
	}
	h := header{Format: format, Config: cfg, Counters: c.Counters, RNG: c.RNG, Meta: c.Meta}
	var off int64
	for _, t := range c.Tensors {
		h.Tensors = append(h.Tensors, entry{Name: t.Name, DType: dtypeF32, Shape: t.Shape, Offset: off, CRC32: crcF32(t.Data)})
		off += 4 * int64(len(t.Data))
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("header: %v (counters must be finite numbers)", err)
	}
	if pad := (dataAlign - (preludeLen+len(hb))%dataAlign) % dataAlign; pad > 0 {
		hb = append(hb, bytes.Repeat([]byte{' '}, pad)...)
	}
	if len(hb) > maxHeader {
		return nil, fmt.Errorf("header is %d bytes, more than the format's %d", len(hb), maxHeader)
	}
	return append(prelude(uint32(len(hb)), uint64(off), hb), hb...), nil
}

// writeBody writes the prelude and header, then every tensor's data.
func writeBody(w io.Writer, head []byte, c *Checkpoint) error {
	if _, err := w.Write(head); err != nil {
		return err
	}
	var buf []byte
	for _, t := range c.Tensors {
		for lo := 0; lo < len(t.Data); lo += ioChunk {
			buf = leBytes(t.Data[lo:min(lo+ioChunk, len(t.Data))], buf)
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// prelude is the fixed 28-byte start of the file; its CRC covers its first 24 bytes and the header.
func prelude(hlen uint32, dlen uint64, hb []byte) []byte {
	p := make([]byte, preludeLen)
	copy(p, Magic)
	binary.LittleEndian.PutUint32(p[8:], Version)
	binary.LittleEndian.PutUint32(p[12:], hlen)
	binary.LittleEndian.PutUint64(p[16:], dlen)
	crc := crc32.Update(crc32.ChecksumIEEE(p[:24]), crc32.IEEETable, hb)
	binary.LittleEndian.PutUint32(p[24:], crc)
	return p
}

// ioChunk is the number of float32s encoded, checksummed or read at a time.
const ioChunk = 1 << 16

// crcF32 is the CRC-32 (IEEE) of d's little-endian bytes.
func crcF32(d []float32) uint32 {
	var crc uint32
	var buf []byte
	for lo := 0; lo < len(d); lo += ioChunk {
		buf = leBytes(d[lo:min(lo+ioChunk, len(d))], buf)
		crc = crc32.Update(crc, crc32.IEEETable, buf)
	}
	return crc
}

// Load reads the checkpoint at path, checking its magic, version, size, header CRC, tensor table
// and every tensor's CRC. Errors name the file and wrap ErrNotCheckpoint, ErrVersion,
// ErrTruncated or ErrCorrupt.
func Load(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ckpt: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ckpt: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("ckpt: %s: %w (not a regular file)", path, ErrNotCheckpoint)
	}
	c, err := decode(bufio.NewReaderSize(f, 1<<20), st.Size(), path)
	if err != nil {
		return nil, err
	}
	c.Path = path
	return c, nil
}

// decode reads a checkpoint of size bytes from r; name is used in messages. It allocates no more
// than size bytes' worth, whatever the content.
func decode(r io.Reader, size int64, name string) (*Checkpoint, error) {
	bad := func(kind error, format string, a ...any) error {
		return fmt.Errorf("ckpt: %s: %w: %s", name, kind, fmt.Sprintf(format, a...))
	}
	pre := make([]byte, preludeLen)
	n, err := io.ReadFull(r, pre)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("ckpt: %s: %w", name, err)
	}
	got := pre[:min(n, len(Magic))]
	switch {
	case n == 0:
		return nil, bad(ErrNotCheckpoint, "the file is empty")
	case !strings.HasPrefix(Magic, string(got)):
		return nil, bad(ErrNotCheckpoint, "it starts with %q, not %q", got, Magic)
	case n < preludeLen:
		return nil, bad(ErrTruncated, "expected at least %d bytes, got %d", preludeLen, size)
	}
	if v := binary.LittleEndian.Uint32(pre[8:]); v != Version {
		return nil, bad(ErrVersion, "version %d; this build reads version %d (written by another anelab version?)", v, Version)
	}
	hlen := int64(binary.LittleEndian.Uint32(pre[12:]))
	dlen := binary.LittleEndian.Uint64(pre[16:])
	if dlen > uint64(size) || preludeLen+hlen+int64(dlen) > size {
		return nil, bad(ErrTruncated, "expected %d bytes, got %d (was the write interrupted?)",
			uint64(preludeLen+hlen)+dlen, size)
	}
	if want := preludeLen + hlen + int64(dlen); size > want {
		return nil, bad(ErrCorrupt, "expected %d bytes, got %d: %d unexpected bytes after the data", want, size, size-want)
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, bad(ErrTruncated, "reading the %d-byte header: %v", hlen, err)
	}
	if crc := crc32.Update(crc32.ChecksumIEEE(pre[:24]), crc32.IEEETable, hb); crc != binary.LittleEndian.Uint32(pre[24:]) {
		return nil, bad(ErrCorrupt, "header CRC mismatch (stored %08x, computed %08x): the file is damaged",
			binary.LittleEndian.Uint32(pre[24:]), crc)
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, bad(ErrCorrupt, "header: %v", err)
	}
	if h.Format != format {
		return nil, bad(ErrCorrupt, "header format %q, want %q", h.Format, format)
	}
	c := &Checkpoint{Counters: h.Counters, RNG: h.RNG, Meta: h.Meta}
	if len(h.Config) > 0 {
		if err := json.Unmarshal(h.Config, &c.Config); err != nil {
			return nil, bad(ErrCorrupt, "config: %v", err)
		}
	}
	// The table must tile the data exactly: names unique, offsets contiguous, sizes in bounds.
	seen := make(map[string]bool, len(h.Tensors))
	var off int64
	for i, e := range h.Tensors {
		switch {
		case e.Name == "":
			return nil, bad(ErrCorrupt, "tensor %d has no name", i)
		case seen[e.Name]:
			return nil, bad(ErrCorrupt, "tensor %s appears twice", e.Name)
		case e.DType != dtypeF32:
			return nil, bad(ErrCorrupt, "tensor %s: dtype %q, this build reads %q", e.Name, e.DType, dtypeF32)
		case e.Offset != off:
			return nil, bad(ErrCorrupt, "tensor %s: offset %d, expected %d (tensors are contiguous)", e.Name, e.Offset, off)
		}
		seen[e.Name] = true
		n := numel(e.Shape, (int64(dlen)-off)/4)
		if n < 0 {
			return nil, bad(ErrCorrupt, "tensor %s: shape %v does not fit in the %d data bytes left", e.Name, e.Shape, int64(dlen)-off)
		}
		off += 4 * n
	}
	if off != int64(dlen) {
		return nil, bad(ErrCorrupt, "the tensor table covers %d data bytes, the prelude says %d", off, dlen)
	}
	var damaged []string
	for _, e := range h.Tensors {
		n := int(numel(e.Shape, int64(dlen)/4))
		t := Tensor{Name: e.Name, Shape: e.Shape, Data: make([]float32, n)}
		crc, err := readF32(r, t.Data)
		if err != nil {
			return nil, bad(ErrTruncated, "reading tensor %s: %v", e.Name, err)
		}
		if crc != e.CRC32 {
			damaged = append(damaged, fmt.Sprintf("%s (stored %08x, computed %08x)", e.Name, e.CRC32, crc))
		}
		c.Tensors = append(c.Tensors, t)
	}
	if len(damaged) > 0 {
		return nil, bad(ErrCorrupt, "CRC mismatch in %d tensor(s): %s", len(damaged), strings.Join(damaged, ", "))
	}
	return c, nil
}

// readF32 fills d from r's little-endian float32s and returns the CRC-32 (IEEE) of the bytes read.
func readF32(r io.Reader, d []float32) (uint32, error) {
	var crc uint32
	var buf []byte
	for lo := 0; lo < len(d); lo += ioChunk {
		part := d[lo:min(lo+ioChunk, len(d))]
		var err error
		if buf, err = readLE(r, part, buf); err != nil {
			return 0, err
		}
		crc = crc32.Update(crc, crc32.IEEETable, buf)
	}
	return crc, nil
}
