// Package client is an end-to-end encrypted group messenger client built
// on package mls (RFC 9420) and mlsd, the mlskit delivery service
// (ds/client). It holds what turns the protocol library into a working
// messenger: a person's identity and state directory, KeyPackages kept in
// stock on the server, groups kept in step with the server's log, lost
// commit races retried, crashes recovered, and every credential checked.
// The mls command (cmd/mls) is a thin shell over it.
//
// # Getting started
//
// Init creates a state directory with a new signature key and a Basic
// credential (InitX509 for an X.509 one from an operator's CA); Open opens
// it again later. Publish uploads KeyPackages so that others can add you.
// CreateGroup, Invite, Send, Remove, SelfUpdate and Leave change groups;
// Read brings every group up to date (joining the groups you were invited
// to) and returns what happened as Events; Events yields the same live
// from the server's stream, as an iterator (Follow is the callback form,
// which also sends the lines you give it). Status returns a group's
// members and its epoch authenticator, which members compare out of band
// (RFC 9420, Section 8.7). See Example and Client.Events.
//
// # Events are data
//
// An Event has a Kind: EventMessage, EventJoined (an invitation this
// client took up), EventAdded, EventRemoved and EventJoinedExternally
// (membership changes, naming the Members concerned), EventRemovedSelf
// (this client was removed), EventLeave, EventUpdated, EventSkipped,
// EventError and, from Follow and Events, EventStatus. An Event carries the sender's identity (authenticated by MLS) and the
// text as data; the package never prints. Everything in an event, and
// every member name, was chosen by another person: render it safely (the
// mls command escapes control characters, ANSI/OSC sequences and bidi
// overrides). Names themselves are checked by CheckName when an identity
// is created and on every credential a group brings in, so a name made to
// look like another's (a Cyrillic "а" for a Latin "a", an invisible or
// direction-changing character) is refused.
//
// # State directory
//
// A Client owns one directory, 0700 with its files 0600: identity.json
// (name, server, cipher suite, signature private key), state.db (groups
// and KeyPackage private keys, through mls.Group.Save and storage/sqlite),
// chat.json (per group: the log cursor, its chain value, the inbox) and,
// for X.509 identities, trust.json. One process at a time changes a
// directory (Open takes a lock); OpenReadOnly looks at it beside that
// process. Open removes temporary files a crash left, makes loose
// permissions private again, and reports a damaged state.db or a missing
// chat.json (ErrDamaged) instead of showing no groups.
//
// An application that keeps MLS state in its own engine passes a
// storage.Store to OpenWithStore (or InitOptions.Store) instead: the
// groups and KeyPackage private keys then live there, not in state.db;
// storage/memory gives a client whose groups end with the process.
//
// # No directory at all
//
// InitStore and OpenStore keep everything in a storage.Store: the
// identity, the bookkeeping and the trust settings become application
// records of the store (storage.Batch.AppRecords, keys beginning
// "mlskit/client/") beside the groups, so an application with its own
// database needs no file of ours. The store has no lock: open it in one
// Client at a time. See ExampleInitStore.
//
// # What users should not have to think about
//
// A commit that loses its epoch to another member's (the server answers
// StaleEpoch) is discarded, the winner is fetched and processed, and the
// operation is tried again on the new epoch (RFC 9420, Section 14;
// RFC 9750, Section 5.2). A commit is saved before it is sent; if the
// process dies at any step, the next run reads the log and merges it if
// the server accepted it, or drops it if not. KeyPackages are replenished
// when the stock runs low or the last-resort one was used (RFC 9420,
// Section 16.8). A member's request to leave (a Remove proposal for
// itself; a member cannot commit its own removal) is committed by the next
// member that reads the group. An invitation whose Welcome cannot be used
// is skipped and reported once (EventSkipped); it never blocks the other
// groups, and Ignore (or Leave) stops looking at it. A server that refuses
// to deliver a group is reported (ErrNotDelivered), never taken for an MLS
// removal.
//
// # Errors
//
// Errors a person can cause are *UserError values whose message says what
// to do, wrapping a sentinel to branch on with errors.Is: ErrUsage,
// ErrUnknownUser, ErrNoKeyPackages, ErrNotMember, ErrRemoved,
// ErrNotDelivered, ErrUnreachable, ErrUntrusted, ErrBadName, ErrDamaged.
package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	dsclient "github.com/mlskit/mlskit/ds/client"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/mls"
	"github.com/mlskit/mlskit/storage"
	"github.com/mlskit/mlskit/storage/memory"
)

