package integration

import (
	"testing"
)

// stopOps are the operations that clean up after a guest.
var stopOps = []string{"stopped", "release"}

// guestA is a two-NIC guest on br0 with taps ta1 and ta2.
var guestA = []nic{
	{MAC: mac(1, 1), Bridge: "br0", Target: "ta1"},
	{MAC: mac(1, 2), Bridge: "br0", Target: "ta2"},
}

// startedA returns a lab where guest fdbt-a has been started and is fully
// managed.
func startedA(t *testing.T) *lab {
	t.Helper()
	l := newStdLab(t)
	l.AddTap("ta1", "br0")
	l.AddTap("ta2", "br0")
	before := l.snap()
	r := l.hook(t, call{Args: []string{"fdbt-a", "start", "begin", "-"}, Stdin: domain("fdbt-a", "", guestA...), Live: map[string]string{}})
	if r.Code != 0 {
		t.Fatalf("start of fdbt-a: %s", r)
	}
	l.expect(t, "start of fdbt-a", before.managed("ta1", mac(1, 1)).managed("ta2", mac(1, 2)))
	return l
}

// stopA runs the stop operation for guest fdbt-a with the XML libvirt
// passes at stop (no target devices) and the given running guests' live
// XML; it requires exit 0.
func stopA(t *testing.T, l *lab, op string, live map[string]string) result {
	t.Helper()
	if live == nil {
		live = map[string]string{}
	}
	r := l.hook(t, call{Args: []string{"fdbt-a", op, "end", "-"}, Stdin: domain("fdbt-a", "", stopped(guestA...)...), Live: live})
	expectExit(t, r, 0)
	return r
}

// TestStopRemovesRoamedEntries: the kernel deleted the taps; an entry for
// the guest's MAC that had roamed to the uplink (static, and static sticky)
// is removed. The uplink itself and another MAC's static entry on it stay.
func TestStopRemovesRoamedEntries(t *testing.T) {
	t.Parallel()
	for _, op := range stopOps {
		t.Run(op, func(t *testing.T) {
			l := startedA(t)
			l.Del("ta1")
			l.Del("ta2")
			l.fdbAdd(mac(1, 1), "up0", "static")
			l.fdbAdd(mac(1, 2), "up0", "static", "sticky")
			l.fdbAdd(mac(9, 9), "up0", "static")
			before := l.snap()
			if len(before.entriesFor(mac(1, 1))) != 1 || len(before.entriesFor(mac(1, 2))) != 1 {
				t.Fatalf("setup: roamed entries missing: %v", before.FDB)
			}
			stopA(t, l, op, nil)
			l.expect(t, op+" end", before.withoutEntries(mac(1, 1)).withoutEntries(mac(1, 2)))
			// A second stop finds nothing left and still exits 0.
			stopA(t, l, op, nil)
			l.checkNoEntries(t, mac(1, 1))
		})
	}
}

// TestStopPersistentTap: a tap that outlived the guest (a persistent tap)
// loses the guest's entry and gets learning and flood back on.
func TestStopPersistentTap(t *testing.T) {
	t.Parallel()
	for _, op := range stopOps {
		t.Run(op, func(t *testing.T) {
			l := startedA(t)
			l.Del("ta2")
			before := l.snap()
			stopA(t, l, op, nil)
			l.expect(t, op+" end", before.withoutEntries(mac(1, 1)).withFlags("ta1", true, true))
		})
	}
}

// TestStopPersistentTapSharedEntry: a persistent tap that also carries a
// static entry for a MAC that is not the guest's keeps its flags (someone
// else manages it); only the guest's entry goes.
func TestStopPersistentTapSharedEntry(t *testing.T) {
	t.Parallel()
	l := startedA(t)
	l.Del("ta2")
	l.fdbAdd(mac(9, 1), "ta1", "static")
	before := l.snap()
	stopA(t, l, "stopped", nil)
	l.expect(t, "stopped end", before.withoutEntries(mac(1, 1)))
}

