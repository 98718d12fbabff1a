package client

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mtibben/confusables"
	"golang.org/x/text/secure/precis"

	"github.com/mlskit/mlskit/mls"
)

// ErrBadName: a user or member name that could be mistaken for another
// (mixed scripts, invisible or direction-changing characters, a form that
// is not the canonical one), or that is not a usable name at all.
var ErrBadName = errors.New("unsafe name")

// MaxNameLen bounds a name in bytes, as the delivery service bounds client
// ids.
const MaxNameLen = 255

// CheckName reports whether name is safe to show to people as an identity:
// the name a person registers with Init and the name every credential this
// client meets stands for (NameOf; Basic identities and X.509 common
// names). A name that two people could read as the same is what an
// attacker needs to pass as someone else in a member list (RFC 9750,
// Section 4: the authentication service binds names people recognise), so
// the rules refuse rather than repair:
//
//   - It must be valid UTF-8 and already in the canonical form of the
//     PRECIS UsernameCasePreserved profile (RFC 8265, Section 3.4): NFC,
//     no full-width forms, no spaces, control, format or default-ignorable
//     characters (zero-width joiners, bidi overrides such as U+202E), and
//     the Bidi Rule (RFC 5893) holds.
//   - Its letters come from one script, or from one of the combinations
//     Unicode's "highly restrictive" level allows (UTS #39, Section 5.2:
//     Latin with Han, Hiragana and Katakana; Latin with Han and Bopomofo;
//     Latin with Han and Hangul), so a Cyrillic "а" cannot stand in for a
//     Latin "a".
//
// The returned error wraps ErrBadName and says what is wrong, fit to print.
func CheckName(name string) error {
	bad := func(format string, args ...any) error {
		return &UserError{Msg: fmt.Sprintf("the name %+q "+format, append([]any{name}, args...)...), Err: ErrBadName}
	}
	if name == "" || len(name) > MaxNameLen {
		return bad("must be 1 to %d bytes long", MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return bad("is not valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) {
			return bad("contains the invisible or control character %U", r)
		}
	}
	canon, err := precis.UsernameCasePreserved.String(name)
	if err != nil {
		return bad("is not allowed as a user name (RFC 8265): %v", err)
	}
	if canon != name {
		return bad("is not in canonical form (it would be written %+q)", canon)
	}
	if scripts := scriptsOf(name); !singleScript(scripts) {
		return bad("mixes scripts (%s), so it could pass for another name: use letters of one script", strings.Join(scripts, ", "))
	}
	return nil
}

// LooksLatin reports whether name is a whole-script confusable of a Latin
// name (UTS #39, Section 4): it is written in one script other than Latin,
// and each of its characters has a Latin look-alike in Unicode's
// confusables data, so a person reading a Latin interface takes it for a
// Latin name (Cyrillic "аре" for "ape", or "Вера", which reads "Bepa").
// It returns that script. CheckName accepts such names, since many real
// names in Cyrillic or Greek are made of such letters; a program that shows
// names should mark them (mls does), and Confusable finds the member a name
// could pass for.
func LooksLatin(name string) (script string, ok bool) {
	scripts := scriptsOf(name)
	if len(scripts) != 1 || scripts[0] == "Latin" {
		return "", false
	}
	sk := confusables.Skeleton(name)
	if sk == name {
		return "", false
	}
	for _, s := range scriptsOf(sk) {
		if s != "Latin" {
			return "", false
		}
	}
	return scripts[0], true
}

// Confusable reports whether a person could read names a and b as the same
// name: they differ, but their UTS #39 skeletons (Section 4: each character
// mapped to its prototype look-alike in Unicode's confusables data) are
// equal, as for "alice" and the Cyrillic "аІісе".
func Confusable(a, b string) bool {
	return a != b && confusables.Skeleton(a) == confusables.Skeleton(b)
}

// scriptsOf lists the scripts of name's characters, leaving out Common and
// Inherited (digits, punctuation, combining marks), in name order.
func scriptsOf(name string) []string {
	seen := map[string]bool{}
	for _, r := range name {
		for s, t := range unicode.Scripts {
			if s != "Common" && s != "Inherited" && unicode.Is(t, r) {
				seen[s] = true
				break
			}
		}
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// highlyRestrictive are the script combinations UTS #39, Section 5.2
// allows besides a single script.
var highlyRestrictive = [][]string{
	{"Han", "Hiragana", "Katakana", "Latin"},
	{"Bopomofo", "Han", "Latin"},
	{"Hangul", "Han", "Latin"},
}

func singleScript(scripts []string) bool {
	if len(scripts) <= 1 {
		return true
	}
	for _, allowed := range highlyRestrictive {
		ok := true
		for _, s := range scripts {
			ok = ok && slices.Contains(allowed, s)
		}
		if ok {
			return true
		}
	}
	return false
}

// nameChecker refuses credentials whose name fails CheckName before the
// identity's own validator (Basic-only, or the X.509 authentication
// service) sees them, so a member named to look like another never enters
// this client's groups (RFC 9420, Section 5.3.1: the application decides
// which credentials it accepts).
type nameChecker struct{ next mls.CredentialValidator }

func (n nameChecker) ValidateCredential(c mls.Credential, key []byte) error {
	if err := CheckName(NameOf(c)); err != nil {
		return err
	}
	if n.next == nil {
		return mls.BasicCredentialValidator{}.ValidateCredential(c, key)
	}
	return n.next.ValidateCredential(c, key)
}

// ValidateSuccessor passes the identity validator's succession rule on.
func (n nameChecker) ValidateSuccessor(old, new mls.Credential) error {
	if s, ok := n.next.(mls.SuccessorValidator); ok {
		return s.ValidateSuccessor(old, new)
	}
	if NameOf(old) != NameOf(new) || old.Type != new.Type {
		return fmt.Errorf("credential of %q replaced by one of %q", NameOf(old), NameOf(new))
	}
	return nil
}
