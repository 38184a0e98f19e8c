//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Scenarios run in this order and share the guest g1, which each of them
// starts when it is not running (so that any one can also run alone).

// 1. Two type='bridge' NICs on a managed bridge, one with a custom tap name.
func Test1BridgeNICs(t *testing.T) {
	timed(t)
	startG1(t)
	k := suite.k
	nics := liveNICs(t, g1)
	a := nicByMAC(t, nics, g1BrA)
	if a.Type != "bridge" || a.Target.Dev != g1Tap || a.Source.Bridge != bridge0 {
		t.Errorf("live XML of %s: got type=%s dev=%s bridge=%s, want bridge %s on %s",
			g1BrA, a.Type, a.Target.Dev, a.Source.Bridge, g1Tap, bridge0)
	}
	k.assertManaged(t, g1Tap, bridge0, g1BrA)
	b := nicByMAC(t, nics, g1BrB)
	if !strings.HasPrefix(b.Target.Dev, "vnet") {
		t.Errorf("live XML of %s: tap %q, want one libvirt named vnetN", g1BrB, b.Target.Dev)
	}
	k.assertManaged(t, b.Target.Dev, bridge0, g1BrB)
	// The uplink is not a guest port: it keeps learning and flooding.
	k.assertPort(t, uplink, portState{master: bridge0, learning: true, flood: true})
}

// 2. type='network' NICs on a <forward mode='bridge'/> network and on a NAT
// network, both managed through the configuration's networks list.
func Test2NetworkNICs(t *testing.T) {
	timed(t)
	startG1(t)
	k := suite.k
	nics := liveNICs(t, g1)
	bn := nicByMAC(t, nics, g1BrNet)
	// libvirt rewrites a bridge-mode network NIC to type='bridge' in live XML.
	if bn.Type != "bridge" || bn.Source.Network != brNet || bn.Source.Bridge != bridge0 {
		t.Errorf("live XML of %s: got type=%s network=%s bridge=%s, want type=bridge network=%s bridge=%s",
			g1BrNet, bn.Type, bn.Source.Network, bn.Source.Bridge, brNet, bridge0)
	}
	k.assertManaged(t, bn.Target.Dev, bridge0, g1BrNet)

	natBr := netBridge(t, natNet)
	nat := nicByMAC(t, nics, g1Nat)
	if nat.Type != "network" || nat.Source.Network != natNet || nat.Source.Bridge != natBr {
		t.Errorf("live XML of %s: got type=%s network=%s bridge=%s, want type=network network=%s bridge=%s",
			g1Nat, nat.Type, nat.Source.Network, nat.Source.Bridge, natNet, natBr)
	}
	k.assertManaged(t, nat.Target.Dev, natBr, g1Nat)
}

// 3. What the hook must leave alone: a NIC on a bridge the configuration does
// not list, type='user', type='ethernet', a NIC opted out in the guest's
// metadata, and a whole guest opted out.
func Test3Untouched(t *testing.T) {
	timed(t)
	startG1(t)
	k := suite.k
	all := []string{bridge0, bridge1, suite.natBridge}
	nics := liveNICs(t, g1)

	k.assertUntouched(t, nicByMAC(t, nics, g1Br1).Target.Dev, bridge1, g1Br1)

	user := nicByMAC(t, nics, g1User)
	if user.Target.Dev != "" {
		t.Errorf("type='user' NIC has a tap %q", user.Target.Dev)
	}
	k.assertNoEntries(t, g1User, all...)

	eth := nicByMAC(t, nics, g1Eth)
	if eth.Target.Dev != g1EthT {
		t.Errorf("type='ethernet' NIC: tap %q, want %q", eth.Target.Dev, g1EthT)
	}
	if m, err := k.master(g1EthT); err != nil || m != "" {
		t.Errorf("netlink: %s: master %q (%v), want a tap on no bridge", g1EthT, m, err)
	}
	if out := run(t, "ip", "-o", "link", "show", "dev", g1EthT); strings.Contains(out, " master ") {
		t.Errorf("iproute2: %s is enslaved: %s", g1EthT, out)
	}
	k.assertNoEntries(t, g1Eth, all...)

	if x := virshOK(t, "dumpxml", g1); !strings.Contains(x, `mac="`+g1Opt+`" manage="no"`) {
		t.Fatalf("live XML of %s lacks the per-NIC opt-out metadata", g1)
	}
	k.assertUntouched(t, nicByMAC(t, nics, g1Opt).Target.Dev, bridge0, g1Opt)

	// A whole guest opted out: none of its NICs is touched, on a listed
	// bridge, a bridge-mode network or a NAT network.
	const g2 = "fdbtg2"
	g2NICs := []nic{
		{typ: "bridge", mac: "52:54:00:fd:02:01", source: bridge0, target: "fdbtg2a"},
		{typ: "network", mac: "52:54:00:fd:02:02", source: brNet},
		{typ: "network", mac: "52:54:00:fd:02:03", source: natNet},
	}
	tempGuest(t, g2, g2NICs)
	setMetadata(t, g2, `<fdb manage="no"/>`)
	virshOK(t, "start", g2)
	live := liveNICs(t, g2)
	for _, n := range g2NICs {
		br := bridge0
		if n.source == natNet {
			br = suite.natBridge
		}
		k.assertUntouched(t, nicByMAC(t, live, n.mac).Target.Dev, br, n.mac)
	}
}

