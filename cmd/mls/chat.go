package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/mlskit/mlskit/client"
	"github.com/mlskit/mlskit/mls"
)

// chatUsage lists the chat commands; main.go's usage points here.
const chatUsage = `chat over an mlsd delivery service (state in --dir, default $MLS_DIR or ~/.mls):
  init --name NAME --server URL   create an identity and publish KeyPackages
       [--ca-cert CA.pem]         ... with an X.509 credential from that CA (docs/CLI.md)
  cert import|crl|request         install your certificate or the CA's CRL (X.509)
  publish                         top up KeyPackages on the server
  create GROUP                    create a group with you as its only member
  invite GROUP USER...            add users (claims their KeyPackages, sends the Welcome)
  join                            join the groups you were invited to
  send GROUP TEXT...              encrypt and send a message
  read [GROUP]                    fetch, decrypt and print what is new
  follow [GROUP]                  print messages live; lines you type are sent to GROUP
  remove GROUP USER               remove a member
  leave GROUP                     ask the group to remove you, and forget it
  update GROUP                    refresh your keys (commit with a new UpdatePath)
  members GROUP                   the epoch and the members
  authenticator GROUP             the epoch authenticator, to compare out of band
  groups                          your groups
  set-server URL                  use another mlsd URL (checked by logging in)
  offline ...                     file-based operations (mls offline -h)
`

const offlineUsage = `usage: mls offline <command> [--dir DIR] ...

MLS objects as files, no server (for scripts and other implementations):
  init --name NAME                  create an identity without a server
  keypackage -o FILE                create a KeyPackage (keeps its private keys)
  create GROUP                      create a group
  commit GROUP [--add KP]... [--remove NAME]... -o COMMIT [--welcome WELCOME]
         [--group-info GI] [--public]
                                    commit adds, removes and a fresh UpdatePath;
                                    --public sends it as a PublicMessage
  join WELCOME                      join from a Welcome file
  process GROUP FILE                process a commit (also an external one), proposal
                                    or message file, PrivateMessage or PublicMessage
  encrypt GROUP -o FILE TEXT...     encrypt a message to a file
  decrypt GROUP FILE                decrypt a message file and print it
Files are binary MLSMessages; -hex reads and writes hex instead.
`

var chatCommands = map[string]string{
	"init": "--name NAME --server URL [--suite N] [--ca-cert CA.pem [--allow-basic]]", "cert": "import --cert FILE | crl --crl FILE | request", "publish": "", "create": "GROUP",
	"invite": "GROUP USER...", "join": "", "send": "GROUP TEXT...", "read": "[GROUP]",
	"follow": "[GROUP]", "remove": "GROUP USER", "leave": "GROUP", "update": "GROUP",
	"members": "GROUP", "authenticator": "GROUP", "groups": "", "set-server": "URL", "offline": "COMMAND ...",
}

// chatHelp says what each chat command does, for "mls COMMAND --help".
var chatHelp = map[string]string{
	"init": "Creates an identity in the state directory: a new signature key and a Basic credential\n" +
		"for NAME (or, with --ca-cert, an X.509 one from that CA). The name, suite, URL and a login\n" +
		"are checked before anything is written; then 10 KeyPackages and a last-resort one are published.",
	"cert":    "Installs an X.509 certificate or CRL (\"mls cert --help\").",
	"publish": "Tops up your KeyPackages on the server: 10 and an unused last-resort one.",
	"create":  "Creates a group with you as its only member. GROUP is the MLS group_id, unique on the server.",
	"invite": "Adds users to GROUP: claims a KeyPackage of each, commits the Adds, and sends the commit,\n" +
		"the Welcome and the new GroupInfo together. The group moves on only once the server accepts.",
	"join": "Joins every group whose log holds a Welcome for you. An invitation that cannot be used is\n" +
		"skipped and reported once (\"mls leave GROUP\" ignores it).",
	"send": "Reads GROUP first, then encrypts TEXT and sends it in the newest epoch.",
	"read": "Fetches what is new in every group (or GROUP), processes it and prints what you have not seen.",
	"follow": "Prints events live. With GROUP, lines you type are sent there; /members, /auth, /help and\n" +
		"/quit are commands. Reconnects with backoff when the server goes away.",
	"remove":        "Commits the removal of USER from GROUP.",
	"leave":         "Asks GROUP to remove you (the next member who reads commits it) and forgets it; for a\nskipped invitation, ignores that group from then on.",
	"update":        "Refreshes your keys in GROUP: a commit with a fresh UpdatePath.",
	"members":       "Prints GROUP's epoch and members (reads the state only; runs beside \"mls follow\").",
	"authenticator": "Prints GROUP's epoch authenticator (RFC 9420, Section 8.7), to compare out of band with\nthe other members; equal values mean you see the same group.",
	"groups":        "Lists your groups, their epochs, unread counts and skipped or ignored invitations.",
	"set-server":    "Points this identity at another mlsd URL, after checking it and logging in there.",
	"offline":       "File-based operations without a server (\"mls offline --help\").",
}

