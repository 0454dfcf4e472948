package main

import (
	"errors"
	"flag"
	"fmt"
	"reflect"

	"github.com/spf13/pflag"
)

// parseArgs parses args for a command whose flags are declared on a standard library FlagSet, the
// GNU way (spf13/pflag): flags may come before or after the positional arguments
// (`anelab data text FILE --out DIR`), `--` ends the flags, `-h`/`--help` print the flags and
// return flag.ErrHelp (main exits 0 on it). One-letter flags take one dash (`-m`, `-n`, `-o`), the
// others two (`--out`). It returns the positional arguments. Every command parses through here, so
// a new cmd_*.go gets the same behaviour by calling it instead of fs.Parse.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	pfs := pflagSet(fs)
	pfs.Usage = func() { usageOf(fs, pfs) }
	if err := pfs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, flag.ErrHelp
		}
		return nil, err
	}
	// Mirror the parsed flags into fs, so fs.Visit / fs.Lookup see what the command line set.
	var serr error
	pfs.Visit(func(f *pflag.Flag) {
		if err := fs.Set(f.Name, f.Value.String()); err != nil && serr == nil {
			serr = fmt.Errorf("--%s: %w", f.Name, err)
		}
	})
	return pfs.Args(), serr
}

func pflagSet(fs *flag.FlagSet) *pflag.FlagSet {
	pfs := pflag.NewFlagSet(fs.Name(), pflag.ContinueOnError)
	pfs.SetOutput(fs.Output())
	pfs.SortFlags = false
	pfs.AddGoFlagSet(fs)
	return pfs
}

// usageOf prints a command's usage: its own text (fs.Usage, if set, which lists the flags with
// printFlags) or a generic header and the flags.
func usageOf(fs *flag.FlagSet, pfs *pflag.FlagSet) {
	if fs.Usage != nil && reflect.ValueOf(fs.Usage).Pointer() != defaultUsage {
		fs.Usage()
		return
	}
	fmt.Fprintf(fs.Output(), "usage: anelab %s [flags]\n\nflags:\n", fs.Name())
	pfs.PrintDefaults()
}

// defaultUsage identifies the standard library's usage function (it prints single-dash flags).
var defaultUsage = reflect.ValueOf(flag.NewFlagSet("", flag.ContinueOnError).Usage).Pointer()

// printFlags lists fs's flags as the command line spells them (`--out`, `-m`).
func printFlags(fs *flag.FlagSet) { pflagSet(fs).PrintDefaults() }

// noArgs refuses positional arguments for a command that takes none.
func noArgs(name string, pos []string) error {
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q (anelab %s takes only flags; see anelab %s -h)", pos[0], name, name)
	}
	return nil
}
