package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestProgramRunnable keeps scripts/program.md runnable as written: every `bin/anelab <command>` in
// its code blocks is a command this binary has, every script it names exists, and every script it
// runs passes `anelab vet`.
func TestProgramRunnable(t *testing.T) {
	b, err := os.ReadFile("../../../scripts/program.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, m := range regexp.MustCompile("`?(scripts/[A-Za-z0-9_]+\\.(go|md))").FindAllStringSubmatch(doc, -1) {
		if m[1] == "scripts/NOTES.md" {
			continue // the agent's own notes, written as it goes
		}
		if _, err := os.Stat(filepath.Join("../../..", m[1])); err != nil {
			t.Errorf("program.md names %s, which does not exist", m[1])
		}
	}
	blocks := regexp.MustCompile("(?s)```\n(.*?)```").FindAllStringSubmatch(doc, -1)
	if len(blocks) < 4 {
		t.Fatalf("program.md has %d code blocks", len(blocks))
	}
	cmdRE := regexp.MustCompile(`bin/anelab ([a-z]+)([^;>|]*)`)
	lab := t.TempDir()
	seen := 0
	for _, blk := range blocks {
		for _, m := range cmdRE.FindAllStringSubmatch(blk[1], -1) {
			seen++
			if _, ok := commands[m[1]]; !ok {
				t.Errorf("program.md runs `bin/anelab %s`, which is not a command", m[1])
				continue
			}
			args := strings.Fields(m[2])
			if m[1] != "run" || len(args) == 0 || strings.Contains(args[0], "<") {
				continue
			}
			// A script program.md runs as written must pass the checks run makes.
			vet := append([]string{"vet", "../../../" + args[0], "--data", t.TempDir()}, args[1:]...)
			if out, err := anelab(lab, vet...).CombinedOutput(); err != nil {
				t.Errorf("program.md runs %s, which does not vet: %v\n%s", args[0], err, out)
			}
		}
	}
	if seen < 6 {
		t.Errorf("found only %d bin/anelab commands in program.md", seen)
	}
}