// offlineArgs and offlineHelp are the same for "mls offline COMMAND".
var offlineArgs = map[string]string{
	"init": "--name NAME [--suite N]", "keypackage": "-o FILE", "create": "GROUP",
	"commit": "GROUP [--add KP]... [--remove NAME]... [--public] -o COMMIT [--welcome WELCOME] [--group-info GI]",
	"join":   "WELCOME", "process": "GROUP FILE", "encrypt": "GROUP -o FILE TEXT...", "decrypt": "GROUP FILE",
}

var offlineHelp = map[string]string{
	"init":       "Creates an identity that works without a server.",
	"keypackage": "Writes a new KeyPackage (an MLSMessage) to FILE and keeps its private keys.",
	"create":     "Creates a group driven by files.",
	"commit": "Commits Adds of the KeyPackage files, Removes of the named members and a fresh UpdatePath,\n" +
		"merges it at once, and writes the commit (and, when adding, the Welcome). --public sends it as\n" +
		"a PublicMessage, for implementations that accept only PublicMessage handshakes.",
	"join":    "Joins the group a Welcome file invites you to.",
	"process": "Processes a commit, proposal or message file of GROUP (PrivateMessage or PublicMessage)\nand says what it did: who was added, removed or joined, and the new epoch.",
	"encrypt": "Encrypts TEXT as an application message of GROUP into FILE.",
	"decrypt": "Decrypts a message file of GROUP and prints its text.",
}

func isChatCommand(name string) bool { _, ok := chatCommands[name]; return ok }

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// parseInterleaved parses flags anywhere among the arguments ("mls send
// team hi --dir x"); "--" ends flag parsing.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func defaultDir() string {
	if d := os.Getenv("MLS_DIR"); d != "" {
		return d
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".mls")
	}
	return ".mls"
}

