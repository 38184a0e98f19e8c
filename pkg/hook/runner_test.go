package hook

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// withRoamed adds an uplink eno1 to k's br0 and a static entry there for
// each of macs, as after the guest's MAC roamed to the uplink.
func withRoamed(k *kerneltest.Kernel, macs ...string) *kerneltest.Kernel {
	k.Add(&model.Link{Name: "eno1", Index: 4, Type: "device", Master: "br0", Flags: kerneltest.Learning})
	for _, m := range macs {
		k.AddStatic(m, "eno1")
	}
	return k
}

// flagsSet returns the flags each SetPortFlags call asked for.
func flagsSet(k *kerneltest.Kernel) []model.Flags {
	var out []model.Flags
	for _, c := range k.Calls() {
		if c.Method == "SetPortFlags" {
			out = append(out, c.Flags)
		}
	}
	return out
}

type run struct {
	code           int
	stdout, stderr string
	kernel         *kerneltest.Kernel
	opened         bool
	runDir         runstate.Dir
}

// runHook runs one invocation of a Runner wired to buffers, a fake kernel
// k and a temporary directory holding cfg (no file when cfg is empty).
func runHook(t *testing.T, entry func(*Runner, []string) int, program, cfg string, stdin []byte,
	env map[string]string, k *kerneltest.Kernel, args ...string) run {
	t.Helper()
	dir := t.TempDir()
	if cfg != "" {
		os.WriteFile(filepath.Join(dir, "fdbhook.toml"), []byte(cfg), 0o644)
	}
	return newTestRun(dir, program, stdin, env, k).call(entry, args)
}

// testRun is one test invocation of a Runner in dir: its configuration
// dir/fdbhook.toml, its run directory dir/run (unless env names another),
// its lock dir/lock, libvirt's live XML in dir (QEMU) and dir/lxc, /proc in
// dir/proc; stdout and stderr into buffers; the fake kernel k. Other
// environment variables come from env.
type testRun struct {
	r         *Runner
	out, errb bytes.Buffer
	res       run
}

func newTestRun(dir, program string, stdin []byte, env map[string]string, k *kerneltest.Kernel) *testRun {
	h := host.FromEnv(func(key string) string { return env[key] })
	h.Config = filepath.Join(dir, "fdbhook.toml")
	if _, set := env[host.EnvRunDir]; !set {
		h.RunDir = runstate.Dir(filepath.Join(dir, "run")) // never the host's /run/fdbhook
	}
	h.Libvirt = libvirt.Paths{QemuRunDir: dir, LxcRunDir: filepath.Join(dir, "lxc"), ProcDir: filepath.Join(dir, "proc")}
	h.Lock, h.LockTimeout = filepath.Join(dir, "lock"), time.Second
	tr := &testRun{res: run{kernel: k, runDir: h.RunDir}}
	tr.r = &Runner{Env: host.Env{
		Program: program, Stdin: bytes.NewReader(stdin), Stdout: &tr.out, Stderr: &tr.errb, Host: h,
		OpenKernel: func() (model.Kernel, error) { tr.res.opened = true; return k, nil },
	}}
	return tr
}

// call runs entry (RunQemu, RunNetwork, RunLxc) with args.
func (tr *testRun) call(entry func(*Runner, []string) int, args []string) run {
	tr.res.code = entry(tr.r, args)
	tr.res.stdout, tr.res.stderr = tr.out.String(), tr.errb.String()
	return tr.res
}

func runQemu(t *testing.T, cfg string, stdin []byte, env map[string]string, args ...string) run {
	t.Helper()
	return runHook(t, (*Runner).RunQemu, "qemu-hook", cfg, stdin, env, kerneltest.T2Host(), args...)
}

var startXML, _ = os.ReadFile("../../testdata/libvirt-9.0/qemu-t2-start-begin.xml")

const cfgBr0 = "bridges = [\"br0\"]\nnetworks = [\"hostbr\"]\n"

