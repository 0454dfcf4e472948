// Package script is the experiment-script host: it interprets a Go file from scripts/ with yaegi,
// lets it import only allow-listed packages, and turns what it returns into lab.Specs. Every step
// that runs script code is bounded in time and shielded from panics, so a broken script ends as
// an *Error (syntax, import, compile, panic, timeout, spec) and never takes the process down.
package script

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/kernel/lab"
	"github.com/anelab/anelab/kernel/script/symbols"
)

// Import paths of the experiment API and of the config types.
const (
	LabPath    = "github.com/anelab/anelab/kernel/lab"
	ConfigPath = "github.com/anelab/anelab/anert/config"
)

// Allowed lists the packages a script may import: the experiment API, the config types and
// standard packages that can neither touch the file system nor the network.
var Allowed = []string{
	LabPath, ConfigPath,
	"errors", "fmt", "math", "math/rand", "sort", "strconv", "strings", "time", "unicode", "unicode/utf8",
}

// DefaultTimeout bounds evaluating a script and building its specs.
const DefaultTimeout = 5 * time.Second

// Options configure Load.
type Options struct {
	// Timeout bounds the script's top level and its Experiment()/Sweep() call (0: DefaultTimeout).
	Timeout time.Duration
	// Lineage is the lineage lab.Best() reads ("" = lab.DefaultLineage).
	Lineage string
	// BestOf and FromRun answer lab.BestOf / lab.Best and lab.FromRun from the ledger (nil: no
	// ledger, so Best() is lab.Baseline() and FromRun panics).
	BestOf  func(lineage string) (config.Config, bool)
	FromRun func(id string) (config.Config, bool)
	// Stdout receives what the script prints with fmt.Print* (nil: os.Stdout). SetOutput changes it.
	Stdout io.Writer
	// Folders are where config.Load may read, besides the script's own folder (the harness
	// passes the lab). Nothing outside them is reachable: see loadConfig.
	Folders []string
}

// Program is one loaded script.
type Program struct {
	Path   string // as given to Load
	Source []byte
	Hash   string // sha256 of Source, hex
	Entry  string // "Experiment" or "Sweep"

	opt    Options
	pkg    string // the script's package name
	in     *interp.Interpreter
	out    *switchWriter
	stderr *lockedBuffer
	mu     sync.Mutex // serialises evaluations
}

// Hash is the hex sha256 of a script's source, as recorded in run manifests.
func Hash(src []byte) string {
	h := sha256.Sum256(src)
	return hex.EncodeToString(h[:])
}

// Load reads, checks and evaluates the script at path (its top level only).
func Load(path string, opt Options) (*Program, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Kind: KindRead, Path: path, Msg: err.Error()}
	}
	return LoadSource(path, src, opt)
}

// LoadSource is Load for a script already in memory; name is used in messages.
func LoadSource(name string, src []byte, opt Options) (*Program, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.Lineage == "" {
		opt.Lineage = lab.DefaultLineage
	}
	if opt.Stdout == nil {
		opt.Stdout = os.Stdout
	}
	p := &Program{Path: name, Source: src, Hash: Hash(src), opt: opt,
		out: &switchWriter{w: opt.Stdout}, stderr: &lockedBuffer{}}

	// 1. Parse with the standard parser: syntax errors as file:line:col, imports checked
	//    against the allow-list, and the entry point found, before yaegi sees anything.
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
	if err != nil {
		return nil, syntaxError(name, err)
	}
	p.pkg = f.Name.Name
	if err := checkImports(fset, f, name); err != nil {
		return nil, err
	}
	if err := checkDialect(fset, f, name); err != nil {
		return nil, err
	}
	if p.Entry, err = entry(fset, f, name); err != nil {
		return nil, err
	}
	if p.Entry == "" {
		return nil, &Error{Kind: KindSpec, Path: name, Msg: "the script defines neither `func Experiment() lab.Spec` nor " +
			"`func Sweep() []lab.Spec`; add one (see scripts/baseline.go)"}
	}

	// 2. Compile and run the top level with yaegi, in a sandbox that resolves only the allow-list.
	p.in = interp.New(interp.Options{
		GoPath:               os.DevNull, // no source imports
		SourcecodeFilesystem: emptyFS{},
		Stdout:               p.out,
		Stderr:               p.stderr,
		Stdin:                strings.NewReader(""),
	})
	if err := p.in.Use(p.exports()); err != nil {
		return nil, &Error{Kind: KindCompile, Path: name, Msg: "script host setup: " + err.Error()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), opt.Timeout)
	defer cancel()
	_, err = p.call(ctx, func() (reflect.Value, error) {
		f2, err := parser.ParseFile(p.in.FileSet(), name, src, parser.ParseComments)
		if err != nil {
			return reflect.Value{}, err
		}
		prog, err := p.in.CompileAST(f2)
		if err != nil {
			return reflect.Value{}, compileErr{err}
		}
		return p.in.ExecuteWithContext(ctx, prog)
	}, "evaluating the script's top level")
	if err != nil {
		return nil, err
	}
	return p, nil
}

