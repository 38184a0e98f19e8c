package hook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// migrationRun runs one qemu hook event of guest t2 with the run directory
// dir and returns it, failing t when anything reaches stdout.
func migrationRun(t *testing.T, dir string, op, subop string) run {
	t.Helper()
	r := runQemu(t, cfgBr0, startXML, map[string]string{host.EnvRunDir: dir}, "t2", op, subop, "-")
	if r.stdout != "" {
		t.Errorf("%s %s wrote to stdout (libvirt reads it as the domain XML): %q", op, subop, r.stdout)
	}
	return r
}

func mark(t *testing.T, dir string) (runstate.Mark, bool) {
	t.Helper()
	m, ok, err := runstate.Dir(dir).GetMark("t2")
	if err != nil {
		t.Fatal(err)
	}
	return m, ok
}

func TestMigrateBeginMarks(t *testing.T) {
	dir := t.TempDir()
	before := time.Now()
	r := migrationRun(t, dir, "migrate", "begin")
	if r.code != host.ExitOK || r.stderr != "" || len(r.kernel.WriteLog()) != 0 {
		t.Fatalf("migrate begin: exit %d stderr %q writes %v", r.code, r.stderr, r.kernel.WriteLog())
	}
	m, ok := mark(t, dir)
	if !ok || m.Phase != runstate.Incoming || m.Guest != "t2" || m.Since.Before(before.Add(-time.Second)) {
		t.Fatalf("mark after migrate begin: %+v (present %v), want t2 incoming since now", m, ok)
	}
	if m.UUID == "" {
		t.Errorf("mark has no UUID although the XML has one: %+v", m)
	}
}

func TestMigrateBeginNeverFails(t *testing.T) {
	dir := t.TempDir()
	// A file where the run directory's migration/ must go: the mark
	// cannot be written.
	if err := os.WriteFile(filepath.Join(dir, "migration"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := migrationRun(t, dir, "migrate", "begin")
	if r.code != host.ExitOK {
		t.Errorf("migrate begin exit %d, want 0 (a failed hook fails the migration)", r.code)
	}
	if !strings.Contains(r.stderr, "cannot mark the incoming migration") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("stderr %q, want one line about the mark", r.stderr)
	}
	r = runQemu(t, "", startXML, map[string]string{host.EnvRunDir: t.TempDir()}, "t2", "migrate", "begin", "-")
	if r.code != host.ExitOK || r.stdout != "" || r.stderr != "" {
		t.Errorf("migrate begin without configuration: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestIncomingStart(t *testing.T) {
	quiet := model.Flags{}
	for _, tc := range []struct {
		name    string
		mark    *runstate.Mark // nil: migrate begin runs first
		watcher bool
		writes  string
		flags   []model.Flags
		phase   runstate.Phase // mark left after start; "" for none
	}{
		{name: "no watcher: learning on, no entries", writes: "flags flags",
			flags: []model.Flags{{Learning: true}, {Learning: true}}, phase: runstate.Pending},
		{name: "watcher: learning on too, no entries", watcher: true, writes: "flags flags",
			flags: []model.Flags{{Learning: true}, {Learning: true}}, phase: runstate.Pending},
		{name: "stale mark: ordinary start", mark: &runstate.Mark{Guest: "t2", Phase: runstate.Incoming,
			Since: time.Now().Add(-runstate.MaxPrepare - time.Minute)},
			writes: "replace 52:54:00:aa:cc:01 flags replace 52:54:00:aa:cc:03 flags", flags: []model.Flags{quiet, quiet}},
		{name: "pending mark: ordinary start", mark: &runstate.Mark{Guest: "t2", Phase: runstate.Pending, Since: time.Now()},
			writes: "replace 52:54:00:aa:cc:01 flags replace 52:54:00:aa:cc:03 flags", flags: []model.Flags{quiet, quiet}},
		{name: "mark of another guest of that name: ordinary start", mark: &runstate.Mark{Guest: "t2",
			UUID: "00000000-0000-0000-0000-000000000000", Phase: runstate.Incoming, Since: time.Now()},
			writes: "replace 52:54:00:aa:cc:01 flags replace 52:54:00:aa:cc:03 flags", flags: []model.Flags{quiet, quiet}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.watcher {
				release, err := runstate.Dir(dir).HoldWatcher(time.Now())
				if err != nil {
					t.Fatal(err)
				}
				defer release()
			}
			if tc.mark == nil {
				migrationRun(t, dir, "migrate", "begin")
			} else if err := runstate.Dir(dir).PutMark(*tc.mark); err != nil {
				t.Fatal(err)
			}
			r := migrationRun(t, dir, "start", "begin")
			if r.code != host.ExitOK {
				t.Fatalf("start begin: exit %d stderr %q", r.code, r.stderr)
			}
			if got := strings.Join(r.kernel.WriteLog(), " "); got != tc.writes {
				t.Errorf("writes %q, want %q", got, tc.writes)
			}
			if len(flagsSet(r.kernel)) != len(tc.flags) {
				t.Fatalf("port flags set %v, want %v", flagsSet(r.kernel), tc.flags)
			}
			for i := range tc.flags {
				if flagsSet(r.kernel)[i] != tc.flags[i] {
					t.Errorf("port flags set %v, want %v", flagsSet(r.kernel), tc.flags)
				}
			}
			m, ok := mark(t, dir)
			switch {
			case tc.phase == "" && ok:
				t.Errorf("mark left after an ordinary start: %+v", m)
			case tc.phase != "" && (!ok || m.Phase != tc.phase):
				t.Errorf("mark after start: %+v (present %v), want phase %s", m, ok, tc.phase)
			}
		})
	}
}

func TestIncomingDryRunChangesNothing(t *testing.T) {
	dir := t.TempDir()
	migrationRun(t, dir, "migrate", "begin")
	r := runQemu(t, cfgBr0, startXML, map[string]string{host.EnvRunDir: dir}, "--dry-run", "t2", "start", "begin", "-")
	if r.code != host.ExitOK || len(r.kernel.WriteLog()) != 0 || r.stdout != "" {
		t.Fatalf("dry run: exit %d writes %v stdout %q", r.code, r.kernel.WriteLog(), r.stdout)
	}
	for _, want := range []string{"link set dev vnet7 learning on flood off", "incoming live migration"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("dry run lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "fdb replace") {
		t.Errorf("dry run of an incoming start writes entries:\n%s", r.stderr)
	}
	if m, ok := mark(t, dir); !ok || m.Phase != runstate.Incoming {
		t.Errorf("dry run changed the mark: %+v (present %v)", m, ok)
	}
}

func TestStopClearsMark(t *testing.T) {
	for _, op := range []string{"stopped", "release"} {
		for _, phase := range []string{"incoming", "pending"} {
			dir := t.TempDir()
			migrationRun(t, dir, "migrate", "begin")
			if phase == "pending" {
				migrationRun(t, dir, "start", "begin")
			}
			if m, ok := mark(t, dir); !ok || string(m.Phase) != phase {
				t.Fatalf("%s: mark before stop %+v (present %v)", phase, m, ok)
			}
			r := migrationRun(t, dir, op, "end")
			if r.code != host.ExitOK {
				t.Errorf("%s end: exit %d", op, r.code)
			}
			if m, ok := mark(t, dir); ok {
				t.Errorf("%s end with a %s mark left it: %+v", op, phase, m)
			}
		}
	}
}
