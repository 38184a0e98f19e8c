package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/admin"
	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

type result struct {
	code           int
	stdout, stderr string
	kernel         *kerneltest.Kernel
	runDir         runstate.Dir
}

// run runs fdbhook ARGS with buffers, a fake kernel and cfg as the
// configuration (no file when cfg is "").
func run(t *testing.T, cfg string, stdin []byte, args ...string) result {
	t.Helper()
	dir := t.TempDir()
	if cfg != "" {
		if err := os.WriteFile(filepath.Join(dir, "fdbhook.toml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out, errb bytes.Buffer
	k := kerneltest.T2Host()
	h := host.Default()
	h.Config, h.RunDir = filepath.Join(dir, "fdbhook.toml"), runstate.Dir(filepath.Join(dir, "run"))
	h.Libvirt, h.LibvirtEtc = libvirt.Paths{QemuRunDir: dir}, filepath.Join(dir, "etc")
	h.Lock, h.LockTimeout = filepath.Join(dir, "lock"), time.Second
	env := &Env{Env: host.Env{Program: "fdbhook", Stdin: bytes.NewReader(stdin), Stdout: &out, Stderr: &errb, Host: h,
		OpenKernel: func() (model.Kernel, error) { return k, nil }}}
	code := Main(env, args)
	return result{code: code, stdout: out.String(), stderr: errb.String(), kernel: k, runDir: env.RunDir}
}

var startXML, _ = os.ReadFile("../../testdata/libvirt-9.0/qemu-t2-start-begin.xml")

const cfgBr0 = "bridges = [\"br0\"]\nnetworks = [\"hostbr\"]\n"

func TestHelpListsEveryCommand(t *testing.T) {
	r := run(t, "", nil, "--help")
	if r.code != host.ExitOK || r.stderr != "" {
		t.Fatalf("--help: exit %d stderr %q", r.code, r.stderr)
	}
	for _, c := range Commands {
		first, _, _ := strings.Cut(c.Usage, "\n")
		if !strings.HasPrefix(first, "Usage: %[1]s "+c.Name) {
			t.Errorf("%s: usage starts %q, want \"Usage: %%[1]s %s\"", c.Name, first, c.Name)
		}
		if !strings.Contains(r.stdout, "  "+strings.TrimPrefix(strings.ReplaceAll(first, "%[1]s", "fdbhook"), "Usage: ")+"\n") {
			t.Errorf("--help lacks the synopsis of %s:\n%s", c.Name, r.stdout)
		}
		if !strings.Contains(r.stdout, c.Summary) {
			t.Errorf("--help lacks the summary of %s (%q)", c.Name, c.Summary)
		}
		h := run(t, "", nil, c.Name, "--help")
		if h.code != host.ExitOK || !strings.HasPrefix(h.stdout, "Usage: fdbhook "+c.Name) || len(h.kernel.WriteLog()) != 0 {
			t.Errorf("%s --help: exit %d stdout %q stderr %q", c.Name, h.code, h.stdout, h.stderr)
		}
	}
	if v := run(t, "", nil, "--version"); v.code != host.ExitOK || !strings.HasPrefix(v.stdout, "fdbhook ") {
		t.Errorf("--version: exit %d stdout %q", v.code, v.stdout)
	}
}

func TestBadCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"statuss"}, `unknown command "statuss"`},
		{[]string{"t2", "start", "begin", "-"}, `unknown command "t2"`},
		{[]string{"--help", "status"}, "--help takes no arguments"},
		{[]string{"--version", "x"}, "--version takes no arguments"},
		{[]string{"status", "--bogus"}, `status: unexpected "--bogus"`},
		{[]string{"reconcile", "now"}, `reconcile: unexpected "now"`},
		{[]string{"doctor", "x"}, "doctor: it takes no arguments"},
		{[]string{"explain"}, "explain: it wants one FILE"},
		{[]string{"explain", "a", "b"}, "explain: it wants one FILE"},
		{[]string{"metrics", "--textfile"}, "metrics: expected no arguments or --textfile DIR"},
		{[]string{"metrics", "--json"}, "metrics: expected no arguments or --textfile DIR"},
	} {
		r := run(t, cfgBr0, nil, tc.args...)
		if r.code != host.ExitUsage || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("%q: exit %d stdout %q stderr %q, want exit 2 and %q", tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
		if len(r.kernel.WriteLog()) != 0 {
			t.Errorf("%q: kernel written: %v", tc.args, r.kernel.WriteLog())
		}
	}
	// A wrong command shows the usage: every command's synopsis.
	r := run(t, "", nil, "frobnicate")
	for _, c := range Commands {
		if !strings.Contains(r.stderr, "fdbhook "+c.Name) {
			t.Errorf("usage on stderr lacks %s:\n%s", c.Name, r.stderr)
		}
	}
}

