//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// The duplicate-MAC scenario's names.
const (
	dupA    = "fdbtda"            // the guest that has the MAC first
	dupB    = "fdbtdb"            // the second guest with the same MAC
	dupTapA = "fdbtdaa"           // A's tap
	dupTapB = "fdbtdbb"           // B's tap
	dupMAC  = "52:54:00:fd:0d:01" // both guests' MAC
)

// TestDuplicateMACWatcher: under on_error = "warn", with the watcher
// running, guest B starts with the MAC of running guest A. B's start hook
// refuses its NIC and B starts unmanaged; B's iPXE then sends from the
// MAC. A must keep its entry and every frame a neighbour sends to the MAC,
// B's port must stay as the refusal left it, and the watcher must say so
// in one warning naming both guests.
func TestDuplicateMACWatcher(t *testing.T) {
	timed(t)
	k := suite.k
	b, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	orig := string(b)
	warn := strings.Replace(orig, `on_error = "fail"`, `on_error = "warn"`, 1)
	if warn == orig {
		t.Fatalf("cannot set on_error = \"warn\" in the configuration:\n%s", orig)
	}
	writeConfig(t, warn)

	// A: silent (no option ROM), managed by its start hook.
	tempGuest(t, dupA, []nic{{typ: "bridge", mac: dupMAC, source: bridge0, target: dupTapA}})
	virshOK(t, "start", dupA)
	k.assertManaged(t, dupTapA, bridge0, dupMAC)
	w := startWatcher(t, "watch-dup.log")

	// B: the same MAC, with the NIC's iPXE ROM, which keeps sending DHCP
	// requests from it.
	removeGuest(dupB)
	t.Cleanup(func() { removeGuest(dupB) })
	xml := strings.Replace(domainXML(dupB, []nic{{typ: "bridge", mac: dupMAC, source: bridge0, target: dupTapB}}), "<rom enabled='no'/>", "", 1)
	defineXML(t, dupB, xml)

	countA := openTapCounter(t, dupTapA)
	stop := startNeighbour(t, mustMAC(dupMAC), 5*time.Millisecond)
	virshOK(t, "start", dupB)
	countB := openTapCounter(t, dupTapB)
	if !waitFor(60*time.Second, func() bool { return countB.FromGuest(dupMAC) >= 3 }) {
		stop()
		t.Fatalf("guest %s sent %d frames from %s in 60 s, want 3: its iPXE did not run", dupB, countB.FromGuest(dupMAC), dupMAC)
	}
	time.Sleep(time.Second)
	sent := stop()
	time.Sleep(300 * time.Millisecond)
	gotA, gotB := len(countA.Stop()), len(countB.Stop())
	t.Logf("%d frames to %s from the outside host while %s sent %d from it: %d reached %s's tap, %d %s's",
		sent, dupMAC, dupB, countB.FromGuest(dupMAC), gotA, dupA, gotB, dupB)
	if gotA != sent || gotB != 0 {
		t.Errorf("%s's tap got %d of %d frames and %s's %d; want all on %s's, none on %s's", dupA, gotA, sent, dupB, gotB, dupA, dupB)
	}

	// The kernel: A's entry on A's tap only, pinned (sticky) while B runs
	// with the MAC; B's port as its refusal left it.
	k.assertPort(t, dupTapA, portState{master: bridge0})
	k.assertPort(t, dupTapB, portState{master: bridge0, learning: true, flood: true})
	if got, want := k.masterEntries(t, dupMAC), (fdbEntry{mac: dupMAC, dev: dupTapA, master: bridge0, static: true}); len(got) != 1 || got[0] != want {
		t.Errorf("netlink: entries for %s: got %v, want exactly [%v]", dupMAC, got, want)
	}
	es, lines, err := witnessFDB(bridge0)
	if err != nil {
		t.Fatal(err)
	}
	pinned := dupMAC + " dev " + dupTapA + " sticky master " + bridge0 + " static"
	for i, e := range es {
		if e.mac == dupMAC && lines[i] != pinned {
			t.Errorf("iproute2: bridge fdb show br %s: %q, want only %q", bridge0, lines[i], pinned)
		}
	}

	var warnings []string
	for _, l := range strings.Split(w.output(), "\n") {
		if strings.Contains(l, "warning") && strings.Contains(l, dupMAC) {
			warnings = append(warnings, l)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], dupA) || !strings.Contains(warnings[0], dupB) {
		t.Errorf("warnings about %s: %d, want one naming %s and %s:\n%s", dupMAC, len(warnings), dupA, dupB, strings.Join(warnings, "\n"))
	}
	w.stop(t)
}

// defineXML defines a guest from its XML.
func defineXML(t *testing.T, name, xml string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), name+".xml")
	if err := os.WriteFile(f, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	virshOK(t, "define", f)
}

// startNeighbour sends a test frame to dst from the outside host every
// period until the returned stop is called, which returns how many it
// sent.
func startNeighbour(t *testing.T, dst net.HardwareAddr, period time.Duration) (stop func() int) {
	t.Helper()
	ns, err := netns.GetFromName(outNS)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	s, err := testlab.OpenPacket(t, ns, outNS, outIf)
	if err != nil {
		t.Fatal(err)
	}
	done, finished := make(chan struct{}), make(chan int)
	go func() {
		n := 0
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-done:
				finished <- n
				return
			case <-tick.C:
			}
			if err := s.Send(testlab.Frame(dst.String(), outsideSrc.String(), fmt.Sprintf("dup-%d", n))); err != nil {
				t.Errorf("neighbour: %v", err)
				continue
			}
			n++
		}
	}()
	var once sync.Once
	var n int
	stop = func() int {
		once.Do(func() {
			close(done)
			n = <-finished
			s.Close()
		})
		return n
	}
	t.Cleanup(func() { stop() })
	return stop
}

// openTapCounter counts on a tap of this host (testlab.TapCounter) until
// the test ends.
func openTapCounter(t *testing.T, tap string) *testlab.TapCounter {
	t.Helper()
	c, err := testlab.OpenTapCounter(t, netns.None(), "the host's namespace", tap)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
