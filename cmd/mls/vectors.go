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
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(stderr, "usage: mls vectors verify [-v] [DIR]")
		return 2
	}
	fs := flag.NewFlagSet("vectors verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "print each failing case")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
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
