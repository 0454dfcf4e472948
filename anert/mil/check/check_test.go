package check

import (
	"fmt"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/chip"
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/mil"
)

func model(dim, heads, kv, ffn, seq int) config.Model {
	m := config.Default().Model
	m.Dim, m.Heads, m.KVHeads, m.FFN, m.Seq = dim, heads, kv, ffn, seq
	return m
}

func find(vs []Violation, id string) *Violation {
	for i := range vs {
		if vs[i].Rule.ID == id {
			return &vs[i]
		}
	}
	return nil
}

func ids(vs []Violation) string {
	var s []string
	for _, v := range vs {
		s = append(s, fmt.Sprintf("%s:%s", v.Rule.Severity, v.Rule.ID))
	}
	return strings.Join(s, " ")
}

// Configs that break one rule each name that rule, its severity and its source.
func TestConfigRules(t *testing.T) {
	cases := []struct {
		name    string
		m       config.Model
		rule    string
		sev     Severity
		source  string
		details string
	}{
		{"GQA", model(256, 4, 2, 768, 256), "gqa", Error, "fiale-plus README", "kv_heads 2"},
		{"head dim 16", model(256, 16, 0, 768, 256), "matmul-inner-32", Error, "imperatormk ANE_TRAINING.md", "contracts over 16"},
		{"ffn 784", model(256, 4, 0, 784, 256), "matmul-inner-32", Error, "imperatormk", "contracts over 784"},
		{"ffn 776", model(256, 4, 0, 776, 256), "hidden-16", Error, "rustane README", "ffn 776"},
		{"dim 320", model(320, 5, 0, 768, 256), "dim-128", Error, "rustane README", "dim 320"},
		{"seq past the SRAM cliff", model(768, 12, 0, 2048, 1024), "sram-32mb", Warning, "Orion paper Table 1", "working set"},
		{"seq 1024 wall", model(768, 12, 0, 2048, 1024), "seq-1024-wall", Warning, "fiale-plus README", "seq 1024"},
		{"seq 8", model(256, 4, 0, 768, 8), "spatial-16", Error, "rustane README", "spatial width 8"},
		{"seq 48", model(256, 4, 0, 768, 48), "softmax-pow2", Warning, "hollance/neural-engine issue #44", "length 48"},
		{"input width", model(256, 4, 0, 8192, 512), "input-width", Error, "rustane issue #13", "input spatial width 25600"},
		{"channels", model(1024, 16, 0, 2048, 1024), "channels-32k", Error, "Orion paper #16", "channels"},
		{"tiny surfaces", model(64, 2, 0, 128, 32), "min-surface", Error, "Orion #4", "bytes"},
		{"dim 5120", model(5120, 40, 0, 13824, 64), "dim-5120", Warning, "rustane README", "dim 5120"},
		{"heads do not divide dim", model(256, 3, 0, 768, 256), "kernel-config", Error, "Config.Validate", "not divisible"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vs := CheckConfig(c.m)
			v := find(vs, c.rule)
			if v == nil {
				t.Fatalf("rule %s not reported; got %s", c.rule, ids(vs))
			}
			if v.Rule.Severity != c.sev || !strings.Contains(v.Rule.Source, c.source) || !strings.Contains(v.Detail, c.details) {
				t.Errorf("got %v", v)
			}
			if s := v.String(); !strings.Contains(s, c.rule) || !strings.Contains(s, "Fix:") || !strings.Contains(s, "Source:") {
				t.Errorf("message %q lacks the rule, fix or source", s)
			}
		})
	}
}

// The architecture options the kernels lack are refused by name; those outside them are not.
func TestArchRule(t *testing.T) {
	m := model(256, 4, 0, 768, 256)
	m.Act, m.QKNorm = "relu2", true
	v := find(CheckConfig(m), "arch-options")
	if v == nil || v.Rule.Severity != Error || !strings.Contains(v.Detail, "model.act = relu2") ||
		!strings.Contains(v.Detail, "model.qk_norm = true") || !strings.Contains(v.Rule.Fix, "CPU backend") {
		t.Fatalf("act relu2 + qk_norm: got %v", v)
	}
	m = model(256, 4, 0, 768, 256)
	m.UntiedHead, m.ZeroInit, m.Act = true, true, "swiglu"
	if vs := CheckConfig(m); len(vs) != 0 {
		t.Errorf("untied head + zero init: %s", Report(vs))
	}
}

