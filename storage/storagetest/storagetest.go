// Package storagetest is the conformance suite for storage.Store engines and
// the golden-file helper for stored formats.
//
// # Conformance
//
// Every engine's tests call Run with a function that returns a fresh, empty
// store:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store { return memory.New() })
//	}
//
// The suite checks round trips, copying in and out, ErrNotFound, deletes and
// their cascades, batch validation, atomicity (a batch made to fail at each of
// its steps in turn, through storage.WithFault, must leave the store exactly
// as it was), cancelled contexts, Close, and concurrent use (run it with
// -race). Engines must call storage.Fault before each step of a Write; the
// suite fails an engine that does not, since its atomicity would go
// unchecked.
//
// # Golden files
//
// Golden pins an encoding to a file in testdata; see its documentation.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlskit/mlskit/storage"
	"github.com/mlskit/mlskit/storage/memory"
)

// Run runs the conformance suite against stores made by newStore, which must
// return a fresh, empty store on each call. The suite closes the stores it
// gets.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	open := func(t *testing.T) storage.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	tests := []struct {
		name string
		f    func(*testing.T, storage.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Copies", testCopies},
		{"NotFound", testNotFound},
		{"ReplaceState", testReplaceState},
		{"Deletes", testDeletes},
		{"DeleteGroup", testDeleteGroup},
		{"ListGroups", testListGroups},
		{"InvalidBatch", testInvalidBatch},
		{"MissingGroup", testMissingGroup},
		{"Atomicity", testAtomicity},
		{"CancelledContext", testCancelledContext},
		{"Closed", testClosed},
		{"Concurrency", testConcurrency},
		{"RandomBatches", testRandomBatches},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, open(t)) })
	}
}

var (
	gA = []byte("group-A")
	gB = []byte("group-B")
)

// val makes a distinct, recognisable value.
func val(parts ...any) []byte { return []byte(fmt.Sprint(parts...)) }

