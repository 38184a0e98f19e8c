//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Debian's prometheus and prometheus-node-exporter (run.sh installs them).
const (
	promBin         = "/usr/bin/prometheus"
	promtoolBin     = "/usr/bin/promtool"
	nodeExporterBin = "/usr/bin/prometheus-node-exporter"
	rulesFile       = "../../packaging/prometheus/fdbhook.rules.yml"
	unmanagedAlert  = "FdbhookGuestPortUnmanaged"
	scrapeJob       = "fdbt-node"
	watchJob        = "fdbt-watch" // the watcher's own /metrics ([watch] metrics)
)

// Fleet monitoring: `fdbhook metrics --textfile` into the directory of a real
// node_exporter's textfile collector, scraped by a real Prometheus that
// evaluates the shipped alert rules (the unmanaged-port alert's "for"
// shortened to 10 s). What Prometheus answers must be what
// `status --json` says, before a tap is undone by hand, after, and after
// reconcile; the unmanaged-port series goes 0 -> 1 -> 0, and the alert
// fires in Prometheus' own rule evaluation and resolves again.
func TestFleetMetrics(t *testing.T) {
	timed(t)
	for _, b := range []string{promBin, promtoolBin, nodeExporterBin} {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("%s: %v (run.sh installs prometheus and prometheus-node-exporter)", b, err)
		}
	}
	startG1(t)
	assertG1Managed(t)
	m := startMonitoring(t)

	// 1. Managed: nothing unmanaged, and Prometheus agrees with status.
	m.refresh(t)
	rep := statusJSONRaw(t)
	m.assertMatchesStatus(t, rep, "g1 managed")
	if got := m.value(t, `fdbhook_guest_ports{bridge="`+bridge0+`",state="unmanaged"}`); got != 0 {
		t.Errorf("unmanaged ports on %s with g1 managed: %v, want 0", bridge0, got)
	}
	if got := m.value(t, `fdbhook_hook_runs_total{operation="start"}`); got < 1 {
		t.Errorf("fdbhook_hook_runs_total{operation=\"start\"} = %v after g1's start, want at least 1", got)
	}
	if got := m.value(t, `fdbhook_status_success`); got != 1 {
		t.Errorf("fdbhook_status_success = %v, want 1", got)
	}
	checkExposition(t, m.textfile())

	// 2. A tap undone by hand.
	setPortFlags(t, g1Tap, true, true)
	m.refresh(t)
	rep = statusJSONRaw(t)
	m.assertMatchesStatus(t, rep, "after undoing "+g1Tap)
	if got := m.value(t, `fdbhook_guest_ports{bridge="`+bridge0+`",state="unmanaged"}`); got != 1 {
		t.Errorf("unmanaged ports on %s after undoing %s by hand: %v, want 1", bridge0, g1Tap, got)
	}
	checkExposition(t, m.textfile())
	firing := func() bool {
		return m.count(t, `ALERTS{alertname="`+unmanagedAlert+`",alertstate="firing",bridge="`+bridge0+`"}`) == 1
	}
	start := time.Now()
	if !waitFor(60*time.Second, firing) {
		t.Errorf("%s did not fire within 60 s; alerts: %s", unmanagedAlert, m.get(t, "/api/v1/alerts"))
	} else {
		t.Logf("%s firing %s after the tap was undone", unmanagedAlert, time.Since(start).Round(time.Second))
		if time.Since(start) < 9*time.Second {
			t.Errorf("%s fired after %s, before its 10 s 'for'", unmanagedAlert, time.Since(start))
		}
	}

	// 3. reconcile puts it back: 0 again, the alert resolves.
	if r := admin(t, "reconcile"); r.code != 0 {
		t.Fatalf("reconcile: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	m.refresh(t)
	rep = statusJSONRaw(t)
	m.assertMatchesStatus(t, rep, "after reconcile")
	if got := m.value(t, `fdbhook_guest_ports{bridge="`+bridge0+`",state="unmanaged"}`); got != 0 {
		t.Errorf("unmanaged ports on %s after reconcile: %v, want 0", bridge0, got)
	}
	if got := m.value(t, `fdbhook_last_reconcile_success`); got != 1 {
		t.Errorf("fdbhook_last_reconcile_success after reconcile = %v, want 1", got)
	}
	if age := float64(time.Now().UnixNano())/1e9 - m.value(t, `fdbhook_last_reconcile_timestamp_seconds`); age < -1 || age > 60 {
		t.Errorf("fdbhook_last_reconcile_timestamp_seconds is %v s old, want the reconcile just run", age)
	}
	if !waitFor(30*time.Second, func() bool { return !firing() }) {
		t.Errorf("%s still firing 30 s after reconcile", unmanagedAlert)
	}

	// 4. The watcher serving /metrics itself ([watch] metrics), scraped by
	// the same Prometheus: it agrees with status, and a tap undone by hand
	// is healed by the watcher, so the series stays 0.
	orig, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, string(orig)+"\n[watch]\nmetrics = \"127.0.0.1:"+m.watchPort+"\"\n")
	w := startWatcher(t, "watch-metrics.log")
	m.job = watchJob
	up := func() bool { return m.value(t, `fdbhook_watcher_up{job="`+watchJob+`"}`) == 1 }
	if !waitFor(30*time.Second, up) {
		t.Fatalf("prometheus did not scrape the watcher's /metrics on 127.0.0.1:%s within 30 s; up = %v\n%s",
			m.watchPort, m.value(t, `up{job="`+watchJob+`"}`), w.output())
	}
	m.assertMatchesStatus(t, statusJSONRaw(t), "the watcher's /metrics, g1 managed")
	setPortFlags(t, g1Tap, true, true)
	suite.k.waitManaged(t, "the watcher heals "+g1Tap, g1Tap, bridge0, g1BrA)
	time.Sleep(2500 * time.Millisecond) // two scrapes
	m.assertMatchesStatus(t, statusJSONRaw(t), "the watcher's /metrics, after the watcher healed "+g1Tap)
	if got := m.value(t, `fdbhook_guest_ports{job="`+watchJob+`",bridge="`+bridge0+`",state="unmanaged"}`); got != 0 {
		t.Errorf("watcher's /metrics: unmanaged ports on %s after the heal: %v, want 0", bridge0, got)
	}
	w.stop(t)
}

