//go:build vm

package vm

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// TestGuestVlans: a NIC whose metadata declares pvid 10 and tagged VLANs
// 20-21 gets exactly those VLANs on its port (the bridge's default pvid 1
// removed) before its entries are written, so that the entries exist for
// VLAN 0 and each of its VLANs. Frames from the uplink reach the guest on
// its VLANs (tagged on 20, untagged on 10) and not on others (30, and the
// old default VLAN 1).
func TestGuestVlans(t *testing.T) {
	n := newNS(t, "gvlan")
	wire := newNS(t, "gvlan-wire")
	n.ip("link add br0 type bridge vlan_filtering 1")
	n.ip("link set dev br0 up")
	const tap, mac, wireMAC = "fdbtgv0", "52:54:00:fd:b2:01", "02:00:00:fd:b2:99"
	n.addTap(tap, "br0")
	n.ip("link add up0 type veth peer name up1")
	n.ip("link set up0 master br0")
	n.ip("link set up1 netns " + wire.name)
	n.ip("link set up0 up")
	wire.ip("link set up1 up")
	for _, vid := range []string{"10", "20", "21", "30"} {
		n.bridge("vlan add dev up0 vid " + vid + " master")
	}
	if got := portVlans(t, n, tap); !slices.Equal(got, []string{"1 pvid untagged"}) {
		t.Fatalf("%s VLANs before the hook = %v, want the bridge default [1 pvid untagged]", tap, got)
	}

	cfg := writeConfig(t, `bridges = ["br0"]
`)
	dom := domain{Name: "fdbt-gvlan", UUID: "5d4c1b0e-0000-4000-8000-0000000000b1", ID: 31,
		NICs: []nic{{MAC: mac, Bridge: "br0", Tap: tap}}}
	meta := `<fdbhook:fdb xmlns:fdbhook="urn:fdbhook:1"><fdbhook:interface mac="` + mac + `" pvid="10" vlans="20-21"/></fdbhook:fdb>`
	r := n.qemuHookXML(cfg, dom.Name, withMetadata(dom.xml(t), meta), "start", "begin")
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("start: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}

	want := []string{"10 pvid untagged", "20", "21"}
	if got := portVlans(t, n, tap); !slices.Equal(got, want) {
		t.Errorf("%s VLANs after the hook = %v, want %v", tap, got, want)
	}
	got := masterEntries(n.fdbBoth(mac), "br0")
	for _, vid := range []int{0, 10, 20, 21} {
		e := fdbEntry{MAC: mac, Dev: tap, Vlan: vid, Master: "br0", Flags: "static"}
		if !hasEntry(got, e) {
			t.Errorf("missing %v; bridge entries for %s: %v", e, mac, got)
		}
	}
	if len(got) != 4 {
		t.Errorf("bridge entries for %s = %v, want exactly VLAN 0, 10, 20 and 21 on %s", mac, got, tap)
	}

	// Traffic: the test holds the tap as its guest would.
	g, err := testlab.OpenTap(n.ns, tap)
	if err != nil {
		t.Skipf("cannot open %s as its guest (/dev/net/tun): %v; the VLAN and entry checks above ran", tap, err)
	}
	defer unix.Close(g)
	if !waitFor(5*time.Second, func() bool { return strings.Contains(n.bridge("link show dev "+tap), "forwarding") }) {
		t.Fatalf("%s does not forward: %s", tap, n.bridge("link show dev "+tap))
	}
	sock, err := testlab.OpenPacket(t, wire.ns, wire.name, "up1")
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	for _, tc := range []struct {
		vid     int // 0: untagged on the wire (up0's pvid, VLAN 1)
		arrives bool
		tagged  bool // arrives with a tag
	}{
		{vid: 20, arrives: true, tagged: true},
		{vid: 21, arrives: true, tagged: true},
		{vid: 10, arrives: true},
		{vid: 30},
		{vid: 0},
	} {
		mark := fmt.Sprintf("gv-%d-%d", tc.vid, time.Now().UnixNano())
		if err := sock.Send(testlab.TaggedFrame(mac, wireMAC, tc.vid, mark)); err != nil {
			t.Fatalf("sending on VLAN %d: %v", tc.vid, err)
		}
		// A frame on VLAN 20 last: frames cross the bridge in order, so
		// once it is in, an earlier frame that was to arrive has arrived.
		barrier := mark + "-barrier"
		if err := sock.Send(testlab.TaggedFrame(mac, wireMAC, 20, barrier)); err != nil {
			t.Fatalf("sending the barrier frame: %v", err)
		}
		frames, err := gvRead(g, barrier, 10*time.Second)
		if err != nil {
			t.Fatalf("reading %s as its guest: %v", tap, err)
		}
		if frames[barrier] == nil {
			t.Fatalf("the barrier frame on VLAN 20 did not reach the guest within 10s")
		}
		f := frames[mark]
		switch {
		case tc.arrives && f == nil:
			t.Errorf("a frame for %s on VLAN %d did not reach the guest", mac, tc.vid)
		case !tc.arrives && f != nil:
			t.Errorf("a frame for %s on VLAN %d reached the guest, which is not on that VLAN", mac, tc.vid)
		case f != nil:
			isTagged := f[12] == 0x81 && f[13] == 0x00
			if isTagged != tc.tagged {
				t.Errorf("VLAN %d frame reached the guest tagged=%v, want tagged=%v", tc.vid, isTagged, tc.tagged)
			}
		}
	}
}

// portVlans lists a port's VLANs through netlink, checked against
// `bridge -j vlan show`, as "ID[ pvid][ untagged]".
func portVlans(t *testing.T, n *testNS, dev string) []string {
	t.Helper()
	vl, err := n.h.BridgeVlanList()
	if err != nil {
		t.Fatalf("netlink: bridge vlan list: %v", err)
	}
	var out []string
	for _, v := range vl[int32(n.link(dev).Attrs().Index)] {
		s := fmt.Sprint(v.Vid)
		if v.PortVID() {
			s += " pvid"
		}
		if v.EngressUntag() {
			s += " untagged"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	cli := n.bridge("vlan show dev " + dev)
	for _, s := range out {
		id, _, _ := strings.Cut(s, " ")
		if !strings.Contains(cli, " "+id) {
			t.Fatalf("netlink lists VLAN %s on %s, bridge vlan show does not:\n%s", id, dev, cli)
		}
	}
	return out
}

// withMetadata puts fdbhook metadata into domain XML.
func withMetadata(xml []byte, md string) []byte {
	return bytes.Replace(xml, []byte("</uuid>"), []byte("</uuid>\n  <metadata>"+md+"</metadata>"), 1)
}

// gvRead returns the test frames the tap delivers to its guest, by mark,
// until the one carrying until arrives or wait passes. A failed read (the
// tap was deleted under its reader, EBADFD) is an error, not fewer frames.
func gvRead(fd int, until string, wait time.Duration) (map[string][]byte, error) {
	got := map[string][]byte{}
	deadline := time.Now().Add(wait)
	buf := make([]byte, 2048)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return got, nil
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		k, err := unix.Poll(pfd, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return got, fmt.Errorf("poll: %w", err)
		}
		if k == 0 {
			return got, nil
		}
		k, err = unix.Read(fd, buf)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			return got, fmt.Errorf("read: %w", err)
		}
		f := buf[:k]
		m, ok := testlab.Marker(f)
		if !ok {
			continue
		}
		got[m] = slices.Clone(f)
		if m == until {
			return got, nil
		}
	}
}
