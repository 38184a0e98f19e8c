//go:build vm

package vm

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/test/lab"
	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// Paths inside the VM. Busybox applets come first in its shell, so the real
// iproute2 binaries are always called by absolute path.
const (
	ipPath          = "/usr/sbin/ip"
	bridgePath      = "/usr/sbin/bridge"
	qemuHookPath    = "/bin/qemu-hook"
	networkHookPath = "/bin/network-hook"
)

func TestMain(m *testing.M) {
	if os.Getenv("FDBHOOK_VM") != "1" {
		os.Exit(testlab.Unavailable("vm", "these tests change kernel state and run only inside the VM booted by test/vm/run.sh (make vm)"))
	}
	os.Exit(m.Run())
}

// testNS is a named network namespace with a netlink handle inside it. Its
// devices disappear with it.
type testNS struct {
	t    *testing.T
	name string
	ns   netns.NsHandle // open while the test runs
	h    *netlink.Handle
}

// newNS creates network namespace fdbt-<suffix>, deleted when the test ends.
func newNS(t *testing.T, suffix string) *testNS {
	t.Helper()
	name := "fdbt-" + suffix
	mustRun(t, ipPath, "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command(ipPath, "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", name, err)
	}
	t.Cleanup(h.Close)
	n := &testNS{t: t, name: name, ns: ns, h: h}
	n.ip("link set lo up")
	return n
}

