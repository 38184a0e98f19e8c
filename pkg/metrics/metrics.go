package metrics

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/fdbhook/fdbhook/pkg/admin"
	"github.com/fdbhook/fdbhook/pkg/manage"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// TextfileName is the file WriteTextfile writes in the collector's
// directory (node_exporter reads every *.prom there).
const TextfileName = "fdbhook.prom"

// Source is what a collection reads.
type Source struct {
	// State reads the configuration, the kernel and libvirt's files, as
	// 'fdbhook status' does; done releases what it opened.
	State func() (st *manage.State, done func(), err error)
	// HookChecks checks what keeps libvirt from running the installed
	// hooks (admin.HookExecChecks), as status does; nil: not checked.
	HookChecks func() []admin.Check
	// RunDir holds the hook run counts, the watcher's lock and the last
	// reconcile's record.
	RunDir runstate.Dir
	// Version is fdbhook's version, for fdbhook_build_info.
	Version string
}

// HookOperations are the libvirt operations in which the hooks act (the
// qemu hook's, the lxc hook's started, the network hook's failures as
// network-OP); their counters are reported (at 0) before they first run,
// so that rate() and increase() see the first failure.
var HookOperations = []string{"start", "started", "reconnect", "attach", "migrate", "stopped", "release", "network-start", "network-started"}

// Guest port states of fdbhook_guest_ports.
const (
	PortManaged   = "managed"   // learning and flooding off, its static entry in place
	PortUnmanaged = "unmanaged" // should be managed and is not: reconcile
	PortExcluded  = "excluded"  // not managed: configuration, opt-out or refused
)

var (
	entryStates   = []string{manage.EntryOK, manage.EntryRoamed, manage.EntryStale, manage.EntryUnknown}
	portStates    = []string{PortManaged, PortUnmanaged, PortExcluded}
	problemKinds  = []string{admin.ProblemBridge, admin.ProblemVlan, admin.ProblemPortFlags, admin.ProblemNoEntry, admin.ProblemRoamed, admin.ProblemStale, admin.ProblemPromisc, admin.ProblemRefused, admin.ProblemGuestError, admin.ProblemHook}
	promiscErrors = []string{admin.PromiscVlanOff, admin.PromiscBridge, admin.PromiscPortsLearning, admin.PromiscByHand, admin.PromiscDevice}
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("fdbhook_"+name, help, labels, nil)
}

// From status's report (collectStatus, FromReport).
var (
	descStatusOK = desc("status_success",
		"1 when the last collection could read the configuration, the kernel and libvirt's files; 0 when it could not, and the per-bridge metrics are missing: run 'fdbhook status' to see why.")
	descBridgeExists = desc("bridge_exists",
		"1 when a managed bridge (from bridges, or a network in networks) exists as a Linux bridge; 0: create it, start its network, or fix the configuration.",
		"bridge")
	descVlanFiltering = desc("bridge_vlan_filtering",
		"1 when vlan_filtering is on for the bridge. The kernel takes the uplink out of promiscuous mode only on a VLAN-filtering bridge: set [bridge.NAME] vlan_filtering = \"enable\" and run 'fdbhook reconcile'.",
		"bridge")
	descGuestPorts = desc("guest_ports",
		"Running guests' ports on the bridge, by state: managed (learning and flooding off, static entry in place); unmanaged (fdbhook should manage it, but it learns, floods or lacks its static entry: run 'fdbhook reconcile'); excluded (left alone by configuration, the guest's metadata, or refused: see 'fdbhook status').",
		"bridge", "state")
	descEntries = desc("static_entries",
		"Static FDB entries on the bridge's ports, by state: ok (on its guest's port); roamed (a running guest's MAC on another port, e.g. the uplink after a migration); stale (left by a guest that is gone); unknown (not fdbhook's, never deleted). 'fdbhook reconcile' fixes roamed and stale.",
		"bridge", "state")
	descPromisc = desc("uplink_promiscuous",
		"1 when the bridge's uplink port is still promiscuous (copies every frame to the bridge), 0 when it filters. reason says why: no_managed_guest_ports, kernel_without_vlan_filtering and guest_ports_reporting (guest ports with MAB for undeclared_macs = \"report\" learn) are expected; guest_ports_learning: run 'fdbhook reconcile'; the others ('fdbhook status' explains them) should be fixed.",
		"bridge", "port", "reason")
	descUndeclared = desc("undeclared_macs",
		"Source MACs the running guests on the bridge send from without declaring them: locked entries on their managed ports, which undeclared_macs = \"report\" (MAC Authentication Bypass, Linux 6.2+) makes. Their frames are dropped and nothing is delivered to them; 'fdbhook status' lists them by guest and NIC: declare the guest's own as extra MACs in its metadata.",
		"bridge")
	descFollowed = desc("followed_macs",
		"MACs the running guests on the bridge sent from undeclared and the watcher authorised with static entries (undeclared_macs = \"follow\"), at most follow_max per guest NIC; 'fdbhook status' lists them by guest and NIC.",
		"bridge")
	descFollowFull = desc("undeclared_macs_overflow",
		"Running guest NICs on the bridge that sent from more MACs than follow_max (undeclared_macs = \"follow\"): they follow no more, and their ports' MAC Authentication Bypass is off until the guest stops, so frames from further MACs are dropped unreported. A guest running many nested guests, or spoofing.",
		"bridge")
	descProblems = desc("problems",
		"Problems 'fdbhook status' reports, by kind; 'fdbhook status' says each one in words and what to do.",
		"kind")
)