func write(t *testing.T, s storage.Store, b *storage.Batch) {
	t.Helper()
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// universe names every record the suite's snapshots look at.
// It is small because a snapshot costs a query per name, and the atomicity
// test takes one per step of a batch.
type universe struct {
	groups    [][]byte
	epochs    []uint64 // past-epoch records looked up
	keyEpochs []uint64 // epochs whose message keys are looked up
	keyIDs    [][]byte
	refs      [][]byte
}

var u = universe{
	groups:    [][]byte{gA, gB},
	epochs:    []uint64{0, 1, 2, 3, 1<<64 - 1},
	keyEpochs: []uint64{2, 3, 4},
	keyIDs:    [][]byte{[]byte("k0"), []byte("k1"), []byte("k2")},
	refs:      [][]byte{[]byte("r0"), []byte("r1"), []byte("r2"), []byte("r3")},
}

// snapshot reads every record in the universe, so two snapshots are equal
// exactly when the store's observable contents over it are.
func snapshot(t *testing.T, s storage.Store) map[string]string {
	t.Helper()
	ctx := context.Background()
	m := make(map[string]string)
	record := func(name string, v []byte, err error) {
		t.Helper()
		switch {
		case err == nil:
			m[name] = string(v)
		case !errors.Is(err, storage.ErrNotFound):
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, g := range u.groups {
		st, e, err := s.LoadGroup(ctx, g)
		record(fmt.Sprintf("state %s", g), fmt.Appendf(st, " @%d", e), err)
		v, err := s.PendingCommit(ctx, g)
		record(fmt.Sprintf("pending %s", g), v, err)
		for _, ep := range u.epochs {
			v, err := s.LoadEpoch(ctx, g, ep)
			record(fmt.Sprintf("epoch %s/%d", g, ep), v, err)
		}
		for _, ep := range u.keyEpochs {
			for _, k := range u.keyIDs {
				v, err := s.MessageKey(ctx, g, ep, k)
				record(fmt.Sprintf("key %s/%d/%s", g, ep, k), v, err)
			}
		}
	}
	for _, r := range u.refs {
		v, err := s.KeyPackage(ctx, r)
		record(fmt.Sprintf("kp %s", r), v, err)
		v, err = s.PSK(ctx, r)
		record(fmt.Sprintf("psk %s", r), v, err)
		v, err = s.AppRecord(ctx, r)
		record(fmt.Sprintf("app %s", r), v, err)
	}
	ids, err := s.ListGroups(ctx)
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	m["groups"] = fmt.Sprintf("%q", ids)
	return m
}

func diffSnapshots(got, want map[string]string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[k]; !ok {
			out = append(out, fmt.Sprintf("%s: missing, want %q", k, want[k]))
		} else if g != want[k] {
			out = append(out, fmt.Sprintf("%s: got %q, want %q", k, g, want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%s: unexpected %q", k, got[k]))
		}
	}
	return fmt.Sprint(out)
}

func expectSnapshot(t *testing.T, s storage.Store, want map[string]string) {
	t.Helper()
	if got := snapshot(t, s); !maps.Equal(got, want) {
		t.Fatalf("store contents differ: %s", diffSnapshots(got, want))
	}
}

// fullBatch creates group g with one of everything.
func fullBatch(g []byte, tag string) *storage.Batch {
	return &storage.Batch{
		GroupID: bytes.Clone(g),
		State:   val("state ", tag),
		Epoch:   3,
		Epochs: []storage.EpochRecord{
			{Epoch: 1, Data: val("epoch1 ", tag)},
			{Epoch: 2, Data: val("epoch2 ", tag)},
			{Epoch: 1<<64 - 1, Data: val("epochmax ", tag)},
		},
		MessageKeys: []storage.MessageKeyRecord{
			{MessageKeyID: storage.MessageKeyID{Epoch: 2, ID: []byte("k0")}, Data: val("mk2/0 ", tag)},
			{MessageKeyID: storage.MessageKeyID{Epoch: 2, ID: []byte("k1")}, Data: val("mk2/1 ", tag)},
			{MessageKeyID: storage.MessageKeyID{Epoch: 3, ID: []byte("k0")}, Data: val("mk3/0 ", tag)},
		},
		PendingCommit: val("commit ", tag),
		KeyPackages: []storage.Record{
			{Key: []byte("r0"), Value: val("kp0 ", tag)},
			{Key: []byte("r1"), Value: val("kp1 ", tag)},
		},
		PSKs: []storage.Record{
			{Key: []byte("r0"), Value: val("psk0 ", tag)},
			{Key: []byte("r2"), Value: val("psk2 ", tag)},
		},
		AppRecords: []storage.Record{
			{Key: []byte("r1"), Value: val("app1 ", tag)},
			{Key: []byte("r3"), Value: val("app3 ", tag)},
		},
	}
}

func testRoundTrip(t *testing.T, s storage.Store) {
	ctx := context.Background()
	before := snapshot(t, s)
	write(t, s, fullBatch(gA, "a"))

	want := maps.Clone(before)
	maps.Copy(want, map[string]string{
		"state group-A":                      "state a @3",
		"pending group-A":                    "commit a",
		"epoch group-A/1":                    "epoch1 a",
		"epoch group-A/2":                    "epoch2 a",
		"epoch group-A/18446744073709551615": "epochmax a",
		"key group-A/2/k0":                   "mk2/0 a",
		"key group-A/2/k1":                   "mk2/1 a",
		"key group-A/3/k0":                   "mk3/0 a",
		"kp r0":                              "kp0 a",
		"kp r1":                              "kp1 a",
		"psk r0":                             "psk0 a",
		"psk r2":                             "psk2 a",
		"app r1":                             "app1 a",
		"app r3":                             "app3 a",
		"groups":                             `["group-A"]`,
	})
	expectSnapshot(t, s, want)

	// Binary keys: IDs are compared as bytes, not as strings.
	bin := []byte{0, 0xff, 0, 1}
	write(t, s, &storage.Batch{GroupID: bin, State: []byte{0}, Epoch: 1 << 63,
		MessageKeys: []storage.MessageKeyRecord{{MessageKeyID: storage.MessageKeyID{Epoch: 1 << 63, ID: bin}, Data: bin}}})
	st, e, err := s.LoadGroup(ctx, bin)
	if err != nil || !bytes.Equal(st, []byte{0}) || e != 1<<63 {
		t.Fatalf("LoadGroup(binary ID) = %x, %d, %v", st, e, err)
	}
	if _, _, err := s.LoadGroup(ctx, bin[:3]); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("LoadGroup(prefix of an ID) err = %v, want ErrNotFound", err)
	}
	if v, err := s.MessageKey(ctx, bin, 1<<63, bin); err != nil || !bytes.Equal(v, bin) {
		t.Fatalf("MessageKey(binary) = %x, %v", v, err)
	}

	// A large value survives intact.
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	write(t, s, &storage.Batch{GroupID: gB, State: big, Epoch: 9})
	st, e, err = s.LoadGroup(ctx, gB)
	if err != nil || !bytes.Equal(st, big) || e != 9 {
		t.Fatalf("LoadGroup(1 MiB state): equal=%v epoch=%d err=%v", bytes.Equal(st, big), e, err)
	}

	// An empty batch is a no-op.
	before = snapshot(t, s)
	write(t, s, &storage.Batch{})
	expectSnapshot(t, s, before)
}

func testCopies(t *testing.T, s storage.Store) {
	ctx := context.Background()
	b := fullBatch(gA, "a")
	write(t, s, b)
	want := snapshot(t, s)

	// Overwrite everything the caller passed in.
	for _, p := range [][]byte{b.GroupID, b.State, b.PendingCommit} {
		clear(p)
	}
	for _, e := range b.Epochs {
		clear(e.Data)
	}
	for _, k := range b.MessageKeys {
		clear(k.ID)
		clear(k.Data)
	}
	for _, r := range slices.Concat(b.KeyPackages, b.PSKs, b.AppRecords) {
		clear(r.Key)
		clear(r.Value)
	}
	expectSnapshot(t, s, want)

	// Overwrite everything handed out.
	st, _, _ := s.LoadGroup(ctx, gA)
	clear(st)
	v, _ := s.LoadEpoch(ctx, gA, 1)
	clear(v)
	v, _ = s.MessageKey(ctx, gA, 2, []byte("k0"))
	clear(v)
	v, _ = s.KeyPackage(ctx, []byte("r0"))
	clear(v)
	v, _ = s.PSK(ctx, []byte("r0"))
	clear(v)
	v, _ = s.AppRecord(ctx, []byte("r1"))
	clear(v)
	v, _ = s.PendingCommit(ctx, gA)
	clear(v)
	ids, _ := s.ListGroups(ctx)
	for _, id := range ids {
		clear(id)
	}
	expectSnapshot(t, s, want)
}

func testNotFound(t *testing.T, s storage.Store) {
	ctx := context.Background()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", what, err)
		}
	}
	_, _, err := s.LoadGroup(ctx, gA)
	check("LoadGroup", err)
	_, err = s.LoadEpoch(ctx, gA, 1)
	check("LoadEpoch", err)
	_, err = s.MessageKey(ctx, gA, 1, []byte("k0"))
	check("MessageKey", err)
	_, err = s.KeyPackage(ctx, []byte("r0"))
	check("KeyPackage", err)
	_, err = s.PSK(ctx, []byte("r0"))
	check("PSK", err)
	_, err = s.AppRecord(ctx, []byte("r0"))
	check("AppRecord", err)
	_, err = s.PendingCommit(ctx, gA)
	check("PendingCommit", err)
	check("DeleteGroup", s.DeleteGroup(ctx, gA))
	ids, err := s.ListGroups(ctx)
	if err != nil || len(ids) != 0 {
		t.Errorf("ListGroups on an empty store = %q, %v", ids, err)
	}

	// A group without a pending commit, epochs or keys.
	write(t, s, &storage.Batch{GroupID: gA, State: val("s"), Epoch: 1})
	_, err = s.PendingCommit(ctx, gA)
	check("PendingCommit of a group without one", err)
	_, err = s.LoadEpoch(ctx, gA, 1)
	check("LoadEpoch of the current epoch, never stored", err)
	_, err = s.MessageKey(ctx, gA, 1, []byte("k0"))
	check("MessageKey in an existing group", err)
	// Records of one group are not visible through another.
	write(t, s, fullBatch(gB, "b"))
	_, err = s.LoadEpoch(ctx, gA, 2)
	check("LoadEpoch of another group's epoch", err)
	_, err = s.MessageKey(ctx, gA, 2, []byte("k0"))
	check("MessageKey of another group's key", err)
}

func testReplaceState(t *testing.T, s storage.Store) {
	ctx := context.Background()
	write(t, s, &storage.Batch{GroupID: gA, State: val("epoch 1 state, long ", bytes.Repeat([]byte("x"), 5000)), Epoch: 1})
	write(t, s, &storage.Batch{GroupID: gA, State: val("epoch 2"), Epoch: 2})
	st, e, err := s.LoadGroup(ctx, gA)
	if err != nil || string(st) != "epoch 2" || e != 2 {
		t.Fatalf("LoadGroup after replace = %q, %d, %v", st, e, err)
	}
	// A batch without State leaves state and epoch alone.
	write(t, s, &storage.Batch{GroupID: gA, Epochs: []storage.EpochRecord{{Epoch: 1, Data: val("e1")}}})
	st, e, err = s.LoadGroup(ctx, gA)
	if err != nil || string(st) != "epoch 2" || e != 2 {
		t.Fatalf("LoadGroup after a batch without State = %q, %d, %v", st, e, err)
	}
	// Puts replace.
	write(t, s, &storage.Batch{GroupID: gA,
		Epochs:        []storage.EpochRecord{{Epoch: 1, Data: val("e1 again")}},
		PendingCommit: val("c1"),
		KeyPackages:   []storage.Record{{Key: []byte("r0"), Value: val("kp")}},
	})
	write(t, s, &storage.Batch{GroupID: gA,
		PendingCommit: val("c2"),
		KeyPackages:   []storage.Record{{Key: []byte("r0"), Value: val("kp again")}},
	})
	if v, err := s.LoadEpoch(ctx, gA, 1); err != nil || string(v) != "e1 again" {
		t.Fatalf("LoadEpoch after replace = %q, %v", v, err)
	}
	if v, err := s.PendingCommit(ctx, gA); err != nil || string(v) != "c2" {
		t.Fatalf("PendingCommit after replace = %q, %v", v, err)
	}
	if v, err := s.KeyPackage(ctx, []byte("r0")); err != nil || string(v) != "kp again" {
		t.Fatalf("KeyPackage after replace = %q, %v", v, err)
	}
}

func testDeletes(t *testing.T, s storage.Store) {
	write(t, s, fullBatch(gA, "a"))
	write(t, s, fullBatch(gB, "b"))
	want := snapshot(t, s)

	write(t, s, &storage.Batch{
		GroupID:            gA,
		DeleteEpochs:       []uint64{2, 4}, // 4 does not exist: not an error
		DeleteMessageKeys:  []storage.MessageKeyID{{Epoch: 3, ID: []byte("k0")}, {Epoch: 5, ID: []byte("k2")}},
		ClearPendingCommit: true,
		DeleteKeyPackages:  [][]byte{[]byte("r0"), []byte("r3")},
		DeletePSKs:         [][]byte{[]byte("r2")},
		DeleteAppRecords:   [][]byte{[]byte("r3"), []byte("r0")},
	})
	for _, k := range []string{
		"epoch group-A/2",
		"key group-A/2/k0", "key group-A/2/k1", // cascade from deleting epoch 2
		"key group-A/3/k0",
		"pending group-A",
		"kp r0",
		"psk r2",
		"app r3",
	} {
		if _, ok := want[k]; !ok {
			t.Fatalf("suite bug: %s not in the snapshot", k)
		}
		delete(want, k)
	}
	expectSnapshot(t, s, want)

	// Clearing an absent pending commit and repeating deletes is harmless.
	write(t, s, &storage.Batch{GroupID: gA, ClearPendingCommit: true, DeleteEpochs: []uint64{2},
		DeleteKeyPackages: [][]byte{[]byte("r0")}})
	expectSnapshot(t, s, want)
}

func testDeleteGroup(t *testing.T, s storage.Store) {
	ctx := context.Background()
	write(t, s, fullBatch(gA, "a"))
	write(t, s, fullBatch(gB, "b"))
	onlyB := snapshot(t, s)
	for k := range onlyB {
		if strings.Contains(k, string(gA)) {
			delete(onlyB, k)
		}
	}
	onlyB["groups"] = fmt.Sprintf("%q", [][]byte{gB})

	if err := s.DeleteGroup(ctx, gA); err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}
	// Group B, KeyPackages and PSKs (not group-scoped) are untouched.
	expectSnapshot(t, s, onlyB)
	if err := s.DeleteGroup(ctx, gA); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second DeleteGroup err = %v, want ErrNotFound", err)
	}
	// Re-creating the group starts from nothing.
	write(t, s, &storage.Batch{GroupID: gA, State: val("fresh"), Epoch: 0})
	if _, err := s.LoadEpoch(ctx, gA, 1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("old epoch visible after the group was re-created: %v", err)
	}
	if _, err := s.PendingCommit(ctx, gA); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("old pending commit visible after the group was re-created: %v", err)
	}
	if err := s.DeleteGroup(ctx, gA); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroup(ctx, gB); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.ListGroups(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("ListGroups after deleting every group = %q, %v", ids, err)
	}
}