// runChat runs one chat command and returns the exit code: 0 success, 1 an
// error (printed as one line, never a stack trace), 2 bad usage.
func runChat(cmd string, args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "mls %s: internal error: %v (please report this)\n", cmd, r)
			code = 1
		}
	}()
	fs := flag.NewFlagSet("mls "+cmd, flag.ContinueOnError)
	dir := fs.String("dir", defaultDir(), "state directory")
	var name, server, out, welcomeOut, groupInfoOut *string
	var public *bool
	var suiteID *uint
	var hexIO *bool
	var caCert *string
	var allowBasic *bool
	var adds, removes multi
	sub := ""
	switch cmd {
	case "init":
		name = fs.String("name", "", "your name (the identity in your credential; your client id on the server)")
		server = fs.String("server", os.Getenv("MLS_SERVER"), "mlsd URL, e.g. http://127.0.0.1:7420 (default $MLS_SERVER)")
		suiteID = fs.Uint("suite", uint(client.DefaultSuite), "cipher suite (RFC 9420, Section 17.1)")
		caCert = fs.String("ca-cert", "", "CA certificate (PEM): use an X.509 credential from this CA and check every member's against it")
		allowBasic = fs.Bool("allow-basic", false, "with --ca-cert, also accept members with Basic credentials")
	case "offline":
		if len(args) == 0 {
			fmt.Fprint(stderr, offlineUsage)
			return 2
		}
		if isHelp(args[0]) {
			fmt.Fprint(stdout, offlineUsage)
			return 0
		}
		sub, args = args[0], args[1:]
		fs = flag.NewFlagSet("mls offline "+sub, flag.ContinueOnError)
		dir = fs.String("dir", defaultDir(), "state directory")
		hexIO = fs.Bool("hex", false, "read and write MLS objects as hex")
		switch sub {
		case "init":
			name = fs.String("name", "", "your name")
			suiteID = fs.Uint("suite", uint(client.DefaultSuite), "cipher suite")
		case "keypackage", "encrypt":
			out = fs.String("o", "", "output file (- for stdout)")
		case "commit":
			out = fs.String("o", "", "commit output file")
			welcomeOut = fs.String("welcome", "", "Welcome output file (when adding)")
			groupInfoOut = fs.String("group-info", "", "GroupInfo output file: the new epoch's, with the ratchet tree and external_pub (for \"mls inspect -group-info\" and external joins)")
			public = fs.Bool("public", false, "send the commit as a PublicMessage (for implementations that accept only those)")
			fs.Var(&adds, "add", "KeyPackage file to add (repeatable)")
			fs.Var(&removes, "remove", "member name to remove (repeatable)")
		case "create", "join", "process", "decrypt":
		default:
			fmt.Fprintf(stderr, "mls offline: unknown command %q\n\n%s", sub, offlineUsage)
			return 2
		}
	}
	fs.Usage = func() {
		if cmd == "offline" {
			fmt.Fprintf(fs.Output(), "usage: mls offline %s %s [--dir DIR]\n\n%s\n\nflags:\n", sub, offlineArgs[sub], offlineHelp[sub])
		} else {
			fmt.Fprintf(fs.Output(), "usage: mls %s %s [--dir DIR]\n\n%s\n\nflags:\n", cmd, chatCommands[cmd], chatHelp[cmd])
		}
		fs.PrintDefaults()
	}
	pos, code := parseFlags(fs, args, true, stdout, stderr)
	if code != flagsOK {
		return code
	}
	label := "mls " + cmd
	if sub != "" {
		label += " " + sub
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "%s: %s\n", label, clean(err.Error()))
		if errors.Is(err, client.ErrUsage) {
			return 2
		}
		return 1
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "%s: %s\nusage: %s %s\n", label, clean(fmt.Sprintf(format, a...)), label, chatCommands[cmd])
		return 2
	}
	npos := func(min, max int) bool { return len(pos) >= min && (max < 0 || len(pos) <= max) }

	if cmd == "init" || sub == "init" {
		if !npos(0, 0) {
			return usageErr("unexpected argument %q", pos[0])
		}
		if *name == "" {
			return usageErr("--name is required")
		}
		srv := ""
		if server != nil {
			srv = *server
			if srv == "" {
				return usageErr("--server is required (or use \"mls offline init\")")
			}
		}
		if caCert != nil && *caCert != "" {
			return initX509(ctx, *dir, client.InitOptions{Name: *name, Server: srv, Suite: mls.CipherSuite(*suiteID)}, *caCert, *allowBasic, stdout, fail)
		}
		if allowBasic != nil && *allowBasic {
			return usageErr("--allow-basic needs --ca-cert")
		}
		c, err := client.Init(ctx, *dir, client.InitOptions{Name: *name, Server: srv, Suite: mls.CipherSuite(*suiteID)})
		if err != nil {
			return fail(err)
		}
		defer c.Close()
		fmt.Fprintf(stdout, "created identity %q in %s\n", *name, *dir)
		if script, ok := client.LooksLatin(*name); ok {
			fmt.Fprintf(stderr, "note: %q is written in %s letters that all look Latin; others will see it marked as a possible look-alike\n", *name, script)
		}
		if srv != "" {
			n, err := c.Publish(ctx)
			if err != nil {
				return fail(fmt.Errorf("identity created, but publishing KeyPackages failed (run \"mls publish\" later): %w", err))
			}
			fmt.Fprintf(stdout, "published %d KeyPackages to %s\n", n, srv)
		}
		if !c.Durable() {
			fmt.Fprintln(stderr, "note: this build keeps group state in memory only; groups do not survive the process (docs/CLI.md)")
		}
		return 0
	}

	open := client.Open
	switch cmd {
	case "members", "authenticator", "groups":
		// Looking needs no lock: these work while "mls follow" runs.
		open = client.OpenReadOnly
	}
	c, err := open(*dir)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	if cmd == "offline" {
		return runOffline(ctx, c, sub, pos, *hexIO, offlineFlags{out: out, welcome: welcomeOut, groupInfo: groupInfoOut, public: public, adds: adds, removes: removes}, stdout, fail, usageErr)
	}
	switch cmd {
	case "publish", "join", "groups":
		if !npos(0, 0) {
			return usageErr("unexpected argument %q", pos[0])
		}
	case "create", "leave", "update", "members", "authenticator":
		if !npos(1, 1) {
			return usageErr("name one group")
		}
	case "set-server":
		if !npos(1, 1) {
			return usageErr("name the server URL")
		}
	case "invite":
		if !npos(2, -1) {
			return usageErr("name the group and at least one user")
		}
	case "send":
		if !npos(2, -1) {
			return usageErr("name the group and the message")
		}
	case "remove":
		if !npos(2, 2) {
			return usageErr("name the group and one user")
		}
	case "read", "follow":
		if !npos(0, 1) {
			return usageErr("name at most one group")
		}
	}
	group := ""
	if len(pos) > 0 {
		group = pos[0]
	}
	printEvents := func(evs []client.Event) {
		for _, e := range evs {
			fmt.Fprintln(stdout, eventLine(e))
		}
	}
	switch cmd {
	case "set-server":
		if err := c.SetServer(ctx, group); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "this identity now uses the server at %s\n", clean(group))
	case "publish":
		n, err := c.Publish(ctx)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "uploaded %d KeyPackages\n", n)
	case "create":
		if err := c.CreateGroup(ctx, group); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "created group %q\n", group)
	case "invite":
		if err := c.Invite(ctx, group, pos[1:]...); err != nil {
			return fail(err)
		}
		st, err := c.Status(ctx, group)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "invited %s to %q (epoch %d)\n", clean(strings.Join(pos[1:], ", ")), group, st.Epoch)
	case "join", "read":
		evs, err := c.Read(ctx, group)
		if err != nil {
			return fail(err)
		}
		printEvents(evs)
	case "send":
		if err := c.Send(ctx, group, strings.Join(pos[1:], " ")); err != nil {
			return fail(err)
		}
	case "follow":
		return runFollow(ctx, c, group, stdin, stdout, fail)
	case "remove":
		if err := c.Remove(ctx, group, pos[1]); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "removed %s from %q\n", clean(pos[1]), group)
	case "leave":
		skipped := false
		if gs, err := c.Groups(ctx); err == nil {
			for _, g := range gs {
				skipped = skipped || g.Name == group && (g.Skipped || g.Ignored)
			}
		}
		if err := c.Leave(ctx, group); err != nil {
			return fail(err)
		}
		if skipped {
			fmt.Fprintf(stdout, "ignoring group %q: its invitations are no longer looked at\n", group)
			return 0
		}
		fmt.Fprintf(stdout, "left %q: the other members commit your removal when they next read\n", group)
	case "update":
		if err := c.SelfUpdate(ctx, group); err != nil {
			return fail(err)
		}
		st, err := c.Status(ctx, group)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "updated your keys in %q (epoch %d)\n", group, st.Epoch)
	case "members":
		st, err := c.Status(ctx, group)
		if err != nil {
			return fail(err)
		}
		printMembers(stdout, st)
	case "authenticator":
		st, err := c.Status(ctx, group)
		if err != nil {
			return fail(err)
		}
		printAuthenticator(stdout, st)
	case "groups":
		gs, err := c.Groups(ctx)
		if err != nil {
			return fail(err)
		}
		if len(gs) == 0 {
			fmt.Fprintln(stdout, "no groups yet: \"mls create GROUP\", or \"mls join\" after someone invites you")
		}
		for _, g := range gs {
			state := ""
			switch {
			case g.Removed:
				state = " (removed)"
			case g.Offline:
				state = " (offline)"
			case g.Ignored:
				state = " (invitation ignored)"
			case g.Skipped:
				state = " (invitation skipped: " + clean(g.Reason) + "; \"mls leave\" ignores it)"
			}
			names := make([]string, len(g.Members))
			for i, n := range g.Members {
				names[i] = showName(n)
			}
			fmt.Fprintf(stdout, "%-20s epoch %-4d %d unread  %s%s\n", clean(g.Name), g.Epoch, g.Unread, strings.Join(names, ", "), state)
		}
	}
	return 0
}

