package admin

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// lab is one network namespace, with a netlink handle inside it, and a
// directory holding the configuration and a fake libvirt:
// run/qemu/*.xml (running guests), etc/qemu/*.xml (definitions),
// etc/hooks/ (hooks). The test thread never enters the namespace.
type lab struct {
	*testlab.Namespace
	t   *testing.T
	dir string
}

func newLab(t *testing.T, config string) *lab {
	t.Helper()
	l := &lab{Namespace: testlab.NewNamespace(t, suite.NextName()), t: t, dir: t.TempDir()}
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

// fdbhook runs the fdbhook command in the namespace, with the lab's
// configuration and fake libvirt, and returns its stdout, stderr and exit
// code.
func (l *lab) fdbhook(args ...string) (string, string, int) {
	l.t.Helper()
	r, err := l.Run(nil, testlab.HookEnv(filepath.Join(l.dir, "fdbhook.toml"),
		"FDBHOOK_LIBVIRT_RUN="+filepath.Join(l.dir, "run"),
		"FDBHOOK_LIBVIRT_ETC="+filepath.Join(l.dir, "etc"),
	), append([]string{suite.Bin("fdbhook")}, args...)...)
	if err != nil {
		l.t.Fatalf("running fdbhook %s: %v", strings.Join(args, " "), err)
	}
	return r.Stdout, r.Stderr, r.Code
}

// nic is one guest NIC: a type='bridge' interface on bridge with target
// tap (none when empty).
type nic struct{ bridge, tap, mac string }

// domain returns a guest's XML as libvirt keeps it: a <domstatus> around
// the live <domain> when running, the bare definition otherwise. optOut
// lists MACs the guest's metadata opts out.
func domain(name string, running bool, optOut []string, nics ...nic) string {
	d := testlab.Domain{Name: name, OptOut: optOut}
	for _, n := range nics {
		ln := testlab.NIC{MAC: n.mac, Bridge: n.bridge}
		if running && n.tap != "" {
			ln.Target, ln.Alias = n.tap, "-"
		}
		d.NICs = append(d.NICs, ln)
	}
	if running {
		return d.Live(testlab.Status{Pid: 1})
	}
	return d.XML()
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
// iproute2 (lab.PortFlags), failing the test when they disagree.
func (l *lab) portFlags(name string) port {
	l.t.Helper()
	f := l.PortFlags(name)
	return port{f.Learning, f.Flood}
}

// static returns the bridge's static entries as "MAC PORT", read through
// netlink and, independently, `bridge fdb show`; the test fails if they
// disagree.
func (l *lab) static(br string) []string {
	l.t.Helper()
	brl, err := l.Handle.LinkByName(br)
	if err != nil {
		l.t.Fatalf("netlink: %s: %v", br, err)
	}
	neighs, err := l.Handle.NeighList(0, unix.AF_BRIDGE)
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
		p, err := l.Handle.LinkByIndex(n.LinkIndex)
		if err != nil {
			l.t.Fatalf("netlink: port %d: %v", n.LinkIndex, err)
		}
		nl = append(nl, n.HardwareAddr.String()+" "+p.Attrs().Name)
	}
	var ip []string
	for _, line := range strings.Split(l.Bridge("fdb", "show", "br", br), "\n") {
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