func TestExplain(t *testing.T) {
	r := run(t, cfgBr0, startXML, "explain", "-")
	if r.code != host.ExitOK || !strings.Contains(r.stdout, "plan for t2:") || !strings.Contains(r.stdout, "dev vnet7 master br0 static") {
		t.Errorf("explain: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if len(r.kernel.WriteLog()) != 0 || r.kernel.Count("Close") == 0 {
		t.Errorf("explain wrote to the kernel (%v) or left it open (closed %v)", r.kernel.WriteLog(), r.kernel.Count("Close") > 0)
	}
	if r := run(t, cfgBr0, []byte("<domain>"), "explain", "-"); r.code != host.ExitInput {
		t.Errorf("explain of bad XML: exit %d, want %d; stderr %q", r.code, host.ExitInput, r.stderr)
	}
	if r := run(t, "on_error = 1\n", startXML, "explain", "-"); r.code != host.ExitConfig {
		t.Errorf("explain with a bad configuration: exit %d, want %d; stderr %q", r.code, host.ExitConfig, r.stderr)
	}
}

func TestStatusAndDoctorTellWhetherTheWatcherRuns(t *testing.T) {
	r := run(t, cfgBr0, nil, "status")
	if !strings.Contains(r.stdout, "watcher: not running") {
		t.Errorf("status without a watcher: %q", r.stdout)
	}
	r = run(t, cfgBr0, nil, "status", "--json")
	if !strings.Contains(r.stdout, `"watcher": {`) || !strings.Contains(r.stdout, `"running": false`) {
		t.Errorf("status --json without a watcher: %q", r.stdout)
	}
}

func TestStatusReadsTheKernel(t *testing.T) {
	r := run(t, cfgBr0, nil, "status")
	// No guest runs: both taps are someone else's, and learning is no problem.
	if r.code != host.ExitOK || !strings.Contains(r.stdout, "bridge br0") ||
		!strings.Contains(r.stdout, "vnet7       other  tap     on        on") {
		t.Errorf("status: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if len(r.kernel.WriteLog()) != 0 {
		t.Errorf("status wrote to the kernel: %v", r.kernel.WriteLog())
	}
}

func TestWatcherReportAndCheck(t *testing.T) {
	dir := t.TempDir()
	var errb bytes.Buffer
	env := &Env{Env: host.Env{Program: "fdbhook", Stderr: &errb, Host: host.Host{RunDir: runstate.Dir(dir)}}}
	since := time.Unix(1_800_000_000, 0)
	release, err := runstate.Dir(dir).HoldWatcher(since)
	if err != nil {
		t.Fatal(err)
	}
	wr := watcherReport(env)
	if wr == nil || !wr.Running || wr.PID != os.Getpid() || !wr.Since.Equal(since) {
		t.Fatalf("watcher held by this process: report %+v", wr)
	}
	if c := watcherCheck(wr); c.Level != admin.OK {
		t.Errorf("doctor with a watcher: %+v", c)
	}
	release()
	wr = watcherReport(env)
	if wr == nil || wr.Running {
		t.Fatalf("watcher released: report %+v", wr)
	}
	if c := watcherCheck(wr); c.Level != admin.Warn || !strings.Contains(c.Text, "does not run") {
		t.Errorf("doctor without a watcher: %+v", c)
	}
}

func TestMetrics(t *testing.T) {
	r := run(t, cfgBr0, nil, "metrics")
	for _, want := range []string{"fdbhook_status_success 1", `fdbhook_bridge_exists{bridge="br0"} 1`,
		`fdbhook_guest_ports{bridge="br0",state="unmanaged"} 0`, `fdbhook_hook_runs_total{operation="start"} 0`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("metrics output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.code != host.ExitOK || r.stderr != "" || len(r.kernel.WriteLog()) != 0 || r.kernel.Count("Close") == 0 {
		t.Errorf("metrics: exit %d stderr %q writes %v closed %v", r.code, r.stderr, r.kernel.WriteLog(), r.kernel.Count("Close") > 0)
	}
	r = run(t, "on_error = 1\n", nil, "metrics")
	if r.code != host.ExitConfig || !strings.Contains(r.stdout, "fdbhook_status_success 0") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("metrics with a bad configuration: exit %d, stdout %q, stderr %q; want exit 3, status_success 0, one line", r.code, r.stdout, r.stderr)
	}
	dir := t.TempDir()
	if r := run(t, cfgBr0, nil, "metrics", "--textfile", dir); r.code != host.ExitOK || r.stdout != "" {
		t.Fatalf("metrics --textfile: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	data, err := os.ReadFile(filepath.Join(dir, "fdbhook.prom"))
	if err != nil || !strings.Contains(string(data), `fdbhook_bridge_exists{bridge="br0"} 1`) {
		t.Errorf("fdbhook.prom: %v\n%s", err, data)
	}
	if r := run(t, cfgBr0, nil, "metrics", "--textfile", filepath.Join(dir, "missing")); r.code == host.ExitOK || !strings.Contains(r.stderr, "missing/fdbhook.prom") {
		t.Errorf("metrics --textfile into a missing directory: exit %d stderr %q", r.code, r.stderr)
	}
}

// TestReconcileRecordsItsOutcome: a reconcile leaves its outcome in the run
// directory for the metrics; a dry run and a reconcile that cannot read
// its configuration are told apart.
func TestReconcileRecordsItsOutcome(t *testing.T) {
	before := time.Now().Add(-time.Second)
	r := run(t, cfgBr0, nil, "reconcile")
	rec, ok, err := r.runDir.LastReconcile()
	if r.code != host.ExitOK || err != nil || !ok || !rec.OK() || rec.Time.Before(before) {
		t.Errorf("reconcile: exit %d, record %+v ok=%v err=%v", r.code, rec, ok, err)
	}
	r = run(t, cfgBr0, nil, "reconcile", "--dry-run")
	if _, ok, _ := r.runDir.LastReconcile(); ok {
		t.Errorf("a dry run recorded a reconcile")
	}
	r = run(t, "on_error = 1\n", nil, "reconcile")
	rec, ok, _ = r.runDir.LastReconcile()
	if r.code != host.ExitConfig || !ok || rec.OK() || !strings.Contains(rec.Err, "on_error") {
		t.Errorf("reconcile with a bad configuration: exit %d, record %+v ok=%v", r.code, rec, ok)
	}
}