func testListGroups(t *testing.T, s storage.Store) {
	ctx := context.Background()
	ids := [][]byte{{0xff}, {0}, {0, 0}, []byte("b"), []byte("a"), {0x80, 1}}
	for _, id := range ids {
		write(t, s, &storage.Batch{GroupID: id, State: val("s")})
	}
	got, err := s.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(ids)
	slices.SortFunc(want, bytes.Compare)
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("ListGroups = %x, want %x", got, want)
	}
	// Records without group state do not make a group.
	write(t, s, &storage.Batch{KeyPackages: []storage.Record{{Key: []byte("r0"), Value: val("kp")}}})
	if got, _ := s.ListGroups(ctx); len(got) != len(ids) {
		t.Fatalf("ListGroups has %d groups after a KeyPackage-only batch, want %d", len(got), len(ids))
	}
}

func testInvalidBatch(t *testing.T, s storage.Store) {
	ctx := context.Background()
	write(t, s, fullBatch(gA, "a"))
	want := snapshot(t, s)
	mk := func(e uint64, id string) storage.MessageKeyID { return storage.MessageKeyID{Epoch: e, ID: []byte(id)} }
	bad := map[string]*storage.Batch{
		"nil":                          nil,
		"state without group":          {State: val("s")},
		"epoch without group":          {Epochs: []storage.EpochRecord{{Epoch: 1, Data: val("e")}}},
		"delete epoch without group":   {DeleteEpochs: []uint64{1}},
		"key without group":            {MessageKeys: []storage.MessageKeyRecord{{MessageKeyID: mk(1, "k"), Data: val("k")}}},
		"delete key without group":     {DeleteMessageKeys: []storage.MessageKeyID{mk(1, "k")}},
		"pending without group":        {PendingCommit: val("c")},
		"clear pending without group":  {ClearPendingCommit: true},
		"empty state":                  {GroupID: gA, State: []byte{}},
		"empty epoch record":           {GroupID: gA, Epochs: []storage.EpochRecord{{Epoch: 1, Data: []byte{}}}},
		"epoch twice":                  {GroupID: gA, Epochs: []storage.EpochRecord{{Epoch: 1, Data: val("x")}, {Epoch: 1, Data: val("y")}}},
		"epoch put and deleted":        {GroupID: gA, Epochs: []storage.EpochRecord{{Epoch: 1, Data: val("x")}}, DeleteEpochs: []uint64{1}},
		"empty key ID":                 {GroupID: gA, MessageKeys: []storage.MessageKeyRecord{{MessageKeyID: mk(1, ""), Data: val("k")}}},
		"empty key":                    {GroupID: gA, MessageKeys: []storage.MessageKeyRecord{{MessageKeyID: mk(1, "k")}}},
		"key put and deleted":          {GroupID: gA, MessageKeys: []storage.MessageKeyRecord{{MessageKeyID: mk(1, "k"), Data: val("k")}}, DeleteMessageKeys: []storage.MessageKeyID{mk(1, "k")}},
		"key deleted twice":            {GroupID: gA, DeleteMessageKeys: []storage.MessageKeyID{mk(1, "k"), mk(1, "k")}},
		"empty pending commit":         {GroupID: gA, PendingCommit: []byte{}},
		"pending set and cleared":      {GroupID: gA, PendingCommit: val("c"), ClearPendingCommit: true},
		"empty KeyPackage ref":         {KeyPackages: []storage.Record{{Key: nil, Value: val("v")}}},
		"empty KeyPackage":             {KeyPackages: []storage.Record{{Key: val("r"), Value: nil}}},
		"KeyPackage put and deleted":   {KeyPackages: []storage.Record{{Key: val("r0"), Value: val("v")}}, DeleteKeyPackages: [][]byte{val("r0")}},
		"KeyPackage put twice":         {KeyPackages: []storage.Record{{Key: val("r0"), Value: val("v")}, {Key: val("r0"), Value: val("w")}}},
		"empty KeyPackage delete":      {DeleteKeyPackages: [][]byte{{}}},
		"PSK deleted twice":            {DeletePSKs: [][]byte{val("r0"), val("r0")}},
		"empty PSK":                    {PSKs: []storage.Record{{Key: val("p"), Value: []byte{}}}},
		"app record put and deleted":   {AppRecords: []storage.Record{{Key: val("r0"), Value: val("v")}}, DeleteAppRecords: [][]byte{val("r0")}},
		"empty app record key":         {AppRecords: []storage.Record{{Key: []byte{}, Value: val("v")}}},
		"valid parts then invalid one": {GroupID: gA, State: val("new"), KeyPackages: []storage.Record{{Key: val("r3"), Value: val("v")}}, PSKs: []storage.Record{{Key: val("p"), Value: []byte{}}}},
	}
	for name, b := range bad {
		if err := s.Write(ctx, b); !errors.Is(err, storage.ErrInvalidBatch) {
			t.Errorf("%s: Write err = %v, want ErrInvalidBatch", name, err)
		}
	}
	expectSnapshot(t, s, want)
}