// monitoring is a node_exporter reading a textfile directory and a
// Prometheus scraping it every second.
type monitoring struct {
	dir       string // the textfile collector's directory
	promURL   string
	seq       int
	watchPort string // where Prometheus looks for the watcher's /metrics
	job       string // the scrape job series reads (scrapeJob unless set)
}

func startMonitoring(t *testing.T) *monitoring {
	t.Helper()
	work := t.TempDir()
	m := &monitoring{dir: filepath.Join(work, "textfile")}
	if err := os.Mkdir(m.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	nePort, promPort := freePort(t), freePort(t)
	m.watchPort = freePort(t)
	daemon(t, filepath.Join(work, "node_exporter.log"), nodeExporterBin,
		"--web.listen-address=127.0.0.1:"+nePort, "--collector.disable-defaults",
		"--collector.textfile", "--collector.textfile.directory="+m.dir, "--web.disable-exporter-metrics")

	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	short, n := shortenFor(string(rules), unmanagedAlert, "10s")
	if n != 1 {
		t.Fatalf("%s: found %d 'for:' lines for %s, want 1", rulesFile, n, unmanagedAlert)
	}
	rulesCopy := filepath.Join(work, "fdbhook.rules.yml")
	cfg := filepath.Join(work, "prometheus.yml")
	if err := os.WriteFile(rulesCopy, []byte(short), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: %s
    static_configs:
      - targets: ["127.0.0.1:%s"]
  - job_name: %s
    static_configs:
      - targets: ["127.0.0.1:%s"]
`, rulesCopy, scrapeJob, nePort, watchJob, m.watchPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	daemon(t, filepath.Join(work, "prometheus.log"), promBin, "--config.file="+cfg,
		"--storage.tsdb.path="+filepath.Join(work, "tsdb"), "--web.listen-address=127.0.0.1:"+promPort)
	m.promURL = "http://127.0.0.1:" + promPort
	if !waitFor(60*time.Second, func() bool {
		resp, err := http.Get(m.promURL + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		log, _ := os.ReadFile(filepath.Join(work, "prometheus.log"))
		t.Fatalf("prometheus not ready within 60 s:\n%s", log)
	}
	return m
}

// shortenFor sets the "for:" of one alert in a rules file.
func shortenFor(rules, alert, d string) (string, int) {
	lines := strings.Split(rules, "\n")
	in, n := false, 0
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "- alert:") {
			in = strings.TrimSpace(strings.TrimPrefix(trimmed, "- alert:")) == alert
		}
		if in && strings.HasPrefix(trimmed, "for:") {
			lines[i] = l[:strings.Index(l, "for:")] + "for: " + d
			n++
		}
	}
	return strings.Join(lines, "\n"), n
}

// daemon starts a program for the rest of the test, output to logFile,
// and stops it (the process this test started, by its pid) at the end.
func daemon(t *testing.T, logFile, bin string, args ...string) {
	t.Helper()
	f, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("%s: %v", bin, err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		f.Close()
	})
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// refresh runs `fdbhook metrics --textfile`, then writes a sequence number
// into a second file of the directory and waits until Prometheus has
// scraped it: that scrape read fdbhook.prom as just written (node_exporter
// reads the whole directory at each scrape).
func (m *monitoring) refresh(t *testing.T) {
	t.Helper()
	m.write(t)
	if !waitFor(30*time.Second, func() bool { return m.value(t, "fdbt_sync_seq") == float64(m.seq) }) {
		t.Fatalf("prometheus did not scrape sequence %d within 30 s (fdbt_sync_seq = %v)", m.seq, m.value(t, "fdbt_sync_seq"))
	}
}

func (m *monitoring) write(t *testing.T) {
	t.Helper()
	if r := admin(t, "metrics", "--textfile", m.dir); r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("fdbhook metrics --textfile %s: exit %d, stdout %q, stderr %q", m.dir, r.code, r.stdout, r.stderr)
	}
	m.seq++
	tmp := filepath.Join(m.dir, ".sync.tmp")
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("fdbt_sync_seq %d\n", m.seq)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(m.dir, "fdbt_sync.prom")); err != nil {
		t.Fatal(err)
	}
}

func (m *monitoring) textfile() []byte {
	b, _ := os.ReadFile(filepath.Join(m.dir, "fdbhook.prom"))
	return b
}

func (m *monitoring) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(m.promURL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

type sample struct {
	labels map[string]string
	value  float64
}

// query runs an instant query and returns the vector.
func (m *monitoring) query(t *testing.T, expr string) []sample {
	t.Helper()
	body := m.get(t, "/api/v1/query?query="+url.QueryEscape(expr))
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Status != "success" || r.Data.ResultType != "vector" {
		t.Fatalf("query %s: %v %s %s", expr, err, r.Error, body)
	}
	var out []sample
	for _, s := range r.Data.Result {
		var v float64
		str, _ := s.Value[1].(string)
		if _, err := fmt.Sscan(str, &v); err != nil {
			t.Fatalf("query %s: value %v", expr, s.Value)
		}
		out = append(out, sample{labels: s.Metric, value: v})
	}
	return out
}

// value is the value of a query that selects one series; -1 when it
// selects none.
func (m *monitoring) value(t *testing.T, expr string) float64 {
	t.Helper()
	s := m.query(t, expr)
	switch len(s) {
	case 0:
		return -1
	case 1:
		return s[0].value
	}
	t.Fatalf("query %s selects %d series, want 1", expr, len(s))
	return 0
}

func (m *monitoring) count(t *testing.T, expr string) int { return len(m.query(t, expr)) }

// series returns metric name's series scraped from the test's
// node_exporter, as "label=value,..." (the given labels, in order) -> value.
func (m *monitoring) series(t *testing.T, name string, labels ...string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	job := m.job
	if job == "" {
		job = scrapeJob
	}
	for _, s := range m.query(t, name+`{job="`+job+`"}`) {
		var key []string
		for _, l := range labels {
			key = append(key, l+"="+s.labels[l])
		}
		out[strings.Join(key, ",")] = s.value
	}
	return out
}

// fullStatus is what the scenario compares from `status --json`, read
// from its documented field names.
type fullStatus struct {
	Bridges []struct {
		Name          string `json:"name"`
		Exists        bool   `json:"exists"`
		VlanFiltering bool   `json:"vlan_filtering"`
		Ports         []struct {
			Name        string `json:"name"`
			Kind        string `json:"kind"`
			Managed     bool   `json:"managed"`
			Promiscuity int    `json:"promiscuity"`
		} `json:"ports"`
		Entries []struct {
			State string `json:"state"`
		} `json:"static_entries"`
	} `json:"bridges"`
	Problems []struct {
		Kind   string `json:"kind"`
		Bridge string `json:"bridge"`
		Port   string `json:"port"`
	} `json:"problems"`
}

func statusJSONRaw(t *testing.T) *fullStatus {
	t.Helper()
	r := admin(t, "status", "--json")
	var rep fullStatus
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("status --json (exit %d) does not parse: %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	return &rep
}

// assertMatchesStatus compares what Prometheus holds with status --json:
// per bridge, the guest ports by state (excluded: not managed; unmanaged:
// managed but flagged as learning/flooding or missing its entry), the
// static entries by state, vlan_filtering, the promiscuous uplinks; and
// the problems by kind.
func (m *monitoring) assertMatchesStatus(t *testing.T, rep *fullStatus, when string) {
	t.Helper()
	ports, entries, vlan, promisc := map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}
	problems := map[string]float64{}
	flagged := map[string]bool{}
	for _, p := range rep.Problems {
		problems["kind="+p.Kind]++
		if p.Kind == "port-learning" || p.Kind == "missing-entry" {
			flagged[p.Bridge+"/"+p.Port] = true
		}
	}
	for _, b := range rep.Bridges {
		if !b.Exists {
			continue
		}
		key := "bridge=" + b.Name
		for _, s := range []string{"managed", "unmanaged", "excluded"} {
			ports[key+",state="+s] = 0
		}
		for _, s := range []string{"ok", "roamed", "stale", "unknown"} {
			entries[key+",state="+s] = 0
		}
		vlan[key] = 0
		if b.VlanFiltering {
			vlan[key] = 1
		}
		for _, p := range b.Ports {
			switch {
			case p.Kind == "uplink":
				promisc[key+",port="+p.Name] = 0
				if p.Promiscuity > 0 {
					promisc[key+",port="+p.Name] = 1
				}
			case p.Kind != "guest":
			case !p.Managed:
				ports[key+",state=excluded"]++
			case flagged[b.Name+"/"+p.Name]:
				ports[key+",state=unmanaged"]++
			default:
				ports[key+",state=managed"]++
			}
		}
		for _, e := range b.Entries {
			entries[key+",state="+e.State]++
		}
	}
	gotProblems := m.series(t, "fdbhook_problems", "kind")
	for k, v := range gotProblems {
		if v == 0 {
			delete(gotProblems, k)
		}
	}
	for _, c := range []struct {
		name       string
		got, want  map[string]float64
		wantLabels string
	}{
		{"fdbhook_guest_ports", m.series(t, "fdbhook_guest_ports", "bridge", "state"), ports, ""},
		{"fdbhook_static_entries", m.series(t, "fdbhook_static_entries", "bridge", "state"), entries, ""},
		{"fdbhook_bridge_vlan_filtering", m.series(t, "fdbhook_bridge_vlan_filtering", "bridge"), vlan, ""},
		{"fdbhook_uplink_promiscuous", m.series(t, "fdbhook_uplink_promiscuous", "bridge", "port"), promisc, ""},
		{"fdbhook_problems (non-zero)", gotProblems, problems, ""},
	} {
		if !sameSeries(c.got, c.want) {
			t.Errorf("%s: %s in Prometheus:\n%s\nstatus --json says:\n%s", when, c.name, dump(c.got), dump(c.want))
		}
	}
	t.Logf("%s: Prometheus matches status --json; guest ports:\n%s", when, dump(ports))
}

func sameSeries(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func dump(m map[string]float64) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  {%s} %v\n", k, m[k])
	}
	return b.String()
}

// checkExposition runs `promtool check metrics` on the textfile.
func checkExposition(t *testing.T, text []byte) {
	t.Helper()
	cmd := exec.Command(promtoolBin, "check", "metrics")
	cmd.Stdin = strings.NewReader(string(text))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\n--- exposition:\n%s", err, out, text)
	}
}
