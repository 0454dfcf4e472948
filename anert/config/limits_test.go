package config

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Issue 10, defect 2: NaN and ±Inf in any float field are refused (a `<= 0` check lets NaN
// through, and the run then failed only when saving its result as JSON).
func TestValidateRefusesNonFiniteFloats(t *testing.T) {
	for _, f := range Default().FloatFields() {
		for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			c := Default()
			setFloat(t, &c, f.Name, bad)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), f.Name+" = ") {
				t.Errorf("%s = %v: err = %v, want it named", f.Name, bad, err)
			}
		}
	}
}

// FloatFields must list every float64 field of Config, so a field added later cannot skip the
// finiteness check.
func TestFloatFieldsCoverEveryFloat(t *testing.T) {
	listed := map[string]bool{}
	for _, f := range Default().FloatFields() {
		listed[f.Name] = true
	}
	var walk func(prefix string, v reflect.Type)
	walk = func(prefix string, v reflect.Type) {
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			name := prefix + strings.Split(f.Tag.Get("json"), ",")[0]
			switch f.Type.Kind() {
			case reflect.Struct:
				walk(name+".", f.Type)
			case reflect.Float64, reflect.Float32:
				if !listed[name] {
					t.Errorf("float field %s is not in FloatFields", name)
				}
			}
		}
	}
	walk("", reflect.TypeOf(Config{}))
}

func TestValidateRanges(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"beta1 = 1", func(c *Config) { c.Optim.Beta1 = 1 }, "optim.beta1 = 1"},
		{"min_lr_frac > 1", func(c *Config) { c.Optim.MinLRFrac = 1.5 }, "optim.min_lr_frac = 1.5"},
		{"negative clip", func(c *Config) { c.Optim.GradClip = -1 }, "optim.grad_clip = -1"},
		{"negative softcap", func(c *Config) { c.Model.Softcap = -1 }, "model.softcap = -1"},
		// Defect 6: sizes bounded, so the parameter count cannot overflow.
		{"ffn 2^62", func(c *Config) { c.Model.FFN = 1 << 62 }, "model.ffn = 4611686018427387904"},
		{"dim 2^20", func(c *Config) { c.Model.Dim = 1 << 20; c.Model.Heads = 1 << 10 }, "model.dim = 1048576"},
		{"threads 100000", func(c *Config) { c.Train.Threads = 100000 }, "train.threads = 100000"},
		{"steps -1", func(c *Config) { c.Train.Steps = -1 }, "train.steps = -1"},
		{"budget -5s", func(c *Config) { c.Train.Budget = Duration(-5e9) }, "train.budget = -5s"},
	}
	for _, tc := range cases {
		c := Default()
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// Within the size limits every derived count stays far from overflowing int64.
func TestSizeLimitsCannotOverflow(t *testing.T) {
	c := Default()
	c.Model = Model{Dim: MaxDim, Layers: MaxLayers, Heads: 2, FFN: MaxFFN, Seq: MaxSeq, Vocab: MaxVocab, Pos: "rope"}
	c.Train.Batch = MaxBatch
	if p := c.Model.Params(); p <= 0 || float64(p) > math.MaxInt64/16 {
		t.Errorf("params at the limits = %d", p)
	}
	if n := c.MemoryNeed(); !(n > 0) || n > math.MaxInt64/4 {
		t.Errorf("memory need at the limits = %g", n)
	}
	// The analytic need of dim 288, 6 layers, 6 heads, FFN 768, seq 256, vocab 4096, batch 4 with
	// Lion is the one `make bench` reported for it (208 MiB).
	c = Default()
	c.Model.Dim, c.Model.Heads, c.Model.FFN, c.Optim.Name = 288, 6, 768, "lion"
	if mib := c.MemoryNeed() / (1 << 20); mib < 200 || mib > 215 {
		t.Errorf("memory need = %.1f MiB, want ≈ 208", mib)
	}
}

// Defect 10: a config file is exactly one JSON object.
func TestLoadStrictJSON(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.json")
	for _, tc := range []struct{ text, want string }{
		{`{"model": {"dim": 128}} garbage`, "after the JSON object"},
		{`{"model": {"dim": 128}}{}`, "after the JSON object"},
		{`null`, "want one JSON object"},
		{``, "want one JSON object"},
		{`[1]`, "want one JSON object"},
	} {
		os.WriteFile(p, []byte(tc.text), 0o644)
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.text, err, tc.want)
		}
	}
	os.WriteFile(p, []byte("  {\"model\": {\"dim\": 128}}\n\n"), 0o644)
	if c, err := Load(p); err != nil || c.Model.Dim != 128 {
		t.Errorf("trailing white space: %v", err)
	}
}

func setFloat(t *testing.T, c *Config, name string, x float64) {
	t.Helper()
	v := reflect.ValueOf(c).Elem()
	for _, part := range strings.Split(name, ".") {
		found := false
		for i := 0; i < v.NumField(); i++ {
			if strings.Split(v.Type().Field(i).Tag.Get("json"), ",")[0] == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			t.Fatalf("no field %s", name)
		}
	}
	v.SetFloat(x)
}