func testMissingGroup(t *testing.T, s storage.Store) {
	ctx := context.Background()
	write(t, s, fullBatch(gA, "a"))
	want := snapshot(t, s)
	for name, b := range map[string]*storage.Batch{
		"epoch":          {GroupID: gB, Epochs: []storage.EpochRecord{{Epoch: 1, Data: val("e")}}, KeyPackages: []storage.Record{{Key: val("r3"), Value: val("v")}}},
		"delete epoch":   {GroupID: gB, DeleteEpochs: []uint64{1}},
		"message key":    {GroupID: gB, MessageKeys: []storage.MessageKeyRecord{{MessageKeyID: storage.MessageKeyID{Epoch: 1, ID: val("k0")}, Data: val("k")}}},
		"pending commit": {GroupID: gB, PendingCommit: val("c"), PSKs: []storage.Record{{Key: val("r3"), Value: val("v")}}},
		"clear pending":  {GroupID: gB, ClearPendingCommit: true},
	} {
		if err := s.Write(ctx, b); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s for a missing group: Write err = %v, want ErrNotFound", name, err)
		}
	}
	expectSnapshot(t, s, want)
}

// errInjected is the failure the atomicity test injects.
var errInjected = errors.New("storagetest: injected failure")

func testAtomicity(t *testing.T, s storage.Store) {
	write(t, s, fullBatch(gA, "a"))
	for _, tc := range []struct {
		name string
		b    *storage.Batch
	}{
		{"change everything", &storage.Batch{
			GroupID: gA, State: val("state a2"), Epoch: 4,
			Epochs:             []storage.EpochRecord{{Epoch: 3, Data: val("epoch3 a2")}, {Epoch: 2, Data: val("epoch2 a2")}},
			DeleteEpochs:       []uint64{1},
			MessageKeys:        []storage.MessageKeyRecord{{MessageKeyID: storage.MessageKeyID{Epoch: 4, ID: []byte("k2")}, Data: val("mk4/2")}},
			DeleteMessageKeys:  []storage.MessageKeyID{{Epoch: 2, ID: []byte("k0")}},
			ClearPendingCommit: true,
			KeyPackages:        []storage.Record{{Key: []byte("r2"), Value: val("kp2")}},
			DeleteKeyPackages:  [][]byte{[]byte("r0")},
			PSKs:               []storage.Record{{Key: []byte("r0"), Value: val("psk0 a2")}},
			DeletePSKs:         [][]byte{[]byte("r2")},
			AppRecords:         []storage.Record{{Key: []byte("r1"), Value: val("app1 a2")}},
			DeleteAppRecords:   [][]byte{[]byte("r3")},
		}},
		{"create a group", fullBatch(gB, "b")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, s)
			steps := 0
			for fail := 0; ; fail++ {
				reached := false
				ctx := storage.WithFault(context.Background(), func(step int) error {
					steps = max(steps, step+1)
					if step == fail {
						reached = true
						return errInjected
					}
					return nil
				})
				err := s.Write(ctx, tc.b)
				if !reached {
					if err != nil {
						t.Fatalf("Write without an injected failure: %v", err)
					}
					break
				}
				if !errors.Is(err, errInjected) {
					t.Fatalf("failure injected at step %d: Write err = %v, want the injected error", fail, err)
				}
				if got := snapshot(t, s); !maps.Equal(got, before) {
					t.Fatalf("failure injected at step %d left a partial write: %s", fail, diffSnapshots(got, before))
				}
			}
			// One step per change at least; an engine that never calls
			// storage.Fault would make this test vacuous.
			if steps < 8 {
				t.Fatalf("engine consulted storage.Fault for %d steps of a batch with many changes; "+
					"it must call it before each step so atomicity can be tested", steps)
			}
			if got := snapshot(t, s); maps.Equal(got, before) {
				t.Fatal("the batch changed nothing once no failure was injected")
			}
		})
	}

	// DeleteGroup is atomic too.
	before := snapshot(t, s)
	ctx := storage.WithFault(context.Background(), func(int) error { return errInjected })
	if err := s.DeleteGroup(ctx, gA); !errors.Is(err, errInjected) {
		t.Fatalf("DeleteGroup with an injected failure: err = %v", err)
	}
	expectSnapshot(t, s, before)
}

