package lab

import (
	"path/filepath"

	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Namespace is one network namespace, with a netlink handle inside it.
// Its methods fail the test that made it; Run is the exception, safe to
// call from a test's helper goroutines.
type Namespace struct {
	// Name is the namespace's name for `ip netns` (/run/netns/Name).
	Name string
	// NetNS is the namespace, open while the test runs.
	NetNS netns.NsHandle
	// Handle is a netlink handle inside the namespace.
	Handle *netlink.Handle

	tb testing.TB
}

// NewNamespace creates an empty namespace called name, deleted when tb
// ends. It skips tb, saying why, when it cannot (RequireRoot).
func NewNamespace(tb testing.TB, name string) *Namespace {
	tb.Helper()
	RequireRoot(tb)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			tb.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns, err := netns.GetFromName(name)
	if err != nil {
		tb.Fatalf("opening namespace %s: %v", name, err)
	}
	tb.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		tb.Fatalf("netlink handle in %s: %v", name, err)
	}
	tb.Cleanup(h.Close)
	return &Namespace{Name: name, NetNS: ns, Handle: h, tb: tb}
}

// IP runs `ip -n NAME args...`.
func (n *Namespace) IP(args ...string) {
	n.tb.Helper()
	full := append([]string{"-n", n.Name}, args...)
	if out, err := exec.Command("ip", full...).CombinedOutput(); err != nil {
		n.tb.Fatalf("ip %s: %v: %s", strings.Join(full, " "), err, out)
	}
}

// Bridge runs `bridge -n NAME args...` and returns its output.
func (n *Namespace) Bridge(args ...string) string {
	n.tb.Helper()
	out, err := exec.Command("bridge", append([]string{"-n", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		n.tb.Fatalf("bridge %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Batch runs `TOOL -n NAME -batch -` (ip or bridge), one command a line:
// many commands in one process.
func (n *Namespace) Batch(tool string, lines []string) {
	n.tb.Helper()
	cmd := exec.Command(tool, "-n", n.Name, "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		n.tb.Fatalf("%s -batch in %s: %v: %s", tool, n.Name, err, out)
	}
}

// Exec runs a command inside the namespace and returns its output.
func (n *Namespace) Exec(args ...string) []byte {
	n.tb.Helper()
	full := append([]string{"netns", "exec", n.Name}, args...)
	out, err := exec.Command("ip", full...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			n.tb.Fatalf("%s: %v: %s", strings.Join(args, " "), err, ee.Stderr)
		}
		n.tb.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return out
}

// Result is what one run of a command gave.
type Result struct {
	Code   int
	Stdout string
	Stderr string
	Took   time.Duration
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d after %s, stderr %q, stdout %q", r.Code, r.Took.Round(time.Millisecond), r.Stderr, r.Stdout)
}

// HookEnv is the minimal environment libvirt gives a hook, with
// FDBHOOK_CONFIG naming config, a run directory and a run lock of the
// test's own beside it, and extra, which may name others (the last of a
// variable given twice is the one the program sees). Never the host's
// /run/fdbhook: there one test's "migrate begin" would turn another's start
// into an incoming migration, and every hook run of every test, of a
// second test run beside this one, and of an fdbhook installed on the
// machine would wait in line for the one lock, longer than its timeout on
// a busy machine.
func HookEnv(config string, extra ...string) []string {
	dir := filepath.Dir(config)
	return append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "FDBHOOK_CONFIG=" + config,
		"FDBHOOK_RUN_DIR=" + filepath.Join(dir, "run"), "FDBHOOK_LOCK=" + filepath.Join(dir, "lock")}, extra...)
}

// PrivateRun is a command prefix for Run that gives what follows it a
// private /run, a tmpfs holding empty /run/libvirt/qemu and
// /run/libvirt/network, so that neither the host's libvirt state nor its
// lock file is seen. The files of liveDir, when not "", are copied into
// /run/libvirt/qemu (the live XML of running guests). `ip netns exec`
// runs the command in a new mount namespace that does not propagate back
// to the host: the tmpfs is private.
func PrivateRun(liveDir string) []string {
	return []string{"sh", "-euc", `mount -t tmpfs fdbt-run /run
mkdir -p /run/libvirt/qemu /run/libvirt/network
if [ -n "$0" ]; then cp -r "$0"/. /run/libvirt/qemu/; fi
exec "$@"`, liveDir}
}

// Run runs args inside the namespace with exactly env as its environment
// and stdin (nil: none) on its standard input. A command that exits,
// whatever its code, is a Result; one that cannot start or is killed by a
// signal is an error.
func (n *Namespace) Run(stdin []byte, env []string, args ...string) (Result, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...)
	cmd.Env = env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String(), Took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.Exited():
		r.Code = ee.ExitCode()
	case err != nil:
		return r, fmt.Errorf("%v (stderr %q)", err, r.Stderr)
	}
	return r, nil
}

// AddBridge creates bridge name.
func (n *Namespace) AddBridge(name string) {
	n.tb.Helper()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := n.Handle.LinkAdd(br); err != nil {
		n.tb.Fatalf("adding bridge %s: %v", name, err)
	}
}

// AddVeth creates veth name with its peer, name enslaved to master
// unless master is "".
func (n *Namespace) AddVeth(name, peer, master string) {
	n.tb.Helper()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer}
	if err := n.Handle.LinkAdd(v); err != nil {
		n.tb.Fatalf("adding veth %s: %v", name, err)
	}
	if master != "" {
		n.Enslave(name, master)
	}
}