// DefaultSuite is the cipher suite of new identities.
const DefaultSuite = mls.X25519_AES128GCM_SHA256_Ed25519

// keyPackageLifetime keeps KeyPackages within mlsd's default cap of 90 days
// (RFC 9420, Section 10: the lifetime bounds how long a leaked KeyPackage
// stays usable).
const keyPackageLifetime = 60 * 24 * time.Hour

// KeyPackage stock policy: keep at least minKeyPackages on the server,
// topping up to targetKeyPackages, plus one last-resort KeyPackage.
const (
	minKeyPackages    = 3
	targetKeyPackages = 10
)

// Client is one person's MLS client over one state directory. It is not
// safe for concurrent use.
type Client struct {
	// home keeps the identity and bookkeeping (home.go); dir is the state
	// directory, empty for a Client kept wholly in a storage.Store.
	home  home
	dir   string
	id    *Identity
	cfg   *mls.Config
	sig   *mls.SignatureKeyPair
	store groupStore
	meta  *meta
	lock  *os.File
	ds    *dsclient.Client
	// groups holds each group loaded in this process: one Group object
	// per group, as mls.Group.Save requires.
	groups map[string]*mls.Group
	// readOnly: opened by OpenReadOnly, without the lock.
	readOnly bool

	// Now stamps events; nil means time.Now.
	Now func() time.Time
}

// InitOptions configures a new identity.
type InitOptions struct {
	Name   string
	Server string          // mlsd base URL; empty for offline use only
	Suite  mls.CipherSuite // 0 means DefaultSuite
	// Store, if set, keeps the MLS state (groups, KeyPackage private keys)
	// instead of the directory's state.db, as with OpenWithStore.
	Store storage.Store
}

// Init creates a state directory with a fresh signature key and a Basic
// credential for o.Name (RFC 9420, Section 5.3). It refuses a directory that
// already holds an identity, and a name CheckName refuses. Everything is
// checked before anything is written: the name, the cipher suite, the
// server URL and, when o.Server is set, a login to that server (which binds
// the new key to the name there). A failed Init leaves no identity behind.
func Init(ctx context.Context, dir string, o InitOptions) (*Client, error) {
	return initHome(ctx, dirHome(dir), dir, o, nil)
}

// InitStore is Init for a Client kept wholly in st, with no directory: the
// identity (with its signature private key), the per-group bookkeeping and
// the trust settings are application records of st (storage.Batch
// AppRecords, under keys beginning "mlskit/client/"), beside the groups and
// KeyPackage private keys. o.Store must be nil or st. OpenStore opens it
// again. st must keep the promises of storage.Store (RFC 9420, Section
// 16.6); Close does not close it. Unlike a directory, a store has no lock:
// the application must not open one store in two Clients at once.
func InitStore(ctx context.Context, st storage.Store, o InitOptions) (*Client, error) {
	if st == nil || (o.Store != nil && o.Store != st) {
		return nil, userErr(ErrUsage, "InitStore needs one store (InitOptions.Store nil or the same)")
	}
	o.Store = st
	return initHome(ctx, storeHome{st}, "", o, nil)
}

