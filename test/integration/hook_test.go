package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/hook"
	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/runstate"
	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// defaultConfig manages br0.
const defaultConfig = "bridges = [\"br0\"]\n"

// fixture reads a libvirt 9.0 capture from testdata.
func fixture(t *testing.T, name string) []byte { return testlab.Recorded(t, "libvirt-9.0", name) }

// call is one run of the qemu-hook binary.
type call struct {
	// Args are the arguments after the program name.
	Args []string
	// Stdin is the hook's standard input.
	Stdin []byte
	// Config is the configuration file's text; defaultConfig when empty
	// and ConfigPath is empty too.
	Config string
	// ConfigPath, when set, is passed as FDBHOOK_CONFIG as is.
	ConfigPath string
	// Env is added to the minimal environment libvirt would pass.
	Env []string
	// Live, when not nil, runs the hook with a private /run holding
	// /run/libvirt/qemu/<name>.xml for each entry (the live XML of
	// running guests), so nothing of the host's libvirt is seen.
	Live map[string]string
	// Stdout may be written (--help, --version); hook mode never may.
	Stdout bool
}

// result is what a run of the binary gave.
type result = testlab.Result

// hook runs the real binary inside the namespace, as libvirt would, and
// checks that hook mode printed nothing on stdout.
func (l *lab) hook(t *testing.T, c call) result {
	t.Helper()
	r, err := l.runHook(t.TempDir(), c)
	if err != nil {
		t.Fatalf("qemu-hook %s: %v", strings.Join(c.Args, " "), err)
	}
	if !c.Stdout && r.Stdout != "" {
		t.Errorf("qemu-hook %s wrote to stdout (libvirt reads it as domain XML for migrate/restore): %q",
			strings.Join(c.Args, " "), r.Stdout)
	}
	return r
}

// runHook is hook without the checks, safe to call from goroutines.
func (l *lab) runHook(tmp string, c call) (result, error) {
	cfgPath := c.ConfigPath
	if cfgPath == "" {
		cfg := c.Config
		if cfg == "" {
			cfg = defaultConfig
		}
		cfgPath = filepath.Join(tmp, "fdbhook.toml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			return result{}, err
		}
	}
	var args []string
	if c.Live != nil {
		dir := filepath.Join(tmp, "live")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return result{}, err
		}
		for name, xml := range c.Live {
			if err := os.WriteFile(filepath.Join(dir, name+".xml"), []byte(xml), 0o600); err != nil {
				return result{}, err
			}
		}
		args = testlab.PrivateRun(dir)
	}
	args = append(args, suite.Bin("qemu-hook"))
	args = append(args, c.Args...)
	return l.Run(c.Stdin, testlab.HookEnv(cfgPath, append([]string{"FDBHOOK_LOCK=" + l.lock}, c.Env...)...), args...)
}

// start runs `qemu-hook NAME start begin -` with xml and the default
// configuration and requires exit 0.
func (l *lab) start(t *testing.T, name string, xml []byte) result {
	t.Helper()
	r := l.hook(t, call{Args: []string{name, "start", "begin", "-"}, Stdin: xml})
	if r.Code != 0 {
		t.Fatalf("start of %s: %s", name, r)
	}
	return r
}

// expectExit fails t unless r exited with code.
func expectExit(t *testing.T, r result, code int) {
	t.Helper()
	if r.Code != code {
		t.Errorf("want exit %d, got %s", code, r)
	}
}

// expectStderr fails t unless stderr contains every part.
func expectStderr(t *testing.T, r result, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(r.Stderr, p) {
			t.Errorf("stderr does not contain %q: %q", p, r.Stderr)
		}
	}
}

// failureLine checks the contract for a failed hook run: stderr is exactly
// one line, "fdbhook: <domain>: <mac> on <bridge>: <cause>".
func failureLine(t *testing.T, r result, prefix string, parts ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
	if len(lines) != 1 {
		t.Errorf("want one stderr line starting %q, got %d lines: %q", prefix, len(lines), r.Stderr)
	}
	var line string
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			line = l
		}
	}
	if line == "" {
		t.Errorf("no stderr line starts with %q: %q", prefix, r.Stderr)
		return
	}
	for _, p := range parts {
		if !strings.Contains(line, p) {
			t.Errorf("failure line %q does not contain %q", line, p)
		}
	}
}