// TestOperationTable runs every operation against a kernel where t2's first
// MAC has roamed to the uplink, so that each kind of operation leaves its
// own trace: an apply replaces the entries and sets the flags, a cleanup
// deletes the roamed entry, and an ignored operation writes nothing.
func TestOperationTable(t *testing.T) {
	const (
		applied = "replace 52:54:00:aa:cc:01 flags replace 52:54:00:aa:cc:03 flags"
		cleaned = "delete 52:54:00:aa:cc:01"
	)
	for _, tc := range []struct {
		op, subop string
		writes    string
	}{
		{"start", "begin", applied}, {"reconnect", "begin", applied}, {"attach", "begin", applied},
		{"stopped", "end", cleaned}, {"release", "end", cleaned},
		{"prepare", "begin", ""}, {"started", "begin", ""}, {"migrate", "begin", ""},
		{"restore", "begin", ""}, {"shutdown", "begin", ""}, {"start", "end", ""},
	} {
		r := runHook(t, (*Runner).RunQemu, "qemu-hook", cfgBr0, startXML, nil,
			withRoamed(kerneltest.T2Host(), "52:54:00:aa:cc:01"), "t2", tc.op, tc.subop, "-")
		if r.code != host.ExitOK || r.stdout != "" || r.stderr != "" {
			t.Errorf("%s %s: exit %d stdout %q stderr %q", tc.op, tc.subop, r.code, r.stdout, r.stderr)
		}
		if got := strings.Join(r.kernel.WriteLog(), " "); got != tc.writes {
			t.Errorf("%s %s: kernel writes %q, want %q", tc.op, tc.subop, got, tc.writes)
		}
		if r.opened && r.kernel.Count("Close") == 0 {
			t.Errorf("%s %s: kernel connection not closed", tc.op, tc.subop)
		}
	}
}

func TestStartWrites(t *testing.T) {
	r := runQemu(t, cfgBr0, startXML, nil, "t2", "start", "begin", "-")
	want := "replace 52:54:00:aa:cc:01 flags replace 52:54:00:aa:cc:03 flags"
	if got := strings.Join(r.kernel.WriteLog(), " "); got != want {
		t.Errorf("writes %q, want %q", got, want)
	}
}

// hookCall is one call of a hook in a table: its configuration, standard
// input, environment and arguments.
type hookCall struct {
	name  string
	cfg   string
	stdin []byte
	env   map[string]string
	args  []string
}

func TestFailures(t *testing.T) {
	noTarget := bytes.Replace(startXML, []byte("<target dev='vnet7'/>"), []byte("<target dev='vnet99'/>"), 1)
	for _, tc := range []struct {
		hookCall
		code   int
		stderr string
	}{
		{hookCall{"missing device", cfgBr0, noTarget, nil, []string{"t2", "start", "begin", "-"}}, host.ExitRefused,
			"fdbhook: t2: 52:54:00:aa:cc:03 on br0: device vnet99 does not exist\n"},
		{hookCall{"missing device warn", cfgBr0 + "on_error = \"warn\"\n", noTarget, nil, []string{"t2", "start", "begin", "-"}}, host.ExitOK,
			"on_error = \"warn\": the guest starts with its ports unmanaged"},
		{hookCall{"missing device reconnect", cfgBr0, noTarget, nil, []string{"t2", "reconnect", "begin", "-"}}, host.ExitOK,
			"could kill the guest"},
		{hookCall{"bad xml", cfgBr0, []byte("<domain>"), nil, []string{"t2", "start", "begin", "-"}}, host.ExitInput,
			"fdbhook: t2: bad domain XML: "},
		{hookCall{"empty stdin", cfgBr0, nil, nil, []string{"t2", "start", "begin", "-"}}, host.ExitInput,
			"fdbhook: t2: bad domain XML: standard input is empty\n"},
		{hookCall{"bad config", "on_error = 1\n", startXML, nil, []string{"t2", "start", "begin", "-"}}, host.ExitConfig,
			"fdbhook.toml: "},
		{hookCall{"bad config at stop", "on_error = 1\n", startXML, nil, []string{"t2", "stopped", "end", "-"}}, host.ExitOK,
			"fdbhook: error: stopped end: "},
		{hookCall{"bad log level env", cfgBr0, startXML, map[string]string{"FDBHOOK_LOG_LEVEL": "loud"}, []string{"t2", "start", "begin", "-"}}, host.ExitConfig,
			"FDBHOOK_LOG_LEVEL"},
		{hookCall{"no config", "", startXML, nil, []string{"t2", "start", "begin", "-"}}, host.ExitOK, ""},
		{hookCall{"too few args", cfgBr0, startXML, nil, []string{"t2", "start", "begin"}}, host.ExitUsage, "not a hook call: expected DOMAIN OPERATION SUB-OPERATION EXTRA, got 3 arguments"},
		{hookCall{"too many args", cfgBr0, startXML, nil, []string{"t2", "start", "begin", "-", "x"}}, host.ExitUsage, "got 5"},
		{hookCall{"no args", cfgBr0, nil, nil, nil}, host.ExitUsage, "got 0 arguments"},
		{hookCall{"admin command", cfgBr0, nil, nil, []string{"status"}}, host.ExitUsage, "see 'fdbhook --help'"},
		{hookCall{"explain", cfgBr0, startXML, nil, []string{"explain", "-"}}, host.ExitUsage, "'fdbhook COMMAND'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// t2's first MAC has roamed to the uplink: a stop that read the
			// configuration would delete it.
			r := runHook(t, (*Runner).RunQemu, "qemu-hook", tc.cfg, tc.stdin, tc.env,
				withRoamed(kerneltest.T2Host(), "52:54:00:aa:cc:01"), tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tc.code, r.stderr)
			}
			if tc.stderr == "" && r.stderr != "" {
				t.Errorf("stderr %q, want nothing", r.stderr)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tc.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if tc.code != host.ExitOK && strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
				t.Errorf("failure is not one line: %q", r.stderr)
			}
			if tc.code != host.ExitOK || strings.Contains(tc.name, "warn") || strings.Contains(tc.name, "reconnect") ||
				strings.Contains(tc.name, "at stop") {
				if len(r.kernel.WriteLog()) != 0 {
					t.Errorf("kernel written on failure: %v", r.kernel.WriteLog())
				}
			}
		})
	}
}