func printMembers(w io.Writer, st *client.Status) {
	fmt.Fprintf(w, "group %q, epoch %d, %d members:\n", st.Group, st.Epoch, len(st.Members))
	for _, m := range st.Members {
		me := ""
		if m.Me {
			me = " (you)"
		}
		// A name that reads as another member's is marked with it (UTS
		// #39 skeletons): the pair could be one person shown twice.
		var like string
		for _, o := range st.Members {
			if client.Confusable(m.Name, o.Name) {
				like += fmt.Sprintf(" [looks like %s at leaf %d]", clean(o.Name), o.Leaf)
			}
		}
		fmt.Fprintf(w, "  leaf %-4d %s%s%s\n", m.Leaf, showName(m.Name), me, like)
	}
}

func printAuthenticator(w io.Writer, st *client.Status) {
	fmt.Fprintf(w, "group %q epoch %d authenticator:\n%s\n", st.Group, st.Epoch, groupHex(st.Authenticator))
}

// followHelp is printed by "/help" in follow.
const followHelp = `  type a line and Enter to send it
  /members   the group's epoch and members
  /auth      the epoch authenticator, to compare out of band
  /quit      stop following (or Ctrl-D, Ctrl-C)
  //text     send a line that starts with "/"`

// runFollow runs "mls follow": events as they happen, typed lines sent to
// group, and the in-band commands above.
func runFollow(ctx context.Context, c *client.Client, group string, stdin io.Reader, stdout io.Writer, fail func(error) int) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	say := func(s string) {
		fmt.Fprintln(stdout, s)
		if f, ok := stdout.(interface{ Sync() error }); ok {
			f.Sync()
		}
	}
	var input chan string
	if group != "" {
		input = make(chan string)
		go func() {
			defer close(input)
			sc := bufio.NewScanner(stdin)
			for sc.Scan() {
				select {
				case input <- sc.Text():
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	command := func(line string) (string, bool) {
		if !strings.HasPrefix(line, "/") {
			return line, true
		}
		if strings.HasPrefix(line, "//") {
			return line[1:], true
		}
		var b strings.Builder
		switch strings.TrimSpace(line) {
		case "/members":
			st, err := c.Status(ctx, group)
			if err != nil {
				say("* " + clean(err.Error()))
				return "", false
			}
			printMembers(&b, st)
		case "/auth", "/authenticator":
			st, err := c.Status(ctx, group)
			if err != nil {
				say("* " + clean(err.Error()))
				return "", false
			}
			printAuthenticator(&b, st)
		case "/quit", "/exit":
			cancel()
			return "", false
		case "/help":
			b.WriteString(followHelp + "\n")
		default:
			say(fmt.Sprintf("* unknown command %s (/help lists them; //text sends a line starting with /)", clean(strings.Fields(line)[0])))
			return "", false
		}
		fmt.Fprint(stdout, b.String())
		return "", false
	}
	err := c.Follow(ctx, client.FollowOptions{Group: group, Input: input, Command: command}, func(e client.Event) {
		say(followLine(e, c.Identity().Name, group))
	})
	if err != nil {
		return fail(err)
	}
	return 0
}

// groupHex prints bytes as hex in groups of four for reading aloud.
func groupHex(b []byte) string {
	h := hex.EncodeToString(b)
	var parts []string
	for i := 0; i < len(h); i += 8 {
		parts = append(parts, h[i:min(i+8, len(h))])
	}
	return strings.Join(parts, " ")
}

// offlineFlags are the flags of the offline subcommands (nil if the
// subcommand has no such flag).
type offlineFlags struct {
	out, welcome, groupInfo *string
	public                  *bool
	adds, removes           multi
}

func runOffline(ctx context.Context, c *client.Client, sub string, pos []string, hexIO bool, f offlineFlags,
	stdout io.Writer, fail func(error) int, usageErr func(string, ...any) int) int {
	out, welcomeOut, adds := f.out, f.welcome, f.adds
	read := func(path string) ([]byte, error) {
		var data []byte
		var err error
		if path == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(path)
		}
		if err != nil {
			return nil, err
		}
		if hexIO {
			data, err = hex.DecodeString(strings.TrimSpace(string(data)))
			if err != nil {
				return nil, fmt.Errorf("%s: not hex: %v", path, err)
			}
		}
		return data, nil
	}
	write := func(path string, data []byte) error {
		if hexIO {
			data = []byte(hex.EncodeToString(data) + "\n")
		}
		if path == "-" {
			_, err := stdout.Write(data)
			return err
		}
		return os.WriteFile(path, data, 0o644)
	}
	switch sub {
	case "keypackage":
		if *out == "" {
			return usageErr("-o FILE is required")
		}
		kp, err := c.NewKeyPackageFile(ctx)
		if err != nil {
			return fail(err)
		}
		if err := write(*out, kp); err != nil {
			return fail(err)
		}
	case "create":
		if len(pos) != 1 {
			return usageErr("name one group")
		}
		if err := c.CreateOfflineGroup(ctx, pos[0]); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "created group %q\n", pos[0])
	case "commit":
		if len(pos) != 1 || *out == "" {
			return usageErr("name one group and -o COMMIT")
		}
		if len(adds) > 0 && *welcomeOut == "" {
			return usageErr("--welcome FILE is required with --add")
		}
		var kps [][]byte
		for _, f := range adds {
			kp, err := read(f)
			if err != nil {
				return fail(err)
			}
			kps = append(kps, kp)
		}
		res, err := c.CommitFiles(ctx, pos[0], client.CommitFilesOptions{KeyPackages: kps, Remove: f.removes, PublicMessage: *f.public})
		if err != nil {
			return fail(err)
		}
		if err := write(*out, res.Commit); err != nil {
			return fail(err)
		}
		if res.Welcome != nil {
			if err := write(*welcomeOut, res.Welcome); err != nil {
				return fail(err)
			}
		}
		if *f.groupInfo != "" {
			if err := write(*f.groupInfo, res.GroupInfo); err != nil {
				return fail(err)
			}
		}
		fmt.Fprintf(stdout, "committed: group %q is now at epoch %d\n", pos[0], res.Epoch)
	case "join":
		if len(pos) != 1 {
			return usageErr("name one Welcome file")
		}
		w, err := read(pos[0])
		if err != nil {
			return fail(err)
		}
		name, err := c.JoinWelcomeFile(ctx, w)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "joined group %q\n", name)
	case "process", "decrypt":
		if len(pos) != 2 {
			return usageErr("name the group and one file")
		}
		msg, err := read(pos[1])
		if err != nil {
			return fail(err)
		}
		evs, err := c.ProcessFile(ctx, pos[0], msg)
		if err != nil {
			return fail(err)
		}
		for _, e := range evs {
			if sub == "decrypt" && e.Kind == client.EventMessage {
				fmt.Fprintln(stdout, clean(e.Text))
			} else {
				fmt.Fprintln(stdout, eventLine(e))
			}
		}
	case "encrypt":
		if len(pos) < 2 || *out == "" {
			return usageErr("name the group, -o FILE and the message")
		}
		msg, err := c.EncryptFile(ctx, pos[0], strings.Join(pos[1:], " "))
		if err != nil {
			return fail(err)
		}
		if err := write(*out, msg); err != nil {
			return fail(err)
		}
	}
	return 0
}
