package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/model"
	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// lab is one network namespace with a netlink handle inside it. The test
// thread never enters it: links are made through the handle (taps through
// `ip -n`, which creates them inside), and binaries run under
// `ip netns exec`.
type lab struct {
	*testlab.Namespace
	t *testing.T
	// lock is the run lock of the lab's hook runs: one lab is one host,
	// whose runs wait for each other and for no other test's.
	lock string
}

// newLab creates an empty namespace, deleted when t ends.
func newLab(t *testing.T) *lab {
	t.Helper()
	return &lab{Namespace: testlab.NewNamespace(t, suite.NextName()), t: t, lock: filepath.Join(t.TempDir(), "lock")}
}

// newStdLab builds the usual host: bridge br0 with uplink veth up0 (peer
// up1) enslaved, and a second bridge virbr0 (libvirt's NAT network).
func newStdLab(t *testing.T) *lab {
	t.Helper()
	l := newLab(t)
	l.AddBridge("br0")
	l.AddBridge("virbr0")
	l.AddVeth("up0", "up1", "br0")
	return l
}

// fdbAdd writes a bridge entry with `bridge fdb replace MAC dev PORT master
// ARGS...` (e.g. "static", "static sticky").
func (l *lab) fdbAdd(mac, port string, args ...string) {
	l.t.Helper()
	l.Exec(append([]string{"bridge", "fdb", "replace", mac, "dev", port, "master"}, args...)...)
}

// conn opens the project's own netlink connection in the namespace.
func (l *lab) conn() *kernel.Conn {
	l.t.Helper()
	c, err := kernel.Open(l.NetNS, 2*time.Second)
	if err != nil {
		l.t.Fatalf("kernel.Open in %s: %v", l.Name, err)
	}
	l.t.Cleanup(c.Close)
	return c
}

// port is a link as the snapshot records it.
type port struct {
	Kind     string // netlink kind, "tuntap/tap" for taps
	Master   string
	Learning bool
	Flood    bool
}

func (p port) String() string {
	s := p.Kind
	if p.Master != "" {
		s += fmt.Sprintf(" master %s learning %v flood %v", p.Master, p.Learning, p.Flood)
	}
	return s
}

// row is one bridge FDB entry (an entry of a bridge's own table, which the
// kernel reports with NDA_MASTER; not a device's "self" address).
type row struct {
	MAC    string
	Port   string
	Master string
	Vlan   int
	State  int // raw ndm_state
	Flags  int // raw ndm_flags
}

func (r row) kind() string {
	switch {
	case r.State&unix.NUD_PERMANENT != 0:
		return "permanent"
	case r.State&unix.NUD_NOARP != 0:
		return "static"
	}
	return "dynamic"
}

func (r row) String() string {
	s := fmt.Sprintf("%s dev %s master %s", r.MAC, r.Port, r.Master)
	if r.Vlan != 0 {
		s += fmt.Sprintf(" vlan %d", r.Vlan)
	}
	return s + fmt.Sprintf(" %s (state %#x flags %#x)", r.kind(), r.State, r.Flags)
}

// snapshot is every link and every bridge entry of a namespace.
type snapshot struct {
	Ports map[string]port
	FDB   []row
}

// snap reads the namespace's state through netlink and checks that
// iproute2 reports the same.
func (l *lab) snap() snapshot {
	l.t.Helper()
	s, err := l.readSnapshot()
	if err != nil {
		l.t.Fatalf("snapshot of %s: %v", l.Name, err)
	}
	return s
}

// readSnapshot is snap without the test: usable from helper goroutines.
func (l *lab) readSnapshot() (snapshot, error) {
	var s snapshot
	var err error
	for range 5 {
		s, err = l.netlinkSnapshot()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return s, err
	}
	w, err := l.witnessSnapshot()
	if err != nil {
		return s, err
	}
	if d := diffSnap(w, s, true); len(d) > 0 {
		return s, fmt.Errorf("netlink and iproute2 disagree (- iproute2, + netlink):\n%s", strings.Join(d, "\n"))
	}
	return s, nil
}

