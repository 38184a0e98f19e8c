package migration

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// suite holds private copies of the binaries the hosts run.
var suite = &testlab.Suite{Name: "migration", Tag: "mig", Programs: []string{"qemu-hook", "fdbhook"},
	// FDBHOOK_MIGRATION_HOOK runs the suite against another build (an
	// earlier release, to measure what it did).
	BinEnv: "FDBHOOK_MIGRATION_HOOK"}

// reaperBin is the reaper, built once by TestMain in reaperDir.
var reaperBin, reaperDir string

func TestMain(m *testing.M) {
	ci := os.Getenv("CI") == "true"
	if os.Geteuid() == 0 {
		sweep()
	}
	if why := missing(); why != "" {
		if ci {
			fmt.Fprintf(os.Stderr, "migration: cannot set up the two-host harness: %s (CI=true: failing)\n", why)
			os.Exit(1)
		}
		fmt.Printf("migration: every test will skip: %s\n", why)
	} else {
		dir, err := os.MkdirTemp("", "fdbt-mig-reaper-")
		if err == nil {
			reaperDir = dir
			reaperBin = filepath.Join(dir, "reaper")
			cmd := exec.Command("go", "build", "-o", reaperBin, "./reaper")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, berr := cmd.CombinedOutput(); berr != nil {
				err = fmt.Errorf("building the reaper: %v: %s", berr, out)
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "migration: %v\n", err)
			os.Exit(1)
		}
	}
	code := suite.Main(m)
	printFigures()
	if reaperDir != "" {
		os.RemoveAll(reaperDir) // os.Exit skips deferred calls
	}
	os.Exit(code)
}

// missing says what the harness lacks on this machine, or "".
func missing() string {
	if os.Geteuid() != 0 {
		return fmt.Sprintf("needs root (euid %d)", os.Geteuid())
	}
	for _, tool := range []string{"libvirtd", "virtlogd", "virsh", "qemu-system-x86_64", "ip", "bridge", "unshare", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("%s not found (test/migration/run.sh installs libvirt and QEMU)", tool)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return "no /dev/net/tun"
	}
	return ""
}

// need skips t, or fails it under CI=true, when the harness cannot run.
func need(t *testing.T) {
	t.Helper()
	if why := missing(); why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot set up the two-host harness: %s", why)
		}
		t.Skip(why)
	}
}

// sweep removes what runs of this suite that died left behind: the
// processes in their network namespaces, then the namespaces.
func sweep() {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), "fdbt-mig-")
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		if pid, err := strconv.Atoi(pidStr); err != nil || pid == os.Getpid() {
			continue
		} else if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue
		}
		killNamespace(e.Name())
		exec.Command("ip", "netns", "del", e.Name()).Run()
		fmt.Printf("migration: removed %s, left by a run that died\n", e.Name())
	}
}

