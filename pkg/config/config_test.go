package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseFull(t *testing.T) {
	c, err := Parse([]byte(`
bridges  = ["br0", "br1"]
networks = ["hostbr"]
on_error = "warn"
log_level = "debug"
[bridge.br0]
vlan_filtering = "enable"
[bridge.br1]
`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Present || c.OnError != Warn || c.LogLevel != "debug" {
		t.Errorf("got %+v", c)
	}
	if !c.ManagesBridge("br1") || c.ManagesBridge("br2") || !c.ManagesNetwork("hostbr") {
		t.Errorf("membership wrong: %+v", c)
	}
	if got := c.Policy("br0").VlanFiltering; got != Enable {
		t.Errorf("br0 vlan_filtering = %q, want enable", got)
	}
	if got := c.Policy("br1").VlanFiltering; got != Leave {
		t.Errorf("br1 vlan_filtering = %q, want leave (table present, key absent)", got)
	}
	if got := c.Policy("unlisted").VlanFiltering; got != Leave {
		t.Errorf("unlisted vlan_filtering = %q, want leave", got)
	}
}

// TestFollowMax: follow_max is read per bridge, 8 when absent, and its
// bounds 1 and 64 are accepted.
func TestFollowMax(t *testing.T) {
	c, err := Parse([]byte("bridges = [\"br0\", \"br1\", \"br2\"]\n[bridge.br0]\nundeclared_macs = \"follow\"\nfollow_max = 1\n[bridge.br1]\nfollow_max = 64\n[bridge.br2]\nsticky = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	for br, want := range map[string]int{"br0": 1, "br1": 64, "br2": DefaultFollowMax, "unlisted": DefaultFollowMax} {
		if got := c.Policy(br).FollowMax; got != want {
			t.Errorf("%s follow_max = %d, want %d", br, got, want)
		}
	}
	if got := c.Policy("br0").UndeclaredMACs; got != Follow {
		t.Errorf("br0 undeclared_macs = %q, want follow", got)
	}
}

// TestUndeclaredMACs: "ignore" is the default, the key and its absence
// mean the same, and "report" is read per bridge.
func TestUndeclaredMACs(t *testing.T) {
	c, err := Parse([]byte("bridges = [\"br0\", \"br1\", \"br2\"]\n[bridge.br0]\nundeclared_macs = \"report\"\n[bridge.br1]\nundeclared_macs = \"ignore\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for br, want := range map[string]UndeclaredMACs{"br0": Report, "br1": Ignore, "br2": Ignore, "unlisted": Ignore} {
		if got := c.Policy(br).UndeclaredMACs; got != want {
			t.Errorf("%s undeclared_macs = %q, want %q", br, got, want)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.OnError != Fail || c.LogLevel != "info" || !c.Empty() || !c.Present {
		t.Errorf("defaults wrong: %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"syntax", "bridges = [\"br0\"\n", "line 1: expected"},
		{"not toml", "<domain/>", "line 1"},
		{"unknown top-level key", `bridgez = ["br0"]`, "unknown key bridgez"},
		{"bridge not a table", `bridges = ["br0"]` + "\n" + `bridge = ["br0"]`,
			`line 2: bridge = ["br0"]: bridge is a table per bridge: write [bridge.br0] for its settings, and list the bridges to manage in bridges = ["br0"]`},
		{"bridge entry not a table", "[bridge]\nbr0 = \"enable\"",
			`line 2: br0 = "enable": bridge.br0 is a table of settings for one bridge: write [bridge.br0] on a line of its own, its keys below it, such as vlan_filtering = "enable"`},
		{"bridges a string", `bridges = "br0"`, `line 1: bridges = "br0": bridges is a list of bridge names: write bridges = ["br0"]`},
		{"on_error a number", `on_error = 1`, `line 1: on_error = 1: on_error is "fail" or "warn", quoted: write on_error = "fail"`},
		{"lock_ports quoted", "bridges = [\"br0\"]\n[bridge.br0]\nlock_ports = \"yes\"",
			`line 3: lock_ports = "yes": bridge.br0.lock_ports is true or false, not quoted: write lock_ports = true`},
		{"watch not a table", `watch = "60s"`, `line 1: watch = "60s": watch is a table: write [watch] on a line of its own, its keys below it`},
		{"resync a number", "[watch]\nresync = 60", `line 2: resync = 60: watch.resync is a quoted duration: write resync = "60s"`},
		{"unknown bridge key", "[bridge.br0]\nvlan = 1", "unknown key bridge.br0.vlan"},
		{"bridges not a list", `bridges = "br0"`, "bridges"},
		{"bridges of numbers", `bridges = [1]`, "bridges"},
		{"on_error value", `on_error = "ignore"`, `on_error = "ignore"`},
		{"on_error empty", `on_error = ""`, `on_error = ""`},
		{"log_level value", `log_level = "loud"`, `log_level = "loud"`},
		{"vlan_filtering value", "[bridge.br0]\nvlan_filtering = \"on\"", `vlan_filtering = "on"`},
		{"vlan_filtering bool", "[bridge.br0]\nvlan_filtering = true", `line 2: vlan_filtering = true: bridge.br0.vlan_filtering is "enable" or "leave", quoted: write vlan_filtering = "enable"`},
		{"undeclared_macs value", "[bridge.br0]\nundeclared_macs = \"learn\"", `[bridge.br0] undeclared_macs = "learn": want "ignore", "report" or "follow"`},
		{"undeclared_macs bool", "[bridge.br0]\nundeclared_macs = true", `line 2: undeclared_macs = true: bridge.br0.undeclared_macs is "ignore", "report" or "follow", quoted: write undeclared_macs = "report"`},
		{"follow_max zero", "[bridge.br0]\nfollow_max = 0", `[bridge.br0] follow_max = 0: want 1 to 64`},
		{"follow_max negative", "[bridge.br0]\nfollow_max = -1", `[bridge.br0] follow_max = -1: want 1 to 64`},
		{"follow_max too many", "[bridge.br0]\nfollow_max = 65", `[bridge.br0] follow_max = 65: want 1 to 64`},
		{"follow_max quoted", "[bridge.br0]\nfollow_max = \"8\"", `line 2: follow_max = "8": bridge.br0.follow_max is a whole number, not quoted: write follow_max = 8`},
		{"bridge name too long", `bridges = ["abcdefghijklmnop"]`, "not a valid interface name"},
		{"bridge name slash", `bridges = ["br/0"]`, "not a valid interface name"},
		{"bridge name empty", `bridges = [""]`, "not a valid interface name"},
		{"bridge table name", "[bridge.\"a b\"]\nvlan_filtering = \"leave\"", "not a valid interface name"},
		{"duplicate bridge", `bridges = ["br0", "br0"]`, "listed twice"},
		{"duplicate network", `networks = ["n", "n"]`, "listed twice"},
		{"empty network", `networks = [""]`, "not a valid network name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want error containing %q", tc.in, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%q) = %q, want it to contain %q", tc.in, err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()

	missing := filepath.Join(dir, "absent.toml")
	c, err := Load(missing)
	if err != nil || c.Present || !c.Empty() || c.Path != missing {
		t.Errorf("Load(missing) = %+v, %v; want empty default", c, err)
	}

	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte(`bridges = ["br0"]`), 0o644)
	c, err = Load(good)
	if err != nil || !c.Present || !c.ManagesBridge("br0") {
		t.Errorf("Load(good) = %+v, %v", c, err)
	}

	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte(`on_error = "maybe"`), 0o644)
	_, err = Load(bad)
	var cerr *Error
	if !errors.As(err, &cerr) || cerr.Path != bad || !strings.HasPrefix(err.Error(), bad+": ") {
		t.Errorf("Load(bad) = %v, want *Error naming %s", err, bad)
	}

	big := filepath.Join(dir, "big.toml")
	os.WriteFile(big, []byte("# "+strings.Repeat("x", maxSize)+"\n"), 0o644)
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load(big) = %v, want size error", err)
	}

	if _, err := Load(dir); err == nil {
		t.Errorf("Load(directory) succeeded")
	}
}

// TestLoadUnreadable: a file the hook may not read is an error, not "no
// configuration" (which would leave every bridge unmanaged).
func TestLoadUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root, which reads a mode-000 file anyway: an unreadable file cannot be made here")
	}
	unreadable := filepath.Join(t.TempDir(), "unreadable.toml")
	if err := os.WriteFile(unreadable, []byte(""), 0o000); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(unreadable); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Load(unreadable) = %v, want permission error", err)
	}
}

func TestWatchResync(t *testing.T) {
	c, err := Parse([]byte(`bridges = ["br0"]`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Watch.ResyncInterval != DefaultResync {
		t.Errorf("default resync = %v, want %v", c.Watch.ResyncInterval, DefaultResync)
	}
	c, err = Parse([]byte("[watch]\nresync = \"5m\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Watch.ResyncInterval != 5*time.Minute {
		t.Errorf("resync = %v, want 5m", c.Watch.ResyncInterval)
	}
	for _, bad := range []string{
		"[watch]\nresync = \"soon\"\n",
		"[watch]\nresync = \"1s\"\n",
		"[watch]\nresync = \"48h\"\n",
		"[watch]\nresync = 60\n",
		"[watch]\nresnyc = \"60s\"\n",
		"watch = [1]\n",
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted it", bad)
		} else if !strings.Contains(err.Error(), "watch") && !strings.Contains(err.Error(), "resync") && !strings.Contains(err.Error(), "resnyc") {
			t.Errorf("Parse(%q): %v does not name the key", bad, err)
		}
	}
}

func TestWatchMetrics(t *testing.T) {
	c, err := Parse([]byte(`bridges = ["br0"]`))
	if err != nil || c.Watch.Metrics != "" {
		t.Fatalf("default [watch] metrics = %q, %v; want off", c.Watch.Metrics, err)
	}
	for _, good := range []string{"127.0.0.1:9568", "[::1]:9568", ":9568", "localhost:9568", "unix:/run/fdbhook/metrics.sock"} {
		c, err := Parse([]byte("[watch]\nmetrics = \"" + good + "\"\n"))
		if err != nil || c.Watch.Metrics != good {
			t.Errorf("metrics = %q: got %q, %v", good, c.Watch.Metrics, err)
		}
	}
	for _, bad := range []string{"localhost", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:http", "unix:metrics.sock", "unix:", "::1:9568", "[::1:9568"} {
		_, err := Parse([]byte("[watch]\nmetrics = \"" + bad + "\"\n"))
		if err == nil || !strings.Contains(err.Error(), "[watch] metrics") {
			t.Errorf("metrics = %q: error %v, want one naming [watch] metrics", bad, err)
		}
	}
}

// TestCommentLinesSkipped: Parse skips whole-line comments before the
// decoder, which must change nothing the decoder would say: the same
// configuration, the same errors on the same lines, and the comments it
// refuses still refused.
func TestCommentLinesSkipped(t *testing.T) {
	packaged, err := os.ReadFile("../../packaging/fdbhook.toml")
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(packaged, []byte("\n#")); n < 20 {
		t.Fatalf("the packaged configuration has %d comment lines: not the case this test is for", n)
	}
	for _, tc := range []struct{ name, in string }{
		{"packaged", string(packaged)},
		{"packaged, bridges set", strings.Replace(string(packaged), "bridges = []", "# br0 is the uplink's\n\tbridges = [\"br0\"] # inline\n", 1)},
		{"CRLF", "# a\r\n  # b\r\nbridges = [\"br0\"]\r\n"},
		{"comments inside an array", "bridges = [\n# first\n  \"br0\",\n\t# second\n  \"br1\",\n]\n"},
		{"syntax error after comments", "# a\n# b\n\nbridges = [\n"},
		{"unknown key after comments", "# a\n#\nbridgez = 1\n"},
		{"control character in a comment", "# a\x01b\nbridges = []\n"},
		{"DEL in a comment", "# a\x7fb\nbridges = []\n"},
		{"invalid UTF-8 in a comment", "# a\xffb\nbridges = []\n"},
		{"# inside a multi-line string", "log_level = \"\"\"\n# not a comment\"\"\"\n"},
		{"# inside a literal multi-line string", "log_level = '''\n#info'''\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, wantErr := decode(tc.in)
			got, gotErr := Parse([]byte(tc.in))
			switch {
			case (wantErr == nil) != (gotErr == nil):
				t.Fatalf("Parse: %v; the decoder on the text as written: %v", gotErr, wantErr)
			case wantErr != nil && gotErr.Error() != OneLine(wantErr.Error()):
				t.Errorf("Parse: %q; the decoder on the text as written: %q", gotErr, wantErr)
			case wantErr == nil && !reflect.DeepEqual(got, want):
				t.Errorf("Parse: %+v; the decoder on the text as written: %+v", got, want)
			}
		})
	}
	if got := withoutCommentLines([]byte("# a\r\n  # b\nx = 1 # c\n#")); got != "\n\nx = 1 # c\n" {
		t.Errorf("withoutCommentLines: %q, want the comment lines blank and the rest as it was", got)
	}
}

// BenchmarkParsePackaged: the packaged, commented configuration, through
// Parse and through the decoder on the text as written.
func BenchmarkParsePackaged(b *testing.B) {
	data, err := os.ReadFile("../../packaging/fdbhook.toml")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Parse", func(b *testing.B) {
		for b.Loop() {
			if _, err := Parse(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoder-as-written", func(b *testing.B) {
		for b.Loop() {
			if _, err := decode(string(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
