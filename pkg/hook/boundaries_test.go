package hook

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// TestStartAtTheConfigBounds: a configuration at a documented bound is
// valid for the hook, which then starts the guest as usual; one just
// outside it makes the start fail with exit 3. Every hook reads the
// [watch] table too: a bound wrong there stops every guest start.
func TestStartAtTheConfigBounds(t *testing.T) {
	const applied = "replace 52:54:00:aa:cc:01 flags replace 52:54:00:aa:cc:03 flags"
	for _, tc := range []struct {
		extra string
		code  int
	}{
		{"[watch]\nresync = \"5s\"\n", host.ExitOK},
		{"[watch]\nresync = \"24h\"\n", host.ExitOK},
		{"[watch]\nresync = \"4s\"\n", host.ExitConfig},
		{"[watch]\nresync = \"25h\"\n", host.ExitConfig},
		{"[watch]\nmetrics = \"127.0.0.1:1\"\n", host.ExitOK},
		{"[watch]\nmetrics = \"[::1]:65535\"\n", host.ExitOK},
		{"[watch]\nmetrics = \"unix:/run/fdbhook/metrics.sock\"\n", host.ExitOK},
		{"[watch]\nmetrics = \"127.0.0.1:0\"\n", host.ExitConfig},
		{"[bridge.abcdefghijklmno]\nsticky = false\n", host.ExitOK},
		{"[bridge.abcdefghijklmnop]\nsticky = false\n", host.ExitConfig},
	} {
		r := runQemu(t, cfgBr0+tc.extra, startXML, nil, "t2", "start", "begin", "-")
		if r.code != tc.code {
			t.Errorf("%q: exit %d, want %d (stderr %q)", tc.extra, r.code, tc.code, r.stderr)
			continue
		}
		want := ""
		if tc.code == host.ExitOK {
			want = applied
		}
		if got := strings.Join(r.kernel.WriteLog(), " "); got != want {
			t.Errorf("%q: writes %q, want %q", tc.extra, got, want)
		}
	}
}

// runAt runs one qemu hook event of guest t2 with its run directory dir,
// the hook's clock at now.
func runAt(t *testing.T, dir string, now time.Time, stdin []byte, cfg string, args ...string) run {
	t.Helper()
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "fdbhook.toml"), []byte(cfg), 0o644)
	tr := newTestRun(home, "qemu-hook", stdin, map[string]string{host.EnvRunDir: dir}, kerneltest.T2Host())
	tr.r.Now = func() time.Time { return now }
	r := tr.call((*Runner).RunQemu, args)
	if r.stdout != "" {
		t.Errorf("%v wrote to stdout (libvirt reads it as the domain XML): %q", args, r.stdout)
	}
	return r
}

// TestIncomingMarkAge pins how old an incoming migration's mark may be at
// "start begin" for the start to be the migration's: 10 minutes after
// "migrate begin", and up to a minute before it (clocks set back); an
// older or a future mark is stale, removed, and the start is an ordinary
// one.
func TestIncomingMarkAge(t *testing.T) {
	since := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	const incomingWrites = "flags flags"
	const ordinary = "replace 52:54:00:aa:cc:01 flags replace 52:54:00:aa:cc:03 flags"
	for _, tc := range []struct {
		age    time.Duration
		writes string
	}{
		{0, incomingWrites},
		{10 * time.Minute, incomingWrites},
		{10*time.Minute + time.Second, ordinary},
		{-59 * time.Second, incomingWrites},
		{-61 * time.Second, ordinary},
	} {
		dir := t.TempDir()
		if err := runstate.Dir(dir).PutMark(runstate.Mark{Guest: "t2", Phase: runstate.Incoming, Since: since}); err != nil {
			t.Fatal(err)
		}
		r := runAt(t, dir, since.Add(tc.age), startXML, cfgBr0, "t2", "start", "begin", "-")
		if got := strings.Join(r.kernel.WriteLog(), " "); r.code != host.ExitOK || got != tc.writes {
			t.Errorf("mark %v old: exit %d, writes %q, want %q", tc.age, r.code, got, tc.writes)
		}
		m, ok, _ := runstate.Dir(dir).GetMark("t2")
		if tc.writes == ordinary && ok {
			t.Errorf("mark %v old: a stale mark left behind: %+v", tc.age, m)
		}
		if tc.writes == incomingWrites && (!ok || m.Phase != runstate.Pending) {
			t.Errorf("mark %v old: mark %+v (present %v), want it pending", tc.age, m, ok)
		}
	}
}

