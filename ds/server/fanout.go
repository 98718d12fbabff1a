package server

import (
	"mime"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	v1 "github.com/mlskit/mlskit/ds/api/mlsdv1"
	"github.com/mlskit/mlskit/ds/dsproto"
	"github.com/mlskit/mlskit/ds/store"
)

// Fan-out encodes each record once. A record reaches every subscriber of
// its group as the same SubscribeResponse, but for one difference: the body
// goes only to its recipients (dsproto.RecordToProto). So a record has at
// most two encodings, kept here by (group, seq, with body) and shared by all
// streams: each stream sends an empty SubscribeResponse that carries the
// encoding as its unknown fields, which the protobuf encoder writes out
// verbatim. The receiver decodes an ordinary SubscribeResponse.
//
// Streams in JSON (Connect or gRPC-Web with +json) would lose unknown
// fields, so they get the message itself, encoded per stream as before.

// encodedBytes bounds the shared encodings, over all groups. Live fan-out
// reads the newest records, so a small window serves it; a subscriber that
// catches up from further back encodes for itself.
const encodedBytes = 8 << 20

type encKey struct {
	group string
	seq   uint64
	body  bool
}

// encodedCache holds recent encodings, first in first out, bounded in
// bytes. Streams that want the same encoding at once wait for one encoder.
// The zero value is ready to use.
type encodedCache struct {
	mu    sync.Mutex
	m     map[encKey]*encoding
	order []encKey
	bytes int
}

type encoding struct {
	once sync.Once
	raw  []byte
	cost int
}

// get returns k's encoding, made by encode if no stream made it yet.
func (c *encodedCache) get(k encKey, encode func() []byte) []byte {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[encKey]*encoding{}
	}
	e, ok := c.m[k]
	if !ok {
		e = &encoding{}
		c.m[k] = e
		c.order = append(c.order, k)
	}
	c.mu.Unlock()
	made := false
	e.once.Do(func() { e.raw, made = encode(), true })
	if !made {
		return e.raw
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[k] != e {
		return e.raw // evicted meanwhile
	}
	e.cost = len(e.raw) + len(k.group) + 64
	if e.raw == nil || e.cost > encodedBytes/4 {
		// Failed, or large: cheaper to encode again than to pin.
		delete(c.m, k)
		return e.raw
	}
	c.bytes += e.cost
	for c.bytes > encodedBytes && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		if o, ok := c.m[old]; ok {
			c.bytes -= o.cost
			delete(c.m, old)
		}
	}
	if cap(c.order) > 4*len(c.order)+64 {
		c.order = append([]encKey(nil), c.order...) // let the dropped front go
	}
	return e.raw
}

// recordEvent is the stream event for r as client may see it. shared says
// the stream's codec is binary protobuf, so the shared encoding may be sent.
func (s *Server) recordEvent(r *store.Record, client string, shared bool) *v1.SubscribeResponse {
	ev := func() *v1.SubscribeResponse {
		return &v1.SubscribeResponse{Event: &v1.SubscribeResponse_Record{Record: dsproto.RecordToProto(r, client)}}
	}
	if !shared {
		return ev()
	}
	k := encKey{group: string(r.GroupID), seq: r.Seq, body: store.IsRecipient(r, client)}
	raw := s.encoded.get(k, func() []byte {
		s.metrics.inc("mlsd_fanout_encodings_total")
		raw, err := proto.Marshal(ev())
		if err != nil {
			return nil
		}
		return raw
	})
	if raw == nil {
		return ev() // cannot happen for a well-formed record; let the stream's codec say so
	}
	out := &v1.SubscribeResponse{}
	out.ProtoReflect().SetUnknown(raw)
	return out
}

// binaryCodec reports whether a request's content type names the binary
// protobuf codec: application/grpc, application/grpc-web and
// application/connect, bare or with +proto.
func binaryCodec(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	_, sub, ok := strings.Cut(mt, "+")
	return !ok || sub == "proto"
}
