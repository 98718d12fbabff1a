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

// Whole-script confusables (UTS #39, Section 4): one script, every letter
// with a Latin look-alike. They pass CheckName (real names are written
// so) and are marked when shown.
func TestLooksLatin(t *testing.T) {
	for _, tc := range []struct {
		name, script string
	}{
		{"\u0430\u0406\u0456\u0441\u0435", "Cyrillic"},     // аІісе, reads "alice"
		{"\u0430\u0440\u0435", "Cyrillic"},                 // аре, reads "ape"
		{"\u0412\u0435\u0440\u0430", "Cyrillic"},           // Вера, reads "Bepa"
		{"\u039a\u039f\u03a1", "Greek"},                    // ΚΟΡ, reads "KOP"
		{"alice", ""},                                      // Latin itself
		{"\u0414\u043c\u0438\u0442\u0440\u0438\u0439", ""}, // Дмитрий: д, м, т... have no Latin look-alike
		{"\u0430lice", ""},                                 // mixed: CheckName refuses it
		{"\u5c71\u7530", ""},                               // 山田
		{"1234", ""},                                       // no letters
	} {
		script, ok := LooksLatin(tc.name)
		if ok != (tc.script != "") || script != tc.script {
			t.Errorf("LooksLatin(%+q) = %q, %v; want %q", tc.name, script, ok, tc.script)
		}
		if ok {
			if err := CheckName(tc.name); err != nil {
				t.Errorf("CheckName refuses the single-script %+q: %v", tc.name, err)
			}
		}
	}
}

func TestConfusable(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"alice", "\u0430\u0406\u0456\u0441\u0435", true}, // Cyrillic аІісе
		{"alice", "a\u0406ice", true},                     // one Cyrillic Byelorussian-Ukrainian I
		{"paypal", "p\u0430yp\u0430l", true},
		{"alice", "alice", false}, // the same name is not a look-alike
		{"alice", "bob", false},
		{"alice", "Alice", false},
	} {
		if got := Confusable(tc.a, tc.b); got != tc.want {
			t.Errorf("Confusable(%+q, %+q) = %v", tc.a, tc.b, got)
		}
	}
}
