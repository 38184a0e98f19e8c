package watch

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// filesRig runs a Files source on a fake clock over a temporary libvirt
// run directory (run/qemu, run/lxc) and configuration (etc/fdbhook.toml).
type filesRig struct {
	t                *testing.T
	qemu, lxc, cfg   string
	clock            *fakeClock
	events           <-chan Event
	seen             []func(Event) bool
	rescan           time.Duration
	waitingForRescan bool
}

func newFilesRig(t *testing.T, withQemu bool) *filesRig {
	dir := t.TempDir()
	f := &filesRig{t: t, qemu: filepath.Join(dir, "run", "qemu"), lxc: filepath.Join(dir, "run", "lxc"),
		cfg: filepath.Join(dir, "etc", "fdbhook.toml"), clock: newFakeClock(), rescan: 5 * time.Second}
	os.MkdirAll(f.lxc, 0o755)
	os.MkdirAll(filepath.Dir(f.cfg), 0o755)
	if withQemu {
		os.MkdirAll(f.qemu, 0o755)
	}
	f.events, _ = runSource(t, &Files{GuestDirs: []string{f.qemu, f.lxc}, ConfigPath: f.cfg, Log: quietLog(), Clock: f.clock})
	f.awaitRescanTimer()
	return f
}

// awaitRescanTimer waits until the source sleeps until its next rescan:
// it has added the watches it could.
func (f *filesRig) awaitRescanTimer() {
	f.t.Helper()
	if d := f.clock.nextWait(f.t, "the rescan timer"); d != f.rescan {
		f.t.Fatalf("the source waits %v between rescans, want %v", d, f.rescan)
	}
}

// expect waits for a hint ok accepts. A write is several inotify events
// (create, close): repeats of a hint already seen are fine, the queue
// collapses them; any other hint, and any resync but the one expected,
// fails the test.
func (f *filesRig) expect(what string, ok func(Event) bool) {
	f.t.Helper()
	awaitEvent(f.t, f.events, what, ok, func(e Event) {
		if e.Resync || !slices.ContainsFunc(f.seen, func(g func(Event) bool) bool { return g(e) }) {
			f.t.Errorf("unexpected hint %+v while waiting for %s", e, what)
		}
	})
	f.seen = append(f.seen, ok)
}

// configChanged writes the configuration and waits for its reload hint:
// inotify keeps the order of events, so every event before the write has
// been handled by then.
func (f *filesRig) configChanged() {
	f.t.Helper()
	if err := os.WriteFile(f.cfg, []byte("bridges = []\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
	f.expect("the configuration written", func(e Event) bool { return e.Reload })
}

// rescanned moves the clock to the rescan and expects the resync that a
// live XML directory watched again asks for.
func (f *filesRig) rescanned(dir string) {
	f.t.Helper()
	f.clock.Advance(f.rescan)
	f.expect(dir+" watched again", func(e Event) bool { return e.Resync && strings.Contains(e.Why, dir) })
	f.awaitRescanTimer()
}

func writeLive(t *testing.T, dir, name string) {
	t.Helper()
	path := filepath.Join(dir, name+".xml")
	if err := os.WriteFile(path+".new", []byte("<domstatus/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

func isGuest(name string) func(Event) bool { return func(e Event) bool { return e.Guest == name } }

// TestFilesSource: libvirt rewriting a live XML (by rename) names the
// guest; the configuration file changing asks for a reload; other files
// are not hints; a container's live XML (the LXC driver's run directory)
// names the container. The qemu directory appears only after the source
// starts, as on a host where libvirtd starts after the watcher: the next
// rescan watches it and asks for a resync, since guests may have been
// written there meanwhile.
func TestFilesSource(t *testing.T) {
	f := newFilesRig(t, false)
	f.configChanged()

	os.MkdirAll(f.qemu, 0o755)
	writeLive(t, f.qemu, "g0") // before the watch: only the resync finds it
	f.rescanned(f.qemu)
	writeLive(t, f.qemu, "g1")
	f.expect("g1's live XML rewritten", isGuest("g1"))
	os.WriteFile(filepath.Join(filepath.Dir(f.cfg), "other.conf"), nil, 0o644)
	os.Remove(filepath.Join(f.qemu, "g1.xml"))
	f.expect("g1's live XML removed", isGuest("g1"))
	os.WriteFile(filepath.Join(f.lxc, "c1.xml"), []byte("<domstatus/>"), 0o600)
	f.expect("container c1's live XML written", isGuest("c1"))
}

// TestFilesSourceDirectoryRecreated: libvirt's run directory removed and
// created again (libvirtd restarted on a fresh /run) is watched again at
// the next rescan, not before, with a resync for what was written
// meanwhile; a rescan with every directory watched asks for nothing.
func TestFilesSourceDirectoryRecreated(t *testing.T) {
	f := newFilesRig(t, true)
	writeLive(t, f.qemu, "g1")
	f.expect("g1 written", isGuest("g1"))
	f.clock.Advance(f.rescan)
	f.awaitRescanTimer()

	os.RemoveAll(f.qemu)
	f.configChanged() // the removal has been seen
	os.MkdirAll(f.qemu, 0o755)
	writeLive(t, f.qemu, "g2")
	f.configChanged() // g2's write, unwatched, gave no hint before this one
	f.rescanned(f.qemu)
	writeLive(t, f.qemu, "g3")
	f.expect("g3 written in the directory watched again", isGuest("g3"))
	f.clock.Advance(f.rescan)
	f.awaitRescanTimer()
	f.configChanged() // and that rescan asked for no resync
}
