package mls_test

import (
	"context"
	"fmt"

	"github.com/mlskit/mlskit/mls"
	"github.com/mlskit/mlskit/storage/memory"
)

// Saving a group after every change, in the order that keeps a crash from
// reusing a key or losing a message: a sender saves before it sends, a
// receiver saves before it acknowledges. The same code runs on
// storage/sqlite for state that survives restarts.
func ExampleGroup_Save() {
	ctx := context.Background()
	aliceStore, bobStore := memory.New(), memory.New()

	aliceSig, _ := mls.GenerateSignatureKeyPair(mls.X25519_AES128GCM_SHA256_Ed25519, nil)
	alice, _ := mls.NewGroup(nil, []byte("example group"), mls.BasicCredential([]byte("alice")), aliceSig, nil)

	// Bob stores his KeyPackage's private keys before publishing it.
	bobSig, _ := mls.GenerateSignatureKeyPair(mls.X25519_AES128GCM_SHA256_Ed25519, nil)
	bundle, _ := mls.NewKeyPackage(nil, mls.BasicCredential([]byte("bob")), bobSig, nil)
	if err := mls.SaveKeyPackage(ctx, bobStore, bundle); err != nil {
		panic(err)
	}

	res, _ := alice.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(bundle.KeyPackage)}})
	if err := alice.Save(ctx, aliceStore); err != nil { // the commit used a key: save before sending
		panic(err)
	}
	// ... the delivery service accepts the commit ...
	_ = alice.MergePendingCommit()
	_ = alice.Save(ctx, aliceStore)

	// Bob joins: the group is stored and his KeyPackage's keys deleted in
	// one write.
	bob, err := mls.JoinFromStore(ctx, nil, bobStore, res.Welcome, nil)
	if err != nil {
		panic(err)
	}

	msg, _ := alice.Encrypt([]byte("hello"), nil)
	if err := alice.Save(ctx, aliceStore); err != nil {
		return // not saved: do not send msg
	}
	// ... send msg ...

	r, _ := bob.Process(msg)
	if err := bob.Save(ctx, bobStore); err != nil {
		return // not saved: do not acknowledge msg; it will come again
	}
	// ... acknowledge msg to the delivery service ...

	// After a restart:
	bob, _ = mls.LoadGroup(ctx, nil, bobStore, []byte("example group"))
	fmt.Printf("%s, epoch %d\n", r.Application, bob.Epoch())
	// Output: hello, epoch 1
}
