package mls_test

import (
	"bytes"
	"reflect"
	"runtime"
	"testing"

	"github.com/mlskit/mlskit/internal/fakemsg"
	"github.com/mlskit/mlskit/mls"
)

// InspectMessage returns copies of the few fields it reads: a server that
// keeps MessageInfos (their GroupID in a cache, a record) must not keep the
// messages, which may be megabytes, alive with them.
func TestInspectMessageKeepsNoBuffer(t *testing.T) {
	const n, size = 16, 1 << 20
	big := bytes.Repeat([]byte{7}, size)
	gid := []byte("group-1")
	msgs := map[string][]byte{
		"private": fakemsg.PrivateMessage(gid, 3, fakemsg.ContentApplication, []byte("sd"), big),
		"public":  fakemsg.PublicMessage(gid, 3, fakemsg.SenderMember, 0, fakemsg.ContentApplication, big),
		"welcome": fakemsg.Welcome(1, [][]byte{[]byte("ref-1")}, big),
	}
	for name, msg := range msgs {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		kept := make([]*mls.MessageInfo, n)
		for i := range kept {
			info, err := mls.InspectMessage(msg)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if info.WireFormat != mls.WireFormatWelcome && (!bytes.Equal(info.GroupID, gid) || info.Epoch != 3) {
				t.Fatalf("%s: %+v", name, info)
			}
			kept[i] = info
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		if grew := int64(ms.HeapAlloc) - int64(before); grew > n*size/4 {
			t.Errorf("%s: %d MessageInfos of %d-byte messages keep %d bytes", name, n, len(msg), grew)
		}
		runtime.KeepAlive(kept)
	}
}

// InspectMessage decodes in place (it runs on every message a delivery
// service accepts) but returns nothing that points into the message: after
// the caller overwrites its buffer, every field still holds what was read.
func TestInspectMessageCopiesOut(t *testing.T) {
	cfg := &mls.Config{PublicHandshakes: true}
	alice := newClient(t, "alice", mls.X25519_AES128GCM_SHA256_Ed25519, cfg)
	bob := newClient(t, "bob", mls.X25519_AES128GCM_SHA256_Ed25519, cfg)
	g, err := mls.NewGroup(cfg, []byte("inspect copies out"), alice.cred, alice.sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	kp := bob.keyPackage(t)
	res, err := g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(kp)}, GroupInfo: true})
	if err != nil {
		t.Fatal(err)
	}
	gid := []byte("group-1")
	msgs := map[string][]byte{
		"private":          fakemsg.PrivateMessage(gid, 3, fakemsg.ContentApplication, []byte("sd"), []byte("ct")),
		"public":           fakemsg.PublicMessage(gid, 3, fakemsg.SenderMember, 0, fakemsg.ContentApplication, []byte("pt")),
		"welcome":          res.Welcome,
		"group info":       res.GroupInfo,
		"key package":      kp.Bytes(),
		"commit with path": res.Commit,
	}
	for name, msg := range msgs {
		msg = bytes.Clone(msg)
		info, err := mls.InspectMessage(msg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := deepCopyInfo(info)
		for i := range msg {
			msg[i] ^= 0xff
		}
		if got := deepCopyInfo(info); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the MessageInfo changed with the message's buffer:\n%+v\nwas\n%+v", name, got, want)
		}
		if name == "commit with path" && (info.PathLeaf == nil || len(info.PathLeaf.SignatureKey) == 0) {
			t.Errorf("%s: no path leaf read: %+v", name, info)
		}
		if (name == "welcome" || name == "key package") && len(info.KeyPackageRefs) == 0 {
			t.Errorf("%s: no KeyPackageRefs read", name)
		}
	}
}

// deepCopyInfo copies every byte slice of a MessageInfo.
func deepCopyInfo(m *mls.MessageInfo) mls.MessageInfo {
	c := *m
	c.GroupID = bytes.Clone(m.GroupID)
	c.KeyPackageRefs = nil
	for _, r := range m.KeyPackageRefs {
		c.KeyPackageRefs = append(c.KeyPackageRefs, bytes.Clone(r))
	}
	if m.PathLeaf != nil {
		l := *m.PathLeaf
		l.SignatureKey = bytes.Clone(l.SignatureKey)
		l.Credential.Identity, l.Credential.Data = bytes.Clone(l.Credential.Identity), bytes.Clone(l.Credential.Data)
		l.Credential.Certificates = nil
		for _, x := range m.PathLeaf.Credential.Certificates {
			l.Credential.Certificates = append(l.Credential.Certificates, bytes.Clone(x))
		}
		c.PathLeaf = &l
	}
	return c
}

// FuzzInspectMessage: on any input InspectMessage, which decodes in place,
// never panics, never changes the input, and returns nothing that changes
// when the caller then overwrites it.
func FuzzInspectMessage(f *testing.F) {
	gid := []byte("group-1")
	f.Add(fakemsg.PrivateMessage(gid, 3, fakemsg.ContentApplication, []byte("sd"), []byte("ct")))
	f.Add(fakemsg.PublicMessage(gid, 3, fakemsg.SenderMember, 0, fakemsg.ContentProposal, []byte("pt")))
	f.Add(fakemsg.Welcome(1, [][]byte{[]byte("ref-1")}, []byte("gi")))
	f.Add(fakemsg.GroupInfo(1, gid, 3, []byte("x")))
	f.Fuzz(func(t *testing.T, msg []byte) {
		in := bytes.Clone(msg)
		info, err := mls.InspectMessage(msg)
		if !bytes.Equal(in, msg) {
			t.Fatal("InspectMessage changed its input")
		}
		if err != nil {
			return
		}
		want := deepCopyInfo(info)
		for i := range msg {
			msg[i] ^= 0xff
		}
		if got := deepCopyInfo(info); !reflect.DeepEqual(got, want) {
			t.Fatalf("the MessageInfo changed with the input:\n%+v\nwas\n%+v", got, want)
		}
	})
}
