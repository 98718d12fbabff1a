// Package conformance checks mlskit against the MLS working group's official
// test vectors (the interop-test-vectors document in mlswg/mls-implementations).
//
// Each vector file has one checker, registered from its own source file with
// register. The checkers live in ordinary (non-test) code so that both `go
// test` and the `mls vectors verify` command run exactly the same checks.
//
// A checker returns one Case per test case it found. A case is never skipped
// silently: Skipped exists so that a checker which cannot yet run a case says
// so, and both the tests and the CLI treat a skip as a failure to conform.
package conformance

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// Case is the outcome of one test case of a vector file.
type Case struct {
	Name    string // e.g. "suite 1 case 3"
	Err     error  // nil when the case passed
	Skipped bool   // the checker could not run the case
}

// Report is the outcome of one vector file.
type Report struct {
	File  string
	Cases []Case
	Err   error // the file could not be read or parsed at all
}

// Counts returns the number of passed, failed and skipped cases. A file that
// could not be parsed counts as one failure.
func (r Report) Counts() (passed, failed, skipped int) {
	if r.Err != nil {
		failed++
	}
	for _, c := range r.Cases {
		switch {
		case c.Skipped:
			skipped++
		case c.Err != nil:
			failed++
		default:
			passed++
		}
	}
	return
}

// Checker verifies the contents of one vector file.
type Checker func(data []byte) ([]Case, error)

var checkers = map[string]Checker{}

// register adds the checker for a vector file. It is called from init in the
// file that implements the checker.
func register(file string, c Checker) {
	if _, dup := checkers[file]; dup {
		panic("conformance: duplicate checker for " + file)
	}
	checkers[file] = c
}

// Files lists the vector files that have checkers, sorted.
func Files() []string {
	names := make([]string, 0, len(checkers))
	for n := range checkers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// AllFiles lists the sixteen official vector files, whether or not mlskit
// checks them yet.
var AllFiles = []string{
	"crypto-basics.json", "deserialization.json", "key-schedule.json",
	"message-protection.json", "messages.json", "passive-client-handling-commit.json",
	"passive-client-random.json", "passive-client-welcome.json", "psk_secret.json",
	"secret-tree.json", "transcript-hashes.json", "tree-math.json",
	"tree-operations.json", "tree-validation.json", "treekem.json", "welcome.json",
}

// Run checks the contents of the named file.
func Run(file string, data []byte) Report {
	c, ok := checkers[file]
	if !ok {
		return Report{File: file, Err: fmt.Errorf("no checker for %s", file)}
	}
	cases, err := c(data)
	return Report{File: file, Cases: cases, Err: err}
}

// RunFile reads dir/file and checks it.
func RunFile(dir, file string) Report {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return Report{File: file, Err: err}
	}
	return Run(file, data)
}

// ErrNoVectors is returned by Dir when no vector directory can be found.
var ErrNoVectors = errors.New("official MLS test vectors not found: set MLS_TEST_VECTORS to a directory holding them " +
	"(the test-vectors folder of github.com/mlswg/mls-implementations), or place them in ../shared/test-vectors " +
	"beside the repository")

// Dir locates the vector directory: $MLS_TEST_VECTORS if set, otherwise
// ../shared/test-vectors relative to the repository root (the nearest parent
// of the working directory holding this module's go.mod).
func Dir() (string, error) {
	if d := os.Getenv("MLS_TEST_VECTORS"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && isOurModule(b) {
			v := filepath.Join(d, "..", "shared", "test-vectors")
			if st, err := os.Stat(v); err == nil && st.IsDir() {
				return v, nil
			}
			return "", ErrNoVectors
		}
		p := filepath.Dir(d)
		if p == d {
			return "", ErrNoVectors
		}
		d = p
	}
}

func isOurModule(gomod []byte) bool {
	const want = "module github.com/mlskit/mlskit"
	return len(gomod) >= len(want) && string(gomod[:len(want)]) == want
}

// Hex is a byte string written in JSON as lowercase hex.
type Hex []byte

// UnmarshalJSON decodes a hex string (null decodes to nil).
func (h *Hex) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// Num is a JSON integer that the vector files sometimes write as a string.
type Num uint64

// UnmarshalJSON accepts 5 and "5".
func (n *Num) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return err
	}
	*n = Num(v)
	return nil
}

// caseName formats a case label.
func caseName(i int, suite uint16) string {
	if suite == 0 {
		return fmt.Sprintf("case %d", i)
	}
	return fmt.Sprintf("suite %d case %d", suite, i)
}

// mismatch reports a value that differs from the vector's.
func mismatch(what string, got, want []byte) error {
	return fmt.Errorf("%s: got %x, want %x", what, got, want)
}
