package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/anelab/anelab/anert/chip"
	"github.com/anelab/anelab/anert/mil/check"
)

func init() {
	register("check", "check a model config against the known ANE rules (no device time spent)", cmdCheck)
}

func cmdCheck(args []string) error { return runCheck(os.Stdout, args) }

// runCheck runs the constraint checker (anert/mil/check) on the model config given by the usual
// config flags or --config, and prints each broken rule with what it prevents, what to change and
// its source. Errors (the ANE backend refuses the config) make the command fail; warnings
// (performance cliffs, rules from other code paths) do not.
func runCheck(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(w)
	rules := fs.Bool("rules", false, "list every rule the checker knows, then check")
	chipName := fs.String("chip", "", "check for this Apple chip: m1, m2, m3, m4, m5 (optionally pro, max, ultra); default: this Mac's, else the strictest (m1)")
	cfg, err := parseConfig(fs, args)
	if err != nil {
		return err
	}
	ch, why, err := chipFlag(*chipName)
	if err != nil {
		return err
	}
	if *rules {
		fmt.Fprintln(w, "rules:")
		for _, r := range check.Rules {
			fmt.Fprintf(w, "  %-7s %-20s %s\n", r.Severity, r.ID, r.Summary)
		}
		fmt.Fprintln(w)
	}
	m := cfg.Model
	fmt.Fprintf(w, "config: dim=%d heads=%d kv_heads=%d ffn=%d seq=%d layers=%d pos=%s act=%s qk_norm=%t (head dim %d)\n",
		m.Dim, m.Heads, m.KV(), m.FFN, m.Seq, m.Layers, m.Pos, m.Activation(), m.QKNorm, m.HeadDim())
	fmt.Fprintf(w, "chip: %v — %s\n", ch, why)
	vs := check.CheckConfigFor(m, ch)
	nerr := len(check.Errors(vs))
	for _, v := range vs {
		where := "config"
		if v.Kernel != "" {
			where = "kernel " + v.Kernel
			if v.Line > 0 {
				where += fmt.Sprintf(" (MIL line %d)", v.Line)
			}
		}
		fmt.Fprintf(w, "\n%s [%s] %s: %s\n", v.Rule.Severity, v.Rule.ID, where, v.Detail)
		fmt.Fprintf(w, "    rule:    %s\n", v.Rule.Summary)
		fmt.Fprintf(w, "    symptom: %s\n", v.Rule.Symptom)
		fmt.Fprintf(w, "    change:  %s\n", v.Rule.Fix)
		fmt.Fprintf(w, "    source:  %s\n", v.Rule.Source)
	}
	if len(vs) > 0 {
		fmt.Fprintln(w)
	}
	if vars := check.Variants(vs); len(vars) > 0 && nerr == 0 {
		fmt.Fprintf(w, "kernel variants on %s: %s (the fused kernels break error rules there; the backend never compiles them and runs these)\n",
			ch.Name, strings.Join(vars, " "))
	}
	switch {
	case nerr > 0:
		where := "the emulator, --device emu, still runs it"
		for _, v := range vs {
			if v.Rule.ID == check.RuleArch.ID { // no kernels exist for it, so no device runs it
				where = "on every device, the emulator included: train it on the CPU backend"
			}
		}
		fmt.Fprintf(w, "FAIL: %d error(s), %d warning(s): the ANE backend refuses this config on %s (%s)\n",
			nerr, len(vs)-nerr, ch.Name, where)
		return errors.New("the config breaks ANE rules (see above)")
	case len(vs) > 0:
		fmt.Fprintf(w, "PASS with %d warning(s): the ANE backend accepts this config on %s\n", len(vs), ch.Name)
	default:
		fmt.Fprintf(w, "PASS: the config passes every ANE rule the checker knows for %s\n", ch.Name)
	}
	return nil
}

// chipFlag is the chip whose rules apply: the one --chip names, else this Mac's (or the strictest
// family elsewhere), with why it was chosen.
func chipFlag(name string) (chip.Chip, string, error) {
	if name == "" {
		ch, why := chip.Default()
		return ch, why, nil
	}
	ch, err := chip.Lookup(name)
	if err != nil {
		return ch, "", fmt.Errorf("--chip: %w", err)
	}
	return ch, "named with --chip", nil
}
