// Command mls is the mlskit command-line tool.
//
// Usage:
//
//	mls demo [-n N]            run an in-process group and print what happens
//	mls vectors verify [DIR]   check mlskit against the official MLS test vectors
//	mls inspect [flags] [FILE] decode, describe and check any MLS object
//	mls init|create|invite|send|read|follow|... group chat over mlsd (docs/CLI.md)
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage: mls <command> [arguments]

commands:
  demo [-n N]            run an in-process group of N members (default 5): add, update,
                         remove, exchange messages, and print what happened with timings
  vectors verify [DIR]   run the official MLS test vectors (default: $MLS_TEST_VECTORS,
                         or ../shared/test-vectors beside the repository)
  inspect [flags] [FILE] decode any MLS object (binary or hex), print its structure
                         and check what needs no secrets (-json, -type, -group-info, -state)

` + chatUsage + `
Run "mls <command> -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "vectors":
		return runVectors(args[1:], stdout, stderr)
	case "demo":
		return runDemo(args[1:], stdout, stderr)
	case "inspect":
		return runInspect(args[1:], os.Stdin, stdout, stderr)
	case "cert":
		return runCert(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" && args[1] != "help" {
			// "mls help COMMAND" is "mls COMMAND --help".
			return run(append(args[1:2:2], "--help"), stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	if isChatCommand(args[0]) {
		return runChat(args[0], args[1:], os.Stdin, stdout, stderr)
	}
	fmt.Fprintf(stderr, "mls: unknown command %q\n\n%s", args[0], usage)
	return 2
}
