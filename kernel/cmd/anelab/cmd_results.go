package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/anelab/anelab/kernel/ledger"
)

func init() {
	register("results", "print the ledger: every run, its val_loss and keep/discard", cmdResults)
}

func cmdResults(args []string) error {
	fs := flag.NewFlagSet("results", flag.ContinueOnError)
	lineage := fs.String("lineage", "", "only this lineage (default: all)")
	last := fs.Int("n", 0, "only the last N runs (default: all)")
	tsv := fs.Bool("tsv", false, "print results.tsv (all columns) instead of the table")
	l, labDir, err := openLab(fs, args)
	if err != nil {
		return err
	}
	defer l.Close()
	ctx := context.Background()
	runs, err := l.Runs(ctx, *lineage)
	if err != nil {
		return err
	}
	if *last > 0 && len(runs) > *last {
		runs = runs[len(runs)-*last:]
	}
	if *tsv {
		fmt.Println(strings.Join(ledger.TSVHeader, "\t"))
		for _, r := range runs {
			fmt.Println(strings.Join(r.TSVRow(), "\t"))
		}
		return nil
	}
	if len(runs) == 0 {
		fmt.Printf("no runs in %s yet: anelab run scripts/baseline.go\n", labDir)
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "run\tval_bpb\tval_loss\tsteps\tms/step\tstatus\tlineage\tbudget\tdescription")
	for _, r := range runs {
		d := r.Description
		if r.Error != "" && r.Status != ledger.StatusOK {
			d += " — " + firstLine(r.Error)
		}
		d = oneLine(d) // rows recorded before descriptions were cleaned may hold newlines
		if rs := []rune(d); len(rs) > 90 {
			d = string(rs[:89]) + "…"
		}
		bpb, loss := "-", "-" // no loss (a failed run): never 0, which would read as a best
		if r.HasLoss() {
			bpb, loss = fmt.Sprintf("%.4f", r.ValBPB), fmt.Sprintf("%.4f", r.ValLoss)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\n", r.ID, bpb, loss, r.Steps, r.MsPerStep, r.Mark(), r.Lineage, r.Budget, d)
	}
	w.Flush()
	ls, err := l.Lineages(ctx)
	if err != nil {
		return err
	}
	fmt.Println()
	for _, x := range ls {
		if *lineage != "" && x.Name != *lineage {
			continue
		}
		if x.Head == "" {
			fmt.Printf("lineage %s: %d runs, none kept yet\n", x.Name, x.Runs)
			continue
		}
		fmt.Printf("lineage %s: %d runs, %d kept, best %.6f (%s)\n", x.Name, x.Runs, x.Kept, x.Best, x.Head)
	}
	floors, err := l.NoiseFloors(ctx)
	if err != nil {
		return err
	}
	if len(floors) == 0 {
		fmt.Println("noise floor: not measured yet (repeat a config: anelab run scripts/noise.go)")
	}
	for _, f := range floors {
		fmt.Printf("noise floor (%s): σ(val_bpb) = %.4f from %d runs of %d configs (dof %d)\n", f.Budget, f.SD, f.Runs, f.Groups, f.DoF)
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// openLab adds --lab to fs, parses args and opens that lab's existing ledger (it does not create a
// lab by mistake); it returns the ledger, which the caller closes, and the lab folder.
func openLab(fs *flag.FlagSet, args []string) (*ledger.Ledger, string, error) {
	labDir := labFlag(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, "", err
	}
	if err := noArgs(fs.Name(), pos); err != nil {
		return nil, "", err
	}
	dir := *labDir
	l, err := ledger.OpenReadOnly(dir) // reading commands never write: they work on a read-only lab
	return l, dir, err
}

// oneLine turns control characters (newlines, tabs) into spaces, so a row stays one line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
