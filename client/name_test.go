package client

import (
	"errors"
	"testing"

	"github.com/mlskit/mlskit/mls"
)

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"alice", "bob-2", "carol.smith", "Zoë", "José", "山田太郎", "たなかTanaka", "김민수", "Дмитрий", "user_01"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for name, bad := range map[string]string{
		"Cyrillic a in a Latin name": "\u0430lice",
		"Greek omicron":              "b\u03bfb",
		"right-to-left override":     "alice\u202egnp.exe",
		"zero-width space":           "al\u200bice",
		"zero-width joiner":          "ali\u200dce",
		"space":                      "alice smith",
		"escape sequence":            "alice\x1b[2K",
		"newline":                    "alice\nbob",
		"full-width letters":         "\uff41\uff4c\uff49\uff43\uff45",
		"decomposed accent":          "Zoe\u0308",
		"empty":                      "",
		"not UTF-8":                  "al\xffice",
	} {
		err := CheckName(bad)
		if !errors.Is(err, ErrBadName) {
			t.Errorf("%s (%+q): %v, want ErrBadName", name, bad, err)
		}
		var ue *UserError
		if !errors.As(err, &ue) {
			t.Errorf("%s: not a UserError: %v", name, err)
		}
	}
}

// A credential whose name CheckName refuses is refused by the group layer
// too, whatever the identity's own validator says.
func TestNameCheckerRefusesConfusableCredential(t *testing.T) {
	v := nameChecker{}
	if err := v.ValidateCredential(mls.BasicCredential([]byte("alice")), nil); err != nil {
		t.Fatal(err)
	}
	if err := v.ValidateCredential(mls.BasicCredential([]byte("\u0430lice")), nil); !errors.Is(err, ErrBadName) {
		t.Fatalf("confusable credential: %v", err)
	}
}