// From the run directory (collectRunDir): the hooks' run counts, the
// watcher's lock, the last reconcile's record.
var (
	descHookRuns = desc("hook_runs_total",
		"libvirt hook runs in which fdbhook acted, since boot, by operation: start (QEMU guests), started (containers), reconnect, attach: apply; migrate: mark an incoming live migration; stopped, release: clean up; network-start, network-started: the network hook, counted when it fails.",
		"operation")
	descHookFailures = desc("hook_failures_total",
		"libvirt hook runs that failed, since boot, by operation (as hook_runs_total): a NIC refused, a bad configuration (exit 3), bad input or metadata (exit 4), a kernel error, also when on_error = \"warn\" let the guest start. Each is logged to syslog (tag fdbhook) with guest, NIC, bridge and cause; a failed start stops the guest from starting under on_error = \"fail\".",
		"operation")
	descWatcherUp = desc("watcher_up",
		"1 when the watcher ('fdbhook watch') is running; 0: hotplugged NICs, live bridge changes and migrations are not managed until it is started again.")
	descWatcherStart = desc("watcher_start_time_seconds",
		"When the running watcher started, in seconds since the Unix epoch.")
	descReconcileTime = desc("last_reconcile_timestamp_seconds",
		"When 'fdbhook reconcile' last ran (not a dry run), in seconds since the Unix epoch; absent when none ran since boot.")
	descReconcileOK = desc("last_reconcile_success",
		"1 when the last reconcile managed every running guest, 0 when a guest failed or it could not run: run 'fdbhook reconcile' and read its output.")
	descReconcileFailed = desc("last_reconcile_failed_guests",
		"Running guests the last reconcile could not manage.")
)

// Of this binary.
var (
	descBuildInfo = desc("build_info",
		"fdbhook's version and the Go version it was built with; always 1.",
		"version", "goversion")
)

// Collector collects fdbhook's metrics, reading everything afresh at each
// collection.
type Collector struct {
	src Source

	mu  sync.Mutex
	err error // of the last collection
}

// NewCollector returns a Collector reading from src.
func NewCollector(src Source) *Collector { return &Collector{src: src} }

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStatusOK, descBridgeExists, descVlanFiltering, descGuestPorts, descEntries,
		descPromisc, descUndeclared, descFollowed, descFollowFull, descProblems, descHookRuns, descHookFailures, descWatcherUp, descWatcherStart,
		descReconcileTime, descReconcileOK, descReconcileFailed, descBuildInfo} {
		ch <- d
	}
}

// Err returns what went wrong in the last collection, nil when nothing did.
// What could be read was reported all the same.
func (c *Collector) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Collect reads the host and sends the metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	var errs []error
	if err := c.collectStatus(ch); err != nil {
		errs = append(errs, fmt.Errorf("status: %w", err))
	}
	if err := c.collectRunDir(ch); err != nil {
		errs = append(errs, err)
	}
	ch <- gauge(descBuildInfo, 1, c.src.Version, runtime.Version())
	c.mu.Lock()
	c.err = nil
	if len(errs) > 0 {
		c.err = errs[0]
	}
	c.mu.Unlock()
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// collectStatus reports what 'fdbhook status' reports.
func (c *Collector) collectStatus(ch chan<- prometheus.Metric) error {
	rep, err := c.report()
	ch <- gauge(descStatusOK, bit(err == nil))
	if err != nil {
		return err
	}
	for _, m := range FromReport(rep) {
		ch <- m
	}
	return nil
}

func (c *Collector) report() (*admin.Report, error) {
	st, done, err := c.src.State()
	if err != nil {
		return nil, err
	}
	defer done()
	var hooks []admin.Check
	if c.src.HookChecks != nil {
		hooks = c.src.HookChecks()
	}
	return admin.Status(st, hooks, nil)
}

