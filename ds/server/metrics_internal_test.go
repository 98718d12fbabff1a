package server

import (
	"strings"
	"testing"
)

// TestMetricsSeries: counters keep one value per full series name, however
// they are found, and counting a series already seen allocates nothing
// (every RPC counts itself).
func TestMetricsSeries(t *testing.T) {
	m := newMetrics()
	m.inc("mlsd_requests_total", "method", "SendMessage", "code", "ok")
	m.inc("mlsd_requests_total", "method", "SendMessage", "code", "ok")
	m.inc("mlsd_requests_total", "method", "SendMessage", "code", "invalid_argument")
	m.inc("mlsd_requests_total", "code", "ok", "method", "SendMessage")
	m.add("mlsd_request_bytes_total", 5)
	m.add("mlsd_request_bytes_total", 0)
	m.add("mlsd_request_bytes_total", 7)
	// More label pairs than the fast key holds: found by name each time.
	m.inc("x_total", "a", "1", "b", "2", "c", "3")
	m.inc("x_total", "a", "1", "b", "2", "c", "3")
	// An unpaired label is dropped from the name, so these are one series.
	m.inc("y_total", "a")
	m.inc("y_total")
	m.inc("y_total", "a", "")
	var b strings.Builder
	m.write(&b)
	for _, want := range []string{
		`mlsd_requests_total{method="SendMessage",code="ok"} 2` + "\n",
		`mlsd_requests_total{method="SendMessage",code="invalid_argument"} 1` + "\n",
		`mlsd_requests_total{code="ok",method="SendMessage"} 1` + "\n",
		"mlsd_request_bytes_total 12\n",
		`x_total{a="1",b="2",c="3"} 2` + "\n",
		"y_total{} 1\n",
		"y_total 1\n",
		`y_total{a=""} 1` + "\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
	if n := testing.AllocsPerRun(100, func() { m.inc("mlsd_requests_total", "method", "SendMessage", "code", "ok") }); n != 0 {
		t.Errorf("counting a known series allocates %v times", n)
	}
}
