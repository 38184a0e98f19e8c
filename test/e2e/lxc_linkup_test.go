//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// TestLxcLinkUpBeforeStarted measures the window docs/containers.md describes for
// containers: the lxc hook applies at `started begin`, and libvirt's LXC
// driver brings the container's side of a NIC up before that when the NIC
// has an <ip> or <link state='up'/> (lxcContainerRenameAndEnableInterfaces,
// before the init runs). From then until the hook has run, the host veth
// has carrier with learning and flooding on: the bridge floods unknown
// unicast to it. A NIC with neither stays down until the container's init
// brings it up (here: never), so it is managed before it carries a frame.
//
// sysfs is read every millisecond from before `virsh create` until the
// veth is managed; the figures are logged, and the test fails if any of
// the containers does otherwise than docs/containers.md says.
func TestLxcLinkUpBeforeStarted(t *testing.T) {
	timed(t)
	for _, tc := range []struct {
		name, ip string
		upFirst  bool
	}{
		{"no ip", "", false},
		{"ip", "<ip address='192.0.2.10' prefix='24'/>", true},
		{"link state up", "<link state='up'/>", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A read that finds carrier and the hook's flags both new
			// cannot order them (the reader was not scheduled in
			// between): such a start is measured again.
			for try := 1; ; try++ {
				if linkUpStart(t, tc.name, tc.ip, tc.upFirst) || t.Failed() {
					return
				}
				if try == 3 {
					t.Fatalf("%s: in 3 starts, carrier and the hook's flags were first seen in the same read: the order could not be measured", tc.name)
				}
				t.Logf("%s: carrier and the hook's flags first seen in the same read: starting again", tc.name)
			}
		})
	}
}

// linkUpStart starts the container once and checks the order of carrier
// and the hook's flags on its veth; it reports false when one read found
// both first, so the order is unknown.
func linkUpStart(t *testing.T, what, ip string, wantUpFirst bool) bool {
	t.Helper()
	const name, veth, mac = "fdbtlxc3", "fdbtlxc3a", "52:54:00:fd:0c:31"
	d := testlab.Domain{Name: name, Type: "lxc",
		Body:    "  <memory unit='MiB'>64</memory>\n  <os><type>exe</type><init>/bin/sh</init><initarg>-c</initarg><initarg>exec sleep 3600</initarg></os>\n",
		Devices: "    <console type='pty'/>\n",
		NICs:    []testlab.NIC{{MAC: mac, Bridge: bridge0, Target: veth, Extra: ip}}}
	xml := d.XML()
	file := t.TempDir() + "/" + name + ".xml"
	if err := os.WriteFile(file, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	lxcVirsh("destroy", name)
	t.Cleanup(func() { lxcVirsh("destroy", name) })
	watch := watchVeth(veth, 20*time.Second)
	t0 := time.Now()
	lxcVirshOK(t, "create", file)
	created := time.Since(t0)
	w := <-watch
	if w.managed.IsZero() {
		t.Fatalf("%s: %s not managed 20 s after virsh create (%v)", what, veth, w.err)
	}
	defer func() {
		lxcVirshOK(t, "destroy", name)
		suite.k.waitGone(t, veth)
		suite.k.assertNoStatic(t, mac, bridge0)
	}()
	suite.k.assertManaged(t, veth, bridge0, mac)
	at := func(ts time.Time) string {
		if ts.IsZero() {
			return "never"
		}
		return ts.Sub(t0).Round(time.Millisecond).String()
	}
	t.Logf("%s: after virsh create began: veth on the bridge %s, carrier %s, learning and flood off %s; virsh create returned %v",
		what, at(w.enslaved), at(w.carrier), at(w.managed), created.Round(time.Millisecond))
	if w.carrier.Equal(w.managed) {
		return false
	}
	upFirst := !w.carrier.IsZero() && w.carrier.Before(w.managed)
	if upFirst {
		t.Logf("%s: the host veth forwarded with learning and flooding on for %v before the hook applied",
			what, w.managed.Sub(w.carrier).Round(time.Millisecond))
	}
	if upFirst != wantUpFirst {
		t.Errorf("%s: carrier before the hook applied: %v, want %v (docs/containers.md's account of the LXC driver no longer holds)",
			what, upFirst, wantUpFirst)
	}
	return true
}

// vethTimes is when a host veth was first seen on a bridge, with carrier,
// and with learning and flooding off.
type vethTimes struct {
	enslaved, carrier, managed time.Time
	err                        error
}

// watchVeth reads the veth's sysfs every millisecond until it has
// learning and flooding off, or timeout.
func watchVeth(veth string, timeout time.Duration) <-chan vethTimes {
	out := make(chan vethTimes, 1)
	read := func(f string) string {
		b, _ := os.ReadFile("/sys/class/net/" + veth + "/" + f)
		return strings.TrimSpace(string(b))
	}
	go func() {
		var w vethTimes
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			now := time.Now()
			learning := read("brport/learning")
			if learning != "" && w.enslaved.IsZero() {
				w.enslaved = now
			}
			if w.carrier.IsZero() && read("carrier") == "1" {
				w.carrier = now
			}
			if learning == "0" && read("brport/unicast_flood") == "0" {
				w.managed = now
				break
			}
			time.Sleep(time.Millisecond)
		}
		if w.managed.IsZero() {
			w.err = fmt.Errorf("last read: learning %q, unicast_flood %q, carrier %q",
				read("brport/learning"), read("brport/unicast_flood"), read("carrier"))
		}
		out <- w
	}()
	return out
}
