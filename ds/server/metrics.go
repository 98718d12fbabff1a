package server

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// metrics is a small Prometheus text-format registry. Labels carry only
// method names, result classes and kinds: never identities, group ids or
// message bodies.
type metrics struct {
	mu         sync.RWMutex
	counters   map[string]*atomic.Uint64 // full series name -> value
	byKey      map[seriesKey]*atomic.Uint64
	help       map[string]string
	gauges     map[string]func() float64
	histograms map[string]*histogram
}

func newMetrics() *metrics {
	return &metrics{counters: map[string]*atomic.Uint64{}, byKey: map[seriesKey]*atomic.Uint64{}, help: map[string]string{},
		gauges: map[string]func() float64{}, histograms: map[string]*histogram{}}
}

func series(name string, labels ...string) string {
	if len(labels) == 0 {
		return name
	}
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i := 0; i+1 < len(labels); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", labels[i], labels[i+1])
	}
	b.WriteByte('}')
	return b.String()
}

// inc adds one to the counter name{labels}.
func (m *metrics) inc(name string, labels ...string) { m.counter(name, labels...).Add(1) }

// seriesKey names a series by its parts, up to two label pairs: a map key
// that costs no formatting and no allocation, where series builds the
// full name once, when the series is first used.
type seriesKey struct {
	name   string
	labels [4]string
	n      int // labels given: ("a") and ("a", "") are two series
}

// counter returns the counter of name{labels}, creating it. Every RPC
// counts itself, so a series already seen is found under a read lock,
// without formatting its name.
func (m *metrics) counter(name string, labels ...string) *atomic.Uint64 {
	k := seriesKey{name: name, n: len(labels)}
	fast := len(labels) <= len(k.labels)
	if fast {
		copy(k.labels[:], labels)
		m.mu.RLock()
		c := m.byKey[k]
		m.mu.RUnlock()
		if c != nil {
			return c
		}
	}
	// A copy, so that labels does not escape and callers' label slices
	// stay on their stacks.
	full := series(name, slices.Clone(labels)...)
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.counters[full]
	if !ok {
		c = new(atomic.Uint64)
		m.counters[full] = c
	}
	if fast {
		m.byKey[k] = c
	}
	return c
}

func (m *metrics) gauge(name, help string, f func() float64) {
	m.mu.Lock()
	m.gauges[name] = f
	m.help[name] = help
	m.mu.Unlock()
}

type histogram struct {
	mu      sync.Mutex
	bounds  []float64
	buckets []uint64
	sum     float64
	count   uint64
}

func (m *metrics) observe(name string, d time.Duration) {
	m.mu.RLock()
	h := m.histograms[name]
	m.mu.RUnlock()
	if h == nil {
		m.mu.Lock()
		if h = m.histograms[name]; h == nil {
			h = &histogram{bounds: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}
			h.buckets = make([]uint64, len(h.bounds))
			m.histograms[name] = h
		}
		m.mu.Unlock()
	}
	v := d.Seconds()
	h.mu.Lock()
	for i, b := range h.bounds {
		if v <= b {
			h.buckets[i]++
		}
	}
	h.sum += v
	h.count++
	h.mu.Unlock()
}

var metricHelp = map[string]string{
	"mlsd_requests_total":             "RPCs served, by method and result code.",
	"mlsd_records_appended_total":     "Log records appended, by kind.",
	"mlsd_commits_total":              "Commit bundles, by result (won, stale, deferred).",
	"mlsd_keypackages_uploaded_total": "KeyPackages accepted into the directory.",
	"mlsd_keypackages_claimed_total":  "KeyPackage claims, by result (regular, last_resort, missing).",
	"mlsd_rate_limited_total":         "Requests refused by a token bucket, by limit.",
	"mlsd_slow_consumers_total":       "Subscriptions ended because the client could not keep up.",
	"mlsd_rejected_total":             "Requests refused as malformed, oversized, unauthenticated or replayed, by reason.",
	"mlsd_records_delivered_total":    "Records sent on subscription streams.",
	"mlsd_commit_accept_seconds":      "Time to accept a winning commit bundle.",
	"mlsd_store_reads_total":          "Log reads that missed the recent-records cache.",
	"mlsd_append_seconds":             "Time the store takes to append a message.",
	"mlsd_request_bytes_total":        "Request body bytes read from clients (refused bodies are not read whole).",
	"mlsd_internal_errors_total":      "Unexpected failures answered with a generic internal error, by what failed.",
}

func (m *metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	m.write(w)
}

func (m *metrics) write(w io.Writer) {
	m.mu.Lock()
	keys := make([]string, 0, len(m.counters))
	for k := range m.counters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([]uint64, len(keys))
	for i, k := range keys {
		vals[i] = m.counters[k].Load()
	}
	gauges := make([]string, 0, len(m.gauges))
	for k := range m.gauges {
		gauges = append(gauges, k)
	}
	sort.Strings(gauges)
	hnames := make([]string, 0, len(m.histograms))
	for k := range m.histograms {
		hnames = append(hnames, k)
	}
	sort.Strings(hnames)
	m.mu.Unlock()

	last := ""
	for i, k := range keys {
		name := k
		if j := strings.IndexByte(k, '{'); j >= 0 {
			name = k[:j]
		}
		if name != last {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", name, metricHelp[name], name)
			last = name
		}
		fmt.Fprintf(w, "%s %d\n", k, vals[i])
	}
	for _, g := range gauges {
		m.mu.Lock()
		f, help := m.gauges[g], m.help[g]
		m.mu.Unlock()
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", g, help, g, g, f())
	}
	for _, n := range hnames {
		m.mu.Lock()
		h := m.histograms[n]
		m.mu.Unlock()
		h.mu.Lock()
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", n, metricHelp[n], n)
		for i, b := range h.bounds {
			fmt.Fprintf(w, "%s_bucket{le=\"%g\"} %d\n", n, b, h.buckets[i])
		}
		fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", n, h.count, n, h.sum, n, h.count)
		h.mu.Unlock()
	}
}

// bucket is a token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// limiter holds token buckets by key; idle full buckets are dropped.
type limiter struct {
	rate, burst float64
	mu          sync.Mutex
	m           map[string]*bucket
	sweep       time.Time
}

func newLimiter(rate, burst float64) *limiter {
	return &limiter{rate: rate, burst: burst, m: map[string]*bucket{}}
}

// allow takes n tokens from key's bucket if it has them.
func (l *limiter) allow(key string, n float64, now time.Time) bool {
	if l == nil || l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > time.Minute {
		for k, b := range l.m {
			if now.Sub(b.last).Seconds()*l.rate+b.tokens >= l.burst {
				delete(l.m, k)
			}
		}
		l.sweep = now
	}
	b, ok := l.m[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.m[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// add adds n to the counter name{labels}.
func (m *metrics) add(name string, n uint64, labels ...string) {
	if n == 0 {
		return
	}
	m.counter(name, labels...).Add(n)
}
