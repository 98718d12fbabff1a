package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mlskit/mlskit/client"
)

// Everything a peer or the server chose (message text, member and group
// names, error text from the server, inspected objects) goes through clean
// before it reaches the terminal. A terminal obeys control characters, ANSI
// CSI and OSC sequences and Unicode bidi overrides, so a raw "\r\x1b[2K"
// followed by a fake prefix would redraw a message as a line from another
// sender, and OSC could retitle the window.

// clean returns s with every character that is not printable shown as a
// Go escape instead: C0 and C1 controls (so ESC, and with it every CSI and
// OSC sequence, is inert), DEL, line and paragraph separators, format
// characters (bidi embeddings, overrides and isolates, zero-width
// characters), non-ASCII spaces, and bytes that are not UTF-8. Ordinary
// text in any script passes unchanged.
func clean(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && !strconv.IsPrint(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case !strconv.IsPrint(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func isClean(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}

// cleanLines cleans each line of s and keeps the line breaks, for
// multi-line output this program laid out itself (mls inspect).
func cleanLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = clean(l)
	}
	return strings.Join(lines, "\n")
}

// showName renders a member's name: cleaned, and marked when it is a
// whole-script confusable (UTS #39, Section 4), a name in another script
// made only of letters that look Latin, such as a Cyrillic "аІісе", which
// CheckName lets through because real names are written so.
func showName(name string) string {
	if script, ok := client.LooksLatin(name); ok {
		return fmt.Sprintf("%s [%s letters that look Latin]", clean(name), script)
	}
	return clean(name)
}

// nameNotes marks the names of an event's Members that showName would
// mark, for events whose text names them.
func nameNotes(names []string) string {
	var b strings.Builder
	for _, n := range names {
		if script, ok := client.LooksLatin(n); ok {
			fmt.Fprintf(&b, " [%q is written in %s letters that look Latin]", n, script)
		}
	}
	return b.String()
}

// eventLine formats one event as one terminal line.
func eventLine(e client.Event) string {
	ts := e.Time.In(time.Local).Format("15:04:05")
	if e.Kind == client.EventMessage {
		return fmt.Sprintf("%s [%s] %s: %s", ts, clean(e.Group), showName(e.From), clean(e.Text))
	}
	return fmt.Sprintf("%s [%s] * %s%s", ts, clean(e.Group), clean(e.Text), nameNotes(e.Members))
}

// followLine formats an event of "mls follow"; its own status lines say
// what the person can do.
func followLine(e client.Event, me, group string) string {
	if e.Kind != client.EventStatus {
		return eventLine(e)
	}
	ts := e.Time.In(time.Local).Format("15:04:05")
	if e.Text == client.StatusReady {
		if group == "" {
			return fmt.Sprintf("%s * ready: following all groups of %s (Ctrl-C stops)", ts, clean(me))
		}
		return fmt.Sprintf("%s * ready: following %q as %s; type a line and Enter to send, /help for commands", ts, group, clean(me))
	}
	return fmt.Sprintf("%s * %s", ts, clean(e.Text))
}
