//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// 8. The admin commands against live guests: status reports what the hooks
// did, names what was undone by hand, and reconcile puts it back.
func Test8AdminCommands(t *testing.T) {
	timed(t)
	startG1(t)
	assertG1Managed(t)
	ports := g1Ports(t)

	r := admin(t, "status")
	if r.code != 0 {
		t.Fatalf("status with %s managed: exit %d, want 0\n%s%s", g1, r.code, r.stdout, r.stderr)
	}
	t.Logf("status:\n%s", r.stdout)
	tables := parseStatus(t, r.stdout)
	for _, p := range ports {
		tables.assertPort(t, p, "off", "off")
		tables.assertEntry(t, p)
	}
	rep := statusJSON(t, 0)
	for _, p := range ports {
		rep.assertPort(t, p, false, false)
		rep.assertEntry(t, p)
	}
	if len(rep.Problems) != 0 {
		t.Errorf("status --json: problems %+v, want none", rep.Problems)
	}

	// Undo the hook's work on one tap by hand.
	setPortFlags(t, g1Tap, true, true)
	run(t, "bridge", "fdb", "del", g1BrA, "dev", g1Tap, "master")
	suite.k.assertUntouched(t, g1Tap, bridge0, g1BrA)

	r = admin(t, "status")
	if r.code != 1 {
		t.Errorf("status after undoing %s by hand: exit %d, want 1\n%s%s", g1Tap, r.code, r.stdout, r.stderr)
	}
	t.Logf("status after undoing %s by hand:\n%s", g1Tap, r.stdout)
	_, problems, _ := strings.Cut(r.stdout, "problems (")
	if problems == "" {
		t.Errorf("status lists no problems after %s was undone by hand", g1Tap)
	}
	var flagged, missing bool
	for _, line := range strings.Split(problems, "\n") {
		if !strings.Contains(line, g1Tap) {
			continue
		}
		flagged = flagged || strings.Contains(line, "learning on") && strings.Contains(line, "flood on")
		missing = missing || strings.Contains(line, g1BrA) && strings.Contains(line, "no static entry")
	}
	if !flagged {
		t.Errorf("status does not say that %s learns and floods again", g1Tap)
	}
	if !missing {
		t.Errorf("status does not say that %s has no static entry on %s", g1BrA, g1Tap)
	}
	parseStatus(t, r.stdout).assertPort(t, ports[0], "on", "on")
	rep = statusJSON(t, 1)
	kinds := map[string]bool{}
	for _, p := range rep.Problems {
		if p.Port == g1Tap {
			kinds[p.Kind] = true
		}
	}
	if !kinds["port-learning"] || !kinds["missing-entry"] {
		t.Errorf("status --json: problems on %s are %v, want port-learning and missing-entry; all: %+v", g1Tap, kinds, rep.Problems)
	}

	r = admin(t, "reconcile")
	t.Logf("reconcile: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	if r.code != 0 {
		t.Fatalf("reconcile: exit %d, want 0", r.code)
	}
	assertG1Managed(t)
	if r = admin(t, "status"); r.code != 0 {
		t.Errorf("status after reconcile: exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	parseStatus(t, r.stdout).assertPort(t, ports[0], "off", "off")
	if rep = statusJSON(t, 0); len(rep.Problems) != 0 {
		t.Errorf("status --json after reconcile: problems %+v, want none", rep.Problems)
	}
}

// guestPort is one managed NIC of a running guest and where it sits.
type guestPort struct {
	guest, mac, tap, bridge string
}

// g1Ports lists g1's managed NICs with their taps, g1Tap first.
func g1Ports(t *testing.T) []guestPort {
	t.Helper()
	nics := liveNICs(t, g1)
	var out []guestPort
	for _, mac := range g1Managed {
		n := nicByMAC(t, nics, mac)
		br := n.Source.Bridge
		if mac == g1Nat {
			br = suite.natBridge
		}
		out = append(out, guestPort{guest: g1, mac: mac, tap: n.Target.Dev, bridge: br})
	}
	if out[0].tap != g1Tap {
		t.Fatalf("%s is on %s, want %s", g1BrA, out[0].tap, g1Tap)
	}
	return out
}

// adminResult is what one admin command printed.
type adminResult struct {
	code           int
	stdout, stderr string
}

// adminBinary is the fdbhook command under test: bin/fdbhook, or the
// installed package's /usr/sbin/fdbhook (run.sh says which).
func adminBinary(t *testing.T) string {
	b := os.Getenv("FDBHOOK_E2E_ADMIN")
	if b == "" {
		t.Fatal("FDBHOOK_E2E_ADMIN is not set: run the suite with test/e2e/run.sh")
	}
	return b
}

// admin runs `fdbhook ARGS...` with the suite's configuration named
// explicitly, as an admin would on this host.
func admin(t *testing.T, args ...string) adminResult {
	t.Helper()
	bin := adminBinary(t)
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"FDBHOOK_CONFIG=" + configPath}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := adminResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, r.stderr)
	}
	return r
}

// statusTables is the text of status, per bridge: the port rows and the
// static entry rows, split into fields.
type statusTables map[string]*statusTable

type statusTable struct {
	ports   map[string][]string // PORT KIND DEVICE LEARNING FLOOD LOCKED PROMISC GUEST NIC MAC ...
	entries [][]string          // MAC PORT VLAN STATE GUEST NIC ...
}