func initHome(ctx context.Context, h home, dir string, o InitOptions, tr *trust) (*Client, error) {
	if o.Name == "" {
		return nil, userErr(ErrUsage, "a name is required (--name)")
	}
	if err := CheckName(o.Name); err != nil {
		return nil, err
	}
	if o.Suite == 0 {
		o.Suite = DefaultSuite
	}
	if err := checkServerURL(o.Server); err != nil {
		return nil, err
	}
	if _, err := h.read(ctx, identityFile); err == nil {
		if dir == "" {
			return nil, userErr(ErrUsage, "%s already holds an identity", h)
		}
		return nil, userErr(ErrUsage, "%s already holds an identity; use another --dir", dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", h.where(identityFile), err)
	}
	sig, err := mls.GenerateSignatureKeyPair(o.Suite, rand.Reader)
	if err != nil {
		return nil, userErr(ErrUsage, "cipher suite %d: %v", o.Suite, err)
	}
	id := &Identity{Name: o.Name, Server: o.Server, Suite: o.Suite, SignatureKey: sig.PrivateKey()}
	if o.Server != "" && tr == nil {
		// An X.509 identity cannot log in before its certificate exists.
		probe := &Client{home: h, dir: dir, id: id, cfg: &mls.Config{}, meta: &meta{Groups: map[string]*groupMeta{}}}
		if err := probe.connect(ctx); err != nil {
			return nil, err
		}
	}
	if dir != "" {
		if err := makePrivateDir(dir); err != nil {
			return nil, err
		}
	}
	if tr != nil {
		if err := saveTrust(h, tr); err != nil {
			return nil, fmt.Errorf("writing %s: %w", h.where(trustFile), err)
		}
	}
	if err := saveIdentity(h, id); err != nil {
		return nil, fmt.Errorf("writing the identity: %w", err)
	}
	return open(h, dir, false, o.Store)
}

// checkServerURL accepts an empty URL (offline use) or an absolute http or
// https URL with a host and nothing after the path.
func checkServerURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return userErr(ErrUsage, "the server URL %q is not of the form http://HOST:PORT or https://HOST", s)
	}
	return nil
}

// Open opens an existing state directory.
func Open(dir string) (*Client, error) { return open(dirHome(dir), dir, false, nil) }

// OpenWithStore opens an existing state directory whose MLS state (groups,
// their epoch secrets, KeyPackage private keys) lives in st, an engine the
// application chose, instead of the directory's state.db: for example
// storage/memory for a client whose groups must not outlive the process,
// or an engine over the application's own database. The directory still
// holds the identity and the per-group bookkeeping (chat.json), which must
// stay in step with st: give the same st (or a copy of it) every time.
// st must keep the promises of storage.Store (atomic writes, deleted keys
// unrecoverable, RFC 9420, Section 16.6); storage/storagetest checks an
// engine against them. Close does not close st.
func OpenWithStore(dir string, st storage.Store) (*Client, error) {
	if st == nil {
		return nil, errors.New("client: OpenWithStore needs a store")
	}
	return open(dirHome(dir), dir, false, st)
}

// OpenStore opens a Client that InitStore made in st: everything it keeps
// is in st, nothing on disk outside it.
func OpenStore(st storage.Store) (*Client, error) {
	if st == nil {
		return nil, errors.New("client: OpenStore needs a store")
	}
	return open(storeHome{st}, "", false, st)
}

// OpenReadOnly opens a state directory to look at it (Status, Groups)
// without taking its lock, so it works while another process, such as a
// running Follow, uses the directory. It reads what that process last
// saved. Everything that would change the state or talk to the server
// fails with ErrReadOnly.
func OpenReadOnly(dir string) (*Client, error) { return open(dirHome(dir), dir, true, nil) }

// ErrReadOnly: the Client was opened with OpenReadOnly.
var ErrReadOnly = errors.New("client: opened read-only")

