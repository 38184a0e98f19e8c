package hook

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/test/lab"
)

// newLxcKernel: bridge fdbtlxbr0 with the captured container's two host
// veths, fdbtlxv1a and vnet1, whose peers live in namespace id peerNS, a
// veth uplink fdbtlxup0 whose peer is in the host's namespace, a tap
// vnet7, an uplink eno1 where the container's first MAC has roamed, and
// the container's init (pid 31023) in namespace id 0.
func newLxcKernel(peerNS int) *kerneltest.Kernel {
	k := kerneltest.New()
	k.Add(kerneltest.Bridge("fdbtlxbr0"))
	for _, v := range []struct {
		name string
		peer int
	}{{"fdbtlxv1a", peerNS}, {"vnet1", peerNS}, {"fdbtlxup0", -1}} {
		l := kerneltest.Veth(v.name, "fdbtlxbr0", kerneltest.Learning)
		l.PeerNetnsID = v.peer
		k.Add(l)
	}
	k.Add(kerneltest.Tap("vnet7", "fdbtlxbr0", kerneltest.Learning))
	k.Add(kerneltest.Uplink("eno1", "fdbtlxbr0"))
	k.AddStatic("52:54:00:4c:58:01", "eno1")
	k.SetNetnsID(31023, 0)
	return k
}

func lxcFixture(t *testing.T, name string) []byte { return lab.Recorded(t, "libvirt-9.0-lxc", name) }

// runLxc runs the lxc hook with libvirt's live state file state (none when
// "") and the controller 31022 having the container's init 31023 as its
// child, as at started begin.
func runLxc(t *testing.T, cfg, state string, stdin []byte, env map[string]string, k *kerneltest.Kernel, args ...string) run {
	t.Helper()
	dir := t.TempDir()
	if cfg != "" {
		os.WriteFile(filepath.Join(dir, "fdbhook.toml"), []byte(cfg), 0o644)
	}
	lxcDir, proc := filepath.Join(dir, "lxc"), filepath.Join(dir, "proc")
	for path, data := range map[string][]byte{filepath.Join(proc, "31022", "task", "31022", "children"): []byte("31023 ")} {
		os.MkdirAll(filepath.Dir(path), 0o755)
		os.WriteFile(path, data, 0o644)
	}
	os.MkdirAll(lxcDir, 0o755)
	if state != "" {
		os.WriteFile(filepath.Join(lxcDir, "fdbtlxc1.xml"), lxcFixture(t, state), 0o644)
	}
	return newTestRun(dir, "lxc-hook", stdin, env, k).call((*Runner).RunLxc, args)
}

const (
	cfgLxc      = "bridges = [\"fdbtlxbr0\"]\n"
	lxcApplied  = "replace 52:54:00:4c:58:01 flags replace 52:54:00:4c:58:02 flags"
	startedLive = "run-lxc-fdbtlxc1-at-started-begin.xml"
	reconnLive  = "run-lxc-fdbtlxc1-at-reconnect-begin.xml"
)

// TestLxcOperationTable: started and reconnect apply to both veths (the
// init from the controller's child at started, from the live state at
// reconnect), stopped and release clean up a roamed entry, everything
// else, start begin included, writes nothing.
func TestLxcOperationTable(t *testing.T) {
	for _, tc := range []struct {
		op, subop, state string
		writes           string
	}{
		{"started", "begin", startedLive, lxcApplied}, {"reconnect", "begin", reconnLive, lxcApplied},
		{"stopped", "end", reconnLive, "delete 52:54:00:4c:58:01"}, {"release", "end", "", "delete 52:54:00:4c:58:01"},
		{"prepare", "begin", "", ""}, {"start", "begin", "", ""}, {"started", "end", startedLive, ""},
	} {
		k := newLxcKernel(0)
		stdin := lxcFixture(t, "lxc-fdbtlxc1-started-begin.xml")
		if tc.op != "started" {
			stdin = lxcFixture(t, "lxc-fdbtlxc1-"+tc.op+"-"+tc.subop+".xml")
		}
		r := runLxc(t, cfgLxc, tc.state, stdin, nil, k, "fdbtlxc1", tc.op, tc.subop, "-")
		if r.code != host.ExitOK || r.stdout != "" || r.stderr != "" {
			t.Errorf("%s %s: exit %d stdout %q stderr %q", tc.op, tc.subop, r.code, r.stdout, r.stderr)
		}
		if got := strings.Join(r.kernel.WriteLog(), " "); got != tc.writes {
			t.Errorf("%s %s: kernel writes %q, want %q", tc.op, tc.subop, got, tc.writes)
		}
	}
}

