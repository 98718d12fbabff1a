package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
)

// Every command's flags are parsed by parseFlags, so that all of them
// follow one convention (docs/CLI.md): -h, -help or --help prints the
// command's usage on standard output and exits 0; an unknown flag or a bad
// flag value prints the error and the usage on standard error and exits 2.

// flagsOK is parseFlags's code for "go on".
const flagsOK = -1

// parseFlags parses args with fs. With interleaved, flags may come after
// positional arguments ("mls send team hi --dir x"). It returns the
// positional arguments, and flagsOK or the exit code to return at once.
func parseFlags(fs *flag.FlagSet, args []string, interleaved bool, stdout, stderr io.Writer) ([]string, int) {
	// The flag package prints the usage (on -h) or the error and the usage
	// (otherwise) to fs.Output(); which stream it belongs on is known only
	// once parsing is over.
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	var pos []string
	var err error
	if interleaved {
		pos, err = parseInterleaved(fs, args)
	} else {
		err = fs.Parse(args)
		pos = fs.Args()
	}
	fs.SetOutput(stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		stdout.Write(buf.Bytes())
		return nil, 0
	case err != nil:
		stderr.Write(buf.Bytes())
		return nil, 2
	}
	return pos, flagsOK
}

// isHelp reports whether arg asks for help, for commands that take a
// subcommand before their flags.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}
