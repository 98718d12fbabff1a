package server

import (
	"crypto/rand"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/dsproto"
	"github.com/mlskit/mlskit/ds/store"
)

func fanoutRecord() store.Record {
	body := make([]byte, 1024)
	rand.Read(body)
	r := store.Record{GroupID: []byte("group-fanout"), Seq: 7, Epoch: 3, Kind: store.KindApplication, WireFormat: 2,
		Sender: "alice", Body: body, BodyHash: store.BodyHash(body), PrevHash: make([]byte, 32), Time: time.Now()}
	r.ChainHash = store.ChainHash(r.PrevHash, &r)
	return r
}

// TestRecordEventShared: the shared encoding is byte for byte what the
// stream's codec would write for the message itself.
func TestRecordEventShared(t *testing.T) {
	s := &Server{metrics: newMetrics()}
	r := fanoutRecord()
	r.Recipients = []string{"bob"}
	for _, client := range []string{"alice", "bob", "alice", "bob"} {
		want, err := proto.Marshal(&v1.SubscribeResponse{Event: &v1.SubscribeResponse_Record{Record: dsproto.RecordToProto(&r, client)}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := proto.Marshal(s.recordEvent(&r, client, true))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("%s: shared encoding differs", client)
		}
	}
	for ct, want := range map[string]bool{"application/grpc": true, "application/grpc+proto": true, "application/grpc-web+proto": true,
		"application/connect+proto": true, "application/connect+json": false, "application/grpc+json": false, "": false} {
		if binaryCodec(ct) != want {
			t.Errorf("binaryCodec(%q) = %v", ct, !want)
		}
	}
}

// BenchmarkFanoutEncode: what one delivery of a 1 KiB record costs to
// encode, per stream (before) and shared (now), up to the bytes the codec
// writes.
//
//	go test -run '^$' -bench BenchmarkFanoutEncode -benchtime 20000x ./ds/server/
func BenchmarkFanoutEncode(b *testing.B) {
	r := fanoutRecord()
	b.Run("per-stream", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ev := &v1.SubscribeResponse{Event: &v1.SubscribeResponse_Record{Record: dsproto.RecordToProto(&r, "bob")}}
			if _, err := proto.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("shared", func(b *testing.B) {
		s := &Server{metrics: newMetrics()}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(s.recordEvent(&r, "bob", true)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
