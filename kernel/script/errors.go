package script

import (
	"fmt"
	"go/ast"
	"go/token"
	"io/fs"
	"strings"
)

// Kind classifies a script failure.
type Kind string

// Kinds of script failure. The harness records Syntax, Import, Compile, Spec and Read as
// "invalid", Panic as "crash" and Timeout as "timeout".
const (
	KindRead    Kind = "read"    // the file cannot be read
	KindSyntax  Kind = "syntax"  // the Go parser refused it
	KindImport  Kind = "import"  // a package outside the allow-list
	KindCompile Kind = "compile" // yaegi refused it (types, undefined names, unsupported Go)
	KindSpec    Kind = "spec"    // no entry point, or it returned something unusable
	KindPanic   Kind = "panic"   // the script or one of its hooks panicked
	KindTimeout Kind = "timeout" // the script or one of its hooks did not return in time
)

// Error is a script failure: what kind, where, and for a panic the script's stack.
type Error struct {
	Kind  Kind
	Path  string
	Msg   string
	Stack string // for panics: the script frames (file:line:col), innermost first
}

func (e *Error) Error() string {
	var s string
	switch {
	case e.Kind == KindSyntax || e.Kind == KindImport:
		s = fmt.Sprintf("%s error:\n%s", e.Kind, e.Msg) // its lines start with file:line:col
	case strings.HasPrefix(e.Msg, e.Path+":"):
		s = e.Msg
	default:
		s = e.Path + ": " + e.Msg
	}
	if e.Stack != "" {
		s += "\n" + e.Stack
	}
	return s
}

// dialectHint explains yaegi messages that come from Go newer than the dialect it accepts.
func dialectHint(msg string) string {
	switch {
	case strings.Contains(msg, "nil type"):
		return "\n(hint: yaegi v0.16 supports Go ≈ 1.20: `for i := range n` over an int or a func is not " +
			"supported; write `for i := 0; i < n; i++` — see scripts/README.md)"
	case strings.Contains(msg, "undefined: min"), strings.Contains(msg, "undefined: max"),
		strings.Contains(msg, "undefined: clear"):
		return "\n(hint: yaegi v0.16 has no min/max/clear builtins; use math.Min/math.Max or an if — see scripts/README.md)"
	}
	return ""
}

// checkDialect refuses, with file:line, what yaegi v0.16 runs differently from Go or not at all
// and a parser can see: the min/max/clear builtins, range over an integer constant or a func
// literal, and closures created in a loop that capture a variable declared in the loop (yaegi
// shares such variables across iterations, so every closure would see the last value). Range
// over an int variable is caught when yaegi fails on it, with a hint.
func checkDialect(fset *token.FileSet, f *ast.File, name string) error {
	declared := map[string]bool{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				declared[d.Name.Name] = true
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.ValueSpec:
					for _, n := range s.Names {
						declared[n.Name] = true
					}
				case *ast.TypeSpec:
					declared[s.Name.Name] = true
				}
			}
		}
	}
	var bad []string
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if id, ok := n.Fun.(*ast.Ident); ok && !declared[id.Name] && id.Obj == nil {
				switch id.Name {
				case "min", "max", "clear":
					bad = append(bad, fmt.Sprintf("%s: builtin %s (Go 1.21) is not supported by yaegi v0.16; "+
						"use math.Min/math.Max or an if", fset.Position(id.Pos()), id.Name))
				}
			}
		case *ast.ForStmt:
			bad = append(bad, loopCaptures(fset, n, n.Body)...)
		case *ast.RangeStmt:
			bad = append(bad, loopCaptures(fset, n, n.Body)...)
			if _, ok := n.X.(*ast.BasicLit); ok {
				bad = append(bad, fmt.Sprintf("%s: range over an integer (Go 1.22) is not supported by yaegi v0.16; "+
					"write `for i := 0; i < n; i++`", fset.Position(n.For)))
			}
			if _, ok := n.X.(*ast.FuncLit); ok {
				bad = append(bad, fmt.Sprintf("%s: range over a func (Go 1.23) is not supported by yaegi v0.16",
					fset.Position(n.For)))
			}
		}
		return true
	})
	if len(bad) == 0 {
		return nil
	}
	seen := map[string]bool{}
	uniq := bad[:0]
	for _, b := range bad {
		if !seen[b] {
			seen[b] = true
			uniq = append(uniq, b)
		}
	}
	bad = uniq
	return &Error{Kind: KindCompile, Path: name, Msg: strings.Join(bad, "\n") + "\n(see scripts/README.md for the dialect)"}
}

// emptyFS is a file system with nothing in it, so yaegi finds no source package to import.
type emptyFS struct{}

func (emptyFS) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// loopCaptures reports every variable that a func literal inside loop's body uses but that is
// declared by the loop or inside its body (outside the literal). Literals that are called on the
// spot or passed straight to a call (sort.Slice(xs, func…)) are exempt: they cannot outlive the
// iteration. Those passed to append are not.
func loopCaptures(fset *token.FileSet, loop ast.Node, body *ast.BlockStmt) []string {
	exempt := map[*ast.FuncLit]bool{}
	ast.Inspect(body, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok {
			if fl, ok := c.Fun.(*ast.FuncLit); ok {
				exempt[fl] = true
			}
			if id, ok := c.Fun.(*ast.Ident); ok && id.Name == "append" {
				return true
			}
			for _, a := range c.Args {
				if fl, ok := a.(*ast.FuncLit); ok {
					exempt[fl] = true
				}
			}
		}
		return true
	})
	var bad []string
	ast.Inspect(body, func(n ast.Node) bool {
		fl, ok := n.(*ast.FuncLit)
		if !ok || exempt[fl] {
			return true
		}
		ast.Inspect(fl.Body, func(m ast.Node) bool {
			id, ok := m.(*ast.Ident)
			if !ok || id.Obj == nil || id.Obj.Kind != ast.Var {
				return true
			}
			d := id.Obj.Pos()
			inLoop := d >= loop.Pos() && d < loop.End()
			inLit := d >= fl.Pos() && d < fl.End()
			if inLoop && !inLit {
				bad = append(bad, fmt.Sprintf("%s: the func literal captures %s, declared in the loop at line %d: yaegi v0.16 "+
					"shares it across iterations, so every closure would see its last value; build the closure in a "+
					"helper function that takes the value as a parameter", fset.Position(id.Pos()), id.Name, fset.Position(d).Line))
			}
			return true
		})
		return true
	})
	return bad
}
