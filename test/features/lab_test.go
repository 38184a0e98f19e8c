package features

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// lab is a host namespace with bridge br0, a guest tap tap0 and an uplink
// veth up0, whose peer up1 sits in a second namespace: the wire. The test
// holds tap0's file descriptor (it plays the guest) and a packet socket on
// up1 (it plays the rest of the network).
type lab struct {
	t          *testing.T
	host, wire string
	hostNS     netns.NsHandle
	wireNS     netns.NsHandle
	h          *netlink.Handle
	tap        *tapDev
	up1        *packetSock
}

var labSeq atomic.Int64

const (
	guestMAC = "52:54:00:fd:b0:01"
	extraMAC = "00:00:5e:00:01:0a" // a VRRP virtual MAC
	spoofMAC = "02:00:00:fd:b0:66"
	wireMAC  = "02:00:00:fd:b0:99"
)

func newLab(t *testing.T) *lab {
	t.Helper()
	requireRoot(t)
	l := &lab{t: t}
	n := labSeq.Add(1)
	l.host = fmt.Sprintf("%s%d-host", nsPrefix, n)
	l.wire = fmt.Sprintf("%s%d-wire", nsPrefix, n)
	for _, name := range []string{l.host, l.wire} {
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", name, err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", name, err, out)
			}
		})
	}
	var err error
	if l.hostNS, err = netns.GetFromName(l.host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.hostNS.Close() })
	if l.wireNS, err = netns.GetFromName(l.wire); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.wireNS.Close() })
	if l.h, err = netlink.NewHandleAt(l.hostNS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.h.Close)

	// Persistent tap, as libvirt makes them; no IPv6 anywhere, so that
	// the only traffic is the test's.
	l.ipBatch(l.host, []string{
		"link add br0 type bridge stp_state 0",
		"tuntap add dev tap0 mode tap",
		"link set tap0 master br0",
		"link add up0 type veth peer name up1",
		"link set up0 master br0",
		"link set up1 netns " + l.wire,
		"link set br0 up",
		"link set tap0 up",
		"link set up0 up",
	})
	l.ipBatch(l.wire, []string{"link set up1 up"})
	for _, ns := range []string{l.host, l.wire} {
		l.exec(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
	if l.tap, err = openTap(l.hostNS, "tap0"); err != nil {
		t.Fatalf("opening tap0 as its guest: %v", err)
	}
	t.Cleanup(l.tap.Close)
	if l.up1, err = openPacket(l.wireNS, "up1"); err != nil {
		t.Fatalf("packet socket on up1: %v", err)
	}
	t.Cleanup(l.up1.Close)
	l.waitForwarding("tap0")
	l.waitForwarding("up0")
	return l
}

func (l *lab) ipBatch(ns string, lines []string) {
	l.t.Helper()
	cmd := exec.Command("ip", "-n", ns, "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("ip -batch in %s: %v: %s", ns, err, out)
	}
}

// exec runs a command inside namespace ns and returns its output.
func (l *lab) exec(ns string, args ...string) []byte {
	l.t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			l.t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, ee.Stderr)
		}
		l.t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return out
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
		out := l.exec(l.host, "bridge", "-j", "link", "show", "dev", port)
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

// result is one run of the hook binary.
type result struct {
	Code           int
	Stdout, Stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stderr %q, stdout %q", r.Code, r.Stderr, r.Stdout)
}

// hook runs qemu-hook in the host namespace with a private /run (so that
// neither the host's libvirt state nor its lock file is seen), config as
// the configuration and xml on stdin.
func (l *lab) hook(config string, xml string, env []string, args ...string) result {
	l.t.Helper()
	cfg := filepath.Join(l.t.TempDir(), "fdbhook.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		l.t.Fatal(err)
	}
	full := append([]string{"netns", "exec", l.host, "sh", "-euc", `mount -t tmpfs fdbt-run /run
mkdir -p /run/libvirt/qemu /run/libvirt/network
exec "$@"`, "sh", hookBin}, args...)
	cmd := exec.Command("ip", full...)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "FDBHOOK_CONFIG=" + cfg}, env...)
	cmd.Stdin = strings.NewReader(xml)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.Exited():
		r.Code = ee.ExitCode()
	case err != nil:
		l.t.Fatalf("qemu-hook %s: %v (stderr %q)", strings.Join(args, " "), err, r.Stderr)
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
	return `<domain type='kvm' id='7'>
  <name>fdbt-g1</name>
  <uuid>5f0c5d4e-7f11-4a4e-9a55-0d0a0c0ffee1</uuid>
  <metadata>` + metadata + `</metadata>
  <devices>
    <interface type='bridge'>
      <mac address='` + guestMAC + `'/>
      <source bridge='br0'/>
      <target dev='tap0'/>
      <model type='virtio'/>
      <alias name='net0'/>
    </interface>
  </devices>
</domain>
`
}