func testCancelledContext(t *testing.T, s storage.Store) {
	write(t, s, fullBatch(gA, "a"))
	want := snapshot(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, fullBatch(gB, "b")); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a cancelled context: err = %v", err)
	}
	if err := s.DeleteGroup(ctx, gA); !errors.Is(err, context.Canceled) {
		t.Errorf("DeleteGroup with a cancelled context: err = %v", err)
	}
	if _, _, err := s.LoadGroup(ctx, gA); !errors.Is(err, context.Canceled) {
		t.Errorf("LoadGroup with a cancelled context: err = %v", err)
	}
	expectSnapshot(t, s, want)
}

func testClosed(t *testing.T, s storage.Store) {
	ctx := context.Background()
	write(t, s, fullBatch(gA, "a"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, storage.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", what, err)
		}
	}
	_, _, err := s.LoadGroup(ctx, gA)
	check("LoadGroup", err)
	_, err = s.LoadEpoch(ctx, gA, 1)
	check("LoadEpoch", err)
	_, err = s.MessageKey(ctx, gA, 2, []byte("k0"))
	check("MessageKey", err)
	_, err = s.ListGroups(ctx)
	check("ListGroups", err)
	check("Write", s.Write(ctx, fullBatch(gB, "b")))
	_, err = s.KeyPackage(ctx, []byte("r0"))
	check("KeyPackage", err)
	_, err = s.PSK(ctx, []byte("r0"))
	check("PSK", err)
	_, err = s.AppRecord(ctx, []byte("r0"))
	check("AppRecord", err)
	_, err = s.PendingCommit(ctx, gA)
	check("PendingCommit", err)
	check("DeleteGroup", s.DeleteGroup(ctx, gA))
}

