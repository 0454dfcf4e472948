package ckpt

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/tensor"
)

// tinyParams is a tiny model's parameter list (the shapes a model package would make).
func tinyParams(m config.Model) []*tensor.Param {
	mk := func(name string, g tensor.Group, shape ...int) *tensor.Param {
		p := &tensor.Param{Name: name, Shape: shape, Group: g}
		p.W, p.G = make([]float32, p.Size()), make([]float32, p.Size())
		for i := range p.W {
			p.W[i] = float32(i%13)*0.25 - 1.5 + float32(len(name))
		}
		return p
	}
	ps := []*tensor.Param{mk("embed", tensor.Embed, m.Vocab, m.Dim)}
	for l := range m.Layers {
		pre := "layers." + string(rune('0'+l)) + "."
		ps = append(ps, mk(pre+"wq", tensor.Matrix, m.Dim, m.Dim), mk(pre+"w1", tensor.Matrix, m.FFN, m.Dim),
			mk(pre+"att_norm", tensor.Norm, m.Dim))
	}
	return append(ps, mk("final_norm", tensor.Norm, m.Dim))
}

func sample() (*Checkpoint, []*tensor.Param) {
	cfg := config.Tiny()
	ps := tinyParams(cfg.Model)
	c := &Checkpoint{
		Config:   cfg,
		Counters: Counters{Step: 123, Micro: 492, Tokens: 15744, Seconds: 61.5},
		RNG:      []byte{1, 2, 3, 0, 255},
		Meta:     map[string]string{"commit": "abc123", "lineage": "main"},
	}
	c.AddParams(ModelPrefix, ps)
	for _, p := range ps {
		m := make([]float32, len(p.W))
		for i := range m {
			m[i] = -p.W[i] / 7
		}
		c.Add(OptimPrefix+p.Name+".m", p.Shape, m)
	}
	c.Add("special", []int{4}, []float32{float32(math.NaN()), float32(math.Inf(-1)), 0, -0.0})
	c.Add("empty", []int{0, 3}, nil)
	return c, ps
}

func saveTemp(t *testing.T, c *Checkpoint) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run.ckpt")
	if err := Save(path, c); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRoundTrip(t *testing.T) {
	c, _ := sample()
	path := saveTemp(t, c)
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Config != c.Config || got.Counters != c.Counters || !bytes.Equal(got.RNG, c.RNG) ||
		len(got.Meta) != 2 || got.Meta["commit"] != "abc123" || got.Path != path {
		t.Errorf("round trip changed the header:\n got %+v %+v %v %v\nwant %+v %+v %v %v",
			got.Config, got.Counters, got.RNG, got.Meta, c.Config, c.Counters, c.RNG, c.Meta)
	}
	if len(got.Tensors) != len(c.Tensors) {
		t.Fatalf("%d tensors back, %d saved", len(got.Tensors), len(c.Tensors))
	}
	for i, w := range c.Tensors {
		g := got.Tensors[i]
		if g.Name != w.Name || !slices.Equal(g.Shape, w.Shape) || len(g.Data) != len(w.Data) {
			t.Fatalf("tensor %d: got %s %v (%d), want %s %v (%d)", i, g.Name, g.Shape, len(g.Data), w.Name, w.Shape, len(w.Data))
		}
		for j := range w.Data { // bit patterns: NaN, −Inf and −0 must survive
			if math.Float32bits(g.Data[j]) != math.Float32bits(w.Data[j]) {
				t.Fatalf("%s[%d] = %v, saved %v", w.Name, j, g.Data[j], w.Data[j])
			}
		}
	}
	// The data starts on a 64-byte boundary and the file is exactly prelude + header + data.
	b, _ := os.ReadFile(path)
	h := int(uint32(b[12]) | uint32(b[13])<<8 | uint32(b[14])<<16 | uint32(b[15])<<24)
	if (preludeLen+h)%dataAlign != 0 {
		t.Errorf("data starts at %d, not a multiple of %d", preludeLen+h, dataAlign)
	}
	if string(b[:8]) != "ANELABCK" {
		t.Errorf("magic %q", b[:8])
	}
	// The optimizer state comes back under its prefix.
	if st := got.WithPrefix(OptimPrefix); len(st) != len(c.WithPrefix(ModelPrefix)) || st[0].Name != "embed.m" {
		t.Errorf("WithPrefix(optim/) = %d tensors, first %q", len(st), st[0].Name)
	}
}

