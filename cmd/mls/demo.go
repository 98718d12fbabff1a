package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/mlskit/mlskit/mls"
)

// runDemo implements "mls demo": an in-process group that goes through the
// life of a real one, printing each step with its time.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mls demo", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: mls demo [-n N] [-suite N] [-public-handshakes]\n\n"+
			"Runs an in-process group of N members: add, update, remove, exchange\nmessages, and prints what happened with timings.\n\nflags:\n")
		fs.PrintDefaults()
	}
	n := fs.Int("n", 5, "number of members")
	suite := fs.Uint("suite", uint(mls.X25519_AES128GCM_SHA256_Ed25519), "cipher suite (RFC 9420 code point)")
	public := fs.Bool("public-handshakes", false, "send proposals and commits as PublicMessage")
	pos, code := parseFlags(fs, args, false, stdout, stderr)
	if code != flagsOK {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "mls demo: unexpected argument %q\n", clean(pos[0]))
		return 2
	}
	if *n < 2 {
		fmt.Fprintln(stderr, "mls demo: -n must be at least 2")
		return 2
	}
	if err := demo(stdout, *n, mls.CipherSuite(*suite), *public); err != nil {
		fmt.Fprintln(stderr, "mls demo:", err)
		return 1
	}
	return 0
}

type demoMember struct {
	name   string
	key    *mls.SignatureKeyPair
	bundle *mls.KeyPackageBundle
	g      *mls.Group
}

func demo(w io.Writer, n int, cs mls.CipherSuite, public bool) error {
	cfg := &mls.Config{PublicHandshakes: public}
	step := func(what string, f func() error) error {
		start := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		fmt.Fprintf(w, "%-58s %10s\n", what, time.Since(start).Round(time.Microsecond))
		return nil
	}
	mode := "private"
	if public {
		mode = "public"
	}
	fmt.Fprintf(w, "mlskit demo: %d members, cipher suite 0x%04x, %s handshakes\n\n", n, uint16(cs), mode)

	members := make([]*demoMember, n)
	if err := step(fmt.Sprintf("%d clients make signing keys and KeyPackages", n), func() error {
		for i := range members {
			m := &demoMember{name: fmt.Sprintf("member-%d", i)}
			var err error
			if m.key, err = mls.GenerateSignatureKeyPair(cs, nil); err != nil {
				return err
			}
			if i > 0 {
				if m.bundle, err = mls.NewKeyPackage(cfg, mls.BasicCredential([]byte(m.name)), m.key, nil); err != nil {
					return err
				}
			}
			members[i] = m
		}
		return nil
	}); err != nil {
		return err
	}
	creator := members[0]
	if err := step("member-0 creates the group", func() (err error) {
		creator.g, err = mls.NewGroup(cfg, []byte("demo-group"), mls.BasicCredential([]byte(creator.name)), creator.key, nil)
		return err
	}); err != nil {
		return err
	}
	var res *mls.CommitResult
	if err := step(fmt.Sprintf("member-0 adds %d members in one commit", n-1), func() (err error) {
		var props []*mls.Proposal
		for _, m := range members[1:] {
			props = append(props, mls.AddProposal(m.bundle.KeyPackage))
		}
		if res, err = creator.g.Commit(&mls.CommitOptions{Proposals: props}); err != nil {
			return err
		}
		return creator.g.MergePendingCommit()
	}); err != nil {
		return err
	}
	fmt.Fprintf(w, "  commit %d bytes, Welcome %d bytes\n", len(res.Commit), len(res.Welcome))
	if err := step(fmt.Sprintf("%d members join from the Welcome", n-1), func() (err error) {
		for _, m := range members[1:] {
			if m.g, err = mls.JoinFromWelcome(cfg, res.Welcome, m.bundle, nil); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := agree(w, members); err != nil {
		return err
	}

	commitBy := func(who *demoMember, what string, opts *mls.CommitOptions) error {
		return step(what, func() error {
			r, err := who.g.Commit(opts)
			if err != nil {
				return err
			}
			for _, m := range members {
				if m == who || m.g == nil {
					continue
				}
				rc, err := m.g.Process(r.Commit)
				if err != nil {
					return fmt.Errorf("%s: %w", m.name, err)
				}
				if err := m.g.MergeStagedCommit(rc.Commit); err != nil {
					return err
				}
				if rc.Commit.SelfRemoved {
					fmt.Fprintf(w, "  %s learns it was removed\n", m.name)
					m.g = nil
				}
			}
			return who.g.MergePendingCommit()
		})
	}
	second := members[1]
	if err := commitBy(second, "member-1 updates its keys (commit with UpdatePath)", nil); err != nil {
		return err
	}
	last := members[n-1]
	// A member cannot commit its own removal (RFC 9420, Section 12.2): with
	// two members, member-0 removes member-1.
	remover := second
	if last == second {
		remover = members[0]
	}
	if err := commitBy(remover, fmt.Sprintf("%s removes %s", remover.name, last.name),
		&mls.CommitOptions{Proposals: []*mls.Proposal{mls.RemoveProposal(last.g.LeafIndex())}}); err != nil {
		return err
	}
	members = members[:n-1]
	if err := agree(w, members); err != nil {
		return err
	}
	var msgs [][]byte
	if err := step(fmt.Sprintf("each of %d members encrypts a message", len(members)), func() error {
		for _, m := range members {
			ct, err := m.g.Encrypt([]byte("hello from "+m.name), nil)
			if err != nil {
				return err
			}
			msgs = append(msgs, ct)
		}
		return nil
	}); err != nil {
		return err
	}
	count := 0
	if err := step("every member decrypts every other member's message", func() error {
		for i, ct := range msgs {
			for j, m := range members {
				if i == j {
					continue
				}
				r, err := m.g.Process(ct)
				if err != nil {
					return err
				}
				if !bytes.HasPrefix(r.Application, []byte("hello from ")) {
					return fmt.Errorf("unexpected plaintext")
				}
				count++
			}
		}
		return nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(w, "  %d messages decrypted; the removed member's copy of the group is gone\n", count)
	fmt.Fprintf(w, "\nfinal epoch %d, %d members, epoch authenticator %x\n", creator.g.Epoch(), len(creator.g.Members()),
		creator.g.EpochAuthenticator()[:8])
	return nil
}

func agree(w io.Writer, members []*demoMember) error {
	ref := members[0].g.EpochAuthenticator()
	for _, m := range members[1:] {
		if !bytes.Equal(m.g.EpochAuthenticator(), ref) {
			return fmt.Errorf("%s disagrees on the epoch authenticator", m.name)
		}
	}
	fmt.Fprintf(w, "  all %d members agree: epoch %d, authenticator %x…\n", len(members), members[0].g.Epoch(), ref[:8])
	return nil
}
