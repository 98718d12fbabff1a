package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mlskit/mlskit/internal/inspect"
	"github.com/mlskit/mlskit/internal/wire"
	"github.com/mlskit/mlskit/mls"
	"github.com/mlskit/mlskit/storage"
	"github.com/mlskit/mlskit/storage/sqlite"
)

const inspectUsage = `usage: mls inspect [flags] [FILE]

Decodes one MLS object from FILE (or standard input when FILE is absent or
"-"), binary or hex, prints its structure and checks what can be checked
without the group's secrets. The input is decoded as an MLSMessage unless
-type names another struct; it is never guessed. With -state, the client
state of "mls chat" (DIR/state.db), it also decrypts and checks what that
client can; the state is read, never written.

Exit status: 0 decoded and no check failed, 1 unreadable or malformed
input, 2 bad usage, 3 decoded but a check failed.

flags:
`

// runInspect implements "mls inspect".
func runInspect(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), inspectUsage)
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\ntypes: %s\n", strings.Join(inspect.Types(), ", "))
	}
	typ := fs.String("type", "", "decode as this struct instead of MLSMessage (see types below)")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	full := fs.Bool("full", false, "print long byte strings in full in text output")
	forceHex := fs.Bool("hex", false, "the input is hex (whitespace allowed)")
	forceBin := fs.Bool("binary", false, "the input is binary")
	nowFlag := fs.String("now", "", "the current time for lifetime checks: RFC 3339 or Unix seconds (default: the clock)")
	suiteFlag := fs.String("suite", "", "cipher suite for objects that carry none (LeafNode, RatchetTree, PublicMessage): number, e.g. 1 or 0x0001")
	giFile := fs.String("group-info", "", "`FILE` holding the group's GroupInfo (MLSMessage), to verify messages against")
	treeFile := fs.String("tree", "", "`FILE` holding the group's ratchet tree, when the GroupInfo has no ratchet_tree extension")
	stateDir := fs.String("state", "", "a client's state `DIR` (or its state.db), to decrypt and verify what that client can")
	if _, code := parseFlags(fs, args, false, stdout, stderr); code != flagsOK {
		return code
	}
	if fs.NArg() > 1 || (*forceHex && *forceBin) {
		fs.Usage()
		return 2
	}
	enc := inspect.Auto
	switch {
	case *forceHex:
		enc = inspect.Hex
	case *forceBin:
		enc = inspect.Binary
	}
	var ctx inspect.Context
	ctx.Now = time.Now()
	if *nowFlag != "" {
		t, err := parseTime(*nowFlag)
		if err != nil {
			fmt.Fprintf(stderr, "mls inspect: -now: %v\n", err)
			return 2
		}
		ctx.Now = t
	}
	if *suiteFlag != "" {
		v, err := strconv.ParseUint(*suiteFlag, 0, 16)
		if err != nil || v == 0 {
			fmt.Fprintf(stderr, "mls inspect: -suite: %q is not a cipher suite number\n", *suiteFlag)
			return 2
		}
		ctx.Suite = wire.CipherSuite(v)
	}
	var err error
	if *giFile != "" {
		if ctx.GroupInfo, err = readObject(*giFile, stdin); err != nil {
			fmt.Fprintf(stderr, "mls inspect: -group-info: %v\n", err)
			return 1
		}
	}
	if *treeFile != "" {
		if ctx.Tree, err = readObject(*treeFile, stdin); err != nil {
			fmt.Fprintf(stderr, "mls inspect: -tree: %v\n", err)
			return 1
		}
	}
	if *stateDir != "" {
		m, err := openState(*stateDir, ctx.Now)
		if err != nil {
			fmt.Fprintf(stderr, "mls inspect: -state: %v\n", err)
			return 1
		}
		defer m.close()
		ctx.Member = m
	}
	name := "-"
	if fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	raw, err := readAll(name, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "mls inspect: %v\n", err)
		return 1
	}
	data, used, err := inspect.ParseInput(raw, enc)
	if err != nil {
		fmt.Fprintf(stderr, "mls inspect: %s: %v\n", displayName(name), err)
		return 1
	}
	rep, err := inspect.Inspect(data, *typ, ctx)
	if err != nil {
		return inspectError(stderr, err, *typ, used)
	}
	rep.Input = used
	if *asJSON {
		out, err := rep.JSON()
		if err != nil {
			fmt.Fprintf(stderr, "mls inspect: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s\n", out)
	} else {
		fmt.Fprint(stdout, cleanLines(rep.Text(*full)))
	}
	if rep.Failed() {
		return 3
	}
	return 0
}