// TestLxcRefusals: a veth that is not provably the container's is refused
// with one line naming it and the reason, and nothing is written; at
// reconnect the refusal is logged and the hook exits 0.
func TestLxcRefusals(t *testing.T) {
	started := lxcFixture(t, "lxc-fdbtlxc1-started-begin.xml")
	uplinkTarget := bytes.Replace(started, []byte("<target dev='vnet1'/>"), []byte("<target dev='fdbtlxup0'/>"), 1)
	tapTarget := bytes.Replace(started, []byte("<target dev='vnet1'/>"), []byte("<target dev='vnet7'/>"), 1)
	for _, tc := range []struct {
		name, state, op string
		stdin           []byte
		peerNS          int
		code            int
		stderr          string
	}{
		{"peer in the host namespace", startedLive, "started", started, -1, host.ExitRefused,
			"fdbhook: fdbtlxc1: 52:54:00:4c:58:01 on fdbtlxbr0: veth fdbtlxv1a has its peer in the host's network namespace, not in the container's (init pid 31023): refusing to touch it; "},
		{"peer in another namespace", startedLive, "started", started, 3, host.ExitRefused,
			"veth fdbtlxv1a has its peer in network namespace id 3, not in the container's (init pid 31023)"},
		{"uplink veth as target", startedLive, "started", uplinkTarget, 0, host.ExitRefused,
			"52:54:00:4c:58:02 on fdbtlxbr0: veth fdbtlxup0 has its peer in the host's network namespace"},
		{"tap as target", startedLive, "started", tapTarget, 0, host.ExitRefused,
			"vnet7 is a tap, not a container's veth: refusing to touch it"},
		{"no live state", "", "started", started, 0, host.ExitRefused,
			"cannot prove veth fdbtlxv1a is the container's: libvirt has no live state for container fdbtlxc1"},
		{"refused at reconnect", reconnLive, "reconnect", started, -1, host.ExitOK, "could kill the guest"},
		{"warn", startedLive, "started", started, -1, host.ExitOK, "on_error = \"warn\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newLxcKernel(tc.peerNS)
			cfg := cfgLxc
			if tc.name == "warn" {
				cfg += "on_error = \"warn\"\n"
			}
			r := runLxc(t, cfg, tc.state, tc.stdin, nil, k, "fdbtlxc1", tc.op, "begin", "-")
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) || r.stdout != "" {
				t.Errorf("exit %d stderr %q stdout %q; want exit %d, stderr with %q", r.code, r.stderr, r.stdout, tc.code, tc.stderr)
			}
			if tc.code != host.ExitOK && strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
				t.Errorf("failure is not one line: %q", r.stderr)
			}
			if len(r.kernel.WriteLog()) != 0 {
				t.Errorf("kernel written: %v", r.kernel.WriteLog())
			}
		})
	}
}

// TestLxcUnmanagedAndDry: a container on a bridge the configuration does
// not list is left alone, with its init not even looked for; a dry run
// prints the plan to stderr and writes nothing.
func TestLxcUnmanagedAndDry(t *testing.T) {
	started := lxcFixture(t, "lxc-fdbtlxc1-started-begin.xml")
	r := runLxc(t, cfgBr0, "", started, nil, newLxcKernel(-1), "fdbtlxc1", "started", "begin", "-")
	if r.code != host.ExitOK || r.stderr != "" || len(r.kernel.WriteLog()) != 0 {
		t.Errorf("unmanaged bridge: exit %d stderr %q writes %v", r.code, r.stderr, r.kernel.WriteLog())
	}
	r = runLxc(t, cfgLxc, startedLive, started, map[string]string{"FDBHOOK_DRY_RUN": "1"}, newLxcKernel(0), "fdbtlxc1", "started", "begin", "-")
	want := "do     interface 0: fdb replace 52:54:00:4c:58:01 dev fdbtlxv1a master fdbtlxbr0 static"
	if r.code != host.ExitOK || !strings.Contains(r.stderr, want) || len(r.kernel.WriteLog()) != 0 || r.stdout != "" {
		t.Errorf("dry run: exit %d writes %v stderr %q, want %q", r.code, r.kernel.WriteLog(), r.stderr, want)
	}
}

func TestLxcHelp(t *testing.T) {
	r := runLxc(t, "", "", nil, nil, newLxcKernel(0), "--help")
	if r.code != host.ExitOK || !strings.Contains(r.stdout, "/etc/libvirt/hooks/lxc.d/fdbhook") || !strings.Contains(r.stdout, "started begin") {
		t.Errorf("--help: exit %d stdout %q", r.code, r.stdout)
	}
	r = runLxc(t, "", "", nil, nil, newLxcKernel(0), "--version")
	if r.code != host.ExitOK || !strings.HasPrefix(r.stdout, "lxc-hook (fdbhook) ") {
		t.Errorf("--version: exit %d stdout %q", r.code, r.stdout)
	}
}
