package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/fdbhook/fdbhook/pkg/admin"
	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/manage"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/runstate"
	"github.com/fdbhook/fdbhook/test/lab"
)

type noNetworks struct{}

func (noNetworks) Network(string) (*model.Network, error) { return nil, nil }

func tap(name string, learning bool) *model.Link {
	return &model.Link{Name: name, Type: "tuntap", TunMode: "tap", Master: "br0",
		Flags: model.Flags{Learning: learning, Flood: learning}, Promiscuity: 1, Carrier: true}
}

func domain(t *testing.T, name, target, mac string, optOut bool) *guest.Guest {
	t.Helper()
	d := lab.Domain{Name: name, NICs: lab.BridgeNICs("br0", target+"/"+mac)}
	if optOut {
		d.Metadata = `<fdbhook:fdb xmlns:fdbhook="urn:fdbhook:1" manage="no"/>`
	}
	g, err := guest.Parse([]byte(d.Live(lab.Status{Pid: 1})))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// world: on br0 (VLAN filtering supported, off), uplink eth0 (promiscuous);
// g1 on vnet1 managed with its entry; g2 on vnet2 still learning, its
// entry roamed to eth0; g3 on vnet3 opted out; a stale entry on vnet7,
// a tap no running guest owns.
func world(t *testing.T) func() (*manage.State, func(), error) {
	k := kerneltest.New()
	k.Add(&model.Link{Name: "br0", Type: "bridge", VlanCapable: true})
	k.Add(kerneltest.Uplink("eth0", "br0"))
	k.Add(tap("vnet1", false))
	k.Add(tap("vnet2", true))
	k.Add(tap("vnet3", true))
	stale := k.Add(tap("vnet7", false))
	stale.Carrier = false
	k.AddStatic("52:54:00:00:00:01", "vnet1")
	k.AddStatic("52:54:00:00:00:02", "eth0")
	k.AddStatic("52:54:00:00:00:07", "vnet7")
	return stateOf(t, k,
		domain(t, "g1", "vnet1", "52:54:00:00:00:01", false),
		domain(t, "g2", "vnet2", "52:54:00:00:00:02", false),
		domain(t, "g3", "vnet3", "52:54:00:00:00:03", true))
}

// stateOf reads the state of kernel k with br0 managed and running guests.
func stateOf(t *testing.T, k *kerneltest.Kernel, running ...*guest.Guest) func() (*manage.State, func(), error) {
	t.Helper()
	cfg, err := config.Parse([]byte("bridges = [\"br0\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	return func() (*manage.State, func(), error) {
		snap, err := manage.Take(k)
		if err != nil {
			return nil, nil, err
		}
		return &manage.State{Config: cfg, Kernel: snap, Networks: noNetworks{}, Running: running, RunningComplete: true}, func() {}, nil
	}
}

func TestBridgeMetrics(t *testing.T) {
	src := Source{State: world(t), RunDir: runstate.Dir(t.TempDir()), Version: "1.2.3"}
	reg, c := NewRegistry(src)
	want := `
# HELP fdbhook_guest_ports ` + help(descGuestPorts) + `
# TYPE fdbhook_guest_ports gauge
fdbhook_guest_ports{bridge="br0",state="excluded"} 1
fdbhook_guest_ports{bridge="br0",state="managed"} 1
fdbhook_guest_ports{bridge="br0",state="unmanaged"} 1
# HELP fdbhook_static_entries ` + help(descEntries) + `
# TYPE fdbhook_static_entries gauge
fdbhook_static_entries{bridge="br0",state="ok"} 1
fdbhook_static_entries{bridge="br0",state="roamed"} 1
fdbhook_static_entries{bridge="br0",state="stale"} 1
fdbhook_static_entries{bridge="br0",state="unknown"} 0
# HELP fdbhook_uplink_promiscuous ` + help(descPromisc) + `
# TYPE fdbhook_uplink_promiscuous gauge
fdbhook_uplink_promiscuous{bridge="br0",port="eth0",reason="guest_ports_learning"} 1
# HELP fdbhook_bridge_vlan_filtering ` + help(descVlanFiltering) + `
# TYPE fdbhook_bridge_vlan_filtering gauge
fdbhook_bridge_vlan_filtering{bridge="br0"} 0
# HELP fdbhook_bridge_exists ` + help(descBridgeExists) + `
# TYPE fdbhook_bridge_exists gauge
fdbhook_bridge_exists{bridge="br0"} 1
# HELP fdbhook_status_success ` + help(descStatusOK) + `
# TYPE fdbhook_status_success gauge
fdbhook_status_success 1
`
	names := []string{"fdbhook_guest_ports", "fdbhook_static_entries", "fdbhook_uplink_promiscuous",
		"fdbhook_bridge_vlan_filtering", "fdbhook_bridge_exists", "fdbhook_status_success"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if err := c.Err(); err != nil {
		t.Errorf("collection error: %v", err)
	}
	// The problems are status's, counted by kind.
	for kind, n := range map[string]float64{admin.ProblemPortFlags: 1, admin.ProblemNoEntry: 1, admin.ProblemStale: 1, admin.ProblemRoamed: 0, admin.ProblemPromisc: 0} {
		if got := value(t, reg, "fdbhook_problems", "kind", kind); got != n {
			t.Errorf("fdbhook_problems{kind=%q} = %v, want %v", kind, got, n)
		}
	}
}

// TestUndeclaredMACsMetric: the locked entries on a managed guest port in
// report mode are counted per bridge, and not on a port no guest manages;
// a bridge without any says 0 (world).
func TestUndeclaredMACsMetric(t *testing.T) {
	if got := value(t, must(NewRegistry(Source{State: world(t), RunDir: runstate.Dir(t.TempDir())})), "fdbhook_undeclared_macs", "bridge", "br0"); got != 0 {
		t.Errorf("fdbhook_undeclared_macs{bridge=\"br0\"} = %v without locked entries, want 0", got)
	}
	k := kerneltest.New()
	k.Add(&model.Link{Name: "br0", Type: "bridge"})
	v1 := k.Add(tap("vnet1", false))
	v1.LockCapable, v1.MabCapable, v1.Flags = true, true, model.Reporting
	k.Add(tap("vnet3", true)).Flags = model.Reporting // opted out: not counted
	k.AddStatic("52:54:00:00:00:01", "vnet1")
	for _, mac := range []string{"02:00:00:00:00:0a", "02:00:00:00:00:0b"} {
		k.Learn("vnet1", mac)
	}
	k.AddEntry(model.Entry{MAC: "02:00:00:00:00:0c", Port: "vnet3", State: 0x02, NTFlags: model.NTFMaster, FlagsExt: model.NTFExtLocked})
	src := Source{State: stateOf(t, k,
		domain(t, "g1", "vnet1", "52:54:00:00:00:01", false),
		domain(t, "g3", "vnet3", "52:54:00:00:00:03", true)), RunDir: runstate.Dir(t.TempDir())}
	reg, _ := NewRegistry(src)
	if got := value(t, reg, "fdbhook_undeclared_macs", "bridge", "br0"); got != 2 {
		t.Errorf("fdbhook_undeclared_macs{bridge=\"br0\"} = %v, want 2 (vnet1's locked entries)", got)
	}
}

// TestFollowedMACsMetric: the MACs guest NICs follow are counted per
// bridge, and so are the NICs past follow_max; their entries are the
// guest's, not unknown or stale (world has none of either: 0).
func TestFollowedMACsMetric(t *testing.T) {
	reg := must(NewRegistry(Source{State: world(t), RunDir: runstate.Dir(t.TempDir())}))
	for _, name := range []string{"fdbhook_followed_macs", "fdbhook_undeclared_macs_overflow"} {
		if got := value(t, reg, name, "bridge", "br0"); got != 0 {
			t.Errorf("%s{bridge=\"br0\"} = %v without following, want 0", name, got)
		}
	}
	k := kerneltest.New()
	k.Add(&model.Link{Name: "br0", Type: "bridge"})
	v1 := k.Add(tap("vnet1", false))
	v1.LockCapable, v1.MabCapable, v1.Flags = true, true, model.Flags{Locked: true}
	k.AddStatic("52:54:00:00:00:01", "vnet1")
	g1 := domain(t, "g1", "vnet1", "52:54:00:00:00:01", false)
	g1.SetFollowed("52:54:00:00:00:01", []string{"02:00:00:00:00:0a", "02:00:00:00:00:0b"}, true)
	for _, mac := range g1.Metadata(g1.NICs[0]).Followed {
		k.AddStatic(mac, "vnet1")
	}
	reg = must(NewRegistry(Source{State: stateOf(t, k, g1), RunDir: runstate.Dir(t.TempDir())}))
	for name, want := range map[string]float64{"fdbhook_followed_macs": 2, "fdbhook_undeclared_macs_overflow": 1} {
		if got := value(t, reg, name, "bridge", "br0"); got != want {
			t.Errorf("%s{bridge=\"br0\"} = %v, want %v", name, got, want)
		}
	}
	for state, want := range map[string]float64{"ok": 3, "unknown": 0, "stale": 0} {
		if got := value(t, reg, "fdbhook_static_entries", "state", state); got != want {
			t.Errorf("fdbhook_static_entries{state=%q} = %v, want %v: followed entries are the guest's", state, got, want)
		}
	}
}

// must is NewRegistry's registry alone.
func must(reg *prometheus.Registry, _ *Collector) *prometheus.Registry { return reg }

// TestRunDirMetrics: hook counts (every acting operation at 0 before it
// runs), the watcher's lock, the last reconcile, the build.
func TestRunDirMetrics(t *testing.T) {
	d := runstate.Dir(t.TempDir())
	src := Source{State: world(t), RunDir: d, Version: "1.2.3"}
	reg, _ := NewRegistry(src)
	if got := value(t, reg, "fdbhook_hook_failures_total", "operation", "start"); got != 0 {
		t.Errorf("start failures before any run = %v", got)
	}
	if got := value(t, reg, "fdbhook_watcher_up", "", ""); got != 0 {
		t.Errorf("watcher_up with no watcher = %v", got)
	}
	if n, _ := testutil.GatherAndCount(reg, "fdbhook_last_reconcile_timestamp_seconds"); n != 0 {
		t.Errorf("a reconcile time is reported before any reconcile ran")
	}
	d.CountHookRun("start", false)
	d.CountHookRun("start", true)
	d.CountHookRun("stopped", false)
	release, err := d.HoldWatcher(time.Unix(1_800_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	d.PutReconcile(runstate.Reconcile{Time: time.Unix(1_800_000_100, 0), Guests: 3, Failed: 1})
	for _, c := range []struct {
		name, label, value string
		want               float64
	}{
		{"fdbhook_hook_runs_total", "operation", "start", 2},
		{"fdbhook_hook_failures_total", "operation", "start", 1},
		{"fdbhook_hook_runs_total", "operation", "stopped", 1},
		{"fdbhook_hook_failures_total", "operation", "release", 0},
		{"fdbhook_watcher_up", "", "", 1},
		{"fdbhook_watcher_start_time_seconds", "", "", 1_800_000_000},
		{"fdbhook_last_reconcile_timestamp_seconds", "", "", 1_800_000_100},
		{"fdbhook_last_reconcile_success", "", "", 0},
		{"fdbhook_last_reconcile_failed_guests", "", "", 1},
		{"fdbhook_build_info", "version", "1.2.3", 1},
	} {
		if got := value(t, reg, c.name, c.label, c.value); got != c.want {
			t.Errorf("%s{%s=%q} = %v, want %v", c.name, c.label, c.value, got, c.want)
		}
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// TestTextfile: the file is written whole with mode 0644 (node_exporter
// does not run as root), and a collection that cannot read the host still
// writes the run-directory metrics and says so.
func TestTextfile(t *testing.T) {
	dir := t.TempDir()
	src := Source{State: world(t), RunDir: runstate.Dir(t.TempDir()), Version: "1.2.3"}
	if err := WriteTextfile(dir, src); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, TextfileName))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("stat: %v, %v; want mode 0644", fi, err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, TextfileName))
	if !strings.Contains(string(data), `fdbhook_guest_ports{bridge="br0",state="unmanaged"} 1`) {
		t.Errorf("textfile lacks the unmanaged port:\n%s", data)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("dir holds %d files, want only %s", len(ents), TextfileName)
	}
	src.State = func() (*manage.State, func(), error) { return nil, nil, errors.New("no kernel") }
	err = WriteTextfile(dir, src)
	if err == nil || !strings.Contains(err.Error(), "no kernel") {
		t.Fatalf("WriteTextfile with a failing read = %v, want the error", err)
	}
	data, _ = os.ReadFile(filepath.Join(dir, TextfileName))
	for _, want := range []string{"fdbhook_status_success 0", `fdbhook_hook_runs_total{operation="start"} 0`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("textfile after a failed read lacks %q:\n%s", want, data)
		}
	}
	if strings.Contains(string(data), "fdbhook_guest_ports") {
		t.Errorf("textfile after a failed read still has bridge metrics:\n%s", data)
	}
}

// help is a description's HELP text, as the exposition writes it.
func help(d *prometheus.Desc) string {
	s := d.String()
	i := strings.Index(s, `help: "`) + len(`help: `)
	j := strings.Index(s, `, constLabels`)
	h, err := strconv.Unquote(s[i:j])
	if err != nil {
		panic(err)
	}
	return h
}

// value gathers reg and returns the value of metric name whose label has
// value val (any series when label is empty); -1 when there is none.
func value(t *testing.T, reg prometheus.Gatherer, name, label, val string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
				return l.GetName() == label && l.GetValue() == val
			}) {
				continue
			}
			if m.Counter != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// TestHandler: what the watcher mounts on /metrics serves the exposition,
// read afresh at each scrape, and still answers when the host cannot be
// read.
func TestHandler(t *testing.T) {
	d := runstate.Dir(t.TempDir())
	fail := false
	state := world(t)
	src := Source{RunDir: d, Version: "1.2.3", State: func() (*manage.State, func(), error) {
		if fail {
			return nil, nil, errors.New("no kernel")
		}
		return state()
	}}
	srv := httptest.NewServer(Handler(src))
	defer srv.Close()
	get := func() string {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		return string(b)
	}
	if body := get(); !strings.Contains(body, `fdbhook_guest_ports{bridge="br0",state="unmanaged"} 1`) ||
		!strings.Contains(body, `fdbhook_hook_runs_total{operation="start"} 0`) {
		t.Errorf("first scrape:\n%s", body)
	}
	d.CountHookRun("start", false)
	fail = true
	body := get()
	for _, want := range []string{"fdbhook_status_success 0", `fdbhook_hook_runs_total{operation="start"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("second scrape lacks %q:\n%s", want, body)
		}
	}
}

// TestPortLackingOnlyItsEntry: a guest port with learning and flooding off
// whose static entry is missing (deleted by hand, or roamed) is not
// managed: it counts as unmanaged, like one that still learns.
func TestPortLackingOnlyItsEntry(t *testing.T) {
	k := kerneltest.New()
	k.Add(&model.Link{Name: "br0", Type: "bridge", VlanCapable: true})
	k.Add(kerneltest.Uplink("eth0", "br0"))
	k.Add(tap("vnet1", false))
	k.Add(tap("vnet4", false))
	k.Add(tap("vnet5", false))
	k.AddStatic("52:54:00:00:00:01", "vnet1")
	k.AddStatic("52:54:00:00:00:05", "eth0") // vnet5's entry roamed to the uplink
	src := Source{State: stateOf(t, k,
		domain(t, "g1", "vnet1", "52:54:00:00:00:01", false),
		domain(t, "g4", "vnet4", "52:54:00:00:00:04", false),
		domain(t, "g5", "vnet5", "52:54:00:00:00:05", false))}
	reg, _ := NewRegistry(src)
	for state, n := range map[string]float64{"excluded": 0, "managed": 1, "unmanaged": 2} {
		if got := value(t, reg, "fdbhook_guest_ports", "state", state); got != n {
			t.Errorf("fdbhook_guest_ports{state=%q} = %v, want %v", state, got, n)
		}
	}
}