// SetOutput redirects what the script prints (fmt.Print*) from now on.
func (p *Program) SetOutput(w io.Writer) { p.out.set(w) }

// Specs calls the script's Experiment() or Sweep() and returns its specs as they are (a spec
// without a Lineage joins the one the harness runs with).
func (p *Program) Specs() ([]lab.Spec, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.opt.Timeout)
	defer cancel()
	v, err := p.call(ctx, func() (reflect.Value, error) {
		return p.in.EvalWithContext(ctx, p.pkg+"."+p.Entry+"()")
	}, "calling "+p.Entry+"()")
	if err != nil {
		return nil, err
	}
	var specs []lab.Spec
	switch x := valueInterface(v).(type) {
	case lab.Spec:
		specs = []lab.Spec{x}
	case []lab.Spec:
		specs = x
	default:
		return nil, &Error{Kind: KindSpec, Path: p.Path, Msg: fmt.Sprintf("%s() returned %s; declare it as "+
			"`func Experiment() lab.Spec` or `func Sweep() []lab.Spec`", p.Entry, v.Type())}
	}
	if len(specs) == 0 {
		return nil, &Error{Kind: KindSpec, Path: p.Path, Msg: "Sweep() returned no specs"}
	}
	return specs, nil
}

func valueInterface(v reflect.Value) any {
	if !v.IsValid() || !v.CanInterface() {
		return nil
	}
	return v.Interface()
}

// compileErr marks an error from yaegi's compiler (types, undefined names…).
type compileErr struct{ error }

// call runs f (which runs script code) under ctx, turning a panic, an escaped host panic, a
// deadline or an error into an *Error.
func (p *Program) call(ctx context.Context, f func() (reflect.Value, error), what string) (v reflect.Value, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stderr.Reset()
	defer func() {
		if r := recover(); r != nil { // yaegi itself panicked (e.g. an unsupported construct)
			err = &Error{Kind: KindCompile, Path: p.Path, Msg: fmt.Sprintf("yaegi failed while %s: %v%s",
				what, r, dialectHint(fmt.Sprint(r))), Stack: string(debug.Stack())}
		}
	}()
	v, err = f()
	if err == nil {
		return v, nil
	}
	var pe interp.Panic
	var ce compileErr
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return v, &Error{Kind: KindTimeout, Path: p.Path, Msg: fmt.Sprintf("%s did not finish within %v "+
			"(an endless loop?); the script was stopped", what, p.opt.Timeout)}
	case errors.As(err, &pe):
		return v, &Error{Kind: KindPanic, Path: p.Path, Msg: fmt.Sprintf("panic while %s: %v", what, pe.Value),
			Stack: p.scriptStack()}
	case errors.As(err, &ce):
		return v, &Error{Kind: KindCompile, Path: p.Path, Msg: ce.Error() + dialectHint(ce.Error())}
	default:
		var el scanner.ErrorList
		if errors.As(err, &el) {
			return v, syntaxError(p.Path, err)
		}
		return v, &Error{Kind: KindCompile, Path: p.Path, Msg: err.Error() + dialectHint(err.Error())}
	}
}

// scriptStack is the script's own stack at the last panic: the file:line:col of each script frame
// that the panic unwound, innermost first, as yaegi reports them.
func (p *Program) scriptStack() string {
	var lines []string
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		if strings.Contains(l, ": panic") && strings.HasPrefix(l, p.Path+":") {
			lines = append(lines, "  "+strings.TrimSpace(l))
		}
	}
	p.stderr.Reset()
	if len(lines) == 0 {
		return ""
	}
	return "script stack (innermost first):\n" + strings.Join(lines, "\n")
}