// The project's default config, the original's config and a small realistic config.
func TestKnownConfigs(t *testing.T) {
	// Default (dim 256, 4 heads → head dim 64, ffn 768, seq 256): no errors, so the baseline runs on
	// the ANE as it is.
	def := CheckConfig(config.Default().Model)
	t.Logf("default:\n%s", Report(def))
	if e := Errors(def); len(e) != 0 {
		t.Errorf("default config: errors %s", ids(e))
	}
	// The previous default (dim 288, 6 heads → head dim 48): two findings, both errors by the
	// facts: dim 288 is not a multiple of 128 (rustane) and q·kᵀ / dA·vᵀ contract over the head dim
	// 48, not a multiple of 32 (imperatormk). See the report to the lead.
	old := config.Default().Model
	old.Dim, old.Heads = 288, 6
	prev := CheckConfig(old)
	for _, id := range []string{"dim-128", "matmul-inner-32"} {
		if v := find(prev, id); v == nil || v.Rule.Severity != Error {
			t.Errorf("dim 288, 6 heads: want error %s, got %s", id, ids(prev))
		}
	}

	// The original (768/12 heads/2048/seq 512, NoPE as it ran): no errors.
	orig := model(768, 12, 0, 2048, 512)
	orig.Pos = "nope"
	vs := CheckConfig(orig)
	t.Logf("original 768/12/2048/512:\n%s", Report(vs))
	if e := Errors(vs); len(e) != 0 {
		t.Errorf("original config: errors %s", ids(e))
	}
	orig.Pos = "rope"
	if e := Errors(CheckConfig(orig)); len(e) != 0 {
		t.Errorf("original config with RoPE: errors %s", ids(e))
	}

	// dim 256, 4 heads (head dim 64), ffn 768, seq 256: passes every rule, warnings included.
	if vs := CheckConfig(model(256, 4, 0, 768, 256)); len(vs) != 0 {
		t.Errorf("dim 256 config: %s", Report(vs))
	}
}

// prog wraps op lines into a one-kernel program.
func kernel(body string, blobs map[string][]byte) *mil.Kernel {
	src := mil.Header + "    func main<ios18>(tensor<fp16, [1, 64, 1, 512]> x) {\n" + body + "    } -> (z);\n}\n"
	return &mil.Kernel{Name: "k", MIL: src, Blobs: blobs, In: mil.Shape{1, 64, 1, 512}, Out: mil.Shape{1, 64, 1, 512}}
}