// TestRunCounts: runs are counted by operation, failed ones as failures
// too, whatever the failure (a kernel refusal, a bad configuration, bad
// input); ignored operations and dry runs are not counted.
func TestRunCounts(t *testing.T) {
	noTarget := bytes.Replace(startXML, []byte("<target dev='vnet7'/>"), []byte("<target dev='vnet99'/>"), 1)
	badMeta := bytes.Replace(startXML, []byte("<metadata>"),
		[]byte(`<metadata><fdbhook:fdb xmlns:fdbhook="urn:fdbhook:1" manage="maybe"/>`), 1)
	for _, tc := range []struct {
		hookCall
		want map[string]runstate.RunCount
	}{
		{hookCall{"start", "", startXML, nil, []string{"t2", "start", "begin", "-"}}, map[string]runstate.RunCount{"start": {Runs: 1}}},
		{hookCall{"bad config (exit 3)", "on_error = 1\n", startXML, nil, []string{"t2", "start", "begin", "-"}}, map[string]runstate.RunCount{"start": {Runs: 1, Failed: 1}}},
		{hookCall{"bad log level (exit 3)", "", startXML, map[string]string{"FDBHOOK_LOG_LEVEL": "loud"}, []string{"t2", "start", "begin", "-"}}, map[string]runstate.RunCount{"start": {Runs: 1, Failed: 1}}},
		{hookCall{"bad metadata (exit 4)", "", badMeta, nil, []string{"t2", "start", "begin", "-"}}, map[string]runstate.RunCount{"start": {Runs: 1, Failed: 1}}},
		{hookCall{"bad xml (exit 4)", "", []byte("<domain>"), nil, []string{"t2", "start", "begin", "-"}}, map[string]runstate.RunCount{"start": {Runs: 1, Failed: 1}}},
		{hookCall{"bad config at stop", "on_error = 1\n", startXML, nil, []string{"t2", "stopped", "end", "-"}}, map[string]runstate.RunCount{"stopped": {Runs: 1, Failed: 1}}},
		{hookCall{"failed start", "", noTarget, nil, []string{"t2", "start", "begin", "-"}}, map[string]runstate.RunCount{"start": {Runs: 1, Failed: 1}}},
		{hookCall{"failed reconnect", "", noTarget, nil, []string{"t2", "reconnect", "begin", "-"}}, map[string]runstate.RunCount{"reconnect": {Runs: 1, Failed: 1}}},
		{hookCall{"stopped", "", startXML, nil, []string{"t2", "stopped", "end", "-"}}, map[string]runstate.RunCount{"stopped": {Runs: 1}}},
		{hookCall{"migrate", "", startXML, nil, []string{"t2", "migrate", "begin", "-"}}, map[string]runstate.RunCount{"migrate": {Runs: 1}}},
		{hookCall{"ignored", "", startXML, nil, []string{"t2", "prepare", "begin", "-"}}, map[string]runstate.RunCount{}},
		{hookCall{"dry run", "", startXML, map[string]string{"FDBHOOK_DRY_RUN": "1"}, []string{"t2", "start", "begin", "-"}}, map[string]runstate.RunCount{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cfgBr0
			if tc.cfg != "" {
				cfg = tc.cfg
			}
			r := runQemu(t, cfg, tc.stdin, tc.env, tc.args...)
			got, err := r.runDir.HookRuns()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("counts %v, want %v (exit %d, stderr %q)", got, tc.want, r.code, r.stderr)
			}
			for op, c := range tc.want {
				if got[op] != c {
					t.Errorf("counts %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestDryRun(t *testing.T) {
	for _, args := range [][]string{{"t2", "start", "begin", "-"}, {"--dry-run", "t2", "start", "begin", "-"}} {
		env := map[string]string{}
		if args[0] != "--dry-run" {
			env["FDBHOOK_DRY_RUN"] = "1"
		}
		r := runQemu(t, cfgBr0, startXML, env, args...)
		if r.code != host.ExitOK || r.stdout != "" || len(r.kernel.WriteLog()) != 0 {
			t.Errorf("%v: exit %d stdout %q writes %v", args, r.code, r.stdout, r.kernel.WriteLog())
		}
		for _, want := range []string{"fdb replace 52:54:00:aa:cc:01 dev guest-t2-a master br0 static",
			"link set dev vnet7 learning off flood off", "skip   net3 52:54:00:aa:cc:05: type 'user' is never managed"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%v: dry run output lacks %q:\n%s", args, want, r.stderr)
			}
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	r := runQemu(t, "", nil, nil, "--help")
	if r.code != host.ExitOK || !strings.Contains(r.stdout, "qemu-hook DOMAIN OPERATION SUB-OPERATION EXTRA") || !strings.Contains(r.stdout, "Exit codes:") {
		t.Errorf("--help: %d %q", r.code, r.stdout)
	}
	r = runQemu(t, "", nil, nil, "--version")
	if r.code != host.ExitOK || !strings.HasPrefix(r.stdout, "qemu-hook (fdbhook) ") {
		t.Errorf("--version: %d %q", r.code, r.stdout)
	}
}

// An operation the table ignores must not read the configuration or set up
// logging: a broken file and a bad log level go unnoticed there, and are
// errors for start begin.
func TestIgnoredOpsReadNothing(t *testing.T) {
	env := map[string]string{"FDBHOOK_LOG_LEVEL": "loud"}
	for _, tc := range []struct {
		op, subop string
		code      int
	}{
		{"prepare", "begin", host.ExitOK}, {"started", "begin", host.ExitOK}, {"shutdown", "begin", host.ExitOK},
		{"start", "begin", host.ExitConfig},
	} {
		r := runQemu(t, "on_error = 1\n", startXML, env, "t2", tc.op, tc.subop, "-")
		if r.code != tc.code || r.opened {
			t.Errorf("%s %s: exit %d (want %d), kernel opened %v, stderr %q", tc.op, tc.subop, r.code, tc.code, r.opened, r.stderr)
		}
		if tc.code == host.ExitOK && r.stderr != "" {
			t.Errorf("%s %s: stderr %q, want nothing", tc.op, tc.subop, r.stderr)
		}
	}
}

// TestNetworkHookFailuresCounted: a network start the hook fails (a bad
// configuration, exit 3) is counted as network-start.
func TestNetworkHookFailuresCounted(t *testing.T) {
	netXML, err := os.ReadFile("../../testdata/libvirt-9.0/network-hostbr-start-begin.xml")
	if err != nil {
		t.Fatal(err)
	}
	r := runHook(t, (*Runner).RunNetwork, "network-hook", "on_error = 1\n", netXML, nil, kerneltest.T2Host(), "hostbr", "start", "begin", "-")
	if r.code != host.ExitConfig {
		t.Fatalf("exit %d, want %d (stderr %q)", r.code, host.ExitConfig, r.stderr)
	}
	got, err := r.runDir.HookRuns()
	if err != nil {
		t.Fatal(err)
	}
	if want := (runstate.RunCount{Runs: 1, Failed: 1}); len(got) != 1 || got["network-start"] != want {
		t.Errorf("counts %v, want network-start %v", got, want)
	}
}
