package mls_test

import (
	"bytes"
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
