package script

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/config"
)

// config.Load, as scripts see it, reads configs in the script's folder and the lab only: symbolic
// links are resolved before the check, and no error quotes the file's content.
func TestConfigLoadConfined(t *testing.T) {
	root := t.TempDir()
	scripts, labDir, outside := filepath.Join(root, "scripts"), filepath.Join(root, "lab"), filepath.Join(root, "secret")
	for _, d := range []string{scripts, labDir, outside, filepath.Join(labDir, "runs", "r1")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	good := `{"model": {"dim": 96}}`
	write := func(path, s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(scripts, "mine.json"), good)
	write(filepath.Join(labDir, "runs", "r1", "config.json"), good)
	write(filepath.Join(labDir, "garbage.json"), "SECRETTOKEN-1234")
	write(filepath.Join(labDir, "broken.json"), "{SECRETTOKEN")
	write(filepath.Join(labDir, "unknown.json"), `{"SECRETTOKEN": 1}`)
	write(filepath.Join(outside, "key.json"), good)
	if err := os.Symlink(filepath.Join(outside, "key.json"), filepath.Join(scripts, "link.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(labDir, "escape")); err != nil {
		t.Fatal(err)
	}
	p := &Program{Path: filepath.Join(scripts, "x.go"), opt: Options{Folders: []string{labDir}}}
	cases := []struct {
		path string
		want string // "" = loads, dim 96
	}{
		{filepath.Join(scripts, "mine.json"), ""},
		{filepath.Join(labDir, "runs", "r1", "config.json"), ""},
		{filepath.Join(scripts, "..", "lab", "runs", "r1", "config.json"), ""},
		{filepath.Join(outside, "key.json"), "scripts may read configs only inside"},
		{filepath.Join(scripts, "..", "secret", "key.json"), "scripts may read configs only inside"},
		{filepath.Join(scripts, "link.json"), "scripts may read configs only inside"},
		{filepath.Join(labDir, "escape", "key.json"), "scripts may read configs only inside"},
		{"/etc/passwd", "scripts may read configs only inside"},
		{filepath.Join(labDir, "nothing.json"), "no such file"},
		{filepath.Join(labDir, "garbage.json"), "want exactly one JSON object"},
		{filepath.Join(labDir, "broken.json"), "invalid JSON at byte 2"},
		{filepath.Join(labDir, "unknown.json"), "a field that Config does not have"},
		{labDir, "not a regular file"},
	}
	for _, tc := range cases {
		c, err := p.loadConfig(tc.path)
		switch {
		case tc.want == "" && (err != nil || c.Model.Dim != 96):
			t.Errorf("%s: dim %d, %v; want the config", tc.path, c.Model.Dim, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v; want an error mentioning %q", tc.path, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "SECRET"):
			t.Errorf("%s: the error quotes the file: %v", tc.path, err)
		}
	}

	// Through a script: config.Load is the confined one.
	src := "package experiment\n\nimport (\n\t\"github.com/anelab/anelab/anert/config\"\n\t\"github.com/anelab/anelab/kernel/lab\"\n)\n\n" +
		"func Experiment() lab.Spec {\n\tc, err := config.Load(\"/etc/passwd\")\n\tif err != nil {\n\t\treturn lab.Spec{Description: err.Error(), Config: c}\n\t}\n" +
		"\treturn lab.Spec{Description: \"read it\", Config: c}\n}\n"
	prog, err := LoadSource(filepath.Join(scripts, "x.go"), []byte(src), Options{Folders: []string{labDir}})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := prog.Specs()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sp[0].Description, "scripts may read configs only inside") || sp[0].Config != config.Default() {
		t.Errorf("a script read /etc/passwd through config.Load: %q", sp[0].Description)
	}
}
