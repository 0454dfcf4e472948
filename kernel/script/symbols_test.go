package script

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anelab/anelab/kernel/script/symbols"
)

// TestSymbolsFresh: the generated yaegi symbols list every exported name of the packages they
// expose; if not, run `go generate ./kernel/script/symbols`.
func TestSymbolsFresh(t *testing.T) {
	for dir, key := range map[string]string{"../lab": LabPath + "/lab", "../../anert/config": ConfigPath + "/config"} {
		fset := token.NewFileSet()
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		var want []string
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range af.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if d.Recv == nil && d.Name.IsExported() {
						want = append(want, d.Name.Name)
					}
				case *ast.GenDecl:
					for _, s := range d.Specs {
						switch s := s.(type) {
						case *ast.TypeSpec:
							if s.Name.IsExported() {
								want = append(want, s.Name.Name)
							}
						case *ast.ValueSpec:
							for _, n := range s.Names {
								if n.IsExported() {
									want = append(want, n.Name)
								}
							}
						}
					}
				}
			}
		}
		wantSet := map[string]bool{}
		for _, n := range want {
			wantSet[n] = true
		}
		have := symbols.Symbols[key]
		for _, n := range want {
			if _, ok := have[n]; !ok {
				t.Errorf("%s: %s is missing from the yaegi symbols: run go generate ./kernel/script/symbols", key, n)
			}
		}
		for n := range have {
			if !wantSet[n] && !strings.HasPrefix(n, "_") { // _Name: yaegi's interface wrappers
				t.Errorf("%s: %s is in the yaegi symbols but not in the package: run go generate ./kernel/script/symbols", key, n)
			}
		}
	}
}
