package watch

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestFilesSource: libvirt rewriting a live XML (by rename) names the
// guest; the configuration file changing asks for a reload; other files
// are not hints; a container's live XML (the LXC driver's run directory)
// names the container. The qemu directory appears only after the source
// starts, as on a host where libvirtd starts after the watcher.
func TestFilesSource(t *testing.T) {
	dir := t.TempDir()
	qemu := filepath.Join(dir, "run", "qemu")
	lxc := filepath.Join(dir, "run", "lxc")
	os.MkdirAll(lxc, 0o755)
	cfg := filepath.Join(dir, "etc", "fdbhook.toml")
	os.MkdirAll(filepath.Dir(cfg), 0o755)
	src := &Files{GuestDirs: []string{qemu, lxc}, ConfigPath: cfg, Log: quietLog(), Rescan: 50 * time.Millisecond}
	events, _ := runSource(t, src)
	// A write is several inotify events (create, close): repeats of a
	// hint already seen are fine, the queue collapses them.
	var seen []func(Event) bool
	expect := func(what string, ok func(Event) bool) {
		t.Helper()
		awaitEvent(t, events, what, ok, func(e Event) {
			if !slices.ContainsFunc(seen, func(f func(Event) bool) bool { return f(e) }) {
				t.Errorf("unexpected hint %+v while waiting for %s", e, what)
			}
		})
		seen = append(seen, ok)
	}
	time.Sleep(50 * time.Millisecond)
	os.WriteFile(cfg, []byte("bridges = []\n"), 0o644)
	expect("the configuration written", func(e Event) bool { return e.Reload })

	os.MkdirAll(qemu, 0o755)
	time.Sleep(200 * time.Millisecond) // the next rescan adds the watch
	os.WriteFile(filepath.Join(qemu, "g1.xml.new"), []byte("<domstatus/>"), 0o600)
	os.Rename(filepath.Join(qemu, "g1.xml.new"), filepath.Join(qemu, "g1.xml"))
	expect("g1's live XML rewritten", func(e Event) bool { return e.Guest == "g1" })
	os.WriteFile(filepath.Join(dir, "etc", "other.conf"), nil, 0o644)
	os.Remove(filepath.Join(qemu, "g1.xml"))
	expect("g1's live XML removed", func(e Event) bool { return e.Guest == "g1" })
	os.WriteFile(filepath.Join(lxc, "c1.xml"), []byte("<domstatus/>"), 0o600)
	expect("container c1's live XML written", func(e Event) bool { return e.Guest == "c1" })
}
