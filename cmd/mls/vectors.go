package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/mlskit/mlskit/internal/conformance"
)

// runVectors implements "mls vectors verify [DIR]": one line per vector file,
// "<file>: N passed, N failed, N skipped", then a total. Any failure or skip
// makes the exit code non-zero.
func runVectors(args []string, stdout, stderr io.Writer) int {
	const usage = "usage: mls vectors verify [-v] [DIR]\n\n" +
		"Runs the official MLS test vectors in DIR (default: $MLS_TEST_VECTORS, or\n" +
		"../shared/test-vectors beside the repository). Exit status 1 if any fails.\n"
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("mls vectors verify", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage+"\nflags:\n")
		fs.PrintDefaults()
	}
	verbose := fs.Bool("v", false, "print each failing case")
	if _, code := parseFlags(fs, args[1:], false, stdout, stderr); code != flagsOK {
		return code
	}
	var dir string
	switch fs.NArg() {
	case 0:
		d, err := conformance.Dir()
		if err != nil {
			fmt.Fprintln(stderr, "mls:", err)
			return 1
		}
		dir = d
	case 1:
		dir = fs.Arg(0)
	default:
		fmt.Fprintln(stderr, "usage: mls vectors verify [-v] [DIR]")
		return 2
	}
	var tp, tf, ts int
	for _, f := range conformance.Files() {
		rep := conformance.RunFile(dir, f)
		p, fl, s := rep.Counts()
		tp, tf, ts = tp+p, tf+fl, ts+s
		fmt.Fprintf(stdout, "%s: %d passed, %d failed, %d skipped\n", f, p, fl, s)
		if *verbose {
			if rep.Err != nil {
				fmt.Fprintf(stdout, "  error: %v\n", rep.Err)
			}
			for _, c := range rep.Cases {
				if c.Err != nil || c.Skipped {
					fmt.Fprintf(stdout, "  %s: %v\n", c.Name, c.Err)
				}
			}
		}
	}
	fmt.Fprintf(stdout, "total: %d passed, %d failed, %d skipped\n", tp, tf, ts)
	if tf > 0 || ts > 0 {
		return 1
	}
	return 0
}