// parseStatus splits status's tables; it fails the test when a row is not
// under a bridge.
func parseStatus(t *testing.T, out string) statusTables {
	t.Helper()
	tables := statusTables{}
	var cur *statusTable
	inEntries := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			cur = nil
		case !strings.HasPrefix(line, " ") && f[0] == "bridge" && len(f) > 1:
			cur = &statusTable{ports: map[string][]string{}}
			tables[f[1]] = cur
			inEntries = false
		case cur == nil || !strings.HasPrefix(line, "  "):
			// problems, notes and the lines between them
		case f[0] == "PORT":
			inEntries = false
		case f[0] == "STATIC" && len(f) > 1 && f[1] == "ENTRY":
			inEntries = true
		case inEntries:
			cur.entries = append(cur.entries, f)
		default:
			cur.ports[f[0]] = f
		}
	}
	return tables
}

// assertPort checks p's row: a guest tap with that learning and flood,
// owned by p's guest and MAC.
func (s statusTables) assertPort(t *testing.T, p guestPort, learning, flood string) {
	t.Helper()
	tb := s[p.bridge]
	if tb == nil {
		t.Errorf("status: no table for bridge %s", p.bridge)
		return
	}
	row := tb.ports[p.tap]
	want := []string{p.tap, "guest", "tap", learning, flood}
	if len(row) < 10 || !equal(row[:5], want) || row[7] != p.guest || row[9] != p.mac {
		t.Errorf("status: %s row %q, want %q ... %s ... %s", p.tap, row, want, p.guest, p.mac)
	}
}

// assertEntry checks that p's MAC has exactly one static entry row on its
// bridge: on p's tap, ok, p's guest.
func (s statusTables) assertEntry(t *testing.T, p guestPort) {
	t.Helper()
	tb := s[p.bridge]
	if tb == nil {
		t.Errorf("status: no table for bridge %s", p.bridge)
		return
	}
	var rows [][]string
	for _, e := range tb.entries {
		if e[0] == p.mac {
			rows = append(rows, e)
		}
	}
	if len(rows) != 1 || len(rows[0]) < 5 || rows[0][1] != p.tap || rows[0][3] != "ok" || rows[0][4] != p.guest {
		t.Errorf("status: static entry rows of %s on %s: %q, want one %s %s - ok %s", p.mac, p.bridge, rows, p.mac, p.tap, p.guest)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// statusReport is the part of `status --json` the suite reads, declared
// here from the documented field names rather than taken from the code.
type statusReport struct {
	Config  string `json:"config"`
	Bridges []struct {
		Name  string `json:"name"`
		Ports []struct {
			Name     string `json:"name"`
			Kind     string `json:"kind"`
			Device   string `json:"device"`
			Learning bool   `json:"learning"`
			Flood    bool   `json:"flood"`
			Locked   *bool  `json:"locked"`
			Guest    string `json:"guest"`
			MAC      string `json:"mac"`
			Managed  bool   `json:"managed"`
			// Followed: undeclared_macs = "follow" (Test13).
			Followed []string `json:"followed_macs"`
		} `json:"ports"`
		Entries []struct {
			MAC   string `json:"mac"`
			Port  string `json:"port"`
			State string `json:"state"`
			Guest string `json:"guest"`
		} `json:"static_entries"`
	} `json:"bridges"`
	Problems []struct {
		Kind string `json:"kind"`
		Port string `json:"port"`
		MAC  string `json:"mac"`
		Text string `json:"text"`
	} `json:"problems"`
}

// statusJSON runs `status --json`, requires exit code want and parses it.
func statusJSON(t *testing.T, want int) *statusReport {
	t.Helper()
	r := admin(t, "status", "--json")
	if r.code != want {
		t.Errorf("status --json: exit %d, want %d\n%s", r.code, want, r.stderr)
	}
	var rep statusReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("status --json does not parse: %v\n%s", err, r.stdout)
	}
	if rep.Config != configPath {
		t.Errorf("status --json: config %q, want %q", rep.Config, configPath)
	}
	return &rep
}

// assertPort checks that p's tap is reported as a managed guest tap with
// that learning and flood; it returns the port's locked (nil: not
// reported).
func (rep *statusReport) assertPort(t *testing.T, p guestPort, learning, flood bool) *bool {
	t.Helper()
	for _, b := range rep.Bridges {
		if b.Name != p.bridge {
			continue
		}
		for _, port := range b.Ports {
			if port.Name != p.tap {
				continue
			}
			if port.Kind != "guest" || port.Device != "tap" || !port.Managed || port.Guest != p.guest || port.MAC != p.mac ||
				port.Learning != learning || port.Flood != flood {
				t.Errorf("status --json: port %s is %+v, want a managed guest tap of %s %s with learning=%v flood=%v",
					p.tap, port, p.guest, p.mac, learning, flood)
			}
			return port.Locked
		}
		t.Errorf("status --json: no port %s on %s", p.tap, p.bridge)
		return nil
	}
	t.Errorf("status --json: no bridge %s", p.bridge)
	return nil
}

// assertEntry checks that p's MAC has exactly one static entry on its
// bridge, ok on its tap.
func (rep *statusReport) assertEntry(t *testing.T, p guestPort) {
	t.Helper()
	for _, b := range rep.Bridges {
		if b.Name != p.bridge {
			continue
		}
		n := 0
		for _, e := range b.Entries {
			if e.MAC != p.mac {
				continue
			}
			n++
			if e.Port != p.tap || e.State != "ok" || e.Guest != p.guest {
				t.Errorf("status --json: entry %+v, want %s on %s ok for %s", e, p.mac, p.tap, p.guest)
			}
		}
		if n != 1 {
			t.Errorf("status --json: %d static entries for %s on %s, want 1", n, p.mac, p.bridge)
		}
		return
	}
	t.Errorf("status --json: no bridge %s", p.bridge)
}