// 4. Stop and start again leave no stale entries; a libvirtd restart makes
// libvirt call `reconnect begin`, which re-applies what was undone by hand,
// and the guest keeps running.
func Test4StopStartRestart(t *testing.T) {
	timed(t)
	startG1(t)
	k := suite.k
	all := []string{bridge0, bridge1, suite.natBridge}

	// A static entry that is not sticky moves to the port where a frame with
	// its MAC as source arrives, as after a live migration. Make g1BrA's
	// entry roam to the uplink: the hook must remove it when g1 stops.
	if err := sendFrames(outNS, outIf, mustMAC("02:fd:b7:00:00:01"), mustMAC(g1BrA), 1); err != nil {
		t.Fatal(err)
	}
	roamed := waitFor(2*time.Second, func() bool {
		for _, e := range k.masterEntries(t, g1BrA) {
			if e.dev == uplink && e.static {
				return true
			}
		}
		return false
	})
	t.Logf("static entry of %s moved to %s before the stop: %v", g1BrA, uplink, roamed)

	virshOK(t, "destroy", g1)
	k.assertGone(t, g1Tap)
	waitFor(5*time.Second, func() bool {
		for _, mac := range g1MACs {
			if len(k.masterEntries(t, mac)) != 0 {
				return false
			}
		}
		return true
	})
	for _, mac := range g1MACs {
		k.assertNoEntries(t, mac, all...)
	}

	virshOK(t, "start", g1)
	// assertManaged also requires the tap's entry to be the only one for
	// its MAC: nothing stale on the uplink or another port.
	assertG1Managed(t)
	for _, mac := range []string{g1Br1, g1User, g1Eth, g1Opt} {
		k.assertNoStatic(t, mac, all...)
	}

	// Undo the hook's work on one tap by hand, then restart libvirtd.
	pid := qemuPID(t, g1)
	setPortFlags(t, g1Tap, true, true)
	run(t, "bridge", "fdb", "del", g1BrA, "dev", g1Tap, "master")
	k.assertUntouched(t, g1Tap, bridge0, g1BrA)
	restartLibvirtd(t)
	restarted := time.Now()
	if !waitFor(30*time.Second, func() bool {
		st, err := k.port(g1Tap)
		if err != nil || st.learning || st.flood {
			return false
		}
		for _, e := range k.masterEntries(t, g1BrA) {
			if e.dev == g1Tap && e.static {
				return true
			}
		}
		return false
	}) {
		t.Errorf("30 s after the libvirtd restart, %s is not managed again", g1Tap)
	} else {
		t.Logf("reconnect re-applied %s %s after libvirtd answered", g1Tap, time.Since(restarted).Round(time.Millisecond))
	}
	assertG1Managed(t)
	if s := domState(g1); s != "running" {
		t.Errorf("%s after the libvirtd restart: %q, want running", g1, s)
	}
	if p := qemuPID(t, g1); p != pid {
		t.Errorf("%s's QEMU changed from pid %d to %d across the libvirtd restart", g1, pid, p)
	}
}

// 5. A second guest with the MAC of a running guest's NIC on the same bridge
// does not start, says why, and disturbs nothing.
func Test5DuplicateMAC(t *testing.T) {
	timed(t)
	startG1(t)
	k := suite.k
	const (
		g3     = "fdbtg3"
		g3Own  = "52:54:00:fd:03:01"
		g3TapA = "fdbtg3a"
		g3TapB = "fdbtg3b"
	)
	tempGuest(t, g3, []nic{
		{typ: "bridge", mac: g3Own, source: bridge0, target: g3TapA},
		{typ: "bridge", mac: g1BrA, source: bridge0, target: g3TapB},
	})
	_, stderr, err := virsh("start", g3)
	if err == nil {
		t.Fatalf("virsh start %s succeeded although %s is already on %s", g3, g1BrA, bridge0)
	}
	t.Logf("virsh start %s failed as it should:\n%s", g3, strings.TrimSpace(stderr))
	// libvirt quotes the hook's stderr after "unexpected exit status 1: ".
	want := fmt.Sprintf("fdbhook: %s: %s on %s: ", g3, g1BrA, bridge0)
	if !strings.Contains(stderr, want) {
		t.Errorf("virsh's error lacks fdbhook's reason %q", want)
	}
	if _, hookErr, ok := strings.Cut(stderr, "unexpected exit status 1: "); !ok {
		t.Errorf("virsh's error does not quote the hook's exit status 1")
	} else if lines := strings.Split(strings.TrimSpace(hookErr), "\n"); len(lines) != 1 {
		t.Errorf("the hook wrote %d lines on stderr, want the one line %q...:\n%s", len(lines), want, hookErr)
	}
	if s := domState(g3); s == "running" {
		t.Errorf("%s is running", g3)
	}
	k.assertGone(t, g3TapA)
	k.assertGone(t, g3TapB)
	k.assertNoEntries(t, g3Own, bridge0)
	k.assertManaged(t, g1Tap, bridge0, g1BrA)
	assertG1Managed(t)
}

