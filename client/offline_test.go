package client_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mlskit/mlskit/client"
	"github.com/mlskit/mlskit/mls"
)

// wireFormat reads an MLSMessage's wire_format (RFC 9420, Section 6).
func wireFormat(msg []byte) uint16 { return binary.BigEndian.Uint16(msg[2:4]) }

// TestOfflinePublicHandshakesAndExternalJoin: offline commits go out as
// PublicMessage when asked (implementations such as Wire's accept only
// those) and are processed as such; an external commit is described by
// who joined, never as "0 added"; and a member whose implementation sends
// only PublicMessage handshakes (a proposal, a commit) is followed from
// files.
func TestOfflinePublicHandshakesAndExternalJoin(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	alice, err := client.Init(ctx, filepath.Join(root, "alice"), client.InitOptions{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := client.Init(ctx, filepath.Join(root, "bob"), client.InitOptions{Name: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if err := alice.CreateOfflineGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	kp, err := bob.NewKeyPackageFile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := alice.CommitFiles(ctx, "g", client.CommitFilesOptions{KeyPackages: [][]byte{kp}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinWelcomeFile(ctx, c1.Welcome); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		public bool
		want   uint16 // wire_format: 1 PublicMessage, 2 PrivateMessage
	}{{true, 1}, {false, 2}} {
		c, err := alice.CommitFiles(ctx, "g", client.CommitFilesOptions{PublicMessage: tc.public})
		if err != nil {
			t.Fatal(err)
		}
		if got := wireFormat(c.Commit); got != tc.want {
			t.Fatalf("PublicMessage %v: wire_format %d, want %d", tc.public, got, tc.want)
		}
		evs, err := bob.ProcessFile(ctx, "g", c.Commit)
		if err != nil {
			t.Fatalf("PublicMessage %v: bob: %v", tc.public, err)
		}
		if len(evs) != 1 || evs[0].Kind != client.EventUpdated || evs[0].From != "alice" || evs[0].Epoch != c.Epoch {
			t.Fatalf("PublicMessage %v: bob saw %+v", tc.public, evs)
		}
	}

	// Dave joins by external commit from the GroupInfo alice's last commit
	// produced.
	last, err := alice.CommitFiles(ctx, "g", client.CommitFilesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.ProcessFile(ctx, "g", last.Commit); err != nil {
		t.Fatal(err)
	}
	sig, err := mls.GenerateSignatureKeyPair(client.DefaultSuite, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Dave's implementation sends handshakes only as PublicMessage.
	join, err := mls.ExternalJoin(&mls.Config{PublicHandshakes: true}, last.GroupInfo, mls.BasicCredential([]byte("dave")), sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	if wireFormat(join.Commit) != 1 {
		t.Fatal("an external commit is not a PublicMessage")
	}
	for _, who := range []*client.Client{alice, bob} {
		evs, err := who.ProcessFile(ctx, "g", join.Commit)
		if err != nil {
			t.Fatalf("%s: %v", who.Identity().Name, err)
		}
		if len(evs) != 1 {
			t.Fatalf("%s: %d events: %+v", who.Identity().Name, len(evs), evs)
		}
		e := evs[0]
		if e.Kind != client.EventJoinedExternally || e.From != "dave" || !slices.Equal(e.Members, []string{"dave"}) ||
			!strings.Contains(e.Text, "dave joined the group") || strings.Contains(e.Text, "0 added") || e.Epoch != join.Group.Epoch() {
			t.Fatalf("%s: %+v", who.Identity().Name, e)
		}
		st, err := who.Status(ctx, "g")
		if err != nil {
			t.Fatal(err)
		}
		if string(st.Authenticator) != string(join.Group.EpochAuthenticator()) {
			t.Fatalf("%s disagrees with dave on the epoch authenticator", who.Identity().Name)
		}
	}

	// Dave's PublicMessage proposal and commit, processed from files.
	dave := join.Group
	prop, err := dave.ProposeUpdate(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if wireFormat(prop) != 1 {
		t.Fatal("dave's proposal is not a PublicMessage")
	}
	for _, who := range []*client.Client{alice, bob} {
		evs, err := who.ProcessFile(ctx, "g", prop)
		if err != nil || len(evs) != 1 || evs[0].From != "dave" || !strings.Contains(evs[0].Text, "dave proposed a change (type 2)") {
			t.Fatalf("%s: proposal: %+v, %v", who.Identity().Name, evs, err)
		}
	}
	// Alice commits it (by reference); dave and bob follow.
	c, err := alice.CommitFiles(ctx, "g", client.CommitFilesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.ProcessFile(ctx, "g", c.Commit); err != nil {
		t.Fatal(err)
	}
	r, err := dave.Process(c.Commit)
	if err != nil || r.Commit == nil {
		t.Fatalf("dave: %v", err)
	}
	if err := dave.MergeStagedCommit(r.Commit); err != nil {
		t.Fatal(err)
	}
	// Dave commits; his commit is a PublicMessage too.
	dc, err := dave.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if wireFormat(dc.Commit) != 1 {
		t.Fatal("dave's commit is not a PublicMessage")
	}
	if err := dave.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	for _, who := range []*client.Client{alice, bob} {
		evs, err := who.ProcessFile(ctx, "g", dc.Commit)
		if err != nil || len(evs) != 1 || evs[0].Text != fmt.Sprintf("dave updated their keys (epoch %d)", dave.Epoch()) {
			t.Fatalf("%s: dave's commit: %+v, %v", who.Identity().Name, evs, err)
		}
		st, err := who.Status(ctx, "g")
		if err != nil || string(st.Authenticator) != string(dave.EpochAuthenticator()) {
			t.Fatalf("%s disagrees with dave after his commit (%v)", who.Identity().Name, err)
		}
	}
}
