package admin

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// lab is one network namespace, with a netlink handle inside it, and a
// directory holding the configuration and a fake libvirt:
// run/qemu/*.xml (running guests), etc/qemu/*.xml (definitions),
// etc/hooks/ (hooks). The test thread never enters the namespace.
type lab struct {
	t    *testing.T
	name string
	ns   netns.NsHandle
	h    *netlink.Handle
	dir  string
}

var labSeq atomic.Int64

func newLab(t *testing.T, config string) *lab {
	t.Helper()
	requireRoot(t)
	name := fmt.Sprintf("%s%d", nsPrefix, labSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("opening namespace %s: %v", name, err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", name, err)
	}
	t.Cleanup(h.Close)
	l := &lab{t: t, name: name, ns: ns, h: h, dir: t.TempDir()}
	for _, d := range []string{"run/qemu", "run/network", "etc/qemu/networks", "etc/hooks"} {
		if err := os.MkdirAll(filepath.Join(l.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l.write("fdbhook.toml", config)
	return l
}

func (l *lab) write(rel, text string) {
	l.t.Helper()
	if err := os.WriteFile(filepath.Join(l.dir, rel), []byte(text), 0o644); err != nil {
		l.t.Fatal(err)
	}
}

// ip runs `ip -n NS args...`.
func (l *lab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", l.name}, args...)...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// bridge runs `bridge -n NS args...` and returns its output.
func (l *lab) bridge(args ...string) string {
	l.t.Helper()
	out, err := exec.Command("bridge", append([]string{"-n", l.name}, args...)...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("bridge %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// hook runs the qemu-hook binary in the namespace, with the lab's
// configuration and fake libvirt, and returns its stdout, stderr and exit
// code.
func (l *lab) hook(args ...string) (string, string, int) {
	l.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.name, bins["qemu-hook"]}, args...)...)
	cmd.Env = []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"FDBHOOK_CONFIG=" + filepath.Join(l.dir, "fdbhook.toml"),
		"FDBHOOK_LIBVIRT_RUN=" + filepath.Join(l.dir, "run"),
		"FDBHOOK_LIBVIRT_ETC=" + filepath.Join(l.dir, "etc"),
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	case err != nil:
		l.t.Fatalf("running qemu-hook %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String(), stderr.String(), 0
}

// nic is one guest NIC: a type='bridge' interface on bridge with target
// tap (none when empty).
type nic struct{ bridge, tap, mac string }

// domain returns a guest's XML as libvirt keeps it: a <domstatus> around
// the live <domain> when running, the bare definition otherwise. optOut
// lists MACs the guest's metadata opts out.
func domain(name string, running bool, optOut []string, nics ...nic) string {
	var b strings.Builder
	if running {
		b.WriteString("<domstatus state='running' reason='booted' pid='1'>\n")
	}
	fmt.Fprintf(&b, "<domain type='kvm'>\n  <name>%s</name>\n", name)
	if len(optOut) > 0 {
		b.WriteString("  <metadata>\n    <fdbhook:fdb xmlns:fdbhook=\"urn:fdbhook:1\">\n")
		for _, m := range optOut {
			fmt.Fprintf(&b, "      <fdbhook:interface mac=\"%s\" manage=\"no\"/>\n", m)
		}
		b.WriteString("    </fdbhook:fdb>\n  </metadata>\n")
	}
	b.WriteString("  <devices>\n")
	for i, n := range nics {
		fmt.Fprintf(&b, "    <interface type='bridge'>\n      <mac address='%s'/>\n      <source bridge='%s'/>\n", n.mac, n.bridge)
		if running && n.tap != "" {
			fmt.Fprintf(&b, "      <target dev='%s'/>\n      <alias name='net%d'/>\n", n.tap, i)
		}
		b.WriteString("    </interface>\n")
	}
	b.WriteString("  </devices>\n</domain>\n")
	if running {
		b.WriteString("</domstatus>\n")
	}
	return b.String()
}

// running writes a running guest's live XML; defined its definition.
func (l *lab) running(name string, optOut []string, nics ...nic) {
	l.write("run/qemu/"+name+".xml", domain(name, true, optOut, nics...))
	l.write("etc/qemu/"+name+".xml", domain(name, false, optOut, nics...))
}

func (l *lab) defined(name string, nics ...nic) {
	l.write("etc/qemu/"+name+".xml", domain(name, false, nil, nics...))
}

// port is a bridge port's flags as netlink and iproute2 report them.
type port struct{ learning, flood bool }

func (p port) String() string { return fmt.Sprintf("learning %v flood %v", p.learning, p.flood) }

// portFlags reads a port's flags through netlink and, independently,
// through `bridge -d link show`, and fails the test if they disagree.
func (l *lab) portFlags(name string) port {
	l.t.Helper()
	link, err := l.h.LinkByName(name)
	if err != nil {
		l.t.Fatalf("netlink: %s: %v", name, err)
	}
	pi, err := l.h.LinkGetProtinfo(link)
	if err != nil {
		l.t.Fatalf("netlink: protinfo of %s: %v", name, err)
	}
	nl := port{pi.Learning, pi.Flood}
	out := l.bridge("-d", "link", "show", "dev", name)
	ip := port{strings.Contains(out, "learning on"), strings.Contains(out, " flood on")}
	if nl != ip {
		l.t.Fatalf("%s: netlink says %s, iproute2 says %s:\n%s", name, nl, ip, out)
	}
	return nl
}

// static returns the bridge's static entries as "MAC PORT", read through
// netlink and, independently, `bridge fdb show`; the test fails if they
// disagree.
func (l *lab) static(br string) []string {
	l.t.Helper()
	brl, err := l.h.LinkByName(br)
	if err != nil {
		l.t.Fatalf("netlink: %s: %v", br, err)
	}
	neighs, err := l.h.NeighList(0, unix.AF_BRIDGE)
	if err != nil {
		l.t.Fatalf("netlink: fdb dump: %v", err)
	}
	var nl []string
	for _, n := range neighs {
		// A dump marks the bridge's entries by NDA_MASTER (ndm_flags may
		// lack NTF_MASTER there).
		if n.MasterIndex != brl.Attrs().Index || n.State&unix.NUD_NOARP == 0 || n.State&unix.NUD_PERMANENT != 0 {
			continue
		}
		p, err := l.h.LinkByIndex(n.LinkIndex)
		if err != nil {
			l.t.Fatalf("netlink: port %d: %v", n.LinkIndex, err)
		}
		nl = append(nl, n.HardwareAddr.String()+" "+p.Attrs().Name)
	}
	var ip []string
	for _, line := range strings.Split(l.bridge("fdb", "show", "br", br), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "dev" && slices.Contains(f, "static") && slices.Contains(f, "master") {
			ip = append(ip, f[0]+" "+f[2])
		}
	}
	slices.Sort(nl)
	slices.Sort(ip)
	nl, ip = slices.Compact(nl), slices.Compact(ip)
	if !slices.Equal(nl, ip) {
		l.t.Fatalf("static entries of %s: netlink %v, iproute2 %v", br, nl, ip)
	}
	return nl
}

// holdTap opens an existing tap in the namespace, as QEMU (or libvirt
// before it starts QEMU) does, so it has carrier; it is closed when the
// test ends.
func (l *lab) holdTap(name string) {
	l.t.Helper()
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ch <- result{-1, err}
			return // the thread dies locked, in its own namespace
		}
		if err := netns.Set(l.ns); err != nil {
			ch <- result{-1, err}
			return
		}
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err == nil {
			var ifr *unix.Ifreq
			if ifr, err = unix.NewIfreq(name); err == nil {
				ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
				err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
			}
		}
		if serr := netns.Set(orig); serr != nil {
			ch <- result{fd, serr}
			return
		}
		orig.Close()
		runtime.UnlockOSThread()
		ch <- result{fd, err}
	}()
	r := <-ch
	if r.fd >= 0 {
		l.t.Cleanup(func() { unix.Close(r.fd) })
	}
	if r.err != nil {
		l.t.Fatalf("holding tap %s open: %v", name, r.err)
	}
}
