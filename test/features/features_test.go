package features

import (
	"slices"
	"strings"
	"testing"
	"time"

	testlab "github.com/fdbhook/fdbhook/test/lab"
)

const (
	broadcast = "ff:ff:ff:ff:ff:ff"
	ns        = `xmlns:fdbhook="urn:fdbhook:1"`
	// patience bounds the wait for a frame that must arrive (it takes
	// microseconds; this is for a loaded CI host).
	patience = 5 * time.Second
)

// extraMeta gives the NIC one extra MAC.
var extraMeta = `<fdbhook:fdb ` + ns + `><fdbhook:interface mac="` + guestMAC + `"><fdbhook:mac address="` + extraMAC + `"/></fdbhook:interface></fdbhook:fdb>`

// guestSends has the guest send one broadcast frame from each source MAC
// and returns the sources whose frame came out of the uplink's peer, once
// for each frame. A last frame from the guest's own MAC (which every port
// state in these tests passes) is the barrier (testlab.GuestSends).
func (l *lab) guestSends(srcs ...string) []string {
	l.t.Helper()
	var passed []string
	for src, n := range l.up1.GuestSends(l.t, l.tap, guestMAC, srcs, patience) {
		for range n {
			passed = append(passed, src)
		}
	}
	slices.Sort(passed)
	return passed
}

// TestLockedPortDropsSpoofedFrames: with lock_ports, a frame the guest
// sends from a source MAC that is neither its own nor one of its extra MACs
// does not leave the bridge; frames from its MAC and its extra MAC do.
// Before the hook the same spoofed frame passes, which shows the test can
// see the difference.
func TestLockedPortDropsSpoofedFrames(t *testing.T) {
	l := newLab(t)
	if f := l.portFlags("tap0"); f.Locked || !f.Learning {
		t.Fatalf("tap0 starts as %v, want learning on, unlocked", f)
	}
	if got := l.guestSends(spoofMAC); !slices.Equal(got, []string{spoofMAC}) {
		t.Fatalf("before the hook, frames from %s: passed %v; the lab does not forward", spoofMAC, got)
	}
	// The bridge learned spoofMAC on tap0: the hook must drop that entry,
	// or the locked port would still pass it until it ages out.
	if e := l.entryOf(spoofMAC); e.Port != "tap0" || e.Static {
		t.Fatalf("before the hook, entry for %s = %+v, want learned on tap0", spoofMAC, e)
	}

	l.start("bridges = [\"br0\"]\n[bridge.br0]\nlock_ports = true\n", extraMeta)

	if f := l.portFlags("tap0"); !f.Locked || f.Learning || f.Flood {
		t.Errorf("after the hook tap0 is %v, want learning off flood off locked on", f)
	}
	for _, mac := range []string{guestMAC, extraMAC} {
		if e := l.entryOf(mac); e != (entry{Port: "tap0", Static: true}) {
			t.Errorf("entry for %s = %+v, want static on tap0", mac, e)
		}
	}
	if e := l.entryOf(spoofMAC); e.Port != "" {
		t.Errorf("entry for %s learned before the lock is still there: %+v", spoofMAC, e)
	}
	got := l.guestSends(guestMAC, extraMAC, spoofMAC)
	want := []string{extraMAC, guestMAC}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("after the hook, frames that left the bridge came from %v, want exactly %v (the spoofed %s dropped)", got, want, spoofMAC)
	}
	if e := l.entryOf(spoofMAC); e.Port != "" {
		t.Errorf("the locked port learned %s: %+v", spoofMAC, e)
	}
}

// TestUnlockedPortPassesSpoofedFrames is the control: the same hook run
// without lock_ports manages the port but spoofed frames still pass.
func TestUnlockedPortPassesSpoofedFrames(t *testing.T) {
	l := newLab(t)
	l.start("bridges = [\"br0\"]\n", extraMeta)
	if f := l.portFlags("tap0"); f.Locked || f.Learning || f.Flood {
		t.Errorf("tap0 is %v, want learning off flood off, unlocked", f)
	}
	got := l.guestSends(guestMAC, spoofMAC)
	want := []string{guestMAC, spoofMAC}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("frames that left the bridge came from %v, want %v", got, want)
	}
}

// TestStickyEntryDoesNotMove: a frame arriving on the uplink with the
// guest's source MAC moves the guest's static entry to the uplink unless
// the entry is sticky.
func TestStickyEntryDoesNotMove(t *testing.T) {
	for _, tc := range []struct {
		name, config, metadata string
		sticky                 bool
	}{
		{name: "sticky-by-bridge", config: "[bridge.br0]\nsticky = true\n", sticky: true},
		{name: "sticky-by-guest", metadata: `<fdbhook:fdb ` + ns + ` sticky="yes"/>`, sticky: true},
		{name: "nic-beats-bridge", config: "[bridge.br0]\nsticky = true\n",
			metadata: `<fdbhook:fdb ` + ns + `><fdbhook:interface mac="` + guestMAC + `" sticky="no"/></fdbhook:fdb>`},
		{name: "not-sticky"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			l.start("bridges = [\"br0\"]\n"+tc.config, tc.metadata)
			if e := l.entryOf(guestMAC); e != (entry{Port: "tap0", Static: true, Sticky: tc.sticky}) {
				t.Fatalf("after the hook, entry for %s = %+v, want static on tap0, sticky %v", guestMAC, e, tc.sticky)
			}
			// Someone on the wire claims the guest's MAC; then a frame from
			// another source, learned on up0 once the bridge got to it:
			// frames cross in order, so by then the claim was seen too.
			if err := l.up1.Send(testlab.Frame(broadcast, guestMAC, "steal")); err != nil {
				t.Fatal(err)
			}
			if err := l.up1.Send(testlab.Frame(broadcast, wireMAC, "barrier")); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(patience)
			for l.entryOf(wireMAC).Port != "up0" {
				if time.Now().After(deadline) {
					t.Fatalf("%s not learned on up0 within %v: the lab does not forward", wireMAC, patience)
				}
				time.Sleep(10 * time.Millisecond)
			}
			want := entry{Port: "tap0", Static: true, Sticky: true}
			if !tc.sticky {
				want = entry{Port: "up0", Static: true}
			}
			if e := l.entryOf(guestMAC); e != want {
				t.Errorf("after a frame from %s on the uplink, entry = %+v, want %+v", guestMAC, e, want)
			}
		})
	}
}

