//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// portState is what the suite reads about one bridge port.
type portState struct {
	master   string
	learning bool
	flood    bool
}

// fdbEntry is one forwarding database entry, as netlink or iproute2 reports it.
type fdbEntry struct {
	mac       string
	dev       string
	master    string
	static    bool // NUD_NOARP without NUD_PERMANENT: iproute2 prints "static"
	permanent bool // NUD_PERMANENT: a local entry, iproute2 prints "permanent"
}

func (e fdbEntry) String() string {
	s := e.mac + " dev " + e.dev
	if e.master != "" {
		s += " master " + e.master
	}
	if e.static {
		s += " static"
	}
	if e.permanent {
		s += " permanent"
	}
	return s
}

// kernel reads bridge state through one netlink handle in the root namespace.
type kernel struct {
	h *netlink.Handle
}

// dumpRetries bounds the retries of a netlink dump that the kernel
// interrupted because the table changed underneath it.
const dumpRetries = 5

func (k *kernel) linkName(index int) string {
	if index == 0 {
		return ""
	}
	l, err := k.h.LinkByIndex(index)
	if err != nil {
		return fmt.Sprintf("if%d", index)
	}
	return l.Attrs().Name
}

// linkExists reports whether a link of that name exists, according to netlink.
func (k *kernel) linkExists(t *testing.T, name string) bool {
	t.Helper()
	_, err := k.h.LinkByName(name)
	if err == nil {
		return true
	}
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return false
	}
	t.Fatalf("netlink: link %s: %v", name, err)
	return false
}

// master returns the name of the link's master ("" for none) through netlink.
func (k *kernel) master(name string) (string, error) {
	l, err := k.h.LinkByName(name)
	if err != nil {
		return "", fmt.Errorf("netlink: link %s: %w", name, err)
	}
	return k.linkName(l.Attrs().MasterIndex), nil
}

// port reads a bridge port's master and flags through netlink.
func (k *kernel) port(name string) (portState, error) {
	l, err := k.h.LinkByName(name)
	if err != nil {
		return portState{}, fmt.Errorf("netlink: link %s: %w", name, err)
	}
	st := portState{master: k.linkName(l.Attrs().MasterIndex)}
	var pi netlink.Protinfo
	for i := 0; i < dumpRetries; i++ {
		pi, err = k.h.LinkGetProtinfo(l)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return st, fmt.Errorf("netlink: protinfo of %s: %w", name, err)
	}
	st.learning, st.flood = pi.Learning, pi.Flood
	return st, nil
}

// fdb dumps every AF_BRIDGE neighbour entry of the host through netlink.
func (k *kernel) fdb() ([]fdbEntry, error) {
	var (
		ns  []netlink.Neigh
		err error
	)
	for i := 0; i < dumpRetries; i++ {
		ns, err = k.h.NeighList(0, unix.AF_BRIDGE)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("netlink: fdb dump: %w", err)
	}
	names := map[int]string{}
	name := func(i int) string {
		if n, ok := names[i]; ok {
			return n
		}
		names[i] = k.linkName(i)
		return names[i]
	}
	var out []fdbEntry
	for _, n := range ns {
		if n.HardwareAddr == nil {
			continue
		}
		e := fdbEntry{mac: n.HardwareAddr.String(), dev: name(n.LinkIndex)}
		// The bridge's own table names its bridge in NDA_MASTER; the
		// dump does not set NTF_MASTER in the flags.
		if n.MasterIndex != 0 {
			e.master = name(n.MasterIndex)
		}
		e.permanent = n.State&netlink.NUD_PERMANENT != 0
		e.static = !e.permanent && n.State&netlink.NUD_NOARP != 0
		out = append(out, e)
	}
	return out, nil
}

// masterEntries returns the bridge's own entries (those with a master, the
// ones `bridge fdb` prints with "master BRIDGE") for mac, from netlink.
func (k *kernel) masterEntries(t *testing.T, mac string) []fdbEntry {
	t.Helper()
	all, err := k.fdb()
	if err != nil {
		t.Fatal(err)
	}
	var out []fdbEntry
	for _, e := range all {
		if e.master != "" && e.mac == mac {
			out = append(out, e)
		}
	}
	return out
}

// witnessPort reads a bridge port through `bridge -d link show dev NAME`.
func witnessPort(name string) (portState, error) {
	out, err := exec.Command("bridge", "-d", "link", "show", "dev", name).CombinedOutput()
	if err != nil {
		return portState{}, fmt.Errorf("bridge -d link show dev %s: %v: %s", name, err, out)
	}
	f := strings.Fields(string(out))
	st := portState{}
	var seenL, seenF bool
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "master":
			st.master = f[i+1]
		case "learning":
			st.learning, seenL = f[i+1] == "on", true
		case "flood":
			st.flood, seenF = f[i+1] == "on", true
		}
	}
	if !seenL || !seenF {
		return st, fmt.Errorf("bridge -d link show dev %s: no learning/flood in %q", name, out)
	}
	return st, nil
}

