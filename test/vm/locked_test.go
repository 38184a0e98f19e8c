//go:build vm

package vm

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/kernel"
)

// TestLockedPortDropsSpoofedFrames checks on the distribution kernel what
// lock_ports is for: the guest writes frames into its tap, as QEMU does;
// those from its own MAC leave the bridge through the uplink, those from a
// foreign source MAC are dropped at the locked port. Before the hook the
// same foreign frames pass, which shows the test can see the difference.
func TestLockedPortDropsSpoofedFrames(t *testing.T) {
	const (
		tap      = "fdbttap0"
		guestMAC = "52:54:00:fd:b3:01"
		spoofMAC = "02:00:00:fd:b3:66"
		frames   = 50
	)
	n := newNS(t, "locked")
	wire := newNS(t, "lockedwire")
	n.ip("link add br0 type bridge stp_state 0")
	n.ip("link add fdbtup type veth peer name fdbtpeer netns " + wire.name)
	n.ip("link set dev fdbtup master br0")
	n.ip("link set dev fdbtup up")
	n.ip("link set dev br0 up")
	wire.ip("link set dev fdbtpeer up")
	n.addTap(tap, "br0")

	g, err := openGuestTap(n.name, tap)
	if err != nil {
		t.Fatalf("opening %s as its guest: %v", tap, err)
	}
	defer unix.Close(g)
	up, err := openWire(wire.name, "fdbtpeer")
	if err != nil {
		t.Fatalf("packet socket on fdbtpeer: %v", err)
	}
	defer unix.Close(up.fd)
	n.waitForwarding(tap)
	n.waitForwarding("fdbtup")
	if l, f, locked := n.lockFlags(tap); locked || !l || !f {
		t.Fatalf("%s starts with learning=%v flood=%v locked=%v, want learning and flood on, unlocked", tap, l, f, locked)
	}

	// Control: an unlocked port passes every source.
	own, foreign := up.guestSends(t, g, guestMAC, guestMAC, spoofMAC, frames/5)
	t.Logf("unlocked: own=%d/%d foreign=%d/%d", own, frames/5, foreign, frames/5)
	if own != frames/5 || foreign != frames/5 {
		t.Fatalf("before the hook the unlocked port passed own=%d foreign=%d of %d each: the lab does not forward", own, foreign, frames/5)
	}

	cfg := writeConfig(t, `bridges = ["br0"]
on_error = "fail"

[bridge.br0]
lock_ports = true
`)
	dom := domain{
		Name: "fdbt-locked",
		UUID: "5d4c1b0e-0000-4000-8000-0000000000c1",
		ID:   41,
		NICs: []nic{{MAC: guestMAC, Bridge: "br0", Tap: tap}},
	}
	n.qemuHookOK(cfg, dom, "start", "begin")

	if l, f, locked := n.lockFlags(tap); !locked || l || f {
		t.Errorf("%s after the hook: learning=%v flood=%v locked=%v, want learning off, flood off, locked", tap, l, f, locked)
	}
	if _, _, locked := n.lockFlags("fdbtup"); locked {
		t.Errorf("the uplink fdbtup is locked")
	}
	// This kernel also adds the entry for each VLAN the port has (VLAN 1,
	// the default PVID), even with vlan_filtering off: every entry for the
	// MAC must be static and on the tap.
	want := fdbEntry{MAC: guestMAC, Dev: tap, Master: "br0", Flags: "static"}
	es := masterEntries(n.fdbBoth(guestMAC), "br0")
	if !hasEntry(es, want) {
		t.Errorf("entries for %s after the hook: %v, want %v among them", guestMAC, es, want)
	}
	for _, e := range es {
		if e.Dev != tap || e.Flags != "static" {
			t.Errorf("entry %v after the hook, want only static entries on %s", e, tap)
		}
	}
	// The control taught the bridge spoofMAC on the tap; a locked port
	// passes a source that has an entry on it, so that entry must be gone.
	if es := masterEntries(n.fdbBoth(spoofMAC), "br0"); len(es) != 0 {
		t.Errorf("entries for %s learned before the lock are still there: %v", spoofMAC, es)
	}

	own, foreign = up.guestSends(t, g, guestMAC, guestMAC, spoofMAC, frames)
	t.Logf("locked: own=%d/%d foreign=%d/%d", own, frames, foreign, frames)
	if own != frames {
		t.Errorf("%d of %d frames from the guest's own MAC %s left the bridge, want all", own, frames, guestMAC)
	}
	if foreign != 0 {
		t.Errorf("%d of %d frames from the foreign MAC %s left the bridge, want none", foreign, frames, spoofMAC)
	}
	if es := masterEntries(n.fdbBoth(spoofMAC), "br0"); len(es) != 0 {
		t.Errorf("the locked port learned %s: %v", spoofMAC, es)
	}
}

