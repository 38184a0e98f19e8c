package features

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/model"
	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// followConfig is follow mode on br0 with follow_max = 4.
const followConfig = "bridges = [\"br0\"]\n[bridge.br0]\nundeclared_macs = \"follow\"\nfollow_max = 4\n"

// watcher is `fdbhook watch` (the binary) running in the lab's host
// namespace, with its own configuration, run directory and lock, fdbt-g1
// running in a fake libvirt directory, and no libvirt socket.
type watcher struct {
	cmd     *exec.Cmd
	log     string
	runDir  string
	liveDir string // where fdbt-g1's live XML is
}

// startWatcher starts the watcher and waits until it watches.
func (l *lab) startWatcher(config string) *watcher {
	l.t.Helper()
	dir := l.t.TempDir()
	for _, d := range []string{"libvirt/qemu", "etc/qemu", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			l.t.Fatal(err)
		}
	}
	d := testlab.Domain{Name: "fdbt-g1", ID: 7, UUID: "5f0c5d4e-7f11-4a4e-9a55-0d0a0c0ffee1",
		NICs: []testlab.NIC{{MAC: guestMAC, Bridge: "br0", Target: "tap0", Model: "virtio", Alias: "net0"}}}
	for rel, text := range map[string]string{"fdbhook.toml": config, "libvirt/qemu/fdbt-g1.xml": d.Live(testlab.Status{Pid: 1}), "etc/qemu/fdbt-g1.xml": d.XML()} {
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(text), 0o644); err != nil {
			l.t.Fatal(err)
		}
	}
	w := &watcher{log: filepath.Join(dir, "watch.log"), runDir: filepath.Join(dir, "run"), liveDir: filepath.Join(dir, "libvirt/qemu")}
	f, err := os.Create(w.log)
	if err != nil {
		l.t.Fatal(err)
	}
	defer f.Close()
	w.cmd = exec.Command("ip", "netns", "exec", l.host.Name, suite.Bin("fdbhook"), "watch")
	w.cmd.Env = testlab.HookEnv(filepath.Join(dir, "fdbhook.toml"), "FDBHOOK_LOG_LEVEL=debug",
		"FDBHOOK_LIBVIRT_RUN="+filepath.Join(dir, "libvirt"), "FDBHOOK_LIBVIRT_ETC="+filepath.Join(dir, "etc"),
		"FDBHOOK_LIBVIRT_SOCK="+filepath.Join(dir, "no-libvirt-sock"), "FDBHOOK_LOCK="+filepath.Join(dir, "lock"))
	w.cmd.Stdout, w.cmd.Stderr = f, f
	if err := w.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		w.cmd.Process.Signal(syscall.SIGTERM)
		w.cmd.Wait()
		if l.t.Failed() {
			l.t.Logf("watcher log:\n%s", w.output())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.output(), "watching:") || !strings.Contains(w.output(), "resync (") {
		if time.Now().After(deadline) {
			l.t.Fatalf("the watcher does not watch after 10 s:\n%s", w.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return w
}

func (w *watcher) output() string {
	b, _ := os.ReadFile(w.log)
	return string(b)
}

// waitLog waits up to patience for the watcher's log to contain s.
func (w *watcher) waitLog(t *testing.T, s string) bool {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !strings.Contains(w.output(), s) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// tapEntries reads br0's entries on tap0 through the project's netlink
// code: how many are static, how many locked.
func (l *lab) tapEntries() (static, locked int) {
	l.t.Helper()
	c, br := l.bridge()
	defer c.Close()
	tap, err := c.Link("tap0")
	if err != nil || tap == nil {
		l.t.Fatalf("tap0: %v", err)
	}
	es, err := c.PortEntries(br, tap)
	if err != nil {
		l.t.Fatalf("entries on tap0: %v", err)
	}
	for _, e := range es {
		switch {
		case e.PortIndex != tap.Index:
		case e.Locked():
			locked++
		case e.Static():
			static++
		}
	}
	return static, locked
}

// TestFollowedMACDelivered: in follow mode, with the watcher running,
// the guest starts sending from an undeclared MAC (a frame every 2 ms)
// while its neighbour on the wire sends to that MAC (every 2 ms too). The
// time from the guest's first frame to the first neighbour frame counted
// on the tap is logged (target under 100 ms), and so is the time to the
// first of the guest's frames from the MAC leaving the bridge: that one
// only follow mode lets through (a locked port drops it until the MAC has
// an entry there), so it is the one asserted (under 2 s, for a loaded
// host). The watcher's static entry is read back, and the guest's stop
// removes it.
func TestFollowedMACDelivered(t *testing.T) {
	l := newLab(t)
	l.start(followConfig, "")
	if f := l.portFlagsMab("tap0"); f != model.Reporting {
		t.Fatalf("tap0 is %s, want %s", f.WordsMab(true, true), model.Reporting.WordsMab(true, true))
	}
	w := l.startWatcher(followConfig)
	counter, err := testlab.OpenTapCounter(t, l.host.NetNS, l.host.Name, "tap0")
	if err != nil {
		t.Fatal(err)
	}
	defer counter.Stop()

	// Before: the neighbour's frame to the MAC does not reach the tap
	// (flooding is off, the bridge has no entry for it).
	if err := l.up1.Send(testlab.Frame(nestedMAC, wireMAC, "before")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.up1.Drain("", 0); err != nil {
		t.Fatal(err)
	}
	first := time.Now()
	var in, out time.Duration
	for i := 0; in == 0 || out == 0; i++ {
		if time.Since(first) > patience {
			t.Fatalf("within %v of the guest's first frame from %s: neighbour frame on tap0 after %v, guest frame out of the bridge after %v (0: none)",
				patience, nestedMAC, in, out)
		}
		if _, err := unix.Write(l.tap, testlab.Frame(broadcast, nestedMAC, fmt.Sprintf("guest-%d", i))); err != nil {
			t.Fatal(err)
		}
		if err := l.up1.Send(testlab.Frame(nestedMAC, wireMAC, fmt.Sprintf("neighbour-%d", i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
		if at, ok := counter.FirstWith("neighbour-"); ok && in == 0 {
			in = at.Sub(first)
		}
		got, err := l.up1.Drain("", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range got {
			if strings.HasPrefix(m, "guest-") && out == 0 {
				out = time.Since(first)
			}
		}
	}
	t.Logf("from the guest's first frame from %s: first neighbour frame counted on tap0 after %v (target < 100ms), first guest frame out of the bridge after %v", nestedMAC, in, out)
	if out > 2*time.Second {
		t.Errorf("the guest's frames from %s passed after %v, want well under 2 s", nestedMAC, out)
	}
	if _, ok := counter.FirstWith("before"); ok {
		t.Errorf("the neighbour's frame sent before the guest used %s reached tap0", nestedMAC)
	}
	if e := l.entryOf(nestedMAC); e != (entry{Port: "tap0", Static: true}) {
		t.Errorf("entry for %s = %+v, want static on tap0", nestedMAC, e)
	}
	if !w.waitLog(t, "guest fdbt-g1 net0 on tap0: following MAC "+nestedMAC+" (1 of follow_max 4)") {
		t.Errorf("the watcher does not say it follows %s", nestedMAC)
	}

	// The guest stops: libvirt removes its live XML, then runs the hook.
	if err := os.Remove(filepath.Join(w.liveDir, "fdbt-g1.xml")); err != nil {
		t.Fatal(err)
	}
	env := []string{"FDBHOOK_RUN_DIR=" + w.runDir}
	if r := l.hook(followConfig, domainXML(""), env, "fdbt-g1", "stopped", "end", "-"); r.Code != 0 {
		t.Fatalf("stop: %s", r)
	}
	if e := l.entryOf(nestedMAC); e.Port != "" {
		t.Errorf("after stop, entry for %s still there: %+v", nestedMAC, e)
	}
	if _, err := os.Stat(filepath.Join(w.runDir, "followed", "fdbt-g1.json")); err == nil {
		t.Error("after stop, the record of followed MACs is still there")
	}
}

// TestFollowOverflowBounded: a guest sending from 10,000 random source
// MACs ends with at most follow_max of them authorised (static entries on
// tap0, read back), the overflow logged, MAB off on tap0 (still locked),
// and no locked entries left on tap0 once the watcher reacted, however
// many the kernel made before.
func TestFollowOverflowBounded(t *testing.T) {
	l := newLab(t)
	l.start(followConfig, "")
	l.portFlagsMab("tap0") // skips without MAB
	w := l.startWatcher(followConfig)

	const n = 10000
	began := time.Now()
	buf := make([]byte, 6*n)
	rand.Read(buf)
	for i := range n {
		src := net.HardwareAddr(buf[6*i : 6*i+6])
		src[0] = src[0]&^1 | 2 // unicast, locally administered
		if _, err := unix.Write(l.tap, testlab.Frame(broadcast, src.String(), "many")); err != nil {
			t.Fatal(err)
		}
	}
	_, lockedAfterSending := l.tapEntries()
	t.Logf("locked entries on tap0 right after sending %d frames: %d", n, lockedAfterSending)
	if !w.waitLog(t, "guest fdbt-g1 net0 on tap0 sends from more MACs than it may follow (4, follow_max 4") {
		t.Fatalf("no overflow line in the watcher's log")
	}
	deadline := time.Now().Add(patience)
	for {
		f := l.portFlagsMab("tap0")
		static, locked := l.tapEntries()
		if f == (model.Flags{Locked: true}) && locked == 0 {
			t.Logf("%v after the first frame: tap0 %s, %d static entries (the guest's own and those followed), %d locked", time.Since(began), f.WordsMab(true, true), static, locked)
			if static > 1+4 {
				t.Errorf("%d static entries on tap0, want at most 1 + follow_max (4)", static)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the overflow tap0 is %s with %d static and %d locked entries; want learning off flood off locked on mab off and no locked entry",
				f.WordsMab(true, true), static, locked)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// More frames from new MACs make no entry at all now.
	for i := range 100 {
		if _, err := unix.Write(l.tap, testlab.Frame(broadcast, fmt.Sprintf("02:00:00:fe:%02x:%02x", i/256, i%256), "more")); err != nil {
			t.Fatal(err)
		}
	}
	l.guestSends() // barrier: the frames above crossed the bridge
	if static, locked := l.tapEntries(); locked != 0 || static > 5 {
		t.Errorf("after 100 more MACs: %d static and %d locked entries on tap0", static, locked)
	}
	if c := strings.Count(w.output(), "sends from more MACs than it may follow"); c != 1 {
		t.Errorf("the overflow was logged %d times, want once", c)
	}
}