// killNamespace kills every process in a network namespace and returns
// how many there were.
func killNamespace(name string) int {
	out, _ := exec.Command("ip", "netns", "pids", name).Output()
	pids := strings.Fields(string(out))
	for _, p := range pids {
		if pid, err := strconv.Atoi(p); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return len(pids)
}

// Host is one libvirt host of a pair.
type Host struct {
	Name string // "a" or "b"
	// Hostname is the host's name in its UTS namespace.
	Hostname string
	// Dir holds the host's private directories.
	Dir string
	// Net is the host's network namespace (br0, up0, nb0, mig0); Nb the
	// neighbour's (eth0, on br0 through nb0).
	Net, Nb *testlab.Namespace
	// URI reaches the host's libvirtd.
	URI string
	// Addr is the host's address on the migration link.
	Addr string

	reaper *exec.Cmd
	done   chan error
	events *eventLog
}

// Pair is two hosts joined by their uplinks.
type Pair struct {
	A, B *Host
	// Setup is the time the pair took to come up, daemons answering.
	Setup time.Duration
}

// Hosts returns the hosts, the one named first.
func (p *Pair) Hosts() []*Host { return []*Host{p.A, p.B} }

// Other returns the host that is not h.
func (p *Pair) Other(h *Host) *Host {
	if h == p.A {
		return p.B
	}
	return p.A
}

const fdbhookConfig = "bridges = [\"br0\"]\nlog_level = \"debug\"\n"

// NewPair builds two hosts for t, torn down when t ends.
func NewPair(t *testing.T) *Pair {
	t.Helper()
	need(t)
	t0 := time.Now()
	base := suite.NextName()
	p := &Pair{}
	for i, name := range []string{"a", "b"} {
		h := &Host{Name: name, Hostname: "fdbmig-" + name, Addr: fmt.Sprintf("10.77.0.%d", i+1)}
		h.Net = testlab.NewNamespace(t, base+"-"+name)
		h.Nb = testlab.NewNamespace(t, base+"-n"+name)
		if name == "a" {
			p.A = h
		} else {
			p.B = h
		}
	}
	// Links: uplinks and the migration link join the hosts, nb0/eth0 each
	// host's neighbour.
	ipx(t, "link", "add", "up0", "netns", p.A.Net.Name, "type", "veth", "peer", "name", "up0", "netns", p.B.Net.Name)
	ipx(t, "link", "add", "mig0", "netns", p.A.Net.Name, "type", "veth", "peer", "name", "mig0", "netns", p.B.Net.Name)
	for i, h := range p.Hosts() {
		ipx(t, "link", "add", "nb0", "netns", h.Net.Name, "type", "veth", "peer", "name", "eth0", "netns", h.Nb.Name)
		h.Net.Batch("ip", []string{
			"link set lo up",
			"link add br0 type bridge",
			"link set br0 up",
			"link set up0 master br0",
			"link set up0 up",
			"link set nb0 master br0",
			"link set nb0 up",
			fmt.Sprintf("addr add %s/24 dev mig0", h.Addr),
			"link set mig0 up",
		})
		h.Nb.Batch("ip", []string{
			"link set lo up",
			fmt.Sprintf("link set eth0 address 02:fd:b0:00:0b:%02x", i+1),
			"link set eth0 up",
		})
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, h := range p.Hosts() {
		if err := h.prepare(t); err != nil {
			t.Fatalf("host %s: %v", h.Name, err)
		}
		t.Cleanup(func() { h.teardown(t) })
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = h.start() }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("host %s: %v", p.Hosts()[i].Name, err)
		}
	}
	for _, h := range p.Hosts() {
		ev, err := watchEvents(h)
		if err != nil {
			t.Fatalf("host %s: %v", h.Name, err)
		}
		h.events = ev
	}
	p.Setup = time.Since(t0)
	figure(t, "harness set-up (two hosts, daemons answering): %v", p.Setup.Round(time.Millisecond))
	return p
}

func ipx(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// prepare writes the host's private directories.
func (h *Host) prepare(t *testing.T) error {
	dir, err := os.MkdirTemp("", "fdbt-mig-"+h.Name+"-")
	if err != nil {
		return err
	}
	h.Dir = dir
	h.URI = "qemu+unix:///system?socket=" + filepath.Join(dir, "run-libvirt", "libvirt-sock")
	for _, d := range []string{"run-libvirt", "lib-libvirt", "log-libvirt", "etc-fdbhook", "run-fdbhook", "etc-upper", "etc-work"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	os.Chmod(dir, 0o755)
	for _, cp := range [][2]string{{"/etc/libvirt", "etc-libvirt"}, {"/var/cache/libvirt", "cache-libvirt"}} {
		if out, err := exec.Command("cp", "-a", cp[0], filepath.Join(dir, cp[1])).CombinedOutput(); err != nil {
			return fmt.Errorf("copying %s: %v: %s", cp[0], err, out)
		}
	}
	etc := filepath.Join(dir, "etc-libvirt")
	// The machine's own guests, networks, storage pools and hooks are not
	// this host's.
	for _, pattern := range []string{"qemu/*.xml", "qemu/autostart", "qemu/networks/*.xml", "qemu/networks/autostart",
		"storage", "hooks", "secrets", "lxc"} {
		matches, _ := filepath.Glob(filepath.Join(etc, pattern))
		for _, m := range matches {
			if err := os.RemoveAll(m); err != nil {
				return err
			}
		}
	}
	var uuid [16]byte
	rand.Read(uuid[:])
	uuid[6] = uuid[6]&0x0f | 0x40
	uuid[8] = uuid[8]&0x3f | 0x80
	if err := appendFile(filepath.Join(etc, "libvirtd.conf"), fmt.Sprintf("\nhost_uuid = \"%x-%x-%x-%x-%x\"\n", uuid[0:4], uuid[4:6], uuid[6:8], uuid[8:10], uuid[10:])); err != nil {
		return err
	}
	// Both daemons would name their first guest's cgroup alike.
	if err := appendFile(filepath.Join(etc, "qemu.conf"), "\ncgroup_controllers = [ ]\n"); err != nil {
		return err
	}
	hooks := filepath.Join(etc, "hooks", "qemu.d")
	if err := os.MkdirAll(hooks, 0o755); err != nil {
		return err
	}
	if err := os.Symlink(suite.Bin("qemu-hook"), filepath.Join(hooks, "fdbhook")); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "etc-fdbhook", "fdbhook.toml"), []byte(fdbhookConfig), 0o644)
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	return errors.Join(err, f.Close())
}