// lockFlags reads a bridge port's learning, flood and locked flags through
// the project's netlink reader and through `bridge -d link show`, and
// fails the test when they disagree or the kernel reports no locked flag.
func (n *testNS) lockFlags(dev string) (learning, flood, locked bool) {
	n.t.Helper()
	ns, err := netns.GetFromName(n.name)
	if err != nil {
		n.t.Fatalf("netns %s: %v", n.name, err)
	}
	defer ns.Close()
	c, err := kernel.Open(ns, kernel.DefaultTimeout)
	if err != nil {
		n.t.Fatalf("netlink in %s: %v", n.name, err)
	}
	defer c.Close()
	l, err := c.Link(dev)
	if err != nil || l == nil {
		n.t.Fatalf("netlink: link %s: %v", dev, err)
	}
	if !l.LockCapable {
		n.t.Fatalf("netlink: %s has no IFLA_BRPORT_LOCKED; this kernel (5.18+ has it) cannot lock ports", dev)
	}
	learning, flood = n.portFlags(dev)
	if learning != l.Flags.Learning || flood != l.Flags.Flood {
		n.t.Fatalf("%s: fdbhook's netlink reader says %v, the netlink package learning=%v flood=%v", dev, l.Flags, learning, flood)
	}
	out := n.bridge("-d link show dev " + dev)
	var cli string
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "locked" {
			cli = f[i+1]
		}
	}
	if cli != "on" && cli != "off" {
		n.t.Fatalf("no 'locked on|off' in bridge -d link show dev %s:\n%s", dev, out)
	}
	if (cli == "on") != l.Flags.Locked {
		n.t.Fatalf("%s locked: netlink says %v, bridge -d link says %s", dev, l.Flags.Locked, cli)
	}
	return learning, flood, l.Flags.Locked
}

// waitForwarding waits until the bridge forwards on port (a tap only once
// its file descriptor is open: carrier).
func (n *testNS) waitForwarding(port string) {
	n.t.Helper()
	var out string
	if !waitFor(5*time.Second, func() bool {
		out = n.bridge("link show dev " + port)
		return strings.Contains(out, "state forwarding")
	}) {
		n.t.Fatalf("%s does not forward after 5 s: %s", port, out)
	}
}

// inNS runs fn on a thread inside network namespace nsName; descriptors it
// opens stay in that namespace. The thread is unlocked only once it is
// back in its own namespace; otherwise it ends with its goroutine.
func inNS(nsName string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(nsName)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// openGuestTap attaches to the existing persistent tap name, as QEMU does
// with the tap libvirt made (TUNSETIFF IFF_TAP|IFF_NO_PI), and returns the
// guest's end of it.
func openGuestTap(nsName, name string) (int, error) {
	fd := -1
	err := inNS(nsName, func() error {
		f, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(f)
			return err
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(f, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(f)
			return fmt.Errorf("TUNSETIFF %s: %w", name, err)
		}
		fd = f
		return nil
	})
	return fd, err
}

// lockEtherType marks the test's frames (IEEE 802 local experimental 1).
const lockEtherType = 0x88b5

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// wireSock is an AF_PACKET socket on the uplink's peer for the test's
// EtherType: what the rest of the network receives.
type wireSock struct{ fd int }

func openWire(nsName, dev string) (*wireSock, error) {
	var s *wireSock
	err := inNS(nsName, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(lockEtherType)))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(lockEtherType), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		s = &wireSock{fd: fd}
		return nil
	})
	return s, err
}

