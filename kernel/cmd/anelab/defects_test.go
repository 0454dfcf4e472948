package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// issue10 maps each numbered defect of issue 10 ("Runs that nothing can break") to the tests that
// show it fixed, each as "dir.Name" with dir the package's folder from the module root. Every
// test here failed (or did not exist, its behaviour missing) on the main of that issue's filing.
var issue10 = []struct {
	defect int
	what   string
	tests  []string
}{
	{1, "a script takes down `anelab run`: goroutine panics, stack overflow, out of memory", []string{
		"kernel/cmd/anelab.TestChildDeathsAreRecorded",
		"kernel/cmd/anelab.TestSweepGoesOnAfterChildDeath",
		"kernel/nb.TestRunScriptSurvivesScriptDeaths",
		"kernel/harness.TestChildFailure",
		"kernel/harness.TestRealTrainerInChild",
		"kernel/harness.TestMemLimit",
	}},
	{2, "NaN and Inf pass validation", []string{
		"anert/config.TestValidateRefusesNonFiniteFloats",
		"anert/config.TestFloatFieldsCoverEveryFloat",
		"kernel/cmd/anelab.TestBadFlagsRefused",
		"kernel/harness.TestInvalidSpecInSweep",
	}},
	{3, "an interrupted data preparation destroys the existing dataset", []string{
		"kernel/cmd/anelab.TestKilledPreparationKeepsDataset",
		"data/prep.TestFailedPreparationKeepsDataset",
		"data/prep.TestLeftoversCleaned",
		"data/prep.TestOutWithOtherFilesRefused",
	}},
	{4, "Ctrl-C or SIGTERM during `anelab train` throws the run away; a second Ctrl-C does not exit", []string{
		"kernel/cmd/anelab.TestTrainInterrupted",
	}},
	{5, "a 0-byte ledger.db is taken for a fresh lab", []string{
		"kernel/ledger.TestEmptyLedgerBesideRuns",
	}},
	{6, "oversized configs are not refused before allocating", []string{
		"anert/config.TestSizeLimitsCannotOverflow",
		"kernel/cmd/anelab.TestBadFlagsRefused",
		"kernel/cmd/anelab.TestOversizedTrainRefused",
		"anert/train.TestCheckMemory",
		"kernel/harness.TestInvalidSpecInSweep",
	}},
	{7, "`anelab results` and `best` fail on a read-only lab", []string{
		"kernel/ledger.TestOpenReadOnly",
	}},
	{8, "--resume on another dataset or tokenizer is accepted silently", []string{
		"kernel/cmd/anelab.TestResumeOnOtherDataRefused",
	}},
	{9, "flags after arguments are not parsed; -h exits 1", []string{
		"kernel/cmd/anelab.TestHelpExitsZero",
		"kernel/cmd/anelab.TestFlagsAfterArguments",
	}},
	{10, "smaller: strict JSON, sample/run flags, NaN checkpoints, manifest bos, config.Load confinement, " +
		"Experiment+Sweep, descriptions, interrupted vs crash, the startup sgemm hang", []string{
		"anert/config.TestLoadStrictJSON",
		"kernel/cmd/anelab.TestBadFlagsRefused",
		"kernel/cmd/anelab.TestSampleRefusesNaNCheckpoint",
		"data.TestOpenErrors",
		"kernel/script.TestConfigLoadConfined",
		"kernel/script.TestScriptErrors",
		"kernel/harness.TestDescriptionsAreOneLine",
		"kernel/cmd/anelab.TestRunInterrupted",
		"anert/blas.TestStartupMeasurementWatchdog",
	}},
}

// issue10Fuzz are the fuzz targets the issue asks for beside ckpt's (`make fuzz` runs them all),
// and the test that keeps the trainer off the network (the `data` split).
var issue10Fuzz = []string{
	"anert/ckpt.FuzzLoad",
	"anert/mil.FuzzParse",
	"anert/config.FuzzDecode",
	"data.FuzzOpen",
	"data/bpe.FuzzRead",
	"data/llama2.FuzzRead",
	"data/bpe.TestDoublingMergesRefused",
	"data.TestTrainerLinksNoNetwork",
}

// TestIssue10Index checks the index above against the module's test files: every defect 1–10 is
// listed with at least one test, and every named test or fuzz target exists where it says.
func TestIssue10Index(t *testing.T) {
	root := moduleRoot(t)
	have := testFuncs(t, root)
	for i, d := range issue10 {
		if d.defect != i+1 || len(d.tests) == 0 {
			t.Errorf("entry %d: defect %d with %d tests; want defects 1–10 in order, each with a test", i, d.defect, len(d.tests))
		}
		for _, name := range d.tests {
			if !have[name] {
				t.Errorf("defect %d (%s): no test %s in the module", d.defect, d.what, name)
			}
		}
	}
	if len(issue10) != 10 {
		t.Errorf("%d defects indexed, want 10", len(issue10))
	}
	for _, name := range issue10Fuzz {
		if !have[name] {
			t.Errorf("no %s in the module", name)
		}
	}
}

// moduleRoot is the folder of go.mod above the working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = up
	}
}

// testFuncs parses every _test.go file of the module and returns its Test and Fuzz functions as
// "dir.Name".
func testFuncs(t *testing.T, root string) map[string]bool {
	t.Helper()
	have := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "out" || n == "bin" || n == "devbin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if ok && fn.Recv == nil && (strings.HasPrefix(fn.Name.Name, "Test") || strings.HasPrefix(fn.Name.Name, "Fuzz")) {
				have[filepath.ToSlash(rel)+"."+fn.Name.Name] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(have) < 100 {
		t.Fatalf("found only %d tests in %s", len(have), root)
	}
	return have
}
