package script

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/kernel/lab"
)

const header = "package experiment\n\nimport \"github.com/anelab/anelab/kernel/lab\"\n\n"

func load(t *testing.T, src string, opt Options) (*Program, error) {
	t.Helper()
	if opt.Timeout == 0 {
		opt.Timeout = 300 * time.Millisecond
	}
	return LoadSource("x.go", []byte(src), opt)
}

func specs(t *testing.T, src string, opt Options) ([]lab.Spec, error) {
	t.Helper()
	p, err := load(t, src, opt)
	if err != nil {
		return nil, err
	}
	return p.Specs()
}

// TestScriptErrors: each way a script can fail gives an *Error of the right kind whose message
// points at the problem. None of them may take the test process down.
func TestScriptErrors(t *testing.T) {
	cases := []struct {
		name, src string
		kind      Kind
		want      []string
	}{
		{"forbidden import", "package experiment\n\nimport (\n\t\"os\"\n\t\"github.com/anelab/anelab/kernel/lab\"\n)\n\n" +
			"func Experiment() lab.Spec { os.Exit(1); return lab.Spec{} }\n",
			KindImport, []string{`x.go:4:2: import "os" is not allowed`, "scripts may import only:", "\n  math\n", LabPath}},
		{"several forbidden imports", "package experiment\n\nimport (\n\t\"os/exec\"\n\t\"unsafe\"\n\t\"github.com/evil/pkg\"\n)\n",
			KindImport, []string{`x.go:4:2: import "os/exec"`, `x.go:5:2: import "unsafe"`, `x.go:6:2: import "github.com/evil/pkg"`}},
		{"syntax error", header + "func Experiment() lab.Spec {\n\treturn lab.Spec{\n}\n",
			KindSyntax, []string{"x.go:7:3: expected '}'"}},
		{"no entry point", header + "func Run() lab.Spec { return lab.Spec{} }\n",
			KindSpec, []string{"neither `func Experiment() lab.Spec` nor `func Sweep() []lab.Spec`"}},
		{"both entry points", header + "func Experiment() lab.Spec { return lab.Spec{} }\n\nfunc Sweep() []lab.Spec { return nil }\n",
			KindSpec, []string{"x.go:7:1: the script defines both Experiment (x.go:5:1) and Sweep (x.go:7:1); keep one"}},
		{"wrong return type", header + "func Experiment() int { return 1 }\n",
			KindSpec, []string{"returned int"}},
		{"type error", header + "func Experiment() lab.Spec { return lab.Spec{Config: 3} }\n",
			KindCompile, []string{"x.go:5:"}},
		{"undefined name", header + "func Experiment() lab.Spec { return lab.Spec{Config: lab.Bestt()} }\n",
			KindCompile, []string{"Bestt"}},
		{"min builtin", header + "func Experiment() lab.Spec { c := lab.Best(); c.Optim.Accum = min(c.Optim.Accum, 2); return lab.Spec{Config: c} }\n",
			KindCompile, []string{"x.go:5:", "builtin min (Go 1.21) is not supported", "math.Min"}},
		{"range over int literal", header + "func Experiment() lab.Spec { for i := range 3 { _ = i }; return lab.Spec{} }\n",
			KindCompile, []string{"x.go:5:", "range over an integer"}},
		{"range over int variable", header + "func Experiment() lab.Spec { n := 3; for i := range n { _ = i }; return lab.Spec{} }\n",
			KindCompile, []string{"for i := 0; i < n; i++"}},
		{"closure captures loop variable", header + "func Sweep() []lab.Spec {\n\tvar s []lab.Spec\n" +
			"\tfor _, lr := range []float64{1, 2} {\n\t\ts = append(s, lab.Spec{LR: func(int, float64) float64 { return lr }})\n\t}\n\treturn s\n}\n",
			KindCompile, []string{"x.go:8:", "captures lr", "helper function"}},
		{"panic in Experiment", header + "func f(x []int) int { return x[3] }\n\nfunc Experiment() lab.Spec { f(nil); return lab.Spec{} }\n",
			KindPanic, []string{"panic while calling Experiment()", "index out of range", "x.go:5:", "x.go:7:"}},
		{"panic at top level", header + "var x = boom()\n\nfunc boom() int { panic(\"no\") }\n\nfunc Experiment() lab.Spec { return lab.Spec{} }\n",
			KindPanic, []string{"panic while evaluating the script's top level: no", "x.go:7:"}},
		{"endless Experiment", header + "func Experiment() lab.Spec { for {} }\n",
			KindTimeout, []string{"calling Experiment() did not finish within 300ms"}},
		{"endless top level", header + "var x = spin()\n\nfunc spin() int { n := 0; for n >= 0 { n = (n + 1) % 7 }; return n }\n\nfunc Experiment() lab.Spec { return lab.Spec{} }\n",
			KindTimeout, []string{"evaluating the script's top level did not finish"}},
		{"unknown run", header + "func Experiment() lab.Spec { return lab.Spec{Config: lab.FromRun(\"r1\")} }\n",
			KindPanic, []string{`lab.FromRun("r1"): no such run`}},
		{"host plumbing hidden", header + "func Experiment() lab.Spec { lab.SetLookup(lab.Lookup{}); return lab.Spec{} }\n",
			KindCompile, []string{"SetLookup"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if raceEnabled && c.name == "endless top level" {
				t.Skip("yaegi's ExecuteWithContext races with itself on a timeout (see race_on_test.go)")
			}
			start := time.Now()
			_, err := specs(t, c.src, Options{})
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("err %v (%T), want *Error", err, err)
			}
			if se.Kind != c.kind {
				t.Errorf("kind %s, want %s: %v", se.Kind, c.kind, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q:\n%v", w, err)
				}
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
		})
	}
}