// entry is a bridge entry as both witnesses report it.
type entry struct {
	Port   string
	Static bool
	Sticky bool
}

// entryOf reads the VLAN-0 entry for mac on br0 through the project's own
// netlink code and through `bridge fdb`, fails the test when they
// disagree, and returns it (Port "" when there is none).
func (l *lab) entryOf(mac string) entry {
	l.t.Helper()
	c, err := kernel.Open(l.hostNS, 2*time.Second)
	if err != nil {
		l.t.Fatal(err)
	}
	defer c.Close()
	br, err := c.Link("br0")
	if err != nil || br == nil {
		l.t.Fatalf("br0: %v", err)
	}
	es, err := c.Entries(br, mac)
	if err != nil {
		l.t.Fatalf("entries for %s: %v", mac, err)
	}
	var nl entry
	for _, e := range es {
		if e.Vlan == 0 {
			nl = entry{Port: e.Port, Static: e.Static(), Sticky: e.NTFlags&plan.NTFSticky != 0}
		}
	}
	var rows []struct {
		MAC    string   `json:"mac"`
		Ifname string   `json:"ifname"`
		Vlan   int      `json:"vlan"`
		Flags  []string `json:"flags"`
		State  string   `json:"state"`
		Master string   `json:"master"`
	}
	if err := json.Unmarshal(l.exec(l.host, "bridge", "-j", "fdb", "show", "br", "br0"), &rows); err != nil {
		l.t.Fatalf("bridge -j fdb show: %v", err)
	}
	var ip entry
	for _, r := range rows {
		if r.MAC == mac && r.Vlan == 0 && r.Master == "br0" {
			ip = entry{Port: r.Ifname, Static: r.State == "static", Sticky: contains(r.Flags, "sticky")}
		}
	}
	if nl != ip {
		l.t.Fatalf("entry for %s: netlink says %+v, iproute2 says %+v", mac, nl, ip)
	}
	return nl
}

// portFlags reads tap0's flags through the project's netlink code and
// through `ip -d -j link show`, and fails the test when they disagree.
func (l *lab) portFlags(port string) plan.Flags {
	l.t.Helper()
	c, err := kernel.Open(l.hostNS, 2*time.Second)
	if err != nil {
		l.t.Fatal(err)
	}
	defer c.Close()
	link, err := c.Link(port)
	if err != nil || link == nil {
		l.t.Fatalf("%s: %v", port, err)
	}
	var links []struct {
		Linkinfo struct {
			InfoSlaveData struct {
				Learning bool `json:"learning"`
				Flood    bool `json:"flood"`
				Locked   bool `json:"locked"`
			} `json:"info_slave_data"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal(l.exec(l.host, "ip", "-d", "-j", "link", "show", "dev", port), &links); err != nil || len(links) != 1 {
		l.t.Fatalf("ip -d -j link show dev %s: %v", port, err)
	}
	sd := links[0].Linkinfo.InfoSlaveData
	ip := plan.Flags{Learning: sd.Learning, Flood: sd.Flood, Locked: sd.Locked}
	if link.Flags != ip {
		l.t.Fatalf("%s flags: netlink says %v, iproute2 says %v", port, link.Flags, ip)
	}
	if !link.LockCapable {
		l.t.Skipf("this kernel reports no IFLA_BRPORT_LOCKED for %s (needs Linux 5.18+)", port)
	}
	return link.Flags
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
