package config

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzParse: any input either gives a one-line error, or a configuration
// that (1) holds the contract's invariants, written out here rather than
// asked of validate, which Parse has already run, and (2) survives a round
// trip: encoded back to TOML and parsed again, it is the same
// configuration; and (3) skipping whole-line comments before the decoder
// changes nothing: the decoder on the text as written accepts and refuses
// the same inputs, with the same result. Never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"bridges = [\"br0\"]\nnetworks = [\"hostbr\"]\non_error = \"warn\"\n[bridge.br0]\nvlan_filtering = \"enable\"\n",
		"bridge = [\"br0\"]", "[bridge]\nbr0 = 1", "log_level = \"debug\"", "x = 1979-05-27T07:32:00Z",
		"bridges = []\n[bridge.\"a b\"]\n", "[bridge.br1]\nlock_ports = true\nsticky = true\n",
		"bridges = [\"br0\", \"br0\"]", "networks = [\"a/b\"]", "bridges = [\"0123456789abcdef\"]",
		"on_error = \"maybe\"", "log_level = \"loud\"", "[bridge.br0]\nvlan_filtering = \"on\"",
	} {
		f.Add([]byte(s))
	}
	f.Add([]byte("# a\n\t# b\r\nbridges = [ # c\n# d\n\"br0\"]\n#\x01\n"))
	f.Add([]byte("log_level = \"\"\"\n# x\"\"\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		asWritten, errAsWritten := decode(string(data))
		if (err == nil) != (errAsWritten == nil) || (err == nil && !reflect.DeepEqual(c, asWritten)) {
			t.Fatalf("skipping comment lines changed the outcome: %+v, %v; as written: %+v, %v", c, err, asWritten, errAsWritten)
		}
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		checkInvariants(t, c)
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(c); err != nil {
			t.Fatalf("encoding the parsed configuration: %v", err)
		}
		again, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("the parsed configuration, encoded, does not parse: %v\n%s", err, buf.String())
		}
		if !sameConfig(c, again) {
			t.Fatalf("round trip changed the configuration:\nfirst  %+v\nsecond %+v\nTOML:\n%s", c, again, buf.String())
		}
	})
}

// checkInvariants states the configuration contract on its own terms.
func checkInvariants(t *testing.T, c *Config) {
	t.Helper()
	if !c.Present {
		t.Fatal("a parsed configuration is not Present")
	}
	if c.OnError != Fail && c.OnError != Warn {
		t.Fatalf("on_error %q accepted", c.OnError)
	}
	if !slices.Contains([]string{"debug", "info", "warning", "warn", "error"}, c.LogLevel) {
		t.Fatalf("log_level %q accepted", c.LogLevel)
	}
	ifName := func(what, n string) {
		if n == "" || len(n) > 15 || n == "." || n == ".." || strings.ContainsAny(n, "/: \t\n") {
			t.Fatalf("%s %q accepted: not a Linux interface name", what, n)
		}
	}
	for _, list := range []struct {
		key   string
		names []string
	}{{"bridges", c.Bridges}, {"networks", c.Networks}} {
		seen := map[string]bool{}
		for _, n := range list.names {
			if seen[n] {
				t.Fatalf("%s lists %q twice", list.key, n)
			}
			seen[n] = true
			if list.key == "bridges" {
				ifName("bridges entry", n)
			} else if n == "" || strings.ContainsAny(n, "/\n") {
				t.Fatalf("networks entry %q accepted", n)
			}
		}
	}
	for name, b := range c.Bridge {
		ifName("[bridge.NAME]", name)
		if b.VlanFiltering != Enable && b.VlanFiltering != Leave {
			t.Fatalf("[bridge.%s] vlan_filtering stored as %q, want enable or leave", name, b.VlanFiltering)
		}
	}
}

// sameConfig compares what a configuration says, with an empty list equal
// to a missing one.
func sameConfig(a, b *Config) bool {
	norm := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	return slices.Equal(norm(a.Bridges), norm(b.Bridges)) && slices.Equal(norm(a.Networks), norm(b.Networks)) &&
		a.OnError == b.OnError && a.LogLevel == b.LogLevel && reflect.DeepEqual(a.Bridge, b.Bridge)
}