// testConcurrency runs writers, each advancing its own group one epoch per
// batch, against readers that check every state they see is consistent with
// the records written in the same batch. Run with -race.
func testConcurrency(t *testing.T, s storage.Store) {
	const (
		writers = 3
		readers = 3
		batches = 15
		keep    = 4 // past epochs kept; older ones are deleted
	)
	ctx := context.Background()
	gid := func(w int) []byte { return fmt.Appendf(nil, "group-%d", w) }
	stateOf := func(w int, e uint64) []byte { return fmt.Appendf(nil, "state %d/%d", w, e) }
	epochOf := func(w int, e uint64) []byte { return fmt.Appendf(nil, "epoch %d/%d", w, e) }

	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, writers+readers)
	for w := range writers {
		wg.Go(func() {
			for e := uint64(1); e <= batches; e++ {
				b := &storage.Batch{
					GroupID:     gid(w),
					State:       stateOf(w, e),
					Epoch:       e,
					Epochs:      []storage.EpochRecord{{Epoch: e, Data: epochOf(w, e)}},
					KeyPackages: []storage.Record{{Key: fmt.Appendf(nil, "kp %d/%d", w, e), Value: val("kp")}},
				}
				if e > keep {
					b.DeleteEpochs = []uint64{e - keep}
					b.DeleteKeyPackages = [][]byte{fmt.Appendf(nil, "kp %d/%d", w, e-keep)}
				}
				if err := s.Write(ctx, b); err != nil {
					errs <- fmt.Errorf("writer %d epoch %d: %w", w, e, err)
					return
				}
			}
		})
	}
	var rg sync.WaitGroup
	for r := range readers {
		rg.Go(func() {
			for i := 0; ; i++ {
				// Pause between reads: spinning readers would only starve
				// the writers of CPU and slow the test.
				select {
				case <-done:
					return
				case <-time.After(time.Millisecond):
				}
				w := (r + i) % writers
				st, e, err := s.LoadGroup(ctx, gid(w))
				if errors.Is(err, storage.ErrNotFound) {
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("reader: %w", err)
					return
				}
				if !bytes.Equal(st, stateOf(w, e)) {
					errs <- fmt.Errorf("reader: group %d at epoch %d has state %q", w, e, st)
					return
				}
				// The epoch record written with this state exists unless the
				// group has since moved on far enough to delete it.
				v, err := s.LoadEpoch(ctx, gid(w), e)
				if err == nil && !bytes.Equal(v, epochOf(w, e)) {
					errs <- fmt.Errorf("reader: group %d epoch %d record %q", w, e, v)
					return
				}
				if errors.Is(err, storage.ErrNotFound) {
					if _, now, _ := s.LoadGroup(ctx, gid(w)); now < e+keep {
						errs <- fmt.Errorf("reader: group %d epoch %d record missing at epoch %d", w, e, now)
						return
					}
				} else if err != nil {
					errs <- fmt.Errorf("reader: %w", err)
					return
				}
				if _, err := s.ListGroups(ctx); err != nil {
					errs <- fmt.Errorf("reader: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range writers {
		st, e, err := s.LoadGroup(ctx, gid(w))
		if err != nil || e != batches || !bytes.Equal(st, stateOf(w, batches)) {
			t.Errorf("group %d at the end: %q, %d, %v", w, st, e, err)
		}
		for e := uint64(1); e <= batches; e++ {
			_, err := s.LoadEpoch(ctx, gid(w), e)
			if kept := e > batches-keep; kept != (err == nil) {
				t.Errorf("group %d epoch %d: kept=%v but err=%v", w, e, kept, err)
			}
		}
	}
}

// testRandomBatches applies the same random batches (and group deletions) to
// the engine and to the memory engine as a reference model, and requires the
// same outcome for each and the same contents throughout.
func testRandomBatches(t *testing.T, s storage.Store) {
	ctx := context.Background()
	ref := memory.New()
	defer ref.Close()
	rng := rand.New(rand.NewPCG(9420, 1))
	value := func(what string, i int) []byte { return fmt.Appendf(nil, "%s #%d", what, i) }
	// pick returns, for each item, 0 (leave), 1 (put) or 2 (delete).
	pick := func() int { return rng.IntN(3) }
	const rounds = 60
	for i := range rounds {
		g := u.groups[rng.IntN(len(u.groups))]
		if rng.IntN(10) == 0 {
			errS, errR := s.DeleteGroup(ctx, g), ref.DeleteGroup(ctx, g)
			if !sameOutcome(errS, errR) {
				t.Fatalf("round %d: DeleteGroup: engine %v, reference %v", i, errS, errR)
			}
			continue
		}
		b := &storage.Batch{GroupID: bytes.Clone(g)}
		if rng.IntN(2) == 0 {
			b.State, b.Epoch = value("state", i), u.epochs[rng.IntN(len(u.epochs))]
		}
		for _, e := range u.epochs {
			switch pick() {
			case 1:
				b.Epochs = append(b.Epochs, storage.EpochRecord{Epoch: e, Data: value("epoch", i)})
			case 2:
				b.DeleteEpochs = append(b.DeleteEpochs, e)
			}
		}
		for _, e := range u.keyEpochs {
			for _, k := range u.keyIDs {
				id := storage.MessageKeyID{Epoch: e, ID: bytes.Clone(k)}
				switch pick() {
				case 1:
					b.MessageKeys = append(b.MessageKeys, storage.MessageKeyRecord{MessageKeyID: id, Data: value("key", i)})
				case 2:
					b.DeleteMessageKeys = append(b.DeleteMessageKeys, id)
				}
			}
		}
		switch pick() {
		case 1:
			b.PendingCommit = value("commit", i)
		case 2:
			b.ClearPendingCommit = true
		}
		for _, r := range u.refs {
			switch pick() {
			case 1:
				b.KeyPackages = append(b.KeyPackages, storage.Record{Key: bytes.Clone(r), Value: value("kp", i)})
			case 2:
				b.DeleteKeyPackages = append(b.DeleteKeyPackages, bytes.Clone(r))
			}
			switch pick() {
			case 1:
				b.PSKs = append(b.PSKs, storage.Record{Key: bytes.Clone(r), Value: value("psk", i)})
			case 2:
				b.DeletePSKs = append(b.DeletePSKs, bytes.Clone(r))
			}
			switch pick() {
			case 1:
				b.AppRecords = append(b.AppRecords, storage.Record{Key: bytes.Clone(r), Value: value("app", i)})
			case 2:
				b.DeleteAppRecords = append(b.DeleteAppRecords, bytes.Clone(r))
			}
		}
		if rng.IntN(8) == 0 {
			// Client-wide records only.
			b = &storage.Batch{KeyPackages: b.KeyPackages, DeleteKeyPackages: b.DeleteKeyPackages, PSKs: b.PSKs, DeletePSKs: b.DeletePSKs,
				AppRecords: b.AppRecords, DeleteAppRecords: b.DeleteAppRecords}
		}
		errS, errR := s.Write(ctx, b), ref.Write(ctx, b)
		if !sameOutcome(errS, errR) {
			t.Fatalf("round %d: Write: engine %v, reference %v", i, errS, errR)
		}
		if i%4 == 3 || i == rounds-1 {
			if got, want := snapshot(t, s), snapshot(t, ref); !maps.Equal(got, want) {
				t.Fatalf("round %d: engine and reference differ: %s", i, diffSnapshots(got, want))
			}
		}
	}
}

// sameOutcome reports whether two errors are both nil or of the same class.
func sameOutcome(a, b error) bool {
	for _, class := range []error{storage.ErrNotFound, storage.ErrInvalidBatch, storage.ErrClosed} {
		if errors.Is(a, class) != errors.Is(b, class) {
			return false
		}
	}
	return (a == nil) == (b == nil)
}