// TestMigrateBeginDryRun: a dry run of "migrate begin" marks nothing, and
// a dry run of "start begin" leaves a stale mark where it is.
func TestMigrateBeginDryRun(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, args := range [][]string{{"--dry-run", "t2", "migrate", "begin", "-"}, {"-n", "t2", "migrate", "begin", "-"}} {
		dir := t.TempDir()
		r := runAt(t, dir, now, startXML, cfgBr0, args...)
		if _, ok, _ := runstate.Dir(dir).GetMark("t2"); ok || r.code != host.ExitOK || len(r.kernel.WriteLog()) != 0 {
			t.Errorf("%v: exit %d, mark written %v, writes %v; want exit 0 and nothing", args, r.code, ok, r.kernel.WriteLog())
		}
	}
	dir := t.TempDir()
	stale := runstate.Mark{Guest: "t2", Phase: runstate.Incoming, Since: now.Add(-time.Hour)}
	runstate.Dir(dir).PutMark(stale)
	r := runAt(t, dir, now, startXML, cfgBr0, "--dry-run", "t2", "start", "begin", "-")
	if m, ok, _ := runstate.Dir(dir).GetMark("t2"); !ok || m.Phase != runstate.Incoming || r.code != host.ExitOK || len(r.kernel.WriteLog()) != 0 {
		t.Errorf("dry run of a start with a stale mark: exit %d, writes %v, mark %+v (present %v); want the mark untouched",
			r.code, r.kernel.WriteLog(), m, ok)
	}
	if !strings.Contains(r.stderr, "fdb replace 52:54:00:aa:cc:01") {
		t.Errorf("the dry run does not show the ordinary start a stale mark makes:\n%s", r.stderr)
	}
}

// TestIncomingStartRefused: an incoming migration's "start begin" with a
// NIC that cannot be managed changes nothing, fails as any start does (or
// lets the guest start with on_error = "warn"), and leaves the mark as
// "migrate begin" wrote it: its ports were not readied for the resume.
func TestIncomingStartRefused(t *testing.T) {
	noTarget := bytes.Replace(startXML, []byte("<target dev='vnet7'/>"), []byte("<target dev='vnet99'/>"), 1)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		cfg  string
		code int
	}{{cfgBr0, host.ExitRefused}, {cfgBr0 + "on_error = \"warn\"\n", host.ExitOK}} {
		dir := t.TempDir()
		runAt(t, dir, now, noTarget, tc.cfg, "t2", "migrate", "begin", "-")
		r := runAt(t, dir, now.Add(time.Second), noTarget, tc.cfg, "t2", "start", "begin", "-")
		if r.code != tc.code || len(r.kernel.WriteLog()) != 0 || !strings.Contains(r.stderr, "vnet99 does not exist") {
			t.Errorf("%q: exit %d (want %d), writes %v, stderr %q", tc.cfg, r.code, tc.code, r.kernel.WriteLog(), r.stderr)
		}
		if m, ok, _ := runstate.Dir(dir).GetMark("t2"); !ok || m.Phase != runstate.Incoming || !m.Since.Equal(now) {
			t.Errorf("%q: mark %+v (present %v), want the one of migrate begin", tc.cfg, m, ok)
		}
	}
}