// inspectError prints why Inspect failed and returns the exit code.
func inspectError(stderr io.Writer, err error, typ, used string) int {
	var de *wire.DecodeError
	var ie *inspect.InputError
	switch {
	case errors.Is(err, inspect.ErrUnknownType):
		fmt.Fprintf(stderr, "mls inspect: -type: %v\n", strings.TrimPrefix(err.Error(), "inspect: "))
		return 2
	case errors.As(err, &ie):
		fmt.Fprintf(stderr, "mls inspect: %s\n", clean(ie.Error()))
		return 1
	case errors.As(err, &de):
		msg := fmt.Sprintf("malformed %s at byte %d", de.Type, de.Offset)
		if de.Reason != "" {
			msg += ": " + de.Reason
		}
		fmt.Fprintf(stderr, "mls inspect: %s (%s input)\n", msg, used)
		if typ == "" {
			fmt.Fprintf(stderr, "mls inspect: the input was decoded as an MLSMessage; for a bare struct give -type (%s)\n",
				strings.Join(inspect.Types()[1:], ", "))
		}
		return 1
	}
	fmt.Fprintf(stderr, "mls inspect: %s\n", clean(err.Error()))
	return 1
}

func displayName(name string) string {
	if name == "-" {
		return "standard input"
	}
	return name
}

func readAll(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(name)
}

// readObject reads a context file (-group-info, -tree), binary or hex,
// whatever the flags say of the main input.
func readObject(name string, stdin io.Reader) ([]byte, error) {
	raw, err := readAll(name, stdin)
	if err != nil {
		return nil, err
	}
	data, _, err := inspect.ParseInput(raw, inspect.Auto)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", displayName(name), err)
	}
	return data, nil
}

// parseTime reads RFC 3339 or Unix seconds.
func parseTime(s string) (time.Time, error) {
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(v, 0), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor Unix seconds", s)
	}
	return t, nil
}

// stateFile is the SQLite store in a client's state directory (the layout
// of package client: DIR/state.db, written through mls.Group.Save).
const stateFile = "state.db"

// stateMember reads a client's groups and KeyPackages for inspect. It never
// saves: processing a message consumes its key only in memory.
type stateMember struct {
	st  *sqlite.Store
	cfg *mls.Config
}

func openState(path string, now time.Time) (*stateMember, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		path = filepath.Join(path, stateFile)
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no client state: %w", err)
		}
	}
	st, err := sqlite.Open(path, nil)
	if err != nil {
		return nil, err
	}
	// Credentials are the application's to judge; inspect shows what the
	// protocol says.
	cfg := &mls.Config{CredentialValidator: mls.AcceptAllCredentials{}, Now: func() time.Time { return now }}
	return &stateMember{st: st, cfg: cfg}, nil
}

func (m *stateMember) close() { m.st.Close() }

func (m *stateMember) Group(groupID []byte) (*mls.Group, error) {
	g, err := mls.LoadGroup(context.Background(), m.cfg, m.st, groupID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return g, err
}

func (m *stateMember) KeyPackage(ref []byte) (*mls.KeyPackageBundle, error) {
	b, err := mls.LoadKeyPackage(context.Background(), m.st, ref)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return b, err
}