// witnessFDB parses `bridge fdb show br BRIDGE`.
func witnessFDB(bridge string) ([]fdbEntry, []string, error) {
	out, err := exec.Command("bridge", "fdb", "show", "br", bridge).CombinedOutput()
	if err != nil {
		return nil, nil, fmt.Errorf("bridge fdb show br %s: %v: %s", bridge, err, out)
	}
	var (
		es    []fdbEntry
		lines []string
	)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		lines = append(lines, strings.TrimSpace(line))
		e := fdbEntry{mac: f[0]}
		for i := 1; i < len(f); i++ {
			switch f[i] {
			case "dev", "master", "vlan", "dst", "port", "vni", "via", "nhid", "src_vni":
				if i+1 < len(f) {
					if f[i] == "dev" {
						e.dev = f[i+1]
					} else if f[i] == "master" {
						e.master = f[i+1]
					}
					i++
				}
			case "static":
				e.static = true
			case "permanent":
				e.permanent = true
			}
		}
		es = append(es, e)
	}
	return es, lines, nil
}

// assertPort checks a port's master and flags through netlink and iproute2.
func (k *kernel) assertPort(t *testing.T, port string, want portState) {
	t.Helper()
	got, err := k.port(port)
	if err != nil {
		t.Errorf("%s: %v", port, err)
		return
	}
	if got != want {
		t.Errorf("netlink: port %s: got master=%s learning=%v flood=%v, want master=%s learning=%v flood=%v",
			port, got.master, got.learning, got.flood, want.master, want.learning, want.flood)
	}
	w, err := witnessPort(port)
	if err != nil {
		t.Errorf("%s: %v", port, err)
		return
	}
	if w != want {
		t.Errorf("iproute2: bridge -d link show dev %s: got master=%s learning=%v flood=%v, want master=%s learning=%v flood=%v",
			port, w.master, w.learning, w.flood, want.master, want.learning, want.flood)
	}
}

// assertManaged checks that port has learning and unicast flood off and that
// mac has exactly one bridge entry, static, on that port.
func (k *kernel) assertManaged(t *testing.T, port, bridge, mac string) {
	t.Helper()
	k.assertPort(t, port, portState{master: bridge})
	want := fdbEntry{mac: mac, dev: port, master: bridge, static: true}
	got := k.masterEntries(t, mac)
	if len(got) != 1 || got[0] != want {
		t.Errorf("netlink: entries for %s: got %v, want exactly [%v]", mac, got, want)
	}
	line := fmt.Sprintf("%s dev %s master %s static", mac, port, bridge)
	es, lines, err := witnessFDB(bridge)
	if err != nil {
		t.Error(err)
		return
	}
	found := false
	for i, e := range es {
		if e.mac != mac {
			continue
		}
		if lines[i] == line {
			found = true
			continue
		}
		t.Errorf("iproute2: bridge fdb show br %s: unexpected entry %q for %s", bridge, lines[i], mac)
	}
	if !found {
		t.Errorf("iproute2: bridge fdb show br %s: no line %q", bridge, line)
	}
}

// assertUntouched checks that port still learns and floods and that no static
// entry exists for mac.
func (k *kernel) assertUntouched(t *testing.T, port, bridge, mac string) {
	t.Helper()
	k.assertPort(t, port, portState{master: bridge, learning: true, flood: true})
	k.assertNoStatic(t, mac, bridge)
}

// assertNoStatic checks that no static or permanent bridge entry exists for mac
// (netlink: on any bridge; iproute2: on the listed bridges).
func (k *kernel) assertNoStatic(t *testing.T, mac string, bridges ...string) {
	t.Helper()
	for _, e := range k.masterEntries(t, mac) {
		if e.static || e.permanent {
			t.Errorf("netlink: unexpected entry %v", e)
		}
	}
	for _, br := range bridges {
		es, lines, err := witnessFDB(br)
		if err != nil {
			t.Error(err)
			continue
		}
		for i, e := range es {
			if e.mac == mac && (e.static || e.permanent) {
				t.Errorf("iproute2: bridge fdb show br %s: unexpected %q", br, lines[i])
			}
		}
	}
}

// assertNoEntries checks that no entry at all exists for mac (netlink: on any
// bridge; iproute2: on the listed bridges).
func (k *kernel) assertNoEntries(t *testing.T, mac string, bridges ...string) {
	t.Helper()
	if es := k.masterEntries(t, mac); len(es) != 0 {
		t.Errorf("netlink: entries left for %s: %v", mac, es)
	}
	for _, br := range bridges {
		es, lines, err := witnessFDB(br)
		if err != nil {
			t.Error(err)
			continue
		}
		for i, e := range es {
			if e.mac == mac {
				t.Errorf("iproute2: bridge fdb show br %s: entry left: %q", br, lines[i])
			}
		}
	}
}

// assertGone checks that a link does not exist, through netlink and `ip link`.
func (k *kernel) assertGone(t *testing.T, name string) {
	t.Helper()
	if k.linkExists(t, name) {
		t.Errorf("netlink: link %s still exists", name)
	}
	if out, err := exec.Command("ip", "link", "show", "dev", name).CombinedOutput(); err == nil {
		t.Errorf("iproute2: ip link show dev %s: still exists: %s", name, out)
	}
}

// setPortFlags sets learning and flood by hand, as an admin would with
// `bridge link set dev PORT learning on flood on`.
func setPortFlags(t *testing.T, port string, learning, flood bool) {
	t.Helper()
	onoff := map[bool]string{true: "on", false: "off"}
	run(t, "bridge", "link", "set", "dev", port, "learning", onoff[learning], "flood", onoff[flood])
}

// waitFor polls cond every 250 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// disableIPv6 stops the kernel's own IPv6 traffic (DAD, router solicitations,
// MLD reports) on a link, so that frame counters count only the suite's frames.
func disableIPv6(name string) error {
	return os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte("1"), 0o644)
}

// run runs a command and fails the test when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// mustMAC parses a MAC address written in the suite's constants.
func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}