func TestRestore(t *testing.T) {
	c, ps := sample()
	got, err := Load(saveTemp(t, c))
	if err != nil {
		t.Fatal(err)
	}
	fresh := tinyParams(c.Config.Model)
	for _, p := range fresh {
		clear(p.W)
	}
	if err := got.Restore(fresh, ModelPrefix, c.Config.Model); err != nil {
		t.Fatal(err)
	}
	for i := range ps {
		if !slices.Equal(fresh[i].W, ps[i].W) {
			t.Fatalf("%s not restored", ps[i].Name)
		}
	}
}

func TestRestoreMismatch(t *testing.T) {
	c, _ := sample()
	path := saveTemp(t, c)
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := c.Config.Model
	want.FFN = 96   // Tiny has 64
	want.Layers = 3 // Tiny has 2
	model := tinyParams(want)
	before := slices.Clone(model[0].W)
	err = got.Restore(model, ModelPrefix, want)
	if err == nil {
		t.Fatal("Restore into a bigger model: no error")
	}
	msg := err.Error()
	for _, s := range []string{
		path,
		"layers.0.w1: checkpoint shape [64 32], model [96 32] (model.ffn differs: checkpoint 64, config 96)",
		"layers.1.w1: checkpoint shape [64 32], model [96 32]",
		"layers.2.wq: in the model, not in the checkpoint (the configs differ: model.layers 2 → 3, model.ffn 64 → 96)",
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("message lacks %q:\n%s", s, msg)
		}
	}
	if strings.Contains(msg, "layers.0.wq:") || strings.Contains(msg, "embed:") {
		t.Errorf("message names tensors that fit:\n%s", msg)
	}
	if !slices.Equal(model[0].W, before) {
		t.Error("a failed Restore copied tensors")
	}
	// Fewer layers: the checkpoint's extra tensors are named.
	want = c.Config.Model
	want.Layers = 1
	err = got.Restore(tinyParams(want), ModelPrefix, want)
	if err == nil || !strings.Contains(err.Error(), "layers.1.wq: in the checkpoint, not in the model (the configs differ: model.layers 2 → 1)") {
		t.Errorf("Restore into a smaller model: %v", err)
	}
}

func TestCompareModel(t *testing.T) {
	a := config.Tiny().Model
	if err := CompareModel(a, a); err != nil {
		t.Errorf("same model: %v", err)
	}
	b := a
	b.KVHeads = a.Heads // same as 0
	b.Softcap = 10      // not a dimension
	if err := CompareModel(a, b); err != nil {
		t.Errorf("kv_heads 0 vs heads, softcap: %v", err)
	}
	b.Dim, b.Vocab, b.Seq = 64, 128, 32
	err := CompareModel(a, b)
	var m Mismatch
	if !errors.As(err, &m) || len(m) != 3 {
		t.Fatalf("CompareModel = %v, want 3 differences", err)
	}
	want := Mismatch{{Field: "model.dim", Saved: 32, Want: 64}, {Field: "model.seq", Saved: 16, Want: 32},
		{Field: "model.vocab", Saved: 64, Want: 128}}
	if !slices.Equal(m, want) {
		t.Errorf("CompareModel = %v, want %v", m, want)
	}
	if s := err.Error(); !strings.Contains(s, "model.dim: checkpoint 32, config 64") {
		t.Errorf("message %q", s)
	}
}

