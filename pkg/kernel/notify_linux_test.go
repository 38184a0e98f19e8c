package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// rawReceive reads one datagram from n's socket as it arrives (what the
// kernel's filter let through, from any sender), waiting up to wait.
func rawReceive(t *testing.T, n *Notifier, wait time.Duration) ([]byte, error) {
	t.Helper()
	if err := n.SetDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	if err := n.rc.Read(n.readFn); err != nil {
		return nil, err
	}
	if n.errno != 0 {
		return nil, n.errno
	}
	return append([]byte(nil), n.buf[:n.n]...), nil
}

// portID is the netlink port ID of n's socket.
func portID(t *testing.T, n *Notifier) uint32 {
	var pid uint32
	var err error
	n.rc.Control(func(fd uintptr) {
		var sa unix.Sockaddr
		if sa, err = unix.Getsockname(int(fd)); err == nil {
			pid = sa.(*unix.SockaddrNetlink).Pid
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// filterCase is a crafted message, what the socket filter must do with it
// (kernel) and what Receive's rules then do (user).
type filterCase struct {
	what         string
	msg          func(seq uint32) []byte
	kernel, user bool
}

func fdbCase(what string, spec fdbSpec, kernel, user bool) filterCase {
	return filterCase{what, spec.message, kernel, user}
}

// filterCases exercise every branch of the program against wl, whose
// ports and MACs are those of manyWatched.
func filterCases(wl *Watchlist) []filterCase {
	var cs []filterCase
	for p := range wl.Ports {
		if p%7 == 0 || p < 1010 || p > 3990 { // a sample, both ends included
			cs = append(cs, fdbCase(fmt.Sprintf("learned on guest port %d", p), fdbSpec{index: p, state: unix.NUD_REACHABLE, mac: macB}, true, true),
				fdbCase(fmt.Sprintf("learned on port %d, between guest ports", p+1), fdbSpec{index: p + 1, state: unix.NUD_REACHABLE, mac: macB}, false, false))
		}
	}
	for m := range wl.MACs {
		if m[5]%13 == 0 {
			twin := m
			twin[0] = 0x0a // the same last four bytes: the filter keeps it, the rules do not
			cs = append(cs, fdbCase(fmt.Sprintf("a guest's MAC %x learned on the uplink", m), fdbSpec{index: 2, state: unix.NUD_REACHABLE, mac: m}, true, true),
				fdbCase(fmt.Sprintf("%x, a guest MAC's last four bytes, on the uplink", twin), fdbSpec{index: 2, state: unix.NUD_REACHABLE, mac: twin}, true, false))
		}
	}
	oldLayout := []msgAttr{{unix.NDA_LLADDR, macB[:]}, {unix.NDA_MASTER, u32(1)}, {unix.NDA_CACHEINFO, make([]byte, sizeofNdaCacheinfo)}}
	newAttr := []msgAttr{{unix.NDA_LLADDR, macB[:]}, {unix.NDA_MASTER, u32(1)}, {unix.NDA_VLAN, []byte{1, 0, 0, 0}}, {unix.NDA_CACHEINFO, make([]byte, sizeofNdaCacheinfo)}}
	masterFirst := []msgAttr{{unix.NDA_MASTER, u32(1)}, {unix.NDA_LLADDR, macB[:]}, {unix.NDA_CACHEINFO, make([]byte, sizeofNdaCacheinfo)}}
	return append(cs,
		fdbCase("learned on the uplink", fdbSpec{index: 2, state: unix.NUD_REACHABLE, mac: macB}, false, false),
		fdbCase("aged out on the uplink", fdbSpec{typ: unix.RTM_DELNEIGH, index: 2, state: unix.NUD_STALE, mac: macB}, false, false),
		fdbCase("static on the uplink", fdbSpec{index: 2, state: unix.NUD_NOARP, mac: macB}, true, true),
		fdbCase("static deleted", fdbSpec{typ: unix.RTM_DELNEIGH, index: 2, state: unix.NUD_NOARP, mac: macB}, true, true),
		fdbCase("static and reachable", fdbSpec{index: 2, state: unix.NUD_NOARP | unix.NUD_REACHABLE, mac: macB}, true, true),
		fdbCase("local", fdbSpec{index: 2, state: unix.NUD_PERMANENT, mac: macB}, false, false),
		fdbCase("local, noarp too", fdbSpec{index: 2, state: unix.NUD_PERMANENT | unix.NUD_NOARP, mac: macB}, false, false),
		fdbCase("locked", fdbSpec{index: 2, state: unix.NUD_REACHABLE, mac: macB, ext: ntfExtLocked}, true, true),
		fdbCase("extended flags, not locked", fdbSpec{index: 2, state: unix.NUD_REACHABLE, mac: macB, ext: 1}, false, false),
		fdbCase("learned, a kernel before NDA_FLAGS_EXT", fdbSpec{index: 2, state: unix.NUD_REACHABLE, attrs: oldLayout}, false, false),
		fdbCase("static, a kernel before NDA_FLAGS_EXT", fdbSpec{index: 2, state: unix.NUD_NOARP, attrs: oldLayout}, true, true),
		fdbCase("learned, an attribute the filter does not know in third place", fdbSpec{index: 2, state: unix.NUD_REACHABLE, attrs: newAttr}, true, false),
		fdbCase("learned, NDA_MASTER first", fdbSpec{index: 2, state: unix.NUD_REACHABLE, attrs: masterFirst}, true, false),
		fdbCase("no attributes", fdbSpec{index: 2, state: unix.NUD_REACHABLE, noAttrs: true}, true, false),
		fdbCase("a device's own static entry", fdbSpec{index: 2, state: unix.NUD_NOARP, flags: unix.NTF_SELF, mac: macB}, false, false),
		fdbCase("an ARP neighbour", fdbSpec{family: unix.AF_INET, index: 1000, state: unix.NUD_NOARP, mac: macB}, false, false),
		fdbCase("an NDP neighbour deleted", fdbSpec{typ: unix.RTM_DELNEIGH, family: unix.AF_INET6, index: 1000, state: unix.NUD_NOARP, mac: macB}, false, false),
		filterCase{"a link", func(seq uint32) []byte { return linkMessage(unix.RTM_NEWLINK, seq, 2, "up0", 1) }, true, true},
		filterCase{"a link deleted", func(seq uint32) []byte { return linkMessage(unix.RTM_DELLINK, seq, 2, "up0", 0) }, true, true},
	)
}

// TestFilterInKernel attaches the filter for 1,000 guest ports and MACs
// to a notification socket and sends it crafted notifications from a
// second socket: what arrives is what the kernel's BPF let through, and
// the rules then decide what Receive would hand over. Ports and MACs
// watched pass, their neighbours do not, at both ends of the search tree.
func TestFilterInKernel(t *testing.T) {
	l := newLab(t)
	n, err := OpenNotifier(l.ns, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	wl := manyWatched(1000)
	rep, err := n.Watch(wl)
	if err != nil || len(rep.Left) > 0 {
		t.Fatalf("Watch: %v, %v", rep, err)
	}
	t.Logf("filter: %s", rep)
	checkFilter(t, l.ns, n, wl, filterCases(wl))

	// Too many for the kernel's limit: the MAC rule is left out, and a
	// guest's MAC on the uplink no longer gets through.
	big := manyWatched(2500)
	rep, err = n.Watch(big)
	if err != nil || strings.Join(rep.Left, ",") != "guest MAC" {
		t.Fatalf("Watch of 2500: %v, %v", rep, err)
	}
	var someMAC [6]byte
	for m := range big.MACs {
		someMAC = m
		break
	}
	checkFilter(t, l.ns, n, big, []filterCase{
		fdbCase("learned on guest port 1000", fdbSpec{index: 1000, state: unix.NUD_REACHABLE, mac: macB}, true, true),
		fdbCase("learned on guest port 8497", fdbSpec{index: 8497, state: unix.NUD_REACHABLE, mac: macB}, true, true),
		fdbCase("a guest's MAC on the uplink, rule left out", fdbSpec{index: 2, state: unix.NUD_REACHABLE, mac: someMAC}, false, true),
		fdbCase("static", fdbSpec{index: 2, state: unix.NUD_NOARP, mac: macB}, true, true),
	})
}

// checkFilter sends each case, with its index as sequence number, then a
// barrier, and checks which arrive and what the rules keep of them.
func checkFilter(t *testing.T, ns netns.NsHandle, n *Notifier, wl *Watchlist, cases []filterCase) {
	t.Helper()
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	to := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: portID(t, n)}
	send := func(m []byte) {
		if err := unix.Sendto(s.GetFd(), m, 0, to); err != nil {
			t.Fatalf("sending to the notifier: %v", err)
		}
	}
	for i, c := range cases {
		send(c.msg(uint32(i + 1)))
	}
	const barrier = 0xffffff
	send(linkMessage(unix.RTM_NEWLINK, barrier, 1, "barrier", 0))
	arrived := map[int]bool{}
	for {
		b, err := rawReceive(t, n, 2*time.Second)
		if err != nil {
			t.Fatalf("receiving (%d arrived so far): %v", len(arrived), err)
		}
		seq := int(binary.NativeEndian.Uint32(b[8:12]))
		if seq == barrier {
			break
		}
		if seq < 1 || seq > len(cases) {
			continue // a notification of the namespace itself
		}
		c := cases[seq-1]
		arrived[seq-1] = true
		if user := n.keep(b, wl); user != c.user {
			t.Errorf("%s: the rules keep it: %v, want %v", c.what, user, c.user)
		}
	}
	for i, c := range cases {
		if arrived[i] != c.kernel {
			t.Errorf("%s: the socket filter let it through: %v, want %v", c.what, arrived[i], c.kernel)
		}
	}
}

// TestNotifierOnBridge reads the notifications a real bridge sends: a
// learned entry on the uplink and its deletion (seen by an unfiltered
// witness socket) never reach the notifier; a static entry, an entry on a
// guest's port, a guest's MAC learned on the uplink, a locked entry
// (MAB, where the kernel has it) and link changes do, through Receive.
func TestNotifierOnBridge(t *testing.T) {
	l := newLab(t)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], append([]string{"-n", l.name}, args[1:]...)...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	// The tap held open, as QEMU holds it: it has carrier, its port
	// forwards, and the kernel takes dynamic entries on it.
	fd, err := testlab.OpenTap(l.ns, "fdbtk0")
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, d := range []string{"br0", "up0", "up1", "fdbtk0"} {
		ip("ip", "link", "set", d, "up")
	}
	witness, err := nl.SubscribeAt(l.ns, netns.None(), unix.NETLINK_ROUTE, unix.RTNLGRP_NEIGH)
	if err != nil {
		t.Fatal(err)
	}
	defer witness.Close()
	n, err := OpenNotifier(l.ns, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	tap, err := l.h.LinkByName("fdbtk0")
	if err != nil {
		t.Fatal(err)
	}
	guestMAC := [6]byte{0x52, 0x54, 0x00, 0xfd, 0x0e, 0x01}
	if _, err := n.Watch(&Watchlist{Ports: map[int]string{tap.Attrs().Index: "g"}, MACs: map[[6]byte][]string{guestMAC: {"g"}}}); err != nil {
		t.Fatal(err)
	}
	up1, err := testlab.OpenPacket(t, l.ns, "the uplink's far end", "up1")
	if err != nil {
		t.Fatal(err)
	}
	defer up1.Close()
	send := func(src string) {
		t.Helper()
		if err := up1.Send(testlab.Frame("0a:fd:ff:ff:ff:fe", src, "churn")); err != nil {
			t.Fatal(err)
		}
	}
	learned := "0a:fd:00:00:00:01"
	send(learned)
	waitWitness(t, witness, learned, unix.RTM_NEWNEIGH)
	ip("bridge", "fdb", "del", learned, "dev", "up0", "master")
	waitWitness(t, witness, learned, unix.RTM_DELNEIGH)

	ip("bridge", "fdb", "replace", "0a:fd:00:00:00:02", "dev", "up0", "master", "static")
	ip("bridge", "fdb", "replace", "0a:fd:00:00:00:03", "dev", "fdbtk0", "master", "dynamic")
	send(net.HardwareAddr(guestMAC[:]).String())
	ip("bridge", "link", "set", "dev", "fdbtk0", "learning", "off")
	want := []string{"fdb 0a:fd:00:00:00:02 static", "fdb 0a:fd:00:00:00:03 guest port", "fdb 52:54:00:fd:0e:01 guest MAC", "link fdbtk0"}
	locked := "0a:fd:00:00:00:04"
	if err := setMAB(l.c, "up0"); err != nil {
		t.Logf("no locked entries: this kernel has no MAC Authentication Bypass (%v)", err)
	} else {
		send(locked)
		want = append(want, "fdb "+locked+" locked")
	}
	got := receiveUntil(t, n, want[len(want)-1])
	for _, w := range want {
		if !strings.Contains(got, w+"\n") {
			t.Errorf("Receive handed over no %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, learned) {
		t.Errorf("the learned entry reached the notifier:\n%s", got)
	}
	if r, k, _ := n.Counts(); r != k {
		t.Errorf("%d notifications reached the socket, %d were kept: the kernel let through what the rules drop", r, k)
	}
}

// setMAB locks port and turns MAC Authentication Bypass on (learning
// stays on: MAB needs both), as `bridge link set dev PORT locked on mab on`
// does with an iproute2 that knows mab.
func setMAB(c *Conn, port string) error {
	l, err := c.Link(port)
	if err != nil || l == nil {
		return fmt.Errorf("%s: %v", port, err)
	}
	msg := nl.NewIfInfomsg(unix.AF_BRIDGE)
	msg.Index = int32(l.Index)
	proto := nl.NewRtAttr(unix.IFLA_PROTINFO|unix.NLA_F_NESTED, nil)
	proto.AddRtAttr(unix.IFLA_BRPORT_LEARNING, []byte{1})
	proto.AddRtAttr(unix.IFLA_BRPORT_LOCKED, []byte{1})
	proto.AddRtAttr(unix.IFLA_BRPORT_MAB, []byte{1})
	return c.write(c.request(unix.RTM_SETLINK, unix.NLM_F_ACK, msg, proto))
}

// waitWitness waits for the witness to see a notification of type typ for mac.
func waitWitness(t *testing.T, w *nl.NetlinkSocket, mac string, typ uint16) {
	t.Helper()
	hw, _ := net.ParseMAC(mac)
	deadline := time.Now().Add(2 * time.Second)
	w.SetReceiveTimeout(&unix.Timeval{Usec: 200_000})
	for time.Now().Before(deadline) {
		msgs, _, err := w.Receive()
		if err != nil && !errors.Is(err, unix.EAGAIN) {
			t.Fatal(err)
		}
		for _, m := range msgs {
			var note Note
			if m.Header.Type == typ && parseFDBNote(append(make([]byte, unix.NLMSG_HDRLEN), m.Data...), &note) && note.MAC == [6]byte(hw) {
				return
			}
		}
	}
	t.Fatalf("the kernel sent no notification %d for %s", typ, mac)
}

// receiveUntil collects what Receive hands over, one line each, until a
// line starts with last.
func receiveUntil(t *testing.T, n *Notifier, last string) string {
	t.Helper()
	var b strings.Builder
	done := false
	for !done {
		if err := n.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
			t.Fatal(err)
		}
		err := n.Receive(func(note *Note) {
			line := "link " + string(note.Name)
			if note.Kind == NoteFDB {
				line = fmt.Sprintf("fdb %s %s", net.HardwareAddr(note.MAC[:]), FDBRules[note.Rule].Name)
			}
			b.WriteString(line + "\n")
			done = done || strings.HasPrefix(line, last)
		})
		if err != nil {
			t.Fatalf("receiving, after:\n%s: %v", b.String(), err)
		}
	}
	return b.String()
}

// TestNotifierClose: Close ends a Receive that waits, with os.ErrClosed.
func TestNotifierClose(t *testing.T) {
	l := newLab(t)
	n, err := OpenNotifier(l.ns, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- n.Receive(func(*Note) {}) }()
	n.Close()
	select {
	case err := <-got:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Receive after Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Receive did not return after Close")
	}
}
