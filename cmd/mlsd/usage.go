package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Exit status (docs/mlsd.md): 0 success, also for -h/--help, which prints
// the usage on standard output; 1 an error; 2 bad usage (an unknown
// command or flag, a bad flag value), with the usage on standard error.

const usage = `usage: mlsd [serve] [flags]        run the delivery service (mlsd serve --help lists the flags)
       mlsd ca init   -dir DIR [-name NAME] [-force]
       mlsd ca issue  -dir DIR -client ID -suite N -key HEX [-days N]   (PEM certificate on stdout)
       mlsd ca revoke -dir DIR -serial N
       mlsd ca crl    -dir DIR > crl.der

With no command it serves on 127.0.0.1:7420 with SQLite in ./mlsd-data.
"mlsd COMMAND --help" describes a command's flags (docs/mlsd.md has more).
`

const caUsage = `usage: mlsd ca <command> [flags]

Administers the authentication service's CA (docs/mlsd.md):
  init     create a CA in -dir (refuses to replace one without -force)
  issue    issue a device certificate for -client's MLS signature key (-suite, -key)
  revoke   revoke the certificate with -serial
  crl      write the current CRL (DER) to standard output
`

// caArgs and caHelp describe each "mlsd ca" command for its --help.
var caArgs = map[string]string{
	"init":   "init -dir DIR [-name NAME] [-days N] [-force]",
	"issue":  "issue -dir DIR -client ID -suite N -key HEX [-days N]",
	"revoke": "revoke -dir DIR -serial N",
	"crl":    "crl -dir DIR > crl.der",
}

var caHelp = map[string]string{
	"init":   "Creates a CA (key, certificate, empty revocation list) in -dir. It refuses to replace an\nexisting CA unless -force is given: the old key and revocation list would be lost.",
	"issue":  "Issues a device certificate for client ID's MLS signature public key (-key, hex, of cipher\nsuite -suite) and writes it as PEM to standard output.",
	"revoke": "Revokes the certificate with serial number -serial; the next CRL lists it.",
	"crl":    "Writes the current CRL (DER) to standard output, valid for 7 days.",
}

// usageError is bad usage whose message (and usage) was already printed.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }

// errHelp: the usage was printed because it was asked for.
var errHelp = errors.New("help shown")

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// parseFlags parses args with fs: on -h it prints the usage to stdout and
// returns errHelp; on a bad flag it prints the error and the usage to
// stderr and returns a *usageError.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		stdout.Write(buf.Bytes())
		return errHelp
	case err != nil:
		stderr.Write(buf.Bytes())
		return &usageError{err}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return &usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// exitCode maps run's error to the process exit status, printing it.
func exitCode(err error, stderr io.Writer) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	}
	fmt.Fprintln(stderr, "mlsd:", err)
	return 1
}