func open(h home, dir string, readOnly bool, st storage.Store) (*Client, error) {
	id, err := loadIdentity(h)
	if err != nil {
		return nil, err
	}
	var lock *os.File
	if !readOnly && dir != "" {
		if lock, err = lockDir(dir); err != nil {
			return nil, err
		}
		if err := tightenDir(dir); err != nil {
			unlockDir(lock)
			return nil, err
		}
		if err := removeTemp(dir); err != nil {
			unlockDir(lock)
			return nil, err
		}
	}
	c := &Client{home: h, dir: dir, id: id, cfg: &mls.Config{KeyPackageLifetime: keyPackageLifetime}, lock: lock, groups: map[string]*mls.Group{}, readOnly: readOnly}
	fail := func(err error) (*Client, error) { unlockDir(lock); return nil, err }
	// An X.509 identity checks every credential against its CA (x509.go).
	v, err := validatorFor(h, id.Suite)
	if err != nil {
		return fail(err)
	}
	// Every credential's name must also be safe to show (name.go).
	c.cfg.CredentialValidator = nameChecker{v}
	if c.sig, err = mls.NewSignatureKeyPair(id.Suite, id.SignatureKey); err != nil {
		return fail(fmt.Errorf("%s: bad signature key: %w", identityFile, err))
	}
	if st != nil {
		_, inMemory := st.(*memory.Store)
		c.store = &mlsStore{st: st, cfg: c.cfg, durable: !inMemory}
	} else if c.store, err = openStore(dir, c.cfg); err != nil {
		return fail(&UserError{Msg: fmt.Sprintf("%s is damaged or unreadable: %v", filepath.Join(dir, stateDB), err), Err: ErrDamaged})
	}
	if readOnly {
		c.store = readOnlyStore{c.store}
	}
	if c.meta, err = loadMeta(h); err == nil {
		err = c.checkConsistent(context.Background())
	}
	if err != nil {
		c.store.Close()
		return fail(err)
	}
	return c, nil
}

// Close releases the directory.
func (c *Client) Close() error {
	err := c.store.Close()
	unlockDir(c.lock)
	return err
}

// Identity returns the client's identity (its String hides the key).
func (c *Client) Identity() *Identity { return c.id }

// stateWhere names where the MLS state is, for messages: the directory's
// state.db, or the store.
func (c *Client) stateWhere() string {
	if s, ok := c.store.(*mlsStore); ok && s.owned {
		return filepath.Join(c.dir, stateDB)
	}
	if ro, ok := c.store.(readOnlyStore); ok {
		if s, ok := ro.groupStore.(*mlsStore); ok && s.owned {
			return filepath.Join(c.dir, stateDB)
		}
	}
	return "the store"
}

// Durable reports whether group state survives this process.
func (c *Client) Durable() bool { return c.store.Durable() }

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// connect logs in to the delivery service once per Client.
func (c *Client) connect(ctx context.Context) error {
	if c.ds != nil {
		return nil
	}
	if c.readOnly {
		return ErrReadOnly
	}
	if c.id.Server == "" {
		return userErr(ErrUsage, "no server configured for %s: run \"mls init\" with --server URL", c.home)
	}
	if err := c.needCertificate(); err != nil {
		return err
	}
	s, err := suite.Lookup(suite.ID(c.id.Suite))
	if err != nil {
		return err
	}
	signer, err := s.NewSigner(c.id.SignatureKey)
	if err != nil {
		return err
	}
	cred, err := c.id.Credential().Marshal()
	if err != nil {
		return err
	}
	ds := dsclient.New(c.id.Server, nil)
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := ds.Login(lctx, uint16(c.id.Suite), signer, cred); err != nil {
		return c.serverError("logging in as "+c.id.Name, err)
	}
	// Continue checking each group's hash chain where the last run left it.
	for _, gm := range c.meta.Groups {
		if gm.ChainHash != nil {
			ds.SetChainPosition(gm.ID, gm.Cursor, gm.ChainHash)
		}
	}
	c.ds = ds
	return nil
}

func (c *Client) saveMeta() error {
	if c.readOnly {
		return ErrReadOnly
	}
	if err := c.meta.save(c.home); err != nil {
		return fmt.Errorf("saving %s: %w", c.home.where(metaFile), err)
	}
	return nil
}

// group loads a group this client is an active member of.
func (c *Client) group(ctx context.Context, name string) (*mls.Group, *groupMeta, error) {
	id := []byte(name)
	gm := c.meta.group(id)
	if gm == nil {
		return nil, nil, userErr(ErrNotMember, "you are not a member of group %q (\"mls groups\" lists yours)", name)
	}
	if gm.Removed {
		return nil, gm, userErr(ErrRemoved, "you were removed from group %q", name)
	}
	if g, ok := c.groups[name]; ok {
		return g, gm, nil
	}
	g, err := c.store.LoadGroup(ctx, id)
	if errors.Is(err, errNoGroup) {
		return nil, nil, userErr(ErrNotMember, "group %q has no saved state in %s", name, c.stateWhere())
	}
	if err != nil {
		return nil, nil, &UserError{Msg: fmt.Sprintf("the state of group %q in %s cannot be loaded (damaged?): %v", name, c.stateWhere(), err), Err: ErrDamaged}
	}
	c.groups[name] = g
	return g, gm, nil
}