func TestTruncated(t *testing.T) {
	c, _ := sample()
	path := saveTemp(t, c)
	full, _ := os.ReadFile(path)
	dir := t.TempDir()
	for _, n := range []int{0, 4, 8, 20, 27, 28, 100, len(full) / 2, len(full) - 4, len(full) - 1} {
		p := filepath.Join(dir, "cut.ckpt")
		os.WriteFile(p, full[:n], 0o644)
		_, err := Load(p)
		wantKind, wantText := ErrTruncated, "got "+itoa(n)
		if n == 0 {
			wantKind, wantText = ErrNotCheckpoint, "empty"
		}
		if !errors.Is(err, wantKind) || !strings.Contains(err.Error(), wantText) || !strings.Contains(err.Error(), p) {
			t.Errorf("cut at %d of %d: %v; want %v naming the file and %q", n, len(full), err, wantKind, wantText)
		}
		if n >= preludeLen && !strings.Contains(err.Error(), "expected "+itoa(len(full))+" bytes") {
			t.Errorf("cut at %d: %v; want the expected size %d", n, err, len(full))
		}
	}
	// Trailing bytes are corruption, not truncation.
	p := filepath.Join(dir, "long.ckpt")
	os.WriteFile(p, append(slices.Clone(full), 0, 0), 0o644)
	if _, err := Load(p); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "2 unexpected bytes") {
		t.Errorf("2 trailing bytes: %v", err)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestCorrupt(t *testing.T) {
	c, _ := sample()
	path := saveTemp(t, c)
	full, _ := os.ReadFile(path)
	h := int(uint32(full[12]) | uint32(full[13])<<8)
	data := preludeLen + h
	// Byte offsets of tensor "layers.1.w1" in the data (the tensors are contiguous, in order).
	var off int
	for _, tn := range c.Tensors {
		if tn.Name == ModelPrefix+"layers.1.w1" {
			break
		}
		off += 4 * len(tn.Data)
	}
	dir := t.TempDir()
	for _, cse := range []struct {
		name  string
		edit  func(b []byte)
		kind  error
		texts []string
	}{
		{"flipped data byte", func(b []byte) { b[data+off+5] ^= 0x10 }, ErrCorrupt,
			[]string{"CRC mismatch in 1 tensor(s): model/layers.1.w1"}},
		{"flipped header byte", func(b []byte) { b[preludeLen+10] ^= 1 }, ErrCorrupt, []string{"header CRC mismatch"}},
		{"bad magic", func(b []byte) { copy(b, "GGUFxxxx") }, ErrNotCheckpoint, []string{"not an anelab checkpoint", `"GGUFxxxx"`}},
		{"version 9", func(b []byte) { b[8] = 9 }, ErrVersion, []string{"version 9"}},
		{"data length +4", func(b []byte) { b[16] += 4 }, ErrTruncated, []string{"expected " + itoa(len(full)+4)}},
	} {
		b := slices.Clone(full)
		cse.edit(b)
		p := filepath.Join(dir, "bad.ckpt")
		os.WriteFile(p, b, 0o644)
		_, err := Load(p)
		if !errors.Is(err, cse.kind) {
			t.Errorf("%s: %v, want %v", cse.name, err, cse.kind)
			continue
		}
		for _, s := range append(cse.texts, p) {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q lacks %q", cse.name, err, s)
			}
		}
	}
}

// failAfter passes n bytes through, then fails: a disk that fills up mid-write.
type failAfter struct {
	w io.Writer
	n int
}

func (f *failAfter) Write(b []byte) (int, error) {
	if len(b) > f.n {
		k, _ := f.w.Write(b[:f.n])
		f.n = 0
		return k, errors.New("no space left on device")
	}
	f.n -= len(b)
	return f.w.Write(b)
}

// TestAtomicSave: a Save that fails — midway through the data, before the temp file exists
// (read-only folder), or before writing (bad tensor, NaN counter) — leaves the old checkpoint
// intact and no temp file behind.
func TestAtomicSave(t *testing.T) {
	c, _ := sample()
	path := saveTemp(t, c)
	old, _ := os.ReadFile(path)
	dir := filepath.Dir(path)
	bigger := *c
	bigger.Counters.Step++
	bigger.Add("more", []int{1 << 18}, make([]float32, 1<<18)) // 1 MiB: several buffer flushes

	for _, n := range []int{0, 100, 5000, 1 << 20} {
		err := save(path, &bigger, func(w io.Writer) io.Writer { return &failAfter{w, n} })
		if err == nil || !strings.Contains(err.Error(), "no space left") || !strings.Contains(err.Error(), path) {
			t.Errorf("write failing after %d bytes: %v", n, err)
		}
	}
	bad := *c
	bad.Tensors = append(slices.Clone(c.Tensors), Tensor{Name: "x", Shape: []int{3}, Data: []float32{1}})
	if err := Save(path, &bad); err == nil || !strings.Contains(err.Error(), "tensor x: shape [3] describes 3 elements, data has 1") {
		t.Errorf("Save with a bad tensor: %v", err)
	}
	nan := *c
	nan.Counters.Seconds = math.NaN()
	if err := Save(path, &nan); err == nil || !strings.Contains(err.Error(), "counters must be finite") {
		t.Errorf("Save with NaN seconds: %v", err)
	}
	if os.Getuid() != 0 { // root ignores permissions
		os.Chmod(dir, 0o555)
		err := Save(path, c)
		os.Chmod(dir, 0o755)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Save into a read-only folder: %v", err)
		}
	}
	now, _ := os.ReadFile(path)
	if !bytes.Equal(now, old) {
		t.Error("a failed Save changed the existing checkpoint")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %v after failed saves; want only run.ckpt", names)
	}
	if got, err := Load(path); err != nil || got.Counters.Step != c.Counters.Step {
		t.Errorf("old checkpoint no longer loads as it was: %v", err)
	}
	// A successful Save replaces it.
	if err := Save(path, &bigger); err != nil {
		t.Fatal(err)
	}
	if got, err := Load(path); err != nil || got.Counters.Step != c.Counters.Step+1 {
		t.Errorf("after a good Save: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.ckpt")); err == nil || !strings.Contains(err.Error(), "missing.ckpt") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Load(t.TempDir()); !errors.Is(err, ErrNotCheckpoint) {
		t.Errorf("a folder: %v", err)
	}
}

