package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDocumentedBounds checks both sides of every limit the documentation
// states, with the figures written out rather than the package's
// constants: a bound moved by mistake fails here, where a test against the
// constant would move with it. Every hook reads this file, so a value the
// documentation allows but the parser refuses makes every guest start
// exit 3.
func TestDocumentedBounds(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		// [watch] resync: "a Go duration, "5s" to "24h"".
		{"[watch]\nresync = \"5s\"", true},
		{"[watch]\nresync = \"5000ms\"", true},
		{"[watch]\nresync = \"4999ms\"", false},
		{"[watch]\nresync = \"4.999999999s\"", false},
		{"[watch]\nresync = \"24h\"", true},
		{"[watch]\nresync = \"86400s\"", true},
		{"[watch]\nresync = \"24h0m0.000000001s\"", false},
		{"[watch]\nresync = \"25h\"", false},
		{"[watch]\nresync = \"0s\"", false},
		{"[watch]\nresync = \"-60s\"", false},
		{"[watch]\nresync = \"60\"", false},
		// [watch] metrics: host:port with a port from 1 to 65535, or
		// unix: and an absolute path.
		{"[watch]\nmetrics = \"127.0.0.1:1\"", true},
		{"[watch]\nmetrics = \"127.0.0.1:65535\"", true},
		{"[watch]\nmetrics = \"127.0.0.1:0\"", false},
		{"[watch]\nmetrics = \"127.0.0.1:65536\"", false},
		{"[watch]\nmetrics = \":9568\"", true},
		{"[watch]\nmetrics = \"[::1]:9568\"", true},
		{"[watch]\nmetrics = \"[::1]:0\"", false},
		{"[watch]\nmetrics = \"127.0.0.1:-1\"", false},
		{"[watch]\nmetrics = \"unix:/run/fdbhook/metrics.sock\"", true},
		{"[watch]\nmetrics = \"unix:run/metrics.sock\"", false},
		{"[watch]\nmetrics = \"\"", true},
		// Interface names: at most 15 bytes (IFNAMSIZ less its NUL).
		{"bridges = [\"abcdefghijklmno\"]", true},
		{"bridges = [\"abcdefghijklmnop\"]", false},
		{"[bridge.abcdefghijklmno]\nsticky = true", true},
		{"[bridge.abcdefghijklmnop]\nsticky = true", false},
		{"bridges = [\"br.0\"]", true},
		{"bridges = [\".\"]", false},
		{"bridges = [\"br 0\"]", false},
		{"bridges = [\"br:0\"]", false},
		// Network names: anything but empty, '/' or a newline.
		{"networks = [\"host bridge\"]", true},
		{"networks = [\"a/b\"]", false},
		// The documented values of the enumerations, and their neighbours.
		{"on_error = \"fail\"", true},
		{"on_error = \"warn\"", true},
		{"on_error = \"Warn\"", false},
		{"log_level = \"debug\"", true},
		{"log_level = \"info\"", true},
		{"log_level = \"warning\"", true},
		{"log_level = \"warn\"", true},
		{"log_level = \"error\"", true},
		{"log_level = \"trace\"", false},
		{"[bridge.br0]\nvlan_filtering = \"enable\"", true},
		{"[bridge.br0]\nvlan_filtering = \"leave\"", true},
		{"[bridge.br0]\nvlan_filtering = \"disable\"", false},
	} {
		_, err := Parse([]byte(tc.in + "\n"))
		if (err == nil) != tc.ok {
			t.Errorf("%q: error %v, want valid: %v", tc.in, err, tc.ok)
		}
	}
}

// TestResyncBoundsParsed: the bounds parse to what they say.
func TestResyncBoundsParsed(t *testing.T) {
	for in, want := range map[string]time.Duration{"5s": 5 * time.Second, "24h": 24 * time.Hour, "90m": 90 * time.Minute} {
		c, err := Parse([]byte("[watch]\nresync = \"" + in + "\"\n"))
		if err != nil {
			t.Errorf("resync = %q refused: %v; want %v", in, err, want)
		} else if c.Watch.ResyncInterval != want {
			t.Errorf("resync = %q: %v, want %v", in, c.Watch.ResyncInterval, want)
		}
	}
	if c := Default("x"); c.Watch.ResyncInterval != time.Minute || c.Watch.Resync != "1m0s" {
		t.Errorf("default resync %v (%q), want a minute", c.Watch.ResyncInterval, c.Watch.Resync)
	}
}

// TestSizeBound: the file may be 1 MiB, not a byte more.
func TestSizeBound(t *testing.T) {
	dir := t.TempDir()
	for size, ok := range map[int]bool{1 << 20: true, 1<<20 + 1: false} {
		path := filepath.Join(dir, "fdbhook.toml")
		body := "bridges = [\"br0\"]\n#"
		body += strings.Repeat("x", size-len(body)-1) + "\n"
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if (err == nil) != ok || (ok && !c.ManagesBridge("br0")) {
			t.Errorf("a file of %d bytes: %v, want valid: %v", size, err, ok)
		}
	}
}