// FromReport turns a status report into the per-bridge metrics and the
// problem counts.
func FromReport(rep *admin.Report) []prometheus.Metric {
	var out []prometheus.Metric
	unmanaged := map[[2]string]bool{} // (bridge, port) a problem says is not in effect
	problems := map[string]int{}
	for _, p := range rep.Problems {
		problems[p.Kind]++
		if p.Kind == admin.ProblemPortFlags || p.Kind == admin.ProblemNoEntry {
			unmanaged[[2]string{p.Bridge, p.Port}] = true
		}
	}
	for _, b := range rep.Bridges {
		out = append(out, gauge(descBridgeExists, bit(b.Exists), b.Name))
		if !b.Exists {
			continue
		}
		out = append(out, gauge(descVlanFiltering, bit(b.VlanFiltering), b.Name))
		ports := map[string]int{}
		for _, p := range b.Ports {
			switch {
			case p.Kind != manage.KindGuest:
				if p.Kind == manage.KindUplink {
					reason := p.PromiscReason
					if p.Promiscuity == 0 {
						reason = ""
					}
					out = append(out, gauge(descPromisc, bit(p.Promiscuity > 0), b.Name, p.Name, reason))
				}
			case !p.Managed:
				ports[PortExcluded]++
			case unmanaged[[2]string{b.Name, p.Name}]:
				ports[PortUnmanaged]++
			default:
				ports[PortManaged]++
			}
		}
		for _, s := range portStates {
			out = append(out, gauge(descGuestPorts, float64(ports[s]), b.Name, s))
		}
		undeclared := 0
		for _, p := range b.Ports {
			undeclared += len(p.Undeclared)
		}
		out = append(out, gauge(descUndeclared, float64(undeclared), b.Name))
		followed, full := 0, 0
		for _, p := range b.Ports {
			followed += len(p.Followed)
			full += int(bit(p.FollowFull))
		}
		out = append(out, gauge(descFollowed, float64(followed), b.Name), gauge(descFollowFull, float64(full), b.Name))
		entries := map[string]int{}
		for _, e := range b.Entries {
			entries[e.State]++
		}
		for _, s := range entryStates {
			out = append(out, gauge(descEntries, float64(entries[s]), b.Name, s))
		}
	}
	for _, k := range problemKinds {
		out = append(out, gauge(descProblems, float64(problems[k]), k))
	}
	for k, n := range problems {
		if !slices.Contains(problemKinds, k) {
			out = append(out, gauge(descProblems, float64(n), k))
		}
	}
	return out
}

// collectRunDir reports the hook counts, the watcher and the last
// reconcile.
func (c *Collector) collectRunDir(ch chan<- prometheus.Metric) error {
	if c.src.RunDir == "" {
		return nil
	}
	var errs []error
	runs, err := c.src.RunDir.HookRuns()
	if err != nil {
		errs = append(errs, err)
	}
	for _, op := range HookOperations {
		if _, ok := runs[op]; !ok {
			runs[op] = runstate.RunCount{}
		}
	}
	for op, n := range runs {
		ch <- counter(descHookRuns, float64(n.Runs), op)
		ch <- counter(descHookFailures, float64(n.Failed), op)
	}
	w, up, err := c.src.RunDir.WatcherRunning()
	if err != nil {
		errs = append(errs, err)
	}
	ch <- gauge(descWatcherUp, bit(up))
	if up && !w.Since.IsZero() {
		ch <- gauge(descWatcherStart, float64(w.Since.Unix()))
	}
	rec, ok, err := c.src.RunDir.LastReconcile()
	if err != nil {
		errs = append(errs, err)
	}
	if ok {
		ch <- gauge(descReconcileTime, float64(rec.Time.UnixNano())/1e9)
		ch <- gauge(descReconcileOK, bit(rec.OK()))
		ch <- gauge(descReconcileFailed, float64(rec.Failed))
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// NewRegistry returns a registry holding fdbhook's collector and nothing
// else (no Go runtime or process metrics), and the collector itself.
func NewRegistry(src Source) (*prometheus.Registry, *Collector) {
	reg := prometheus.NewRegistry()
	c := NewCollector(src)
	reg.MustRegister(c)
	return reg, c
}

// Handler serves fdbhook's metrics, read afresh at each scrape, in
// Prometheus' exposition format: what the watcher mounts on /metrics.
// A collection that cannot read the host still answers, with
// fdbhook_status_success 0.
func Handler(src Source) http.Handler {
	reg, _ := NewRegistry(src)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// WriteTextfile writes the metrics to DIR/fdbhook.prom for node_exporter's
// textfile collector: into a temporary file in dir, then renamed, so that
// node_exporter never reads half a file. The file is written even when
// part of the collection failed (fdbhook_status_success says so); the
// error is returned after.
func WriteTextfile(dir string, src Source) error {
	reg, c := NewRegistry(src)
	if err := prometheus.WriteToTextfile(filepath.Join(dir, TextfileName), reg); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, TextfileName), err)
	}
	return c.Err()
}

// WriteText writes gathered metric families in the text exposition format.
func WriteText(w io.Writer, mfs []*dto.MetricFamily) error {
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return err
		}
	}
	return nil
}
