package admin

import (
	"encoding/json"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

const (
	macG1  = "52:54:00:fd:00:01" // g1: running, its tap learns and has no entry
	macG2  = "52:54:00:fd:00:02" // g2: running, opted out in its metadata
	macG3  = "52:54:00:fd:00:03" // g3: running, already managed
	macG4  = "52:54:00:fd:00:04" // g4: defined, not running; entry left on the uplink
	macG5  = "52:54:00:fd:00:05" // g5: running, its entry roamed to the uplink
	macO8  = "52:54:00:fd:00:08" // on tap fdbto8: no guest, but held open
	macO9  = "52:54:00:fd:00:09" // on tap fdbto9: no guest, nobody holds it
	macLAN = "02:00:00:fd:0a:01" // a LAN host's entry an admin put on the uplink
)

const config = `bridges = ["fdbtbr0"]
`

// buildHost makes, in a fresh namespace, one of every case status must
// tell apart on bridge fdbtbr0. The uplink fdbtup0 is a VXLAN device: an
// uplink must not be a tap or veth (those are guest ports), and neither
// physical NICs nor bonds can be made in a namespace on every kernel.
func buildHost(t *testing.T) *lab {
	l := newLab(t, config)
	l.IP("link", "add", "fdbtbr0", "type", "bridge")
	l.IP("link", "add", "fdbtup0", "type", "vxlan", "id", "42", "dstport", "4789")
	l.IP("link", "set", "fdbtup0", "master", "fdbtbr0")
	for _, tap := range []string{"fdbtg1", "fdbtg2", "fdbtg3", "fdbtg5", "fdbto8", "fdbto9"} {
		l.IP("tuntap", "add", "dev", tap, "mode", "tap")
		l.IP("link", "set", tap, "master", "fdbtbr0")
	}
	for _, dev := range []string{"fdbtbr0", "fdbtup0"} {
		l.IP("link", "set", dev, "up")
	}
	// g3 is managed already; g5 was, but its entry roamed to the uplink;
	// the orphan taps had guests that fdbhook managed.
	for _, tap := range []string{"fdbtg3", "fdbtg5", "fdbto8", "fdbto9"} {
		l.IP("link", "set", "dev", tap, "type", "bridge_slave", "learning", "off", "flood", "off")
	}
	l.Bridge("fdb", "replace", macG3, "dev", "fdbtg3", "master", "static")
	l.Bridge("fdb", "replace", macG5, "dev", "fdbtup0", "master", "static")
	l.Bridge("fdb", "replace", macO8, "dev", "fdbto8", "master", "static")
	l.Bridge("fdb", "replace", macO9, "dev", "fdbto9", "master", "static")
	l.Bridge("fdb", "replace", macG4, "dev", "fdbtup0", "master", "static")
	l.Bridge("fdb", "replace", macLAN, "dev", "fdbtup0", "master", "static")
	l.HoldTap("fdbto8")

	l.running("g1", nil, nic{"fdbtbr0", "fdbtg1", macG1})
	l.running("g2", []string{macG2}, nic{"fdbtbr0", "fdbtg2", macG2})
	l.running("g3", nil, nic{"fdbtbr0", "fdbtg3", macG3})
	l.running("g5", nil, nic{"fdbtbr0", "fdbtg5", macG5})
	l.defined("g4", nic{"fdbtbr0", "", macG4})
	return l
}

// statusJSON is the part of `status --json` the tests read.
type statusJSON struct {
	Bridges []struct {
		Name          string `json:"name"`
		VlanFiltering bool   `json:"vlan_filtering"`
		Ports         []struct {
			Name     string `json:"name"`
			Kind     string `json:"kind"`
			Learning bool   `json:"learning"`
			Flood    bool   `json:"flood"`
			Guest    string `json:"guest"`
			Managed  bool   `json:"managed"`
		} `json:"ports"`
		Entries []struct {
			MAC   string `json:"mac"`
			Port  string `json:"port"`
			State string `json:"state"`
		} `json:"static_entries"`
	} `json:"bridges"`
	Problems []struct {
		Kind string `json:"kind"`
		Port string `json:"port"`
		MAC  string `json:"mac"`
		Text string `json:"text"`
	} `json:"problems"`
	Notes []string `json:"notes"`
}

func (l *lab) status() (statusJSON, int) {
	l.t.Helper()
	out, stderr, code := l.fdbhook("status", "--json")
	var s statusJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		l.t.Fatalf("status --json (exit %d) is not JSON: %v\n%s\nstderr: %s", code, err, out, stderr)
	}
	return s, code
}

// problems returns "kind port" for each problem, sorted.
func (s statusJSON) problems() []string {
	var out []string
	for _, p := range s.Problems {
		out = append(out, p.Kind+" "+p.Port)
	}
	sort.Strings(out)
	return out
}