func (l *lab) netlinkSnapshot() (snapshot, error) {
	s := snapshot{Ports: map[string]port{}}
	links, err := l.Handle.LinkList()
	if err != nil {
		return s, fmt.Errorf("link dump: %w", err)
	}
	names := map[int]string{}
	for _, link := range links {
		names[link.Attrs().Index] = link.Attrs().Name
	}
	for _, link := range links {
		a := link.Attrs()
		p := port{Kind: link.Type(), Master: names[a.MasterIndex]}
		if tt, ok := link.(*netlink.Tuntap); ok {
			p.Kind += "/" + tt.Mode.String()
		}
		if a.MasterIndex != 0 {
			if _, isBridge := linkByIndex(links, a.MasterIndex).(*netlink.Bridge); isBridge {
				pi, err := l.Handle.LinkGetProtinfo(link)
				if err != nil {
					return s, fmt.Errorf("protinfo of %s: %w", a.Name, err)
				}
				p.Learning, p.Flood = pi.Learning, pi.Flood
			}
		}
		s.Ports[a.Name] = p
	}
	neighs, err := l.Handle.NeighList(0, unix.AF_BRIDGE)
	if err != nil {
		return s, fmt.Errorf("fdb dump: %w", err)
	}
	for _, n := range neighs {
		if n.MasterIndex == 0 || n.Flags&unix.NTF_SELF != 0 || n.HardwareAddr == nil {
			continue
		}
		s.FDB = append(s.FDB, row{MAC: n.HardwareAddr.String(), Port: names[n.LinkIndex],
			Master: names[n.MasterIndex], Vlan: n.Vlan, State: n.State, Flags: n.Flags})
	}
	sortRows(s.FDB)
	return s, nil
}

func linkByIndex(links []netlink.Link, i int) netlink.Link {
	for _, l := range links {
		if l.Attrs().Index == i {
			return l
		}
	}
	return nil
}

func sortRows(rows []row) {
	sort.Slice(rows, func(i, j int) bool { return rows[i].String() < rows[j].String() })
}

