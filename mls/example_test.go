package mls_test

import (
	"fmt"

	"github.com/mlskit/mlskit/mls"
)

// Example shows the main flow: create a group, add a member, exchange a
// message.
func Example() {
	cs := mls.X25519_AES128GCM_SHA256_Ed25519
	cfg := &mls.Config{}

	// Alice creates a group.
	aliceKey, _ := mls.GenerateSignatureKeyPair(cs, nil)
	alice, err := mls.NewGroup(cfg, []byte("team"), mls.BasicCredential([]byte("alice")), aliceKey, nil)
	if err != nil {
		panic(err)
	}

	// Bob publishes a KeyPackage; Alice adds him.
	bobKey, _ := mls.GenerateSignatureKeyPair(cs, nil)
	bobKP, _ := mls.NewKeyPackage(cfg, mls.BasicCredential([]byte("bob")), bobKey, nil)
	res, err := alice.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(bobKP.KeyPackage)}})
	if err != nil {
		panic(err)
	}
	// After the delivery service accepts the commit:
	alice.MergePendingCommit()

	// Bob joins from the Welcome.
	bob, err := mls.JoinFromWelcome(cfg, res.Welcome, bobKP, nil)
	if err != nil {
		panic(err)
	}

	msg, _ := alice.Encrypt([]byte("hi bob"), nil)
	got, err := bob.Process(msg)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s (epoch %d, %d members)\n", got.Application, bob.Epoch(), len(bob.Members()))
	// Output: hi bob (epoch 1, 2 members)
}

// ExampleGroup_Process shows stage-then-merge for a commit from another
// member.
func ExampleGroup_Process() {
	cs := mls.X25519_AES128GCM_SHA256_Ed25519
	cfg := &mls.Config{}
	aKey, _ := mls.GenerateSignatureKeyPair(cs, nil)
	alice, _ := mls.NewGroup(cfg, []byte("g"), mls.BasicCredential([]byte("alice")), aKey, nil)
	bKey, _ := mls.GenerateSignatureKeyPair(cs, nil)
	bKP, _ := mls.NewKeyPackage(cfg, mls.BasicCredential([]byte("bob")), bKey, nil)
	res, _ := alice.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(bKP.KeyPackage)}})
	alice.MergePendingCommit()
	bob, _ := mls.JoinFromWelcome(cfg, res.Welcome, bKP, nil)

	// Bob refreshes his keys with an empty commit.
	upd, _ := bob.Commit(nil)
	bob.MergePendingCommit()

	r, err := alice.Process(upd.Commit)
	if err != nil {
		panic(err)
	}
	fmt.Println("staged epoch", r.Commit.Epoch, "path updated:", r.Commit.PathUpdated)
	alice.MergeStagedCommit(r.Commit)
	fmt.Println("now at epoch", alice.Epoch())
	// Output:
	// staged epoch 2 path updated: true
	// now at epoch 2
}
