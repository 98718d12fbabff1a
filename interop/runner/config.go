package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// A config file (configs-*.json) holds named scripts. The format is the
// working group's interop-test-config; where that document is incomplete, the
// working group's test runner (interop/test-runner in mls-implementations) is
// the definition, and this package follows it, except where noted on the
// step types below.

// Config is one config file.
type Config struct {
	Scripts map[string]Script `json:"scripts"`
}

// Names returns the script names, sorted.
func (c *Config) Names() []string {
	names := make([]string, 0, len(c.Scripts))
	for n := range c.Scripts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Script is a sequence of steps. A step refers to an earlier step's output
// by its index in the script.
type Script []Step

// Step is one action of a script, with its parameters decoded strictly.
type Step struct {
	Action string
	Actor  string
	params params // the action's parameter struct
}

// ParseConfig decodes a config file strictly: unknown actions, unknown
// fields, and references to steps that are not earlier in the script are
// errors, so that a script never silently means something else.
func ParseConfig(data []byte) (*Config, error) {
	var c Config
	if err := strictJSON(data, &c); err != nil {
		return nil, err
	}
	if len(c.Scripts) == 0 {
		return nil, errors.New("config has no scripts")
	}
	return &c, nil
}

// ParseScript decodes one script (a JSON array of steps).
func ParseScript(data []byte) (Script, error) {
	var s Script
	if err := strictJSON(data, &s); err != nil {
		return nil, err
	}
	return s, nil
}

func strictJSON(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

// UnmarshalJSON decodes and checks a script.
func (s *Script) UnmarshalJSON(data []byte) error {
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return err
	}
	out := make(Script, len(raws))
	for i, raw := range raws {
		var head struct {
			Action string `json:"action"`
			Actor  string `json:"actor"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return fmt.Errorf("step %d: %w", i, err)
		}
		mk, ok := actions[head.Action]
		if !ok {
			return fmt.Errorf("step %d: unknown action %q", i, head.Action)
		}
		p := mk()
		if err := strictJSON(raw, p); err != nil {
			return fmt.Errorf("step %d (%s): %w", i, head.Action, err)
		}
		out[i] = Step{Action: head.Action, Actor: head.Actor, params: p}
		if err := p.check(i, out[i]); err != nil {
			return fmt.Errorf("step %d (%s): %w", i, head.Action, err)
		}
	}
	*s = out
	return nil
}

// Actors lists every actor the script names, in order of first appearance.
func (s Script) Actors() []string {
	var out []string
	add := func(names ...string) {
		for _, n := range names {
			if n != "" && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	for _, st := range s {
		add(st.Actor)
		add(st.params.actors()...)
	}
	return out
}

// params is implemented by every action's parameter struct.
type params interface {
	// check validates the step: actors present, indices earlier.
	check(index int, st Step) error
	// actors lists the actors the step names besides Actor.
	actors() []string
}

var actions = map[string]func() params{
	"createGroup":                    func() params { return new(createGroupStep) },
	"createKeyPackage":               func() params { return new(createKeyPackageStep) },
	"joinGroup":                      func() params { return new(joinGroupStep) },
	"externalJoin":                   func() params { return new(externalJoinStep) },
	"installExternalPSK":             func() params { return new(installExternalPSKStep) },
	"groupInfo":                      func() params { return new(groupInfoStep) },
	"addProposal":                    func() params { return new(addProposalStep) },
	"updateProposal":                 func() params { return new(updateProposalStep) },
	"removeProposal":                 func() params { return new(removeProposalStep) },
	"externalPSKProposal":            func() params { return new(externalPSKProposalStep) },
	"resumptionPSKProposal":          func() params { return new(resumptionPSKProposalStep) },
	"groupContextExtensionsProposal": func() params { return new(groupContextExtensionsProposalStep) },
	"fullCommit":                     func() params { return new(fullCommitStep) },
	"commit":                         func() params { return new(commitStep) },
	"handleCommit":                   func() params { return new(handleCommitStep) },
	"handlePendingCommit":            func() params { return new(handlePendingCommitStep) },
	"protect":                        func() params { return new(protectStep) },
	"unprotect":                      func() params { return new(unprotectStep) },
	"reinit":                         func() params { return new(reinitStep) },
	"branch":                         func() params { return new(branchStep) },
	"newMemberAddProposal":           func() params { return new(newMemberAddProposalStep) },
	"addExternalSigner":              func() params { return new(addExternalSignerStep) },
	"externalSignerProposal":         func() params { return new(externalSignerProposalStep) },
}

// Actions lists the supported actions, sorted.
func Actions() []string {
	out := make([]string, 0, len(actions))
	for a := range actions {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// head is embedded in every parameter struct so that strict decoding accepts
// the two common fields.
type head struct {
	Action string `json:"action"`
	Actor  string `json:"actor"`
}

func needActor(st Step) error {
	if st.Actor == "" {
		return errors.New("missing actor")
	}
	return nil
}

func earlier(index int, what string, refs ...int) error {
	for _, r := range refs {
		if r < 0 || r >= index {
			return fmt.Errorf("%s %d is not an earlier step", what, r)
		}
	}
	return nil
}

func needNames(what string, names ...string) error {
	for _, n := range names {
		if n == "" {
			return fmt.Errorf("empty %s", what)
		}
	}
	return nil
}

// Extension is an extension as config files write it: a type and base64 data.
type Extension struct {
	Type uint16 `json:"extension_type"`
	Data []byte `json:"extension_data"`
}

// ProposalSpec describes a proposal by value (fullCommit, commit) or by an
// external signer (externalSignerProposal). Indices refer to earlier steps.
type ProposalSpec struct {
	ProposalType      string      `json:"proposalType"`
	KeyPackage        int         `json:"keyPackage"` // createKeyPackage step
	Removed           string      `json:"removed"`    // actor
	PSKID             int         `json:"pskID"`      // installExternalPSK step
	EpochID           uint64      `json:"epochID"`
	Extensions        []Extension `json:"extensions"`
	ChangeGroupID     bool        `json:"changeGroupID"`     // reinit
	ChangeCipherSuite bool        `json:"changeCipherSuite"` // reinit
}

func (p ProposalSpec) check(index int) error {
	switch p.ProposalType {
	case "add":
		return earlier(index, "keyPackage", p.KeyPackage)
	case "remove":
		return needNames("removed", p.Removed)
	case "externalPSK":
		return earlier(index, "pskID", p.PSKID)
	case "resumptionPSK", "groupContextExtensions", "reinit":
		return nil
	}
	return fmt.Errorf("unknown proposalType %q", p.ProposalType)
}

// createGroup: the actor creates a group, then adds members with a Commit of
// Add proposals by value; every member must reach the creator's epoch
// authenticator.
type createGroupStep struct {
	head
	Members []string `json:"members"`
}

func (p *createGroupStep) check(i int, st Step) error {
	return errors.Join(needActor(st), needNames("member", p.Members...))
}
func (p *createGroupStep) actors() []string { return p.Members }

// createKeyPackage: a new client for the actor makes a KeyPackage.
type createKeyPackageStep struct{ head }

func (p *createKeyPackageStep) check(i int, st Step) error { return needActor(st) }
func (p *createKeyPackageStep) actors() []string           { return nil }

// joinGroup: the actor joins with the Welcome of an earlier commit step.
// Unlike the working group's runner, a ratchet tree that step returned is
// passed along, and the epoch authenticator is checked against the commit's.
type joinGroupStep struct {
	head
	Welcome int `json:"welcome"`
}

func (p *joinGroupStep) check(i int, st Step) error {
	return errors.Join(needActor(st), earlier(i, "welcome", p.Welcome))
}
func (p *joinGroupStep) actors() []string { return nil }

// externalJoin: the joiner joins by external Commit, from the actor's
// GroupInfo; the actor and members process the Commit.
type externalJoinStep struct {
	head
	Joiner       string   `json:"joiner"`
	Members      []string `json:"members"`
	ExternalTree bool     `json:"externalTree"`
	RemovePrior  bool     `json:"removePrior"`
	PSKs         []int    `json:"psks"` // installExternalPSK steps
}

func (p *externalJoinStep) check(i int, st Step) error {
	return errors.Join(needActor(st), needNames("joiner", p.Joiner), needNames("member", p.Members...), earlier(i, "psk", p.PSKs...))
}
func (p *externalJoinStep) actors() []string { return append([]string{p.Joiner}, p.Members...) }

// installExternalPSK: a fresh random PSK is stored at each listed client
// (on its state, or else its pending transaction).
type installExternalPSKStep struct {
	head
	Clients []string `json:"clients"`
}

func (p *installExternalPSKStep) check(i int, st Step) error {
	if len(p.Clients) == 0 {
		return errors.New("no clients")
	}
	return needNames("client", p.Clients...)
}
func (p *installExternalPSKStep) actors() []string { return p.Clients }

// groupInfo: the actor publishes a GroupInfo.
type groupInfoStep struct {
	head
	ExternalTree bool `json:"externalTree"`
}

func (p *groupInfoStep) check(i int, st Step) error { return needActor(st) }
func (p *groupInfoStep) actors() []string           { return nil }

type addProposalStep struct {
	head
	KeyPackage int `json:"keyPackage"`
}

func (p *addProposalStep) check(i int, st Step) error {
	return errors.Join(needActor(st), earlier(i, "keyPackage", p.KeyPackage))
}
func (p *addProposalStep) actors() []string { return nil }

type updateProposalStep struct{ head }

func (p *updateProposalStep) check(i int, st Step) error { return needActor(st) }
func (p *updateProposalStep) actors() []string           { return nil }

type removeProposalStep struct {
	head
	Removed string `json:"removed"`
}

func (p *removeProposalStep) check(i int, st Step) error {
	return errors.Join(needActor(st), needNames("removed", p.Removed))
}
func (p *removeProposalStep) actors() []string { return nil }

type externalPSKProposalStep struct {
	head
	PSKID int `json:"pskID"`
}

func (p *externalPSKProposalStep) check(i int, st Step) error {
	return errors.Join(needActor(st), earlier(i, "pskID", p.PSKID))
}
func (p *externalPSKProposalStep) actors() []string { return nil }

type resumptionPSKProposalStep struct {
	head
	EpochID uint64 `json:"epochID"`
}

func (p *resumptionPSKProposalStep) check(i int, st Step) error { return needActor(st) }
func (p *resumptionPSKProposalStep) actors() []string           { return nil }

type groupContextExtensionsProposalStep struct {
	head
	Extensions []Extension `json:"extensions"`
}

func (p *groupContextExtensionsProposalStep) check(i int, st Step) error { return needActor(st) }
func (p *groupContextExtensionsProposalStep) actors() []string           { return nil }

// commitFlags accepts both spellings the config files use for the two
// flags (force_path and forcePath, external_tree and externalTree). The
// working group's runner reads only one spelling per action and so ignores,
// for example, "forcePath" in its branch scripts; this runner honours both.
type commitFlags struct {
	ForcePath         bool `json:"force_path"`
	ForcePathCamel    bool `json:"forcePath"`
	ExternalTree      bool `json:"external_tree"`
	ExternalTreeCamel bool `json:"externalTree"`
}

func (f commitFlags) forcePath() bool    { return f.ForcePath || f.ForcePathCamel }
func (f commitFlags) externalTree() bool { return f.ExternalTree || f.ExternalTreeCamel }

func checkSpecs(i int, specs []ProposalSpec) error {
	var errs []error
	for _, s := range specs {
		if s.ProposalType == "reinit" {
			errs = append(errs, errors.New("a reinit proposal cannot be committed by value"))
		}
		errs = append(errs, s.check(i))
	}
	return errors.Join(errs...)
}

// fullCommit: the actor commits (proposals by reference and by value) and
// applies its commit; members process it and joiners join, all reaching the
// committer's epoch authenticator.
type fullCommitStep struct {
	head
	commitFlags
	ByReference []int          `json:"byReference"`
	ByValue     []ProposalSpec `json:"byValue"`
	Members     []string       `json:"members"`
	Joiners     []string       `json:"joiners"`
}

func (p *fullCommitStep) check(i int, st Step) error {
	return errors.Join(needActor(st), earlier(i, "byReference", p.ByReference...), checkSpecs(i, p.ByValue),
		needNames("member", p.Members...), needNames("joiner", p.Joiners...))
}
func (p *fullCommitStep) actors() []string { return append(slices.Clone(p.Members), p.Joiners...) }

// commit: the actor commits without applying it.
type commitStep struct {
	head
	commitFlags
	ByReference []int          `json:"byReference"`
	ByValue     []ProposalSpec `json:"byValue"`
}

func (p *commitStep) check(i int, st Step) error {
	return errors.Join(needActor(st), earlier(i, "byReference", p.ByReference...), checkSpecs(i, p.ByValue))
}
func (p *commitStep) actors() []string { return nil }

// handleCommit: the actor processes proposals and a commit from earlier
// steps. Unlike the working group's runner, the epoch authenticator is
// checked against everyone else's for the same commit.
type handleCommitStep struct {
	head
	Commit      int   `json:"commit"`
	ByReference []int `json:"byReference"`
}

func (p *handleCommitStep) check(i int, st Step) error {
	return errors.Join(needActor(st), earlier(i, "commit", p.Commit), earlier(i, "byReference", p.ByReference...))
}
func (p *handleCommitStep) actors() []string { return nil }

// handlePendingCommit: the actor applies its own last commit.
type handlePendingCommitStep struct{ head }

func (p *handlePendingCommitStep) check(i int, st Step) error { return needActor(st) }
func (p *handlePendingCommitStep) actors() []string           { return nil }

// protect: the actor encrypts application data. As in the working group's
// runner, the strings are used as bytes (not base64).
type protectStep struct {
	head
	AuthenticatedData string `json:"authenticatedData"`
	Plaintext         string `json:"plaintext"`
}

func (p *protectStep) check(i int, st Step) error { return needActor(st) }
func (p *protectStep) actors() []string           { return nil }

// unprotect: the actor decrypts an earlier protect step's message and must
// get back exactly its authenticated data and plaintext.
type unprotectStep struct {
	head
	Ciphertext int `json:"ciphertext"`
}

func (p *unprotectStep) check(i int, st Step) error {
	return errors.Join(needActor(st), earlier(i, "ciphertext", p.Ciphertext))
}
func (p *unprotectStep) actors() []string { return nil }

// reinit: the proposer (or an external signer's earlier proposal) proposes
// ReInit, the committer commits it, everyone moves to the new group through
// the welcomer's Welcome.
type reinitStep struct {
	head
	commitFlags
	Proposer               string      `json:"proposer"`
	Committer              string      `json:"committer"`
	Welcomer               string      `json:"welcomer"`
	Members                []string    `json:"members"`
	ChangeCipherSuite      bool        `json:"changeCipherSuite"`
	ChangeGroupID          bool        `json:"changeGroupID"`
	Extensions             []Extension `json:"extensions"`
	ExternalReinitProposal int         `json:"externalReinitProposal"`
}

func (p *reinitStep) check(i int, st Step) error {
	errs := []error{needNames("committer", p.Committer), needNames("welcomer", p.Welcomer), needNames("member", p.Members...)}
	if p.Proposer == "" {
		errs = append(errs, earlier(i, "externalReinitProposal", p.ExternalReinitProposal))
	}
	return errors.Join(errs...)
}
func (p *reinitStep) actors() []string {
	return append([]string{p.Proposer, p.Committer, p.Welcomer}, p.Members...)
}

// branch: the actor creates a subgroup with fresh KeyPackages of members.
type branchStep struct {
	head
	commitFlags
	Members    []string    `json:"members"`
	Extensions []Extension `json:"extensions"`
}

func (p *branchStep) check(i int, st Step) error {
	return errors.Join(needActor(st), needNames("member", p.Members...))
}
func (p *branchStep) actors() []string { return p.Members }

// newMemberAddProposal: the joiner proposes to add itself, from the actor's
// GroupInfo.
type newMemberAddProposalStep struct {
	head
	Joiner string `json:"joiner"`
}

func (p *newMemberAddProposalStep) check(i int, st Step) error {
	return errors.Join(needActor(st), needNames("joiner", p.Joiner))
}
func (p *newMemberAddProposalStep) actors() []string { return []string{p.Joiner} }

// addExternalSigner: the signer gets an external sender identity and the
// actor proposes to add it to the group's external_senders.
type addExternalSignerStep struct {
	head
	Signer string `json:"signer"`
}

func (p *addExternalSignerStep) check(i int, st Step) error {
	return errors.Join(needActor(st), needNames("signer", p.Signer))
}
func (p *addExternalSignerStep) actors() []string { return []string{p.Signer} }

// externalSignerProposal: the actor (an external signer) proposes, from the
// member's GroupInfo.
type externalSignerProposalStep struct {
	head
	Member      string       `json:"member"`
	Description ProposalSpec `json:"description"`
}

func (p *externalSignerProposalStep) check(i int, st Step) error {
	return errors.Join(needActor(st), needNames("member", p.Member), p.Description.check(i))
}
func (p *externalSignerProposalStep) actors() []string { return []string{p.Member} }

// ErrNoConfigs is returned by Dir when the config directory is missing.
var ErrNoConfigs = errors.New("MLS interop config scripts not found: set MLS_INTEROP_CONFIGS to a directory " +
	"holding configs-*.json, or place them in ../shared/interop beside the repository")

// Dir locates the directory of config files: $MLS_INTEROP_CONFIGS if set,
// otherwise ../shared/interop relative to the repository root (the nearest
// parent of the working directory whose go.mod is this module's).
func Dir() (string, error) {
	if d := os.Getenv("MLS_INTEROP_CONFIGS"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil &&
			strings.HasPrefix(string(b), "module github.com/mlskit/mlskit\n") {
			v := filepath.Join(d, "..", "shared", "interop")
			if st, err := os.Stat(v); err == nil && st.IsDir() {
				return v, nil
			}
			return "", ErrNoConfigs
		}
		p := filepath.Dir(d)
		if p == d {
			return "", ErrNoConfigs
		}
		d = p
	}
}

// LoadDir parses every configs-*.json in dir, keyed by file name.
func LoadDir(dir string) (map[string]*Config, error) {
	files, err := filepath.Glob(filepath.Join(dir, "configs-*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w (no configs-*.json in %s)", ErrNoConfigs, dir)
	}
	out := map[string]*Config{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		c, err := ParseConfig(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
		out[filepath.Base(f)] = c
	}
	return out, nil
}