// TestAllowedImports: every allow-listed package is importable and usable.
func TestAllowedImports(t *testing.T) {
	src := `package experiment

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/kernel/lab"
)

func Experiment() lab.Spec {
	var c config.Config = lab.Best()
	xs := []float64{3, 1, 2}
	sort.Float64s(xs)
	_ = errors.New("x")
	_ = rand.New(rand.NewSource(1)).Intn(3)
	n, _ := strconv.Atoi("4")
	c.Optim.Accum = n
	c.Optim.LR = math.Sqrt(xs[0] * 1e-8) // 1e-4
	c.Train.Budget = config.Duration(90 * time.Second)
	d := strings.ToUpper(fmt.Sprintf("lr %g", c.Optim.LR))
	_ = unicode.IsUpper('A') && utf8.RuneLen('é') == 2
	fmt.Println("built", d)
	return lab.Spec{Description: d, Config: c}
}
`
	var out strings.Builder
	ss, err := specs(t, src, Options{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	c := ss[0].Config
	if c.Optim.Accum != 4 || c.Optim.LR != 1e-4 || c.Train.Budget != config.Duration(90*time.Second) || ss[0].Description != "LR 0.0001" {
		t.Errorf("config %+v, description %q", c.Optim, ss[0].Description)
	}
	if out.String() != "built LR 0.0001\n" {
		t.Errorf("script output %q went elsewhere", out.String())
	}
}

// TestLookups: lab.Best, lab.BestOf and lab.FromRun answer from the host's functions, bound per
// program; with no ledger Best is the baseline.
func TestLookups(t *testing.T) {
	src := header + `func Sweep() []lab.Spec {
	return []lab.Spec{{Config: lab.Best()}, {Config: lab.BestOf("b")}, {Config: lab.BestOf("none")}, {Config: lab.FromRun("r7")}}
}
`
	withLR := func(lr float64) config.Config { c := config.Default(); c.Optim.LR = lr; return c }
	opt := Options{Lineage: "a",
		BestOf: func(l string) (config.Config, bool) {
			switch l {
			case "a":
				return withLR(1), true
			case "b":
				return withLR(2), true
			}
			return config.Config{}, false
		},
		FromRun: func(id string) (config.Config, bool) { return withLR(7), id == "r7" },
	}
	ss, err := specs(t, src, opt)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, 2, config.Default().Optim.LR, 7}
	for i, w := range want {
		if ss[i].Config.Optim.LR != w {
			t.Errorf("spec %d: lr %g, want %g", i, ss[i].Config.Optim.LR, w)
		}
	}
	// Without a ledger, Best() is the baseline.
	ss, err = specs(t, header+"func Experiment() lab.Spec { return lab.Spec{Config: lab.Best()} }\n", Options{})
	if err != nil || ss[0].Config != lab.Baseline() {
		t.Errorf("Best() without a ledger: %v %+v", err, ss)
	} // Without a ledger, FromRun ends the script with a message naming the call (TestScriptsRun
	// recognises it and leaves such scripts to `anelab vet --lab`).
	_, err = specs(t, header+"func Experiment() lab.Spec { return lab.Spec{Config: lab.FromRun(\"r9\")} }\n", Options{})
	if err == nil || !strings.Contains(err.Error(), `lab.FromRun("r9"): no such run`) {
		t.Errorf("FromRun without a ledger: %v", err)
	}
}

// TestHooks: hooks run from compiled code, keep their closure state, and see events.
func TestHooks(t *testing.T) {
	src := header + `func Experiment() lab.Spec {
	calls := 0
	last := 0.0
	return lab.Spec{Config: lab.Best(),
		LR: func(step int, s float64) float64 { calls++; return s * float64(step+1) + last },
		OnStep: func(e lab.Event) { last = e.Loss },
	}
}
`
	p, err := load(t, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := p.Specs()
	if err != nil {
		t.Fatal(err)
	}
	g := p.Guard(ss[0], time.Second, func(e *Error) { t.Errorf("unexpected failure %v", e) })
	defer g.Close()
	lr, on := g.LR(ss[0].LR), g.OnStep(ss[0].OnStep)
	if got := lr(2, 0.5); got != 1.5 {
		t.Errorf("lr(2, 0.5) = %g, want 0.5·3 = 1.5", got)
	}
	on(lab.Event{Point: trainPoint(0.25)})
	if got := lr(0, 1); got != 1.25 {
		t.Errorf("lr(0, 1) after a step with loss 0.25 = %g, want 1.25", got)
	}
}

// TestGuard: a panicking hook and an endless hook each end as one failure (onFail once), the
// endless one is stopped, and later calls are harmless no-ops.
func TestGuard(t *testing.T) {
	cases := []struct {
		name, hook string
		kind       Kind
		want       string
	}{
		{"panic", "LR: func(step int, s float64) float64 { if step == 2 { panic(\"bad step\") }; return s }",
			KindPanic, "panic in the LR hook at step 2: bad step"},
		{"nil map write", "LR: func(step int, s float64) float64 { var m map[int]int; if step == 2 { m[1] = 1 }; return s }",
			KindPanic, "panic in the LR hook at step 2"},
		{"endless", "LR: func(step int, s float64) float64 { for step == 2 { s = s + 0 }; return s }",
			KindTimeout, "LR hook did not return within 100ms"},
		{"endless OnStep", "OnStep: func(e lab.Event) { for e.Step == 2 { } }",
			KindTimeout, "OnStep hook did not return within 100ms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := header + "func Experiment() lab.Spec {\n\treturn lab.Spec{Config: lab.Best(),\n\t\t" + c.hook + ",\n\t}\n}\n"
			p, err := load(t, src, Options{})
			if err != nil {
				t.Fatal(err)
			}
			ss, err := p.Specs()
			if err != nil {
				t.Fatal(err)
			}
			var fails atomic.Int32
			g := p.Guard(ss[0], 100*time.Millisecond, func(*Error) { fails.Add(1) })
			lr, on := g.LR(ss[0].LR), g.OnStep(ss[0].OnStep)
			for step := 0; step < 5; step++ {
				if lr != nil {
					if got := lr(step, 0.5); got != 0.5 {
						t.Errorf("step %d: lr %g, want the scheduled 0.5", step, got)
					}
				}
				if on != nil {
					on(lab.Event{Point: trainPointStep(step)})
				}
			}
			g.Close()
			e := g.Err()
			if e == nil || e.Kind != c.kind || !strings.Contains(e.Error(), c.want) {
				t.Fatalf("guard error %v, want %s %q", e, c.kind, c.want)
			}
			if c.kind == KindPanic && !strings.Contains(e.Error(), "x.go:") {
				t.Errorf("no script stack in %v", e)
			}
			if n := fails.Load(); n != 1 {
				t.Errorf("onFail called %d times, want 1", n)
			}
		})
	}
}

// TestGenerate: the script `anelab best` prints reproduces the config exactly through yaegi.
func TestGenerate(t *testing.T) {
	c := config.Default()
	c.Optim.Name, c.Optim.LR, c.Model.Compact, c.Train.Budget = "adamw", 1.25e-4, true, config.Duration(90*time.Second)
	src, err := Generate(c, "Best of main.\nSecond line.", "rerun \"quoted\"")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"//go:build ignore", "// Best of main.\n// Second line.\n", "c.Optim.LR = 0.000125",
		"c.Train.Budget = config.Duration(90000000000) // 1m30s", `c.Model.Compact = true`} {
		if !strings.Contains(string(src), w) {
			t.Errorf("generated script lacks %q:\n%s", w, src)
		}
	}
	ss, err := specs(t, string(src), Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	if ss[0].Config != c || ss[0].Description != `rerun "quoted"` {
		t.Errorf("round trip: %+v\nwant %+v", ss[0].Config, c)
	}
}
