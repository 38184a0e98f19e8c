package watch

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// TestFilesSource: libvirt rewriting a live XML (by rename) names the
// guest; the configuration file changing asks for a reload; other files
// are not hints. The qemu directory appears only after the source starts,
// as on a host where libvirtd starts after the watcher.
func TestFilesSource(t *testing.T) {
	dir := t.TempDir()
	qemu := filepath.Join(dir, "run", "qemu")
	cfg := filepath.Join(dir, "etc", "fdbhook.toml")
	os.MkdirAll(filepath.Dir(cfg), 0o755)
	log := logrus.New()
	log.Out = io.Discard
	src := &Files{QemuRunDir: qemu, ConfigPath: cfg, Log: log, Rescan: 50 * time.Millisecond}
	events := make(chan Event, 100)
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	go func() {
		src.Run(ctx, func(e Event) { events <- e })
		close(ended)
	}()
	defer func() {
		cancel()
		select {
		case <-ended:
		case <-time.After(time.Second):
			t.Error("the files source did not stop within a second")
		}
	}()
	// A write is several inotify events (create, close): repeats of a
	// hint already seen are fine, the queue collapses them.
	var seen []func(Event) bool
	expect := func(what string, ok func(Event) bool) {
		t.Helper()
		deadline := time.After(2 * time.Second)
		for {
			select {
			case e := <-events:
				if ok(e) {
					seen = append(seen, ok)
					return
				}
				if !slices.ContainsFunc(seen, func(f func(Event) bool) bool { return f(e) }) {
					t.Errorf("unexpected hint %+v while waiting for %s", e, what)
				}
			case <-deadline:
				t.Fatalf("no hint for %s", what)
			}
		}
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
}