func mustRun(t *testing.T, prog string, args ...string) string {
	t.Helper()
	out, err := exec.Command(prog, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ip runs iproute2's ip in the namespace; args is split on spaces.
func (n *testNS) ip(args string) string {
	n.t.Helper()
	return mustRun(n.t, ipPath, append([]string{"-netns", n.name}, strings.Fields(args)...)...)
}

// bridge runs iproute2's bridge in the namespace; args is split on spaces.
func (n *testNS) bridge(args string) string {
	n.t.Helper()
	return mustRun(n.t, bridgePath, append([]string{"-netns", n.name}, strings.Fields(args)...)...)
}

func (n *testNS) link(name string) netlink.Link {
	n.t.Helper()
	l, err := n.h.LinkByName(name)
	if err != nil {
		n.t.Fatalf("netlink: link %s in %s: %v", name, n.name, err)
	}
	return l
}

// addTap creates a persistent tap, enslaves it to bridge br and sets it up,
// as libvirt does before "start begin".
func (n *testNS) addTap(tap, br string) {
	n.t.Helper()
	n.ip("tuntap add dev " + tap + " mode tap")
	n.ip("link set dev " + tap + " master " + br)
	n.ip("link set dev " + tap + " up")
}

var promiscuityRE = regexp.MustCompile(`\bpromiscuity (\d+)\b`)

// promiscuity reads a device's promiscuity counter (IFLA_PROMISCUITY) through
// netlink and through `ip -d link`, and fails the test if they disagree.
func (n *testNS) promiscuity(dev string) int {
	n.t.Helper()
	nl := n.link(dev).Attrs().Promisc
	out := n.ip("-d link show dev " + dev)
	m := promiscuityRE.FindStringSubmatch(out)
	if m == nil {
		n.t.Fatalf("no 'promiscuity N' in ip -d link show dev %s:\n%s", dev, out)
	}
	ipv, _ := strconv.Atoi(m[1])
	if ipv != nl {
		n.t.Fatalf("%s promiscuity: netlink says %d, ip -d link says %d", dev, nl, ipv)
	}
	return nl
}

// vlanFiltering reads a bridge's vlan_filtering through netlink and
// `ip -d link`, and fails the test if they disagree.
func (n *testNS) vlanFiltering(br string) bool {
	n.t.Helper()
	b, ok := n.link(br).(*netlink.Bridge)
	if !ok {
		n.t.Fatalf("%s is a %s, not a bridge", br, n.link(br).Type())
	}
	if b.VlanFiltering == nil {
		n.t.Fatalf("netlink reported no IFLA_BR_VLAN_FILTERING for %s", br)
	}
	out := n.ip("-d link show dev " + br)
	ipOn := strings.Contains(out, "vlan_filtering 1")
	if !ipOn && !strings.Contains(out, "vlan_filtering 0") {
		n.t.Fatalf("no vlan_filtering in ip -d link show dev %s:\n%s", br, out)
	}
	if ipOn != *b.VlanFiltering {
		n.t.Fatalf("%s vlan_filtering: netlink says %v, ip -d link says %v", br, *b.VlanFiltering, ipOn)
	}
	return ipOn
}

// portFlags reads a bridge port's learning and flood flags through netlink
// and `bridge -d link`, and fails the test if they disagree.
func (n *testNS) portFlags(dev string) (learning, flood bool) {
	n.t.Helper()
	f, err := lab.ReadPortFlags(n.h, func(args ...string) (string, error) {
		return n.bridge(strings.Join(args, " ")), nil
	}, dev)
	if err != nil {
		n.t.Fatal(err)
	}
	return f.Learning, f.Flood
}

// fdbEntry is one bridge forwarding database entry, from netlink or from
// `bridge fdb show`.
type fdbEntry struct {
	MAC    string
	Dev    string
	Vlan   int    // 0: no VLAN
	Master string // bridge, for entries of the bridge's own table
	Flags  string // sorted, space-separated: "permanent", "self", "static", "sticky", ...
}

func (e fdbEntry) String() string {
	return fmt.Sprintf("%s dev %s vlan %d master %q [%s]", e.MAC, e.Dev, e.Vlan, e.Master, e.Flags)
}

// fdb lists every FDB entry in the namespace whose MAC is mac, read through
// netlink (AF_BRIDGE RTM_GETNEIGH dump).
func (n *testNS) fdb(mac string) []fdbEntry {
	n.t.Helper()
	var neighs []netlink.Neigh
	var err error
	for range 5 {
		neighs, err = n.h.NeighList(0, unix.AF_BRIDGE)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		n.t.Fatalf("netlink: fdb dump: %v", err)
	}
	names := map[int]string{}
	name := func(idx int) string {
		if idx == 0 {
			return ""
		}
		if s, ok := names[idx]; ok {
			return s
		}
		l, err := n.h.LinkByIndex(idx)
		if err != nil {
			n.t.Fatalf("netlink: link %d: %v", idx, err)
		}
		names[idx] = l.Attrs().Name
		return names[idx]
	}
	var out []fdbEntry
	for _, ne := range neighs {
		if !strings.EqualFold(ne.HardwareAddr.String(), mac) {
			continue
		}
		var flags []string
		if ne.State&unix.NUD_PERMANENT != 0 {
			flags = append(flags, "permanent")
		}
		if ne.State&unix.NUD_NOARP != 0 {
			flags = append(flags, "static")
		}
		if ne.Flags&netlink.NTF_SELF != 0 {
			flags = append(flags, "self")
		}
		if ne.Flags&netlink.NTF_STICKY != 0 {
			flags = append(flags, "sticky")
		}
		e := fdbEntry{MAC: strings.ToLower(mac), Dev: name(ne.LinkIndex), Vlan: ne.Vlan, Master: name(ne.MasterIndex)}
		e.Flags = sortedFlags(flags)
		out = append(out, e)
	}
	return out
}

// fdbCLI lists every FDB entry in the namespace whose MAC is mac, as printed
// by `bridge fdb show`.
func (n *testNS) fdbCLI(mac string) []fdbEntry {
	n.t.Helper()
	var out []fdbEntry
	for _, line := range strings.Split(n.bridge("fdb show"), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.EqualFold(f[0], mac) {
			continue
		}
		e := fdbEntry{MAC: strings.ToLower(f[0])}
		var flags []string
		for i := 1; i < len(f); i++ {
			switch f[i] {
			case "dev", "vlan", "master":
				if i+1 >= len(f) {
					n.t.Fatalf("cannot parse bridge fdb line %q", line)
				}
				switch f[i] {
				case "dev":
					e.Dev = f[i+1]
				case "vlan":
					e.Vlan, _ = strconv.Atoi(f[i+1])
				case "master":
					e.Master = f[i+1]
				}
				i++
			case "permanent", "static", "self", "sticky":
				flags = append(flags, f[i])
			}
		}
		// iproute2 prints "permanent" for NUD_PERMANENT and "static" for
		// NUD_NOARP; netlink state bits map the same way.
		e.Flags = sortedFlags(flags)
		out = append(out, e)
	}
	return out
}

// fdbBoth reads the entries for mac through netlink and through the bridge
// command, and fails the test unless both witnesses agree.
func (n *testNS) fdbBoth(mac string) []fdbEntry {
	n.t.Helper()
	a, b := n.fdb(mac), n.fdbCLI(mac)
	if !sameEntries(a, b) {
		n.t.Fatalf("fdb for %s: netlink and bridge fdb disagree:\nnetlink: %v\nbridge:  %v", mac, a, b)
	}
	return a
}

func sortedFlags(f []string) string {
	for i := 1; i < len(f); i++ {
		for j := i; j > 0 && f[j] < f[j-1]; j-- {
			f[j], f[j-1] = f[j-1], f[j]
		}
	}
	return strings.Join(f, " ")
}

func sameEntries(a, b []fdbEntry) bool {
	if len(a) != len(b) {
		return false
	}
	count := map[fdbEntry]int{}
	for _, e := range a {
		count[e]++
	}
	for _, e := range b {
		count[e]--
	}
	for _, c := range count {
		if c != 0 {
			return false
		}
	}
	return true
}

// masterEntries keeps the entries of bridge br's own table (not the
// devices' "self" unicast lists).
func masterEntries(es []fdbEntry, br string) []fdbEntry {
	var out []fdbEntry
	for _, e := range es {
		if e.Master == br && !strings.Contains(e.Flags, "self") {
			out = append(out, e)
		}
	}
	return out
}

// nic is one guest NIC of a domain XML document.
type nic struct {
	MAC    string
	Bridge string
	Tap    string // empty: no <target dev>, as after a stop for libvirt-named taps
}

// domain is what the domain XML template needs.
type domain struct {
	Name string
	UUID string
	ID   int // 0: not running (no id attribute), as in stopped/release XML
	NICs []nic
}

// xml renders the domain as libvirt 9.0 passes it to the hook.
func (d domain) xml(t *testing.T) []byte {
	t.Helper()
	ld := lab.Domain{Name: d.Name, Type: "qemu", ID: d.ID, UUID: d.UUID, Body: vmBody,
		Devices: "    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n" +
			"    <controller type='pci' index='0' model='pci-root'>\n      <alias name='pci.0'/>\n    </controller>\n"}
	for i, n := range d.NICs {
		ld.NICs = append(ld.NICs, lab.NIC{MAC: n.MAC, Bridge: n.Bridge, Target: n.Tap, Model: "virtio", Alias: "-",
			Extra: fmt.Sprintf("      <address type='pci' domain='0x0000' bus='0x00' slot='0x%02x' function='0x0'/>\n", i+2)})
	}
	x := ld.XML()
	// The balloon and the security label follow the NICs, as libvirt writes them.
	x = strings.Replace(x, "  </devices>\n", "    <memballoon model='virtio'>\n      <alias name='balloon0'/>\n"+
		"      <address type='pci' domain='0x0000' bus='0x00' slot='0x0f' function='0x0'/>\n    </memballoon>\n  </devices>\n"+
		"  <seclabel type='dynamic' model='dac' relabel='yes'>\n    <label>+64055:+64055</label>\n"+
		"    <imagelabel>+64055:+64055</imagelabel>\n  </seclabel>\n", 1)
	return []byte(x)
}

// vmBody is what libvirt writes between a guest's name and its devices.
const vmBody = `  <memory unit='KiB'>65536</memory>
  <currentMemory unit='KiB'>65536</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
`

// writeConfig writes an fdbhook.toml for the test and returns its path.
func writeConfig(t *testing.T, toml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fdbhook.toml")
	if err := os.WriteFile(p, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// hookResult is what one hook run produced.
type hookResult struct {
	code   int
	stdout string
	stderr string
	took   time.Duration
}

// qemuHook runs /bin/qemu-hook DOMAIN OP SUBOP - inside the namespace with
// the domain XML on stdin, as libvirtd would, and config cfg.
func (n *testNS) qemuHook(cfg string, d domain, op, subop string) hookResult {
	n.t.Helper()
	return n.qemuHookXML(cfg, d.Name, d.xml(n.t), op, subop)
}

// qemuHookXML is qemuHook for guest name with raw domain XML.
func (n *testNS) qemuHookXML(cfg, name string, xml []byte, op, subop string) hookResult {
	n.t.Helper()
	return n.runHook(qemuHookPath, cfg, name, xml, op, subop)
}

// networkHookXML runs /bin/network-hook NETWORK OP SUBOP - inside the
// namespace with the network hook's XML on stdin, as libvirtd would.
func (n *testNS) networkHookXML(cfg, network string, xml []byte, op, subop string) hookResult {
	n.t.Helper()
	return n.runHook(networkHookPath, cfg, network, xml, op, subop)
}

// runHook runs hook binary prog for object name (a guest or a network).
func (n *testNS) runHook(prog, cfg, name string, xml []byte, op, subop string) hookResult {
	n.t.Helper()
	cmd := exec.Command(ipPath, "netns", "exec", n.name, prog, name, op, subop, "-")
	// libvirtd passes a minimal environment.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FDBHOOK_CONFIG=" + cfg, "FDBHOOK_LOG_LEVEL=debug"}
	cmd.Stdin = bytes.NewReader(xml)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	start := time.Now()
	err := cmd.Run()
	r := hookResult{stdout: so.String(), stderr: se.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		n.t.Fatalf("run %s: %v", prog, err)
	}
	n.t.Logf("%s %s %s %s: exit %d in %v; stderr:\n%s", filepath.Base(prog), name, op, subop, r.code, r.took.Round(time.Millisecond), indent(r.stderr))
	return r
}

// qemuHookOK runs the hook and fails the test unless it exits 0 and prints
// nothing on stdout (libvirt reads stdout as replacement XML for some ops).
func (n *testNS) qemuHookOK(cfg string, d domain, op, subop string) {
	n.t.Helper()
	r := n.qemuHook(cfg, d, op, subop)
	if r.code != 0 {
		n.t.Fatalf("qemu-hook %s %s %s: exit %d, want 0; stderr: %s", d.Name, op, subop, r.code, r.stderr)
	}
	if r.stdout != "" {
		n.t.Fatalf("qemu-hook %s %s %s wrote to stdout: %q", d.Name, op, subop, r.stdout)
	}
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "\t(empty)"
	}
	return "\t" + strings.ReplaceAll(s, "\n", "\n\t")
}

// sendFrame sends one Ethernet broadcast frame with source MAC src out of dev
// in network namespace nsName, through an AF_PACKET socket opened there.
func sendFrame(t *testing.T, nsName, dev string, src net.HardwareAddr) {
	t.Helper()
	fd, err := socketIn(nsName)
	if err != nil {
		t.Fatalf("packet socket in %s: %v", nsName, err)
	}
	defer unix.Close(fd)
	ifi, err := ifIndexIn(nsName, dev)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 60)
	copy(frame[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(frame[6:12], src)
	frame[12], frame[13] = 0x88, 0xb5 // IEEE 802 local experimental EtherType
	addr := &unix.SockaddrLinklayer{Ifindex: ifi, Halen: 6}
	copy(addr.Addr[:], frame[0:6])
	if err := unix.Sendto(fd, frame, 0, addr); err != nil {
		t.Fatalf("send frame on %s in %s: %v", dev, nsName, err)
	}
}

// socketIn opens an AF_PACKET socket inside network namespace nsName; the
// socket stays in that namespace.
func socketIn(nsName string) (int, error) {
	fd := -1
	err := lab.InNamed(nsName, func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		return err
	})
	return fd, err
}

func ifIndexIn(nsName, dev string) (int, error) {
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		return 0, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	l, err := h.LinkByName(dev)
	if err != nil {
		return 0, fmt.Errorf("link %s in %s: %w", dev, nsName, err)
	}
	return l.Attrs().Index, nil
}

// waitFor polls cond every 20 ms for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