func TestProgramRules(t *testing.T) {
	blob := func(i int) string {
		return fmt.Sprintf("        tensor<fp16, [1,1,1,1]> c%d = const()[name=string(\"c%d\"), val=tensor<fp16, [1,1,1,1]>(BLOBFILE(path=string(\"@model_path/weights/c%d.bin\"), offset=uint64(64)))];\n", i, i, i)
	}
	many, manyBlobs := "", map[string][]byte{}
	for i := 0; i < 17; i++ {
		many += blob(i)
		manyBlobs[fmt.Sprintf("@model_path/weights/c%d.bin", i)] = mil.BuildBlob([]float32{1})
	}
	cases := []struct {
		name, body string
		blobs      map[string][]byte
		rule       string
	}{
		{"gelu", `        tensor<fp16, [1,64,1,512]> z = gelu(x=x)[name=string("z")];
`, nil, "unsupported-op"},
		{"inline flag", `        tensor<int32, [4]> s = const()[name=string("s"), val=tensor<int32, [4]>([1,1,64,512])];
        tensor<fp16, [1,1,64,512]> a = reshape(shape=s,x=x)[name=string("a")];
        tensor<fp16, [1,1,64,64]> m = matmul(transpose_x=bool(false),transpose_y=bool(true),x=a,y=a)[name=string("m")];
        tensor<fp16, [1,64,1,512]> z = identity(x=x)[name=string("z")];
`, nil, "matmul-named-flags"},
		{"no name", `        tensor<fp16, [1,64,1,512]> z = identity(x=x);
`, nil, "mil-format"},
		{"blob offset", `        tensor<fp16, [1,1,1,1]> c = const()[name=string("c"), val=tensor<fp16, [1,1,1,1]>(BLOBFILE(path=string("@model_path/weights/c.bin"), offset=uint64(0)))];
        tensor<fp16, [1,64,1,512]> z = mul(x=x,y=c)[name=string("z")];
`, map[string][]byte{"@model_path/weights/c.bin": mil.BuildBlob([]float32{1})}, "blob-format"},
		{"17 blobs", many + `        tensor<fp16, [1,64,1,512]> z = mul(x=x,y=c0)[name=string("z")];
`, manyBlobs, "blob-count"},
		{"const output", `        tensor<fp16, [1,64,1,512]> y = identity(x=x)[name=string("y")];
        fp16 z = const()[name=string("z"), val=fp16(1)];
`, nil, "live-output"},
		{"shape", `        tensor<fp16, [1,64,1,256]> z = identity(x=x)[name=string("z")];
`, nil, "emulator"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vs := CheckProgram(kernel(c.body, c.blobs))
			v := find(vs, c.rule)
			if v == nil {
				t.Fatalf("rule %s not reported; got %s", c.rule, ids(vs))
			}
			if v.Rule.Severity != Error || v.Rule.Source == "" || v.Rule.Fix == "" {
				t.Errorf("rule %s: %+v", c.rule, v.Rule)
			}
		})
	}
	// A clean program has no violations.
	clean := kernel(`        tensor<fp16, [1,64,1,512]> z = identity(x=x)[name=string("z")];
`, nil)
	if vs := CheckProgram(clean); len(vs) != 0 {
		t.Errorf("clean program: %s", Report(vs))
	}
}

func TestRulesHaveSources(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Rules {
		if r.ID == "" || r.Source == "" || r.Fix == "" || r.Symptom == "" || r.Summary == "" || seen[r.ID] {
			t.Errorf("incomplete or duplicate rule %+v", r)
		}
		seen[r.ID] = true
	}
}

// The per-dimension limit depends on the chip family: the original's shape at seq 1024 carries
// 768 + 2·12·1024 = 25344 channels in sdpaBwd1's output and a 32768-long RoPE axis, refused on
// M1/M2 (16384) and accepted from M3 on (65536); CheckConfig, with no chip, is the strictest.
func TestMaxDimByChip(t *testing.T) {
	m := model(768, 12, 0, 2048, 1024)
	for _, c := range []struct {
		chip string
		bad  bool
	}{{"m1", true}, {"m2 max", true}, {"m3", false}, {"m4", false}, {"m5", false}} {
		ch, err := chip.Lookup(c.chip)
		if err != nil {
			t.Fatal(err)
		}
		vs := CheckConfigFor(m, ch)
		v := find(vs, RuleMaxDim.ID)
		if (v != nil) != c.bad {
			t.Errorf("%s: max-dim violation %v, want %t (%s)", c.chip, v, c.bad, ids(vs))
			continue
		}
		if v != nil && (v.Rule.Severity != Error || !strings.Contains(v.Rule.Source, "ANEForge issue #181") ||
			!strings.Contains(Report(vs), "25344") || !strings.Contains(Report(vs), "32768")) {
			t.Errorf("%s: %v", c.chip, Report(vs))
		}
	}
	if find(CheckConfig(m), RuleMaxDim.ID) == nil {
		t.Errorf("CheckConfig (no chip) accepts what m1 refuses")
	}
}