// TestStopLeavesOtherGuestsTap: guest fdbt-a's MAC has a static entry on
// tb1, the tap of running guest fdbt-b (its live XML names tb1): stopping
// fdbt-a leaves tb1's entry and flags alone. Without the live XML the same
// stop treats tb1 as a leftover and cleans it, which shows that the live
// XML is what protects it.
func TestStopLeavesOtherGuestsTap(t *testing.T) {
	t.Parallel()
	guestB := domain("fdbt-b", "", nic{MAC: mac(2, 1), Bridge: "br0", Target: "tb1"})
	setup := func(t *testing.T) *lab {
		l := startedA(t)
		l.Del("ta1")
		l.Del("ta2")
		l.AddTap("tb1", "br0")
		l.start(t, "fdbt-b", guestB)
		l.fdbAdd(mac(1, 1), "tb1", "static")
		return l
	}
	for _, op := range stopOps {
		t.Run(op+"/binary", func(t *testing.T) {
			l := setup(t)
			before := l.snap()
			stopA(t, l, op, map[string]string{"fdbt-b": domstatus(guestB)})
			l.expectUnchanged(t, op+" end with fdbt-b running on tb1", before)
		})
		t.Run(op+"/in-process", func(t *testing.T) {
			l := setup(t)
			p := l.inProcess(t, defaultConfig)
			p.live(t, "fdbt-b", guestB)
			before := l.snap()
			r := p.run(t, domain("fdbt-a", "", stopped(guestA...)...), "fdbt-a", op, "end", "-")
			expectExit(t, r, 0)
			l.expectUnchanged(t, op+" end with fdbt-b running on tb1", before)
		})
	}
	t.Run("no live XML", func(t *testing.T) {
		l := setup(t)
		before := l.snap()
		stopA(t, l, "stopped", nil)
		// tb1 also carries fdbt-b's own static entry, so its flags stay.
		l.expect(t, "stopped end, nobody owns tb1", before.withoutEntries(mac(1, 1)))
	})
}

// TestStopFixture: the libvirt 9.0 stop input (no targets; net2 is a
// type='network' NIC of network hostbr without a bridge) after both MACs
// roamed to the uplink: both entries are removed, whichever network file
// the host has.
func TestStopFixture(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ op, fixture string }{
		{"stopped", "qemu-t2-stopped-end.xml"},
		{"release", "qemu-t2-release-end.xml"},
	} {
		t.Run(tc.op, func(t *testing.T) {
			l := newStdLab(t)
			l.fdbAdd(t2mac1, "up0", "static")
			l.fdbAdd(t2mac3, "up0", "static")
			l.fdbAdd(t2mac2, "up0", "static") // net1 is on unmanaged virbr0: not ours
			before := l.snap()
			r := l.hook(t, call{Args: []string{"t2", tc.op, "end", "-"}, Stdin: fixture(t, tc.fixture),
				Config: "bridges = [\"br0\"]\nnetworks = [\"hostbr\"]\n", Live: map[string]string{}})
			expectExit(t, r, 0)
			l.expect(t, tc.op+" end", before.withoutEntries(t2mac1).withoutEntries(t2mac3))
		})
	}
}

// TestStopAlwaysExitsZero: a stop with broken input, a broken
// configuration or a configured bridge that does not exist exits 0 and
// changes nothing.
func TestStopAlwaysExitsZero(t *testing.T) {
	t.Parallel()
	l := startedA(t)
	l.Del("ta2")
	stop := domain("fdbt-a", "", stopped(guestA...)...)
	for _, tc := range []struct {
		name string
		c    call
	}{
		{"malformed XML", call{Stdin: []byte("<domain><name>fdbt-a</name><devices>")}},
		{"empty stdin", call{}},
		{"invalid config", call{Stdin: stop, Config: "bridges = \n"}},
		{"unknown config key", call{Stdin: stop, Config: defaultConfig + "colour = \"red\"\n"}},
		{"bridge does not exist", call{Stdin: stop, Config: "bridges = [\"fdbtnone\"]\n"}},
		{"bad MAC", call{Stdin: domain("fdbt-a", "", nic{MAC: "01:00:5e:00:00:01", Bridge: "br0"})}},
	} {
		for _, op := range stopOps {
			t.Run(op+"/"+tc.name, func(t *testing.T) {
				before := l.snap()
				c := tc.c
				c.Args = []string{"fdbt-a", op, "end", "-"}
				c.Live = map[string]string{}
				r := l.hook(t, c)
				expectExit(t, r, 0)
				l.expectUnchanged(t, tc.name, before)
			})
		}
	}
}