// saveGroup saves the group's changes. If that fails, the object is ahead
// of the store and is dropped, so the next use reloads what is stored.
func (c *Client) saveGroup(ctx context.Context, g *mls.Group) error {
	if err := c.store.SaveGroup(ctx, g); err != nil {
		delete(c.groups, string(g.GroupID()))
		return fmt.Errorf("saving group %q: %w", g.GroupID(), err)
	}
	c.groups[string(g.GroupID())] = g
	return nil
}

// GroupInfo summarizes one group for listing.
type GroupInfo struct {
	Name    string
	Epoch   uint64
	Members []string
	Unread  int
	Removed bool
	Offline bool
	// Skipped: an invitation that could not be used (Reason says why);
	// Ignored: one the user chose to ignore. Neither is joined.
	Skipped, Ignored bool
	Reason           string
}

// Groups lists the groups in this state directory.
func (c *Client) Groups(ctx context.Context) ([]GroupInfo, error) {
	var out []GroupInfo
	for _, gm := range c.meta.sorted() {
		gi := GroupInfo{Name: string(gm.ID), Removed: gm.Removed, Offline: gm.Offline, Unread: len(gm.Inbox) - gm.Shown}
		g, _, err := c.group(ctx, string(gm.ID))
		switch {
		case err == nil:
			gi.Epoch = g.Epoch()
			gi.Members = memberNames(g)
		case !errors.Is(err, ErrRemoved):
			return nil, err
		}
		out = append(out, gi)
	}
	for _, d := range c.meta.Declined {
		if d.Reason == "left" {
			continue
		}
		out = append(out, GroupInfo{Name: string(d.ID), Skipped: !d.Ignored, Ignored: d.Ignored, Reason: d.Reason})
	}
	slices.SortStableFunc(out, func(a, b GroupInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func memberNames(g *mls.Group) []string {
	var out []string
	for _, m := range g.Members() {
		out = append(out, NameOf(m.Credential))
	}
	return out
}

// Member is one member as listed by Members.
type Member struct {
	Leaf uint32
	Name string
	Me   bool
}

// Status is a group's membership and epoch.
type Status struct {
	Group   string
	Epoch   uint64
	Members []Member
	// Authenticator is the epoch_authenticator (RFC 9420, Section 8.7):
	// members who compare it out of band detect a split view of the group.
	Authenticator []byte
	TreeHash      []byte
}

// Status returns the group's current epoch, members and epoch
// authenticator, as this client last processed them (run Read first to be
// current).
func (c *Client) Status(ctx context.Context, group string) (*Status, error) {
	g, _, err := c.group(ctx, group)
	if err != nil {
		return nil, err
	}
	st := &Status{Group: group, Epoch: g.Epoch(), Authenticator: g.EpochAuthenticator(), TreeHash: g.TreeHash()}
	for _, m := range g.Members() {
		st.Members = append(st.Members, Member{Leaf: uint32(m.Index), Name: NameOf(m.Credential), Me: m.Index == g.LeafIndex()})
	}
	return st, nil
}

// SetServer points this identity at another delivery service URL (the
// server moved, or was given a new name). The URL is checked and a login
// tried before it is saved. Group logs are per server: groups made on the
// old server are not found on a new one.
func (c *Client) SetServer(ctx context.Context, server string) error {
	if server == "" {
		return userErr(ErrUsage, "name the server URL")
	}
	if err := checkServerURL(server); err != nil {
		return err
	}
	if c.readOnly {
		return ErrReadOnly
	}
	id := *c.id
	id.Server = server
	if err := c.needCertificate(); err == nil {
		probe := &Client{home: c.home, dir: c.dir, id: &id, cfg: c.cfg, meta: c.meta}
		if err := probe.connect(ctx); err != nil {
			return err
		}
	}
	if err := saveIdentity(c.home, &id); err != nil {
		return fmt.Errorf("writing the identity: %w", err)
	}
	c.id, c.ds = &id, nil
	return nil
}