// FuzzLoad: no input makes decode panic or allocate beyond the input's size; whatever decodes
// re-encodes to a checkpoint that decodes to the same tensors.
func FuzzLoad(f *testing.F) {
	// Seeds stay small (a few KB): the fuzzer mutates and minimizes whole inputs, and with the full
	// sample checkpoint (≈ 240 KB) it spent most of its minute minimizing instead of fuzzing.
	c, _ := sample()
	var few []Tensor
	for _, t := range c.Tensors {
		if len(t.Data) <= 64 {
			few = append(few, t)
		}
	}
	c.Tensors = few
	small := &Checkpoint{Config: config.Tiny(), Meta: map[string]string{"k": "v"}}
	small.Add("a", []int{2, 2}, []float32{1, 2, 3, 4})
	small.Add("b", nil, []float32{5})
	dir := f.TempDir()
	for i, s := range []*Checkpoint{c, small, {}} {
		p := filepath.Join(dir, "seed"+itoa(i))
		if err := Save(p, s); err != nil {
			f.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte("ANELABCK"))
	f.Add([]byte("ANELABCK\x01\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decode(bytes.NewReader(b), int64(len(b)), "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "ckpt: fuzz: ") {
				t.Errorf("error does not name the file: %v", err)
			}
			return
		}
		var again bytes.Buffer
		if err := encode(&again, c); err != nil {
			t.Fatalf("decoded checkpoint does not encode: %v", err)
		}
		c2, err := decode(&again, int64(again.Len()), "again")
		if err != nil || len(c2.Tensors) != len(c.Tensors) {
			t.Fatalf("re-encoded checkpoint: %v", err)
		}
	})
}

// The architecture fields that decide which tensors exist are compared and named; "" act is
// swiglu, and zero_init (init only) is not compared.
func TestCompareModelArch(t *testing.T) {
	a := config.Tiny().Model
	b := a
	b.Act, b.ZeroInit = "", true
	if err := CompareModel(a, b); err != nil {
		t.Errorf("act \"\" vs swiglu, zero_init: %v", err)
	}
	b.Act, b.QKNorm, b.UntiedHead = "relu2", true, true
	err := CompareModel(a, b)
	for _, s := range []string{"model.act: checkpoint swiglu, config relu2", "model.qk_norm: checkpoint false, config true",
		"model.untied_head: checkpoint false, config true"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("CompareModel = %v, want it to say %q", err, s)
		}
	}
	// Restore names the field behind a tensor the checkpoint lacks.
	c, _ := sample()
	want := c.Config.Model
	want.UntiedHead = true
	ps := append(tinyParams(want), &tensor.Param{Name: "head", Shape: []int{want.Vocab, want.Dim},
		W: make([]float32, want.Vocab*want.Dim), G: make([]float32, want.Vocab*want.Dim)})
	err = c.Restore(ps, ModelPrefix, want)
	if err == nil || !strings.Contains(err.Error(), "head: in the model, not in the checkpoint (the configs differ: model.untied_head: checkpoint false, config true)") {
		t.Errorf("Restore with an untied head: %v", err)
	}
}