// kernelHasVlanFiltering asks the kernel, in the lab, whether a bridge can
// filter VLANs (independently of fdbhook's own reading).
func (l *lab) kernelHasVlanFiltering() bool {
	err := exec.Command("ip", "-n", l.Name, "link", "add", "fdbtvlan", "type", "bridge", "vlan_filtering", "1").Run()
	if err == nil {
		l.IP("link", "del", "fdbtvlan")
	}
	return err == nil
}

func TestStatusFlagsAndReconcileFixes(t *testing.T) {
	l := buildHost(t)

	// status: every problem, in JSON and in the table, exit 1.
	s, code := l.status()
	if code != 1 {
		t.Errorf("status exit %d with problems, want 1", code)
	}
	want := []string{
		"missing-entry fdbtg1", // g1: no entry
		"missing-entry fdbtg5", // g5: its entry roamed to the uplink
		"port-learning fdbtg1", // g1: still learning and flooding
		"stale-entry fdbto9",   // on a tap no running guest owns, nobody holds it
		"stale-entry fdbtup0",  // g4's MAC on the uplink, g4 not running
	}
	if got := s.problems(); !slices.Equal(got, want) {
		t.Errorf("status problems\n got %q\nwant %q\n%+v", got, want, s.Problems)
	}
	for _, p := range s.Problems {
		if p.Kind == "stale-entry" && p.Port == "fdbtup0" && p.MAC != macG4 {
			t.Errorf("stale uplink entry is %s, want g4's %s", p.MAC, macG4)
		}
	}
	if len(s.Bridges) != 1 || s.Bridges[0].Name != "fdbtbr0" {
		t.Fatalf("bridges %+v, want fdbtbr0", s.Bridges)
	}
	kinds := map[string]string{}
	for _, p := range s.Bridges[0].Ports {
		kinds[p.Name] = p.Kind + " " + p.Guest
	}
	for name, want := range map[string]string{"fdbtup0": "uplink ", "fdbtg1": "guest g1", "fdbtg2": "guest g2", "fdbtg5": "guest g5",
		"fdbto8": "other ", "fdbto9": "other "} {
		if kinds[name] != want {
			t.Errorf("port %s is %q, want %q", name, kinds[name], want)
		}
	}
	states := map[string]string{}
	for _, e := range s.Bridges[0].Entries {
		states[e.MAC+" "+e.Port] = e.State
	}
	for e, want := range map[string]string{macG3 + " fdbtg3": "ok", macG5 + " fdbtup0": "roamed",
		macO8 + " fdbto8": "unknown", macO9 + " fdbto9": "stale", macG4 + " fdbtup0": "stale", macLAN + " fdbtup0": "unknown"} {
		if states[e] != want {
			t.Errorf("entry %s is %q, want %q (all: %v)", e, states[e], want, states)
		}
	}
	table, _, code := l.fdbhook("status")
	if code != 1 || !strings.Contains(table, "problems (5):") || !strings.Contains(table, "fdbtg1") {
		t.Errorf("status table (exit %d) does not show the 5 problems:\n%s", code, table)
	}
	t.Logf("status before reconcile:\n%s", table)

	// A dry run changes nothing.
	before := l.static("fdbtbr0")
	out, _, code := l.fdbhook("reconcile", "--dry-run")
	if code != 0 || !strings.Contains(out, "dry run") {
		t.Errorf("reconcile --dry-run exit %d:\n%s", code, out)
	}
	if after := l.static("fdbtbr0"); !slices.Equal(before, after) {
		t.Errorf("dry run changed the FDB: %v -> %v", before, after)
	}
	if f := l.portFlags("fdbtg1"); !f.learning || !f.flood {
		t.Errorf("dry run changed fdbtg1 to %s", f)
	}

	// reconcile fixes what status flagged; read back from the kernel.
	out, stderr, code := l.fdbhook("reconcile")
	t.Logf("reconcile (exit %d):\n%s%s", code, out, stderr)
	if code != 0 {
		t.Errorf("reconcile exit %d, want 0", code)
	}
	wantFDB := []string{
		macLAN + " fdbtup0", // unknown: left alone
		macG1 + " fdbtg1",   // added
		macG3 + " fdbtg3",   // kept
		macG5 + " fdbtg5",   // moved back from the uplink
		macO8 + " fdbto8",   // held open: left alone
	}
	sort.Strings(wantFDB)
	if got := l.static("fdbtbr0"); !slices.Equal(got, wantFDB) {
		t.Errorf("static entries after reconcile\n got %q\nwant %q", got, wantFDB)
	}
	for name, want := range map[string]port{
		"fdbtg1": {false, false}, "fdbtg3": {false, false}, "fdbtg5": {false, false},
		"fdbtg2":  {true, true},   // opted out: untouched
		"fdbto9":  {true, true},   // its stale entry is gone: back to the defaults
		"fdbto8":  {false, false}, // its entry was left alone, so are its flags
		"fdbtup0": {true, true},
	} {
		if got := l.portFlags(name); got != want {
			t.Errorf("%s after reconcile: %s, want %s", name, got, want)
		}
	}

	// status is clean now, except an uplink that only VLAN filtering could
	// take out of promiscuous mode.
	s, code = l.status()
	var rest []string
	for _, p := range s.Problems {
		if p.Kind != "uplink-promiscuous" {
			rest = append(rest, p.Kind+" "+p.Port+": "+p.Text)
		}
	}
	if len(rest) > 0 {
		t.Errorf("status after reconcile: %q", rest)
	}
	if !l.kernelHasVlanFiltering() && (code != 0 || len(s.Problems) != 0) {
		t.Errorf("status after reconcile: exit %d, problems %+v; want 0 and none on a kernel without VLAN filtering", code, s.Problems)
	}
	table, _, _ = l.fdbhook("status")
	t.Logf("status after reconcile:\n%s", table)

	// A second reconcile has nothing to change.
	out, _, code = l.fdbhook("reconcile")
	if code != 0 || strings.Contains(out, "deleted") || strings.Contains(out, "changed:") {
		t.Errorf("second reconcile (exit %d) changed something:\n%s", code, out)
	}
}