// nic is one <interface> of a generated domain.
type nic struct {
	Type        string // default "bridge"
	MAC         string // no <mac> when ""
	Bridge      string // <source bridge>
	Network     string // <source network>
	Target      string // no <target> when ""
	VirtualPort string
	Extra       string // raw XML inside <interface>
}

// domain renders live domain XML like libvirt 9.0 passes to the hook.
func domain(name, metadata string, nics ...nic) []byte {
	d := testlab.Domain{Name: name, Type: "qemu", ID: 7, UUID: uuidFor(name), Metadata: metadata,
		Body: "  <memory unit='KiB'>65536</memory>\n  <vcpu placement='static'>1</vcpu>\n" +
			"  <os>\n    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>\n  </os>\n",
		Devices: "    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"}
	for _, n := range nics {
		d.NICs = append(d.NICs, testlab.NIC{Type: n.Type, MAC: n.MAC, Bridge: n.Bridge, Network: n.Network, Target: n.Target,
			VirtualPort: n.VirtualPort, Model: "virtio", Extra: n.Extra, Alias: "-"})
	}
	return []byte(d.XML())
}

// stopped returns nics as libvirt passes them at stop: no target devices.
func stopped(nics ...nic) []nic {
	out := make([]nic, len(nics))
	for i, n := range nics {
		n.Target = ""
		out[i] = n
	}
	return out
}

// domstatus wraps domain XML the way libvirt's live state files do.
func domstatus(dom []byte) string {
	return "<domstatus state='running' reason='booted' pid='4242'>\n  <taint flag='custom-argv'/>\n" +
		string(dom) + "</domstatus>\n"
}

func uuidFor(name string) string {
	var h uint64 = 14695981039346656037
	for _, c := range []byte(name) {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(h>>32), uint16(h>>16), uint16(h)&0xfff, uint16(h>>4)&0xfff, h&0xffffffffffff)
}

// inProcess runs the hook package in this process against the namespace,
// with libvirt's live XML read from qemuRunDir and a private lock file:
// the path the binary would take, with the paths a test can point.
type inProcess struct {
	l          *lab
	config     string
	qemuRunDir string
	netDir     string
	lockPath   string
	lockWait   time.Duration
	// wrap, when set, wraps each run's kernel connection (to slow it down).
	wrap func(model.Kernel) model.Kernel
}

func (l *lab) inProcess(t *testing.T, config string) *inProcess {
	t.Helper()
	dir := t.TempDir()
	p := &inProcess{l: l, config: filepath.Join(dir, "fdbhook.toml"), qemuRunDir: filepath.Join(dir, "qemu"),
		netDir: filepath.Join(dir, "network"), lockPath: filepath.Join(dir, "lock"), lockWait: 5 * time.Second}
	for _, d := range []string{p.qemuRunDir, p.netDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(p.config, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// live writes a running guest's live XML.
func (p *inProcess) live(t *testing.T, name string, dom []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(p.qemuRunDir, name+".xml"), []byte(domstatus(dom)), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (p *inProcess) run(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	r := &hook.Runner{Env: host.Env{
		Program: "qemu-hook",
		Stdin:   bytes.NewReader(stdin),
		Stdout:  &stdout,
		Stderr:  &stderr,
		Host: host.Host{
			Config:  p.config,
			RunDir:  runstate.Dir(filepath.Join(filepath.Dir(p.config), "run")),
			Libvirt: libvirt.Paths{NetworkDirs: []string{p.netDir}, QemuRunDir: p.qemuRunDir},
			Lock:    p.lockPath, LockTimeout: p.lockWait,
		},
		OpenKernel: func() (model.Kernel, error) {
			k, err := kernel.Open(p.l.NetNS, time.Second)
			if err != nil || p.wrap == nil {
				return k, err
			}
			return p.wrap(k), nil
		},
	}}
	start := time.Now()
	code := r.RunQemu(args)
	res := result{Code: code, Stdout: stdout.String(), Stderr: stderr.String(), Took: time.Since(start)}
	if res.Stdout != "" {
		t.Errorf("in-process qemu-hook %s wrote to stdout: %q", strings.Join(args, " "), res.Stdout)
	}
	return res
}
