package kernel

import (
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/model"
)

var nsSeq atomic.Int32

// lab is a fresh network namespace with a bridge br0, a tap fdbtk0 and a
// veth up0 on it, a Conn inside it, and an independent netlink handle as
// the witness the tests read back through.
type lab struct {
	c       *Conn
	h       *netlink.Handle
	ns      netns.NsHandle
	br, tap netlink.Link
	// name is the namespace's name for ip -n.
	name string
}

func newLab(t testing.TB) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("needs root to create a network namespace (euid %d)", os.Geteuid())
		}
		t.Skipf("needs root to create a network namespace (euid %d)", os.Geteuid())
	}
	name := fmt.Sprintf("fdbt-kern-%d-%d", os.Getpid(), nsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	up := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0"}, PeerName: "up1"}
	for _, l := range []netlink.Link{br, up} {
		if err := h.LinkAdd(l); err != nil {
			t.Fatalf("adding %s: %v", l.Attrs().Name, err)
		}
	}
	// A tap is made with an ioctl on /dev/net/tun, in the namespace of the
	// calling thread: ip makes it inside the namespace, never on the host.
	if out, err := exec.Command("ip", "-n", name, "tuntap", "add", "dev", "fdbtk0", "mode", "tap").CombinedOutput(); err != nil {
		t.Fatalf("ip tuntap add: %v: %s", err, out)
	}
	for _, name := range []string{"fdbtk0", "up0"} {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetMaster(l, br); err != nil {
			t.Fatalf("enslaving %s: %v", name, err)
		}
	}
	c, err := Open(ns, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brl, _ := h.LinkByName("br0")
	tapl, _ := h.LinkByName("fdbtk0")
	return &lab{c: c, h: h, ns: ns, br: brl, tap: tapl, name: name}
}

// TestLinkReads: Link and LinkByIndex report what the netlink library
// reports for the same devices, with the master's name and kind filled in;
// a device that does not exist is nil, not an error.
func TestLinkReads(t *testing.T) {
	l := newLab(t)
	tap, err := l.c.Link("fdbtk0")
	if err != nil || tap == nil {
		t.Fatalf("Link(fdbtk0) = %v, %v", tap, err)
	}
	want := model.Link{Name: "fdbtk0", Index: l.tap.Attrs().Index, Type: "tuntap", TunMode: "tap", Master: "br0",
		MasterIndex: l.br.Attrs().Index, MasterType: "bridge", Flags: model.Flags{Learning: true, Flood: true},
		PeerNetnsID: -1}
	got := *tap
	got.LockCapable, got.MabCapable, got.Promiscuity, got.PromiscFlag, got.Carrier = false, false, 0, false, false
	if got != want {
		t.Errorf("Link(fdbtk0) = %+v\nwant %+v", got, want)
	}
	if !tap.IsTap() {
		t.Errorf("fdbtk0 is not a tap to the kernel layer: %+v", tap)
	}
	br, err := l.c.LinkByIndex(l.br.Attrs().Index)
	if err != nil || br == nil || br.Name != "br0" || br.Type != "bridge" {
		t.Errorf("LinkByIndex(br0) = %+v, %v", br, err)
	}
	if none, err := l.c.Link("nosuch0"); none != nil || err != nil {
		t.Errorf("Link(nosuch0) = %+v, %v; want nil, nil", none, err)
	}
}

// TestEntryWrites: ReplaceEntry writes a static master entry that the
// witness sees with NUD_NOARP on the tap, Entries finds it by MAC with the
// port's name, and DeleteEntry removes it.
func TestEntryWrites(t *testing.T) {
	l := newLab(t)
	const mac = "52:54:00:fd:c0:01"
	e := model.Entry{MAC: mac, PortIndex: l.tap.Attrs().Index, State: model.NUDNoARP, NTFlags: model.NTFMaster}
	if err := l.c.ReplaceEntry(e); err != nil {
		t.Fatal(err)
	}
	witness := func() []netlink.Neigh {
		t.Helper()
		all, err := l.h.NeighList(l.tap.Attrs().Index, unix.AF_BRIDGE)
		if err != nil {
			t.Fatal(err)
		}
		var out []netlink.Neigh
		for _, n := range all {
			if n.HardwareAddr.String() == mac && n.MasterIndex == l.br.Attrs().Index {
				out = append(out, n)
			}
		}
		return out
	}
	ns := witness()
	if len(ns) == 0 || ns[0].State&unix.NUD_NOARP == 0 || ns[0].State&unix.NUD_PERMANENT != 0 {
		t.Fatalf("after ReplaceEntry the witness sees %+v, want a static (NUD_NOARP) entry", ns)
	}
	br, _ := l.c.Link("br0")
	got, err := l.c.Entries(br, mac)
	if err != nil || len(got) != len(ns) || got[0].Port != "fdbtk0" || !got[0].Static() {
		t.Errorf("Entries(br0, %s) = %+v, %v; want the %d entries the witness sees, on fdbtk0, static", mac, got, err, len(ns))
	}
	if err := l.c.DeleteEntry(model.Entry{MAC: mac, PortIndex: l.tap.Attrs().Index}); err != nil {
		t.Fatal(err)
	}
	if ns := witness(); len(ns) != 0 {
		t.Errorf("after DeleteEntry the witness still sees %+v", ns)
	}
	if got, err := l.c.Entries(br, mac); err != nil || len(got) != 0 {
		t.Errorf("Entries after DeleteEntry = %+v, %v", got, err)
	}
}

// TestSetPortFlags: one message sets learning and flood as asked, read back
// through the witness's protinfo.
func TestSetPortFlags(t *testing.T) {
	l := newLab(t)
	for _, f := range []model.Flags{{}, {Learning: true}, {Flood: true}, {Learning: true, Flood: true}} {
		if err := l.c.SetPortFlags(l.tap.Attrs().Index, f, false, false); err != nil {
			t.Fatal(err)
		}
		pi, err := l.h.LinkGetProtinfo(l.tap)
		if err != nil {
			t.Fatal(err)
		}
		if pi.Learning != f.Learning || pi.Flood != f.Flood {
			t.Errorf("after SetPortFlags(%s) the witness sees learning %v flood %v", f, pi.Learning, pi.Flood)
		}
	}
}

// TestParseLinkAsLibrary: for every device of a namespace with a bridge, a
// tap and a veth pair (one end a bridge port), parseLink reads what the
// netlink library's LinkDeserialize reads; taps and bridges, which it reads
// itself, included.
func TestParseLinkAsLibrary(t *testing.T) {
	l := newLab(t)
	r, err := l.c.exchange(unix.RTM_NEWLINK, l.c.request(unix.RTM_GETLINK, unix.NLM_F_DUMP, nl.NewIfInfomsg(unix.AF_UNSPEC), skipStats()))
	if err != nil || r[0].err != nil {
		t.Fatalf("link dump: %v %v", err, r)
	}
	kinds := map[string]bool{}
	for _, m := range r[0].msgs {
		got, err := parseLink(m)
		if err != nil {
			t.Fatal(err)
		}
		want, err := parseLinkLibrary(m)
		if err != nil {
			t.Fatal(err)
		}
		var a linkAttrs
		if err := a.read(m[unix.SizeofIfInfomsg:]); err != nil {
			t.Fatal(err)
		}
		if err := a.port(want); err != nil {
			t.Fatal(err)
		}
		if *got != *want {
			t.Errorf("%s: parseLink\n%+v\nLinkDeserialize\n%+v", want.Name, *got, *want)
		}
		kinds[got.Type] = true
	}
	for _, k := range []string{"bridge", "tuntap", "veth", "device"} {
		if !kinds[k] {
			t.Errorf("no %s among the devices compared (%v)", k, kinds)
		}
	}
}