// AddTap creates a persistent tap (as libvirt's are while QEMU runs),
// enslaved to master unless master is "".
func (n *Namespace) AddTap(name, master string) {
	n.tb.Helper()
	n.IP("tuntap", "add", "dev", name, "mode", "tap")
	if master != "" {
		n.Enslave(name, master)
	}
}

// Enslave makes link name a port of master.
func (n *Namespace) Enslave(name, master string) {
	n.tb.Helper()
	link := n.Link(name)
	br := n.Link(master)
	if err := n.Handle.LinkSetMasterByIndex(link, br.Attrs().Index); err != nil {
		n.tb.Fatalf("enslaving %s to %s: %v", name, master, err)
	}
}

// Link returns link name.
func (n *Namespace) Link(name string) netlink.Link {
	n.tb.Helper()
	link, err := n.Handle.LinkByName(name)
	if err != nil {
		n.tb.Fatalf("link %s: %v", name, err)
	}
	return link
}

// Index returns link name's ifindex.
func (n *Namespace) Index(name string) int { n.tb.Helper(); return n.Link(name).Attrs().Index }

// Del deletes link name.
func (n *Namespace) Del(name string) {
	n.tb.Helper()
	if err := n.Handle.LinkDel(n.Link(name)); err != nil {
		n.tb.Fatalf("deleting %s: %v", name, err)
	}
}

// SetFlags sets a bridge port's learning and unicast_flood through netlink.
func (n *Namespace) SetFlags(port string, learning, flood bool) {
	n.tb.Helper()
	link := n.Link(port)
	if err := n.Handle.LinkSetLearning(link, learning); err != nil {
		n.tb.Fatalf("learning on %s: %v", port, err)
	}
	if err := n.Handle.LinkSetFlood(link, flood); err != nil {
		n.tb.Fatalf("flood on %s: %v", port, err)
	}
}

// HoldTap opens the existing tap name as QEMU (or libvirt before it starts
// QEMU) does, so that it has carrier, until the test ends.
func (n *Namespace) HoldTap(name string) {
	n.tb.Helper()
	fd, err := OpenTap(n.NetNS, name)
	if err != nil {
		n.tb.Fatalf("holding tap %s open: %v", name, err)
	}
	n.tb.Cleanup(func() { unix.Close(fd) })
}