// guestSends writes count broadcast frames from own and count from foreign
// into the tap, interleaved, then a barrier frame from barrierSrc (a source
// the port passes in every state under test), and counts the frames of
// each kind that arrive on the wire before the barrier. Frames cross the
// bridge in order, so once the barrier is out every earlier frame that was
// going to pass has passed: no sleeps.
func (s *wireSock) guestSends(t *testing.T, tapFD int, barrierSrc, own, foreign string, count int) (ownN, foreignN int) {
	t.Helper()
	if _, err := s.drain("", 0); err != nil {
		t.Fatal(err)
	}
	seq := time.Now().UnixNano()
	kind := map[string]string{}
	for i := 0; i < count; i++ {
		for _, src := range []string{own, foreign} {
			m := fmt.Sprintf("%d-%s-%d", seq, src, i)
			kind[m] = src
			if _, err := unix.Write(tapFD, lockFrame(src, m)); err != nil {
				t.Fatalf("guest writing a frame from %s: %v", src, err)
			}
		}
	}
	barrier := fmt.Sprintf("%d-barrier", seq)
	if _, err := unix.Write(tapFD, lockFrame(barrierSrc, barrier)); err != nil {
		t.Fatalf("guest writing the barrier frame: %v", err)
	}
	got, err := s.drain(barrier, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[len(got)-1] != barrier {
		t.Fatalf("the barrier frame from %s did not reach the wire within 5 s (got %d test frames)", barrierSrc, len(got))
	}
	seen := map[string]bool{}
	for _, m := range got {
		if seen[m] {
			t.Errorf("frame %s arrived twice", m)
		}
		seen[m] = true
		switch kind[m] {
		case own:
			ownN++
		case foreign:
			foreignN++
		}
	}
	return ownN, foreignN
}

// drain returns the markers of the test frames that arrive until one
// carrying until does, or wait passes; until "" takes what is queued now.
func (s *wireSock) drain(until string, wait time.Duration) ([]string, error) {
	deadline := time.Now().Add(wait)
	var got []string
	buf := make([]byte, 2048)
	for {
		left := time.Until(deadline)
		if until == "" || left <= 0 {
			left = time.Millisecond
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		if err := unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return got, err
		}
		n, from, err := unix.Recvfrom(s.fd, buf, 0)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			if until == "" || time.Now().After(deadline) {
				return got, nil
			}
			continue
		case err != nil:
			return got, err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if m, ok := lockMarker(buf[:n]); ok {
			got = append(got, m)
			if m == until {
				return got, nil
			}
		}
	}
}

// lockFrame is a broadcast frame of the test's EtherType from src carrying
// mark.
func lockFrame(src, mark string) []byte {
	s, err := net.ParseMAC(src)
	if err != nil {
		panic(err)
	}
	f := make([]byte, 0, 64)
	f = append(f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	f = append(f, s...)
	f = append(f, lockEtherType>>8, lockEtherType&0xff)
	f = append(f, "fdbt:"+mark+";"...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

func lockMarker(f []byte) (string, bool) {
	if len(f) < 14 || f[12] != lockEtherType>>8 || f[13] != lockEtherType&0xff {
		return "", false
	}
	p, ok := bytes.CutPrefix(f[14:], []byte("fdbt:"))
	if !ok {
		return "", false
	}
	end := bytes.IndexByte(p, ';')
	if end < 0 {
		return "", false
	}
	return string(p[:end]), true
}