// The default config passes every error rule on every chip family, so `--backend auto` runs it
// on the ANE on any Apple silicon Mac.
func TestDefaultPassesEveryChip(t *testing.T) {
	m := config.Default().Model
	for _, n := range chip.Names() {
		ch, _ := chip.Lookup(n)
		if errs := Errors(CheckConfigFor(m, ch)); len(errs) > 0 {
			t.Errorf("default config on %s: %s", n, Report(errs))
		}
	}
}

// The checker judges the kernels the backend runs: at dim 256, seq 1024 only the fused RoPE kernels
// break the per-dimension limit on M1 (the RoPE axis seq·head_dim/2 = 32768 > 16384) and their
// variants pass, so the config passes with one variant warning per slot naming the broken rule
// and its source, and Gate refuses exactly those two kernels; on M4 everything runs fused. Where
// the variant breaks an error rule too (the original's shape: sdpaBwd2Raw carries 26112 channels),
// the errors stand, and so does the error of sdpaBwd1, which has no variant.
func TestVariantJudged(t *testing.T) {
	m1, _ := chip.Lookup("m1")
	m4, _ := chip.Lookup("m4")
	m := model(256, 4, 0, 768, 1024)
	vs := CheckConfigFor(m, m1)
	if e := Errors(vs); len(e) > 0 {
		t.Fatalf("m1: errors although the variants pass:\n%s", Report(e))
	}
	if got := strings.Join(Variants(vs), " "); got != "sdpaWoFwd=split sdpaBwd2=cpu-rope" {
		t.Errorf("m1: variants %q, want sdpaWoFwd=split sdpaBwd2=cpu-rope\n%s", got, Report(vs))
	}
	for _, v := range vs {
		if v.Rule.ID == RuleVariant.ID && (v.Rule.Severity != Warning || !strings.Contains(v.Detail, "breaks max-dim") ||
			!strings.Contains(v.Detail, "32768 > 16384") || !strings.Contains(v.Detail, "ANEForge issue #181")) {
			t.Errorf("m1: variant warning does not name the rule, the finding and its source: %v", v)
		}
	}
	gate := Gate(m, m1)
	kc := mil.FromModel(m)
	for _, n := range mil.AllNames() {
		k, err := mil.Generate(n, kc)
		if err != nil {
			t.Fatal(err)
		}
		err = gate(k)
		if refused := n == mil.AttnFwd || n == mil.AttnBwd2; (err != nil) != refused {
			t.Errorf("m1 gate on %s: %v, want refused %t", n, err, refused)
		} else if err != nil && !strings.Contains(err.Error(), "breaks max-dim") {
			t.Errorf("m1 gate on %s: %v does not name the rule", n, err)
		}
		if err := Gate(m, m4)(k); err != nil {
			t.Errorf("m4 gate refuses %s: %v", n, err)
		}
	}
	if vs := CheckConfigFor(m, m4); len(Errors(vs)) > 0 || len(Variants(vs)) > 0 {
		t.Errorf("m4: %s", Report(vs))
	}

	orig := CheckConfigFor(model(768, 12, 0, 2048, 1024), m1)
	var broken []string
	for _, v := range Errors(orig) {
		broken = append(broken, v.Kernel)
	}
	if got := strings.Join(broken, " "); got != "sdpaBwd1 sdpaBwd2 sdpaBwd2Raw" {
		t.Errorf("original shape on m1: errors in %q, want sdpaBwd1 sdpaBwd2 sdpaBwd2Raw\n%s", got, Report(orig))
	}
	if got := strings.Join(Variants(orig), " "); got != "sdpaWoFwd=split" {
		t.Errorf("original shape on m1: variants %q, want sdpaWoFwd=split", got)
	}
	if err := CheckKernelFor(mustGen(t, mil.AttnBwd1, mil.FromModel(model(768, 12, 0, 2048, 1024))), m1); err == nil ||
		!strings.Contains(err.Error(), "25344 > 16384") {
		t.Errorf("CheckKernelFor(sdpaBwd1, m1) = %v", err)
	}
}

func mustGen(t *testing.T, name string, c mil.Config) *mil.Kernel {
	t.Helper()
	k, err := mil.Generate(name, c)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