// TestStopCleansExtraMACsAndUnlocks: at stop, a tap that outlived the
// guest loses the guest's entries, the extra MAC's included, and is
// unlocked with learning and flooding back on.
func TestStopCleansExtraMACsAndUnlocks(t *testing.T) {
	l := newLab(t)
	cfg := "bridges = [\"br0\"]\n[bridge.br0]\nlock_ports = true\nsticky = true\n"
	l.start(cfg, extraMeta)
	for _, mac := range []string{guestMAC, extraMAC} {
		if e := l.entryOf(mac); e != (entry{Port: "tap0", Static: true, Sticky: true}) {
			t.Fatalf("after start, entry for %s = %+v, want static sticky on tap0", mac, e)
		}
	}
	// At stop libvirt passes the inactive XML; the metadata is still there.
	r := l.hook(cfg, domainXML(extraMeta), nil, "fdbt-g1", "stopped", "end", "-")
	if r.Code != 0 {
		t.Fatalf("stop: %s", r)
	}
	for _, mac := range []string{guestMAC, extraMAC} {
		if e := l.entryOf(mac); e.Port != "" {
			t.Errorf("after stop, entry for %s still there: %+v", mac, e)
		}
	}
	if f := l.portFlags("tap0"); !f.Learning || !f.Flood || f.Locked {
		t.Errorf("after stop tap0 is %v, want learning on flood on locked off", f)
	}
	// The unlocked port forwards any source again.
	if got := l.guestSends(spoofMAC); !slices.Equal(got, []string{spoofMAC}) {
		t.Errorf("after stop, frames from %s: passed %v, want it forwarded", spoofMAC, got)
	}
}

// TestDryRunShowsFeatures: a dry run names every option per port and
// changes nothing.
func TestDryRunShowsFeatures(t *testing.T) {
	l := newLab(t)
	before := l.portFlags("tap0")
	r := l.hook("bridges = [\"br0\"]\n[bridge.br0]\nlock_ports = true\nsticky = true\n", domainXML(extraMeta),
		[]string{"FDBHOOK_DRY_RUN=1"}, "fdbt-g1", "start", "begin", "-")
	if r.Code != 0 {
		t.Fatalf("dry run: %s", r)
	}
	for _, want := range []string{
		"fdb replace " + guestMAC + " dev tap0 master br0 static sticky",
		"fdb replace " + extraMAC + " dev tap0 master br0 static sticky (extra MAC)",
		"link set dev tap0 learning off flood off locked on (was learning on flood on locked off)",
	} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("dry run does not show %q:\n%s", want, r.Stderr)
		}
	}
	if after := l.portFlags("tap0"); after != before {
		t.Errorf("dry run changed tap0: %v -> %v", before, after)
	}
	for _, mac := range []string{guestMAC, extraMAC} {
		if e := l.entryOf(mac); e.Port != "" {
			t.Errorf("dry run wrote an entry for %s: %+v", mac, e)
		}
	}
}

// TestBadFeatureMetadataRefusesStart: a value the metadata cannot mean
// fails the start as bad hook input, in one stderr line, and changes
// nothing.
func TestBadFeatureMetadataRefusesStart(t *testing.T) {
	l := newLab(t)
	before := l.portFlags("tap0")
	for name, md := range map[string]string{
		"pvid out of range": `<fdbhook:fdb ` + ns + `><fdbhook:interface mac="` + guestMAC + `" pvid="4095"/></fdbhook:fdb>`,
		"lock not yes/no":   `<fdbhook:fdb ` + ns + ` lock="true"/>`,
		"extra MAC invalid": `<fdbhook:fdb ` + ns + `><fdbhook:interface mac="` + guestMAC + `"><fdbhook:mac address="ff:ff:ff:ff:ff:ff"/></fdbhook:interface></fdbhook:fdb>`,
	} {
		r := l.hook("bridges = [\"br0\"]\n", domainXML(md), nil, "fdbt-g1", "start", "begin", "-")
		if r.Code != 4 {
			t.Errorf("%s: want exit 4 (bad hook input), got %s", name, r)
		}
		if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "fdbhook: fdbt-g1: ") {
			t.Errorf("%s: stderr is not one \"fdbhook: fdbt-g1: \" line: %q", name, r.Stderr)
		}
	}
	if after := l.portFlags("tap0"); after != before {
		t.Errorf("a refused start changed tap0: %v -> %v", before, after)
	}
	if e := l.entryOf(guestMAC); e.Port != "" {
		t.Errorf("a refused start wrote an entry: %+v", e)
	}
}