// start runs host.sh under the reaper in the host's namespaces and waits
// for libvirtd to answer.
func (h *Host) start() error {
	log, err := os.Create(filepath.Join(h.Dir, "reaper.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	script, _ := filepath.Abs("host.sh")
	h.reaper = exec.Command("ip", "netns", "exec", h.Net.Name,
		"unshare", "--mount", "--uts", "--propagation", "private", reaperBin, script, h.Dir, h.Hostname)
	h.reaper.Stdout, h.reaper.Stderr = log, log
	if err := h.reaper.Start(); err != nil {
		return err
	}
	h.done = make(chan error, 1)
	go func() { h.done <- h.reaper.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if out, err := exec.Command("virsh", "-q", "-c", h.URI, "hostname").Output(); err == nil {
			if got := strings.TrimSpace(string(out)); got != h.Hostname {
				return fmt.Errorf("libvirtd says its hostname is %q, want %q", got, h.Hostname)
			}
			return nil
		}
		select {
		case err := <-h.done:
			h.done <- err
			data, _ := os.ReadFile(filepath.Join(h.Dir, "reaper.log"))
			out, _ := os.ReadFile(filepath.Join(h.Dir, "libvirtd.out"))
			return fmt.Errorf("the host's daemons exited (%v): %s%s", err, data, out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("libvirtd does not answer on %s after 60 s", h.URI)
}

// teardown destroys the host's guests (their stop hooks run), stops its
// daemons and every process below the reaper, and checks nothing is left.
func (h *Host) teardown(t *testing.T) {
	t0 := time.Now()
	defer func() { t.Logf("host %s: teardown %v", h.Name, time.Since(t0).Round(time.Millisecond)) }()
	if h.events != nil {
		h.events.stop()
	}
	if h.reaper != nil && h.reaper.Process != nil {
		if out, err := exec.Command("virsh", "-q", "-c", h.URI, "list", "--all", "--name").Output(); err == nil {
			for _, g := range strings.Fields(string(out)) {
				exec.Command("virsh", "-q", "-c", h.URI, "destroy", g).Run()
				exec.Command("virsh", "-q", "-c", h.URI, "undefine", g).Run()
			}
		}
		h.reaper.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.done:
		case <-time.After(20 * time.Second):
			t.Errorf("host %s: the reaper did not end within 20 s of SIGTERM: killing", h.Name)
			h.reaper.Process.Kill()
		}
	}
	if n := killNamespace(h.Net.Name); n > 0 {
		t.Errorf("host %s: %d processes were left in %s after teardown (killed)", h.Name, n, h.Net.Name)
	}
	if h.Dir != "" {
		if t.Failed() {
			for _, f := range []string{"reaper.log", "libvirtd.out", "log-libvirt/qemu"} {
				logs, _ := exec.Command("sh", "-c", "tail -n 30 "+filepath.Join(h.Dir, f)+"/* "+filepath.Join(h.Dir, f)+" 2>/dev/null").Output()
				if len(logs) > 0 {
					t.Logf("host %s: %s:\n%s", h.Name, f, logs)
				}
			}
		}
		os.RemoveAll(h.Dir)
	}
}

// Virsh runs virsh against the host and returns its trimmed output.
func (h *Host) Virsh(args ...string) (string, error) {
	out, err := exec.Command("virsh", append([]string{"-q", "-c", h.URI}, args...)...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, fmt.Errorf("virsh %s on host %s: %v: %s", strings.Join(args, " "), h.Name, err, s)
	}
	return s, nil
}

// MustVirsh is Virsh failing t on error.
func (h *Host) MustVirsh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := h.Virsh(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Fdbhook runs the installed admin command in the host's namespaces, as an
// admin on that host would.
func (h *Host) Fdbhook(args ...string) (string, error) {
	pid, err := os.ReadFile(filepath.Join(h.Dir, "libvirtd.pid"))
	if err != nil {
		return "", err
	}
	full := append([]string{"-t", strings.TrimSpace(string(pid)), "-m", "-u", "-n", "--", suite.Bin("fdbhook")}, args...)
	out, err := exec.Command("nsenter", full...).CombinedOutput()
	return string(out), err
}

// State returns the host's guests as `virsh list --all`.
func (h *Host) State(guest string) string {
	out, err := h.Virsh("domstate", guest, "--reason")
	if err != nil {
		return "absent"
	}
	return out
}

// Marks lists the files in the host's fdbhook migration directory.
func (h *Host) Marks() []string {
	ents, _ := os.ReadDir(filepath.Join(h.Dir, "run-fdbhook", "migration"))
	var out []string
	for _, e := range ents {
		data, _ := os.ReadFile(filepath.Join(h.Dir, "run-fdbhook", "migration", e.Name()))
		out = append(out, e.Name()+": "+strings.TrimSpace(string(data)))
	}
	return out
}

// Bridge runs iproute2's bridge in the host's network namespace.
func (h *Host) Bridge(t *testing.T, args ...string) string {
	t.Helper()
	return h.Net.Bridge(args...)
}

// event is one lifecycle event of a host's guest.
type event struct {
	At     time.Time
	Guest  string
	What   string // e.g. "Resumed Migrated"
	Source string // host name
}

// eventLog collects `virsh event --all --loop --timestamp` of one host.
type eventLog struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	all []event
}

func watchEvents(h *Host) (*eventLog, error) {
	l := &eventLog{cmd: exec.Command("virsh", "-c", h.URI, "event", "--all", "--loop", "--timestamp")}
	out, err := l.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := l.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		// 2026-11-30 03:58:01.123+0000: event 'lifecycle' for domain 'g': Resumed Migrated
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			ts, rest, ok := strings.Cut(line, ": event '")
			if !ok {
				continue
			}
			at, err := time.Parse("2006-01-02 15:04:05.000-0700", ts)
			if err != nil {
				continue
			}
			kind, rest, _ := strings.Cut(rest, "'")
			if kind != "lifecycle" {
				continue
			}
			_, rest, _ = strings.Cut(rest, "domain '")
			guest, what, _ := strings.Cut(rest, "': ")
			l.mu.Lock()
			l.all = append(l.all, event{At: at, Guest: guest, What: what, Source: h.Name})
			l.mu.Unlock()
		}
	}()
	return l, nil
}

func (l *eventLog) stop() {
	if l.cmd.Process != nil {
		l.cmd.Process.Kill()
		l.cmd.Wait()
	}
}

// Since returns the events at or after t.
func (l *eventLog) Since(t time.Time) []event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []event
	for _, e := range l.all {
		if !e.At.Before(t) {
			out = append(out, e)
		}
	}
	return out
}

// WaitFor waits up to wait for an event of guest whose description starts
// with what, at or after t.
func (l *eventLog) WaitFor(guest, what string, t time.Time, wait time.Duration) (event, bool) {
	deadline := time.Now().Add(wait)
	for {
		for _, e := range l.Since(t) {
			if e.Guest == guest && strings.HasPrefix(e.What, what) {
				return e, true
			}
		}
		if time.Now().After(deadline) {
			return event{}, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// figures collects every figure the suite prints, to repeat them at the end.
var (
	figMu   sync.Mutex
	figList []string
)

// figure prints one measured figure and keeps it for the summary.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	s := fmt.Sprintf(format, args...)
	t.Log(s)
	figMu.Lock()
	figList = append(figList, t.Name()+": "+s)
	figMu.Unlock()
}

func printFigures() {
	figMu.Lock()
	defer figMu.Unlock()
	if len(figList) == 0 {
		return
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "migration: figures (%s)\n", time.Now().UTC().Format(time.RFC3339))
	for _, f := range figList {
		fmt.Fprintf(&b, "  %s\n", f)
	}
	os.Stdout.Write(b.Bytes())
}

// WatchLog returns the lines the host's watcher (StartWatcher) logged.
func (h *Host) WatchLog(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(h.Dir, "watch.log"))
	if err != nil {
		t.Fatalf("host %s: %v", h.Name, err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// StartWatcher runs `fdbhook watch` in the host's namespaces until t ends,
// and waits until it holds its lock (/run/fdbhook/watch.lock, private to
// the host).
func (h *Host) StartWatcher(t *testing.T) {
	t.Helper()
	pid, err := os.ReadFile(filepath.Join(h.Dir, "libvirtd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(h.Dir, "watch.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "-t", strings.TrimSpace(string(pid)), "-m", "-u", "-n", "--", suite.Bin("fdbhook"), "watch")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); log.Close() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("host %s: the watcher did not stop within 10 s of SIGTERM", h.Name)
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(h.Dir, "watch.log"))
			t.Logf("host %s: watch.log:\n%s", h.Name, data)
		}
	})
	lock := filepath.Join(h.Dir, "run-fdbhook", "watch.lock")
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			data, _ := os.ReadFile(filepath.Join(h.Dir, "watch.log"))
			t.Fatalf("host %s: the watcher exited: %v\n%s", h.Name, err, data)
		default:
		}
		if f, err := os.Open(lock); err == nil {
			busy := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) != nil
			f.Close()
			if busy {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("host %s: the watcher does not hold %s after 20 s", h.Name, lock)
}