// witnessSnapshot reads the same state with iproute2. Raw state and flag
// bits are taken from the netlink side; the witness checks entry kind,
// sticky, port, master, VLAN and the port flags.
func (l *lab) witnessSnapshot() (snapshot, error) {
	s := snapshot{Ports: map[string]port{}}
	out, err := exec.Command("ip", "-n", l.Name, "-d", "-j", "link", "show").Output()
	if err != nil {
		return s, fmt.Errorf("ip -d -j link show: %w", err)
	}
	var links []struct {
		Ifname   string `json:"ifname"`
		Master   string `json:"master"`
		LinkType string `json:"link_type"`
		Linkinfo struct {
			InfoKind string `json:"info_kind"`
			InfoData struct {
				Type string `json:"type"`
			} `json:"info_data"`
			InfoSlaveKind string `json:"info_slave_kind"`
			InfoSlaveData struct {
				Learning bool `json:"learning"`
				Flood    bool `json:"flood"`
			} `json:"info_slave_data"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return s, fmt.Errorf("ip -d -j link show: %w", err)
	}
	for _, k := range links {
		p := port{Kind: k.Linkinfo.InfoKind, Master: k.Master}
		switch p.Kind {
		case "tun":
			p.Kind = "tuntap/" + k.Linkinfo.InfoData.Type
		case "":
			p.Kind = "device"
		}
		if k.Linkinfo.InfoSlaveKind == "bridge" {
			p.Learning, p.Flood = k.Linkinfo.InfoSlaveData.Learning, k.Linkinfo.InfoSlaveData.Flood
		}
		s.Ports[k.Ifname] = p
	}
	out, err = exec.Command("ip", "netns", "exec", l.Name, "bridge", "-j", "fdb", "show").Output()
	if err != nil {
		return s, fmt.Errorf("bridge -j fdb show: %w", err)
	}
	var entries []struct {
		MAC    string   `json:"mac"`
		Ifname string   `json:"ifname"`
		Master string   `json:"master"`
		Vlan   int      `json:"vlan"`
		Flags  []string `json:"flags"`
		State  string   `json:"state"`
	}
	if err := json.Unmarshal(out, &entries); err != nil {
		return s, fmt.Errorf("bridge -j fdb show: %w", err)
	}
	for _, e := range entries {
		if e.Master == "" || slices.Contains(e.Flags, "self") {
			continue
		}
		r := row{MAC: e.MAC, Port: e.Ifname, Master: e.Master, Vlan: e.Vlan}
		switch e.State {
		case "permanent":
			r.State = unix.NUD_PERMANENT
		case "static":
			r.State = unix.NUD_NOARP
		default:
			r.State = unix.NUD_REACHABLE
		}
		if slices.Contains(e.Flags, "sticky") {
			r.Flags |= netlink.NTF_STICKY
		}
		if slices.Contains(e.Flags, "extern_learn") {
			r.Flags |= unix.NTF_EXT_LEARNED
		}
		s.FDB = append(s.FDB, r)
	}
	sortRows(s.FDB)
	return s, nil
}

// diffSnap lists the differences between two snapshots. loose compares
// only what iproute2 shows of an entry (kind, sticky, extern_learn), not
// the raw state and flag bits.
func diffSnap(want, got snapshot, loose bool) []string {
	var d []string
	for _, name := range sortedKeys(want.Ports, got.Ports) {
		w, wok := want.Ports[name]
		g, gok := got.Ports[name]
		switch {
		case !gok:
			d = append(d, fmt.Sprintf("- link %s: %s", name, w))
		case !wok:
			d = append(d, fmt.Sprintf("+ link %s: %s", name, g))
		case w != g:
			d = append(d, fmt.Sprintf("- link %s: %s", name, w), fmt.Sprintf("+ link %s: %s", name, g))
		}
	}
	key := func(r row) string {
		return fmt.Sprintf("%s dev %s master %s vlan %d %s sticky=%v extlearn=%v", r.MAC, r.Port, r.Master, r.Vlan,
			r.kind(), r.Flags&netlink.NTF_STICKY != 0, r.Flags&unix.NTF_EXT_LEARNED != 0)
	}
	wk, gk := row.String, row.String
	if loose {
		wk, gk = key, key
	}
	ws := map[string]int{}
	for _, r := range want.FDB {
		ws[wk(r)]++
	}
	for _, r := range got.FDB {
		ws[gk(r)]--
	}
	var keys []string
	for k := range ws {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for n := ws[k]; n > 0; n-- {
			d = append(d, "- fdb "+k)
		}
		for n := ws[k]; n < 0; n++ {
			d = append(d, "+ fdb "+k)
		}
	}
	return d
}

func sortedKeys(a, b map[string]port) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// clone returns a deep copy.
func (s snapshot) clone() snapshot {
	c := snapshot{Ports: map[string]port{}, FDB: slices.Clone(s.FDB)}
	for k, v := range s.Ports {
		c.Ports[k] = v
	}
	return c
}

// managed returns s with port's flags off and a static entry for mac on it.
func (s snapshot) managed(portName, mac string) snapshot {
	c := s.clone()
	p := c.Ports[portName]
	p.Learning, p.Flood = false, false
	c.Ports[portName] = p
	c.FDB = slices.DeleteFunc(c.FDB, func(r row) bool { return r.MAC == mac && r.Master == p.Master })
	c.FDB = append(c.FDB, row{MAC: mac, Port: portName, Master: p.Master, State: unix.NUD_NOARP})
	sortRows(c.FDB)
	return c
}

// without returns s without link name and the entries that pointed at it.
func (s snapshot) without(name string) snapshot {
	c := s.clone()
	delete(c.Ports, name)
	c.FDB = slices.DeleteFunc(c.FDB, func(r row) bool { return r.Port == name })
	return c
}

// withFlags returns s with port's flags set.
func (s snapshot) withFlags(name string, learning, flood bool) snapshot {
	c := s.clone()
	p := c.Ports[name]
	p.Learning, p.Flood = learning, flood
	c.Ports[name] = p
	return c
}

// withoutEntries returns s without the bridge entries for mac.
func (s snapshot) withoutEntries(mac string) snapshot {
	c := s.clone()
	c.FDB = slices.DeleteFunc(c.FDB, func(r row) bool { return r.MAC == mac })
	return c
}

// expect fails t when the namespace's state differs from want.
func (l *lab) expect(t *testing.T, what string, want snapshot) {
	t.Helper()
	got := l.snap()
	if d := diffSnap(want, got, false); len(d) > 0 {
		t.Errorf("%s: kernel state differs from expected (- want, + got):\n%s", what, strings.Join(d, "\n"))
	}
}

// expectUnchanged fails t when the state differs from before.
func (l *lab) expectUnchanged(t *testing.T, what string, before snapshot) {
	t.Helper()
	l.expect(t, what+" (must change nothing)", before)
}

// entriesFor returns the bridge entries for mac.
func (s snapshot) entriesFor(mac string) []row {
	var out []row
	for _, r := range s.FDB {
		if r.MAC == mac {
			out = append(out, r)
		}
	}
	return out
}

// checkManaged asserts, through three readers (the raw dump, the project's
// kernel.Conn and iproute2), that port has learning and flood off and that
// the one bridge entry for mac is a static master entry on port.
func (l *lab) checkManaged(t *testing.T, portName, mac string) {
	t.Helper()
	s := l.snap()
	p, ok := s.Ports[portName]
	if !ok {
		t.Errorf("%s does not exist", portName)
		return
	}
	if p.Learning || p.Flood {
		t.Errorf("%s: learning %v flood %v, want both off", portName, p.Learning, p.Flood)
	}
	es := s.entriesFor(mac)
	if len(es) != 1 {
		t.Errorf("%s: %d bridge entries %v, want exactly one on %s", mac, len(es), es, portName)
		return
	}
	e := es[0]
	if e.Port != portName || e.Master != p.Master || e.State != unix.NUD_NOARP || e.Flags&netlink.NTF_STICKY != 0 {
		t.Errorf("%s: entry %s, want static (NUD_NOARP only, not NUD_PERMANENT, not sticky) on %s master %s", mac, e, portName, p.Master)
	}
	// The project's reader, by an RTM_GETNEIGH get for this MAC.
	c := l.conn()
	br, err := c.Link(p.Master)
	if err != nil || br == nil {
		t.Fatalf("kernel.Conn.Link(%s): %v %v", p.Master, br, err)
	}
	pes, err := c.Entries(br, mac)
	if err != nil {
		t.Fatalf("kernel.Conn.Entries(%s, %s): %v", p.Master, mac, err)
	}
	if len(pes) != 1 || pes[0].PortIndex != l.Index(portName) || pes[0].State != model.NUDNoARP || !pes[0].Static() || pes[0].Local() {
		t.Errorf("kernel.Conn.Entries(%s, %s) = %v, want one static entry on %s", p.Master, mac, pes, portName)
	}
}

// checkNoEntries asserts that the bridges hold no entry for mac.
func (l *lab) checkNoEntries(t *testing.T, mac string) {
	t.Helper()
	if es := l.snap().entriesFor(mac); len(es) > 0 {
		t.Errorf("%s: bridge entries remain: %v", mac, es)
	}
}

// mac returns a locally administered unicast address for test guest n,
// NIC i.
func mac(n, i int) string {
	return net.HardwareAddr{0x52, 0x54, 0x00, 0xfd, byte(n), byte(i)}.String()
}
