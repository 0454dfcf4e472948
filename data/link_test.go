package data

import (
	"os/exec"
	"strings"
	"testing"
)

// The trainer and everything it reads data with must not link the network stack: downloading
// lives in data/prep, which only the command's `data` subcommand (and tests) import. A package
// that starts importing net/http drags the whole HTTP client (and its init work) into every run.
func TestTrainerLinksNoNetwork(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the packages' dependencies")
	}
	// One line per package: its path, then its dependencies, then its direct imports.
	out, err := exec.Command(goBin, "list", "-deps=false", "-f",
		`{{.ImportPath}}|{{join .Deps " "}}|{{join .Imports " "}}`,
		"github.com/anelab/anelab/anert/...", "github.com/anelab/anelab/data").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	links := map[string]bool{} // package → links net/http
	type pkg struct{ path, imports string }
	var pkgs []pkg
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 3 {
			t.Fatalf("go list line %q", line)
		}
		links[f[0]] = strings.Contains(" "+f[1]+" ", " net/http ")
		pkgs = append(pkgs, pkg{f[0], f[2]})
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	if _, ok := links["github.com/anelab/anelab/data"]; !ok {
		t.Fatal("go list did not list the data package")
	}
	for _, p := range pkgs {
		if !links[p.path] {
			continue
		}
		var via []string
		for _, imp := range strings.Fields(p.imports) {
			if imp == "net/http" || links[imp] || strings.HasPrefix(imp, "github.com/anelab/anelab/data/prep") {
				via = append(via, imp)
			}
		}
		t.Errorf("%s links net/http (through %s): keep downloads in data/prep", p.path, strings.Join(via, ", "))
	}
}