// A guest that cannot be managed fails reconcile (exit 1) without stopping
// the others, and status shows why.
func TestReconcileFailingGuest(t *testing.T) {
	l := newLab(t, config)
	l.IP("link", "add", "fdbtbr0", "type", "bridge")
	l.IP("tuntap", "add", "dev", "fdbtg1", "mode", "tap")
	l.IP("link", "set", "fdbtg1", "master", "fdbtbr0")
	l.IP("link", "add", "fdbtv0", "type", "veth", "peer", "name", "fdbtv1")
	l.IP("link", "set", "fdbtv0", "master", "fdbtbr0")
	l.running("good", nil, nic{"fdbtbr0", "fdbtg1", macG1})
	// A veth is refused as a qemu guest's port; a missing tap too.
	l.running("bad", nil, nic{"fdbtbr0", "fdbtv0", macG2}, nic{"fdbtbr0", "fdbtgone", macG3})

	s, code := l.status()
	refused := 0
	for _, p := range s.Problems {
		if p.Kind == "refused" {
			refused++
		}
	}
	if code != 1 || refused != 2 {
		t.Errorf("status exit %d, %d refusals; want 1 and 2: %+v", code, refused, s.Problems)
	}
	out, _, code := l.fdbhook("reconcile")
	t.Logf("reconcile:\n%s", out)
	if code != 1 || !strings.Contains(out, "guest bad: failed") || !strings.Contains(out, "guest good: ok") {
		t.Errorf("reconcile exit %d, want 1 with bad failed and good ok:\n%s", code, out)
	}
	if got := l.static("fdbtbr0"); !slices.Equal(got, []string{macG1 + " fdbtg1"}) {
		t.Errorf("static entries %v, want only good's", got)
	}
	if f := l.portFlags("fdbtv0"); !f.learning || !f.flood {
		t.Errorf("refused guest's veth changed to %s", f)
	}
}

// status with bridge names shows those bridges only; an unmanaged one is
// shown without problems.
func TestStatusNamedBridges(t *testing.T) {
	l := newLab(t, config)
	l.IP("link", "add", "fdbtbr0", "type", "bridge")
	l.IP("link", "add", "fdbtbr1", "type", "bridge")
	l.IP("tuntap", "add", "dev", "fdbtg1", "mode", "tap")
	l.IP("link", "set", "fdbtg1", "master", "fdbtbr1")
	l.Bridge("fdb", "replace", macO9, "dev", "fdbtg1", "master", "static")
	out, _, code := l.fdbhook("status", "fdbtbr1", "--json")
	var s statusJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if code != 0 || len(s.Bridges) != 1 || s.Bridges[0].Name != "fdbtbr1" || len(s.Problems) != 0 {
		t.Errorf("status fdbtbr1: exit %d, %+v", code, s)
	}
	if len(s.Bridges) == 1 && (len(s.Bridges[0].Ports) != 1 || len(s.Bridges[0].Entries) != 1) {
		t.Errorf("fdbtbr1 shown with ports %+v and entries %+v, want its tap and entry", s.Bridges[0].Ports, s.Bridges[0].Entries)
	}
	if _, _, code := l.fdbhook("status", "--bogus"); code != 2 {
		t.Errorf("status --bogus exit %d, want 2", code)
	}
}