// exports is the allow-listed symbol table: the chosen standard packages, the config types, and
// the experiment API with Best/BestOf/FromRun bound to this program's ledger answers.
func (p *Program) exports() interp.Exports {
	ex := interp.Exports{".": stdlib.Symbols["."]}
	for _, path := range Allowed {
		key := path + "/" + filepath.Base(path)
		src := stdlib.Symbols[key]
		if src == nil {
			src = symbols.Symbols[key]
		}
		m := make(map[string]reflect.Value, len(src))
		for k, v := range src {
			m[k] = v
		}
		ex[key] = m
	}
	ex[ConfigPath+"/config"]["Load"] = reflect.ValueOf(p.loadConfig)
	l := ex[LabPath+"/lab"]
	for _, hidden := range []string{"SetLookup", "Lookup", "BestWith", "FromRunWith"} {
		delete(l, hidden) // host plumbing, not for scripts
	}
	bestOf, fromRun, lineage := p.opt.BestOf, p.opt.FromRun, p.opt.Lineage
	l["BestOf"] = reflect.ValueOf(func(name string) config.Config { return lab.BestWith(bestOf, name) })
	l["Best"] = reflect.ValueOf(func() config.Config { return lab.BestWith(bestOf, lineage) })
	l["FromRun"] = reflect.ValueOf(func(id string) config.Config { return lab.FromRunWith(fromRun, id) })
	return ex
}

// checkImports refuses any import outside Allowed, naming the allowed ones.
func checkImports(fset *token.FileSet, f *ast.File, name string) error {
	allowed := map[string]bool{}
	for _, a := range Allowed {
		allowed[a] = true
	}
	var bad []string
	for _, im := range f.Imports {
		path, _ := strconv.Unquote(im.Path.Value)
		if !allowed[path] {
			bad = append(bad, fmt.Sprintf("%s: import %q is not allowed", fset.Position(im.Pos()), path))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	list := append([]string(nil), Allowed...)
	sort.Strings(list)
	return &Error{Kind: KindImport, Path: name, Msg: strings.Join(bad, "\n") +
		"\nscripts may import only:\n  " + strings.Join(list, "\n  ")}
}

// entry finds the script's entry point: "Experiment" or "Sweep", "" when it has neither, and an
// error when it has both (one of them would be silently ignored).
func entry(fset *token.FileSet, f *ast.File, name string) (string, error) {
	var found []*ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && (fd.Name.Name == "Experiment" || fd.Name.Name == "Sweep") {
			found = append(found, fd)
		}
	}
	switch {
	case len(found) == 0:
		return "", nil
	case len(found) > 1 && found[0].Name.Name != found[1].Name.Name:
		return "", &Error{Kind: KindSpec, Path: name, Msg: fmt.Sprintf("%s: the script defines both Experiment (%s) and "+
			"Sweep (%s); keep one: Experiment for one spec, Sweep for several", fset.Position(found[1].Pos()),
			fset.Position(found[0].Pos()), fset.Position(found[1].Pos()))}
	}
	return found[0].Name.Name, nil
}

func syntaxError(name string, err error) *Error {
	var el scanner.ErrorList
	if errors.As(err, &el) {
		var lines []string
		for i, e := range el {
			if i == 3 {
				lines = append(lines, fmt.Sprintf("(%d more)", len(el)-3))
				break
			}
			lines = append(lines, e.Error())
		}
		return &Error{Kind: KindSyntax, Path: name, Msg: strings.Join(lines, "\n")}
	}
	return &Error{Kind: KindSyntax, Path: name, Msg: err.Error()}
}

// switchWriter is an io.Writer whose target can change between runs.
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) set(w io.Writer) { s.mu.Lock(); s.w = w; s.mu.Unlock() }
func (s *switchWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return len(b), nil
	}
	return s.w.Write(b)
}

// lockedBuffer collects yaegi's stderr (its per-frame panic trace lines).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 { // a script printing panics in a loop must not grow it forever
		l.b.Reset()
	}
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
func (l *lockedBuffer) Reset()         { l.mu.Lock(); l.b.Reset(); l.mu.Unlock() }
