//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	nlconn "github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/test/lab"
)

// 12. A guest whose metadata asks for undeclared-macs="report" (set with
// virsh metadata, read back from libvirt's XML by the hook): after virsh
// start its tap reads back learning on flood off locked on mab on and
// holds the guest's static entry, the uplink is untouched, and status
// finds no problem; after virsh destroy nothing of it is left.
func Test12UndeclaredMACsReport(t *testing.T) {
	timed(t)
	k := suite.k
	const (
		g   = "fdbtg12"
		mac = "52:54:00:fd:0c:01"
		tap = "fdbtg12a"
	)
	if l := link(t, uplink); !l.MabCapable {
		t.Skipf("this kernel reports no IFLA_BRPORT_MAB for %s: MAC Authentication Bypass needs Linux 6.2+", uplink)
	}
	uplinkBefore := link(t, uplink).Flags
	tempGuest(t, g, []nic{{typ: "bridge", mac: mac, source: bridge0, target: tap}})
	setMetadata(t, g, `<fdb undeclared-macs="report"/>`)

	virshOK(t, "start", g)
	if f := link(t, tap).Flags; f != model.Reporting {
		t.Errorf("netlink: %s is %s, want %s", tap, f.WordsMab(true, true), model.Reporting.WordsMab(true, true))
	}
	assertLocked(t, tap, true) // iproute2 as the witness of locked; it does not know mab
	if es := k.masterEntries(t, mac); len(es) != 1 || es[0].dev != tap || !es[0].static {
		t.Errorf("netlink: entries for %s: %v, want one static on %s", mac, es, tap)
	}
	if f := link(t, uplink).Flags; f != uplinkBefore {
		t.Errorf("netlink: uplink %s changed from %s to %s", uplink, uplinkBefore, f)
	}
	rep := statusJSON(t, 0)
	for _, p := range rep.Problems {
		if p.Port == tap || p.MAC == mac {
			t.Errorf("status --json: problem %q", p.Text)
		}
	}

	virshOK(t, "destroy", g)
	k.assertGone(t, tap)
	waitFor(5*time.Second, func() bool { return len(k.masterEntries(t, mac)) == 0 })
	k.assertNoEntries(t, mac, bridge0)
}

// link reads a device through the project's netlink code.
func link(t *testing.T, name string) *model.Link {
	t.Helper()
	c, err := nlconn.Open(netns.None(), nlconn.DefaultTimeout)
	if err != nil {
		t.Fatalf("netlink: %v", err)
	}
	defer c.Close()
	l, err := c.Link(name)
	if err != nil || l == nil {
		t.Fatalf("netlink: link %s: %v", name, err)
	}
	return l
}

// 13. A guest whose metadata asks for undeclared-macs="follow", with the
// watcher running against the real libvirtd: a frame from a MAC the guest
// did not declare, written into its tap through a queue of its own (the
// NIC is virtio with two queues; the test attaches a third, as QEMU's
// guest would send), gets the MAC a static entry on the guest's tap
// (netlink), status lists it as followed with no problem, and destroy
// leaves no entry for it and no record.
func Test13UndeclaredMACsFollow(t *testing.T) {
	timed(t)
	k := suite.k
	const (
		g      = "fdbtg13"
		mac    = "52:54:00:fd:0d:01"
		tap    = "fdbtg13a"
		nested = "02:00:00:fd:0d:77"
	)
	if l := link(t, uplink); !l.MabCapable {
		t.Skipf("this kernel reports no IFLA_BRPORT_MAB for %s: MAC Authentication Bypass needs Linux 6.2+", uplink)
	}
	removeGuest(g)
	t.Cleanup(func() { removeGuest(g) })
	xml := domainXML(g, []nic{{typ: "bridge", mac: mac, source: bridge0, target: tap}})
	xml = strings.Replace(xml, "<model type='rtl8139'/>", "<model type='virtio'/>\n      <driver queues='2'/>", 1)
	f := filepath.Join(t.TempDir(), g+".xml")
	if err := os.WriteFile(f, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	virshOK(t, "define", f)
	setMetadata(t, g, `<fdb undeclared-macs="follow"/>`)
	w := startWatcher(t, "watch-follow.log")

	virshOK(t, "start", g)
	if f := link(t, tap).Flags; f != model.Reporting {
		t.Fatalf("netlink: %s is %s, want %s", tap, f.WordsMab(true, true), model.Reporting.WordsMab(true, true))
	}
	q, hdr, detach := attachQueue(t, tap)
	sent := time.Now()
	frame := append(make([]byte, hdr), lab.Frame(lab.Broadcast, nested, "follow")...)
	if _, err := unix.Write(q, frame); err != nil {
		t.Fatalf("writing into %s's extra queue: %v", tap, err)
	}
	static := func() bool {
		es := k.masterEntries(t, nested)
		return len(es) == 1 && es[0].dev == tap && es[0].static
	}
	if !waitFor(5*time.Second, static) {
		t.Fatalf("netlink: entries for %s: %v, want one static on %s; watcher log:\n%s", nested, k.masterEntries(t, nested), tap, w.output())
	}
	t.Logf("%s static on %s %v after the guest's frame from it", nested, tap, time.Since(sent).Round(time.Millisecond))
	if !strings.Contains(w.output(), "guest "+g+" net0 on "+tap+": following MAC "+nested) {
		t.Errorf("the watcher's log does not say it follows %s:\n%s", nested, w.output())
	}
	rep := statusJSON(t, 0)
	followed := false
	for _, b := range rep.Bridges {
		for _, p := range b.Ports {
			followed = followed || p.Name == tap && slices.Contains(p.Followed, nested)
		}
	}
	if !followed {
		t.Errorf("status --json does not list %s as followed on %s", nested, tap)
	}
	for _, p := range rep.Problems {
		if p.Port == tap || p.MAC == nested {
			t.Errorf("status --json: problem %q", p.Text)
		}
	}

	detach() // or the tap outlives QEMU
	virshOK(t, "destroy", g)
	k.assertGone(t, tap)
	waitFor(5*time.Second, func() bool { return len(k.masterEntries(t, nested)) == 0 })
	k.assertNoEntries(t, nested, bridge0)
	if _, err := os.Stat("/run/fdbhook/followed/" + g + ".json"); err == nil {
		t.Error("the record of the guest's followed MACs outlived it")
	}
}

// attachQueue attaches a queue to multi-queue tap (as QEMU's own, with
// virtio-net headers) and returns its descriptor, the header size each
// frame written to it starts with, and what detaches it (at the latest
// when t ends).
func attachQueue(t *testing.T, tap string) (fd, hdr int, detach func()) {
	t.Helper()
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ifr, err := unix.NewIfreq(tap)
	if err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR | unix.IFF_MULTI_QUEUE)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		t.Fatalf("attaching a queue to %s: %v", tap, err)
	}
	detach = sync.OnceFunc(func() { unix.Close(fd) })
	t.Cleanup(detach)
	hdr, err = unix.IoctlGetInt(fd, unix.TUNGETVNETHDRSZ)
	if err != nil {
		t.Fatalf("TUNGETVNETHDRSZ on %s: %v", tap, err)
	}
	return fd, hdr, detach
}
