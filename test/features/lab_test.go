package features

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/model"
	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// lab is a host namespace with bridge br0, a guest tap tap0 and an uplink
// veth up0, whose peer up1 sits in a second namespace: the wire. The test
// holds tap0's file descriptor (it plays the guest) and a packet socket on
// up1 (it plays the rest of the network).
type lab struct {
	t          *testing.T
	host, wire *testlab.Namespace
	tap        int // tap0's file descriptor: the guest's end
	up1        *testlab.PacketSock
}

const (
	guestMAC = "52:54:00:fd:b0:01"
	extraMAC = "00:00:5e:00:01:0a" // a VRRP virtual MAC
	spoofMAC = "02:00:00:fd:b0:66"
	wireMAC  = "02:00:00:fd:b0:99"
)

func newLab(t *testing.T) *lab {
	t.Helper()
	testlab.RequireRoot(t)
	testlab.RequireTun(t)
	l := &lab{t: t}
	name := suite.NextName()
	l.host = testlab.NewNamespace(t, name+"-host")
	l.wire = testlab.NewNamespace(t, name+"-wire")

	// Persistent tap, as libvirt makes them; no IPv6 anywhere, so that
	// the only traffic is the test's.
	l.host.Batch("ip", []string{
		"link add br0 type bridge stp_state 0",
		"tuntap add dev tap0 mode tap",
		"link set tap0 master br0",
		"link add up0 type veth peer name up1",
		"link set up0 master br0",
		"link set up1 netns " + l.wire.Name,
		"link set br0 up",
		"link set tap0 up",
		"link set up0 up",
	})
	l.wire.Batch("ip", []string{"link set up1 up"})
	for _, ns := range []*testlab.Namespace{l.host, l.wire} {
		ns.Exec("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
	var err error
	if l.tap, err = testlab.OpenTap(l.host.NetNS, "tap0"); err != nil {
		t.Fatalf("opening tap0 as its guest: %v", err)
	}
	t.Cleanup(func() { unix.Close(l.tap) })
	if l.up1, err = testlab.OpenPacket(t, l.wire.NetNS, l.wire.Name, "up1"); err != nil {
		t.Fatalf("packet socket on up1: %v", err)
	}
	l.waitForwarding("tap0")
	l.waitForwarding("up0")
	return l
}

// waitForwarding waits until the bridge forwards on port (carrier up).
func (l *lab) waitForwarding(port string) {
	l.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var links []struct {
			Ifname string `json:"ifname"`
			State  string `json:"state"`
		}
		out := l.host.Exec("bridge", "-j", "link", "show", "dev", port)
		if err := json.Unmarshal(out, &links); err != nil {
			l.t.Fatalf("bridge -j link show dev %s: %v", port, err)
		}
		if len(links) == 1 && links[0].State == "forwarding" {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s does not forward after 5s: %s", port, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hook runs qemu-hook in the host namespace with a private /run (so that
// neither the host's libvirt state nor its lock file is seen), config as
// the configuration and xml on stdin.
func (l *lab) hook(config string, xml string, env []string, args ...string) testlab.Result {
	l.t.Helper()
	cfg := filepath.Join(l.t.TempDir(), "fdbhook.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		l.t.Fatal(err)
	}
	r, err := l.host.Run([]byte(xml), testlab.HookEnv(cfg, env...),
		append(append(testlab.PrivateRun(""), suite.Bin("qemu-hook")), args...)...)
	if err != nil {
		l.t.Fatalf("qemu-hook %s: %v", strings.Join(args, " "), err)
	}
	if len(args) == 4 && r.Stdout != "" {
		l.t.Errorf("qemu-hook %s wrote to stdout in hook mode: %q", strings.Join(args, " "), r.Stdout)
	}
	return r
}

// start runs `qemu-hook fdbt-g1 start begin -` and requires exit 0.
func (l *lab) start(config, metadata string) {
	l.t.Helper()
	if r := l.hook(config, domainXML(metadata), nil, "fdbt-g1", "start", "begin", "-"); r.Code != 0 {
		l.t.Fatalf("start: %s", r)
	}
}

// domainXML is a running guest with one NIC on br0 through tap0.
func domainXML(metadata string) string {
	return testlab.Domain{Name: "fdbt-g1", ID: 7, UUID: "5f0c5d4e-7f11-4a4e-9a55-0d0a0c0ffee1", Metadata: metadata,
		NICs: []testlab.NIC{{MAC: guestMAC, Bridge: "br0", Target: "tap0", Model: "virtio", Alias: "net0"}}}.XML()
}

// entry is a bridge entry as both witnesses report it.
type entry struct {
	Port   string
	Static bool
	Sticky bool
}

// bridge opens the project's netlink connection in the host namespace
// and reads br0; the caller closes the connection.
func (l *lab) bridge() (*kernel.Conn, *model.Link) {
	l.t.Helper()
	c, err := kernel.Open(l.host.NetNS, 5*time.Second)
	if err != nil {
		l.t.Fatal(err)
	}
	br, err := c.Link("br0")
	if err != nil || br == nil {
		c.Close()
		l.t.Fatalf("br0: %v", err)
	}
	return c, br
}

// kernelEntry returns the VLAN-0 entry for mac on br0 as the project's
// netlink code reads it, nil when there is none.
func (l *lab) kernelEntry(mac string) *model.Entry {
	l.t.Helper()
	c, br := l.bridge()
	defer c.Close()
	es, err := c.Entries(br, mac)
	if err != nil {
		l.t.Fatalf("entries for %s: %v", mac, err)
	}
	for _, e := range es {
		if e.Vlan == 0 {
			return &e
		}
	}
	return nil
}

// entryOf reads the VLAN-0 entry for mac on br0 through the project's own
// netlink code and through `bridge fdb`, fails the test when they
// disagree, and returns it (Port "" when there is none).
func (l *lab) entryOf(mac string) entry {
	l.t.Helper()
	own := func() (entry, error) {
		if e := l.kernelEntry(mac); e != nil {
			return entry{Port: e.Port, Static: e.Static(), Sticky: e.NTFlags&model.NTFSticky != 0}, nil
		}
		return entry{}, nil
	}
	ip, nl, still, _ := testlab.HeldStill(own, func() (entry, error) { return l.fdbShow(mac), nil })
	if !still || nl != ip {
		l.t.Fatalf("entry for %s: netlink says %+v (held still: %v), iproute2 says %+v", mac, nl, still, ip)
	}
	return nl
}

// fdbShow is the VLAN-0 entry for mac on br0 as `bridge fdb` shows it.
func (l *lab) fdbShow(mac string) entry {
	l.t.Helper()
	var rows []struct {
		MAC    string   `json:"mac"`
		Ifname string   `json:"ifname"`
		Vlan   int      `json:"vlan"`
		Flags  []string `json:"flags"`
		State  string   `json:"state"`
		Master string   `json:"master"`
	}
	if err := json.Unmarshal(l.host.Exec("bridge", "-j", "fdb", "show", "br", "br0"), &rows); err != nil {
		l.t.Fatalf("bridge -j fdb show: %v", err)
	}
	var ip entry
	for _, r := range rows {
		if r.MAC == mac && r.Vlan == 0 && r.Master == "br0" {
			ip = entry{Port: r.Ifname, Static: r.State == "static", Sticky: slices.Contains(r.Flags, "sticky")}
		}
	}
	return ip
}

// portFlags reads a port's flags through the netlink library and
// iproute2 (lab.PortFlags) and through the project's own netlink code, and
// fails the test when they disagree.
func (l *lab) portFlags(port string) model.Flags {
	l.t.Helper()
	return l.portLink(port).Flags
}

// portLink is portFlags' read: the port as the project's netlink code
// reads it, its flags checked against the library and iproute2.
func (l *lab) portLink(port string) *model.Link {
	l.t.Helper()
	c, err := kernel.Open(l.host.NetNS, 2*time.Second)
	if err != nil {
		l.t.Fatal(err)
	}
	defer c.Close()
	var link *model.Link
	own := func() (model.Flags, error) {
		var err error
		if link, err = c.Link(port); err != nil || link == nil {
			l.t.Fatalf("%s: %v", port, err)
		}
		return link.Flags, nil
	}
	// A watcher may change the flags between the reads: they are compared
	// only when the project's held still around the others'.
	f, flags, still, _ := testlab.HeldStill(own, func() (testlab.Flags, error) { return l.host.PortFlags(port), nil })
	// Mab is left out: Debian 12's iproute2 does not know it.
	if ip := (model.Flags{Learning: f.Learning, Flood: f.Flood, Locked: f.Locked, Mab: flags.Mab}); !still || flags != ip {
		l.t.Fatalf("%s flags: the project's netlink code says %v (held still: %v), the library and iproute2 say %v", port, flags, still, ip)
	}
	if !link.LockCapable {
		l.t.Skipf("this kernel reports no IFLA_BRPORT_LOCKED for %s (needs Linux 5.18+)", port)
	}
	return link
}