// 6. virsh save and restore keep the guest's XML as it was (the hook prints
// nothing where libvirt reads replacement XML) and the restored guest is
// managed again.
func Test6SaveRestore(t *testing.T) {
	timed(t)
	startG1(t)
	k := suite.k
	inactive := virshOK(t, "dumpxml", "--inactive", g1)
	live := virshOK(t, "dumpxml", g1)
	file := filepath.Join(t.TempDir(), g1+".save")

	virshOK(t, "save", g1, file)
	k.assertGone(t, g1Tap)
	for _, mac := range g1Managed {
		k.assertNoEntries(t, mac, bridge0, suite.natBridge)
	}
	virshOK(t, "restore", file)

	if got := virshOK(t, "dumpxml", "--inactive", g1); got != inactive {
		t.Errorf("inactive XML changed across save/restore:\nbefore:\n%s\nafter:\n%s", inactive, got)
	}
	if got := virshOK(t, "dumpxml", g1); normalizeLive(got) != normalizeLive(live) {
		t.Errorf("live XML changed across save/restore (ids and vnetN names aside):\nbefore:\n%s\nafter:\n%s",
			normalizeLive(live), normalizeLive(got))
	}
	assertG1Managed(t)

	// libvirt takes the hook's stdout as the new domain XML for these two.
	hook := os.Getenv("FDBHOOK_E2E_QEMU_HOOK")
	if hook == "" {
		hook = "/etc/libvirt/hooks/qemu.d/fdbhook"
	}
	for _, op := range [][2]string{{"migrate", "begin"}, {"restore", "begin"}} {
		cmd := exec.Command(hook, g1, op[0], op[1], "-")
		// The environment libvirt gives hooks: no FDBHOOK_CONFIG.
		cmd.Env = []string{"LC_ALL=C", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		cmd.Stdin = strings.NewReader(live)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err != nil {
			t.Errorf("%s %s %s %s -: %v\n%s", hook, g1, op[0], op[1], err, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("%s %s %s %s - printed %d bytes on stdout, which libvirt would take as the domain XML: %q",
				hook, g1, op[0], op[1], stdout.Len(), stdout.String())
		}
	}
	assertG1Managed(t)
}

// 7. Frames from the outside host: an unmanaged guest's taps get every
// unknown-unicast frame; once the same guest is managed, its taps get none,
// and frames to its MAC reach its own tap only.
func Test7Traffic(t *testing.T) {
	timed(t)
	startG1(t)
	k := suite.k
	const (
		g7  = "fdbtg7"
		g7A = "52:54:00:fd:07:01"
		g7B = "52:54:00:fd:07:02"
		tA  = "fdbtg7a"
		tB  = "fdbtg7b"
		n   = 200
	)
	unknown := mustMAC("02:fd:b7:00:00:01")
	tempGuest(t, g7, []nic{
		{typ: "bridge", mac: g7A, source: bridge0, target: tA},
		{typ: "bridge", mac: g7B, source: bridge0, target: tB},
	})
	// g1's own ports on the bridge are watched too: two managed, and one
	// opted out, which floods in both phases (the control).
	g1A, g1B, g1O := g1Tap, tapOf(t, g1, g1BrB), tapOf(t, g1, g1Opt)
	taps := []string{tA, tB, g1A, g1B, g1O}

	// Before: the guest opted out, so its ports learn and flood as on any
	// bridge without fdbhook.
	setMetadata(t, g7, `<fdb manage="no"/>`)
	virshOK(t, "start", g7)
	k.quietTaps(t, taps...)
	k.assertUntouched(t, tA, bridge0, g7A)
	k.assertUntouched(t, tB, bridge0, g7B)
	got := k.deliver(t, unknown, n, taps, []string{tA, tB, g1O})
	assertReached(t, "unmanaged, unknown unicast", n, got, tA, tB, g1O)
	got = k.deliver(t, mustMAC(g7A), n, taps, []string{tA, tB, g1O})
	assertReached(t, "unmanaged, to "+g7A+" (never learned, so flooded)", n, got, tA, tB, g1O)

	// After: the opt-out removed and the guest started again.
	virshOK(t, "destroy", g7)
	virshOK(t, "metadata", g7, "urn:fdbhook:1", "--remove", "--config")
	virshOK(t, "start", g7)
	k.quietTaps(t, taps...)
	k.assertManaged(t, tA, bridge0, g7A)
	k.assertManaged(t, tB, bridge0, g7B)
	got = k.deliver(t, unknown, n, taps, []string{g1O})
	assertReached(t, "managed, unknown unicast", n, got, g1O)
	got = k.deliver(t, mustMAC(g7A), n, taps, []string{tA})
	assertReached(t, "managed, to "+g7A, n, got, tA)
	got = k.deliver(t, mustMAC(g7B), n, taps, []string{tB})
	assertReached(t, "managed, to "+g7B, n, got, tB)
}
