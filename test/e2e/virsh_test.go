//go:build e2e

package e2e

import (
	"bytes"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/test/lab"
)

// virsh runs virsh against the system daemon's QEMU driver and returns
// stdout, stderr and the error. The suite drives libvirt only through
// virsh, as an admin would.
func virsh(args ...string) (string, string, error) { return virshAt(qemuURI, args...) }

// virshOK runs virsh and fails the test unless it succeeds without writing
// anything to stderr (hook failures and warnings surface there).
func virshOK(t *testing.T, args ...string) string {
	t.Helper()
	return virshOKAt(t, qemuURI, args...)
}

// The system daemon's drivers the suite uses.
const (
	qemuURI = "qemu:///system"
	lxcURI  = "lxc:///system"
)

// virshAt is virsh against the driver at uri.
func virshAt(uri string, args ...string) (string, string, error) {
	cmd := exec.Command("virsh", append([]string{"-q", "-c", uri}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// virshOKAt is virshOK against the driver at uri.
func virshOKAt(t *testing.T, uri string, args ...string) string {
	t.Helper()
	stdout, stderr, err := virshAt(uri, args...)
	if err != nil {
		t.Fatalf("virsh -c %s %s: %v\n%s", uri, strings.Join(args, " "), err, stderr)
	}
	if strings.TrimSpace(stderr) != "" {
		t.Errorf("virsh -c %s %s: unexpected stderr: %s", uri, strings.Join(args, " "), stderr)
	}
	return stdout
}

// nic is one guest interface in a definition.
type nic struct {
	typ    string // bridge, network, user, ethernet
	mac    string // as written in the definition
	source string // bridge or network name
	target string // tap name; empty lets libvirt pick vnetN
}

// domainXML is a diskless TCG guest: it starts in well under a second and
// keeps its taps as long as it runs. Every NIC is an rtl8139 without option
// ROM: no iPXE means the guest sends nothing, and QEMU keeps reading an
// rtl8139's tap even with no driver in the guest (see traffic_test.go).
// (No <controller type='usb' model='none'/>: libvirt 9.0 adds an alias to it
// on restore, which would show as a change of the live XML.)
func domainXML(name string, nics []nic) string {
	d := lab.Domain{Name: name, Type: "qemu",
		Body:    "  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n  <os><type arch='x86_64'>hvm</type></os>\n",
		Devices: "    <memballoon model='none'/>\n"}
	for _, n := range nics {
		ln := n.lab()
		ln.Model, ln.Extra = "rtl8139", "      <rom enabled='no'/>\n"
		d.NICs = append(d.NICs, ln)
	}
	return d.XML()
}

// lab is the NIC in the shared harness's terms.
func (n nic) lab() lab.NIC {
	ln := lab.NIC{Type: n.typ, MAC: n.mac, Target: n.target}
	switch n.typ {
	case "bridge":
		ln.Bridge = n.source
	case "network":
		ln.Network = n.source
	}
	return ln
}

// defineGuest defines a persistent guest. The suite's teardown removes it;
// a scenario's own guests are removed by the scenario (tempGuest).
func defineGuest(t *testing.T, name string, nics []nic) {
	t.Helper()
	f := filepath.Join(t.TempDir(), name+".xml")
	if err := os.WriteFile(f, []byte(domainXML(name, nics)), 0o644); err != nil {
		t.Fatal(err)
	}
	virshOK(t, "define", f)
}

// tempGuest defines a guest that lives only as long as the scenario.
func tempGuest(t *testing.T, name string, nics []nic) {
	t.Helper()
	removeGuest(name)
	t.Cleanup(func() { removeGuest(name) })
	defineGuest(t, name, nics)
}

// removeGuest destroys and undefines a guest, ignoring "not running" and
// "no such domain": cleanup must work from any state.
func removeGuest(name string) {
	virsh("destroy", name)
	virsh("undefine", "--managed-save", name)
}

// setMetadata writes the fdbhook metadata element into the guest's
// persistent definition, the way the documentation tells admins to.
func setMetadata(t *testing.T, guest, elem string) {
	t.Helper()
	virshOK(t, "metadata", guest, "urn:fdbhook:1", "--key", "fdbhook", "--set", elem, "--config")
}

// liveNIC is one interface of a running guest, from its live XML.
type liveNIC struct {
	Type string `xml:"type,attr"`
	MAC  struct {
		Address string `xml:"address,attr"`
	} `xml:"mac"`
	Source struct {
		Bridge  string `xml:"bridge,attr"`
		Network string `xml:"network,attr"`
	} `xml:"source"`
	Target struct {
		Dev string `xml:"dev,attr"`
	} `xml:"target"`
}

type liveDomain struct {
	Interfaces []liveNIC `xml:"devices>interface"`
}

// liveNICs returns a running guest's interfaces from `virsh dumpxml`.
func liveNICs(t *testing.T, guest string) []liveNIC {
	t.Helper()
	var d liveDomain
	if err := xml.Unmarshal([]byte(virshOK(t, "dumpxml", guest)), &d); err != nil {
		t.Fatalf("dumpxml %s: %v", guest, err)
	}
	return d.Interfaces
}

// nicByMAC finds the live interface with that MAC (live XML is lower case).
func nicByMAC(t *testing.T, nics []liveNIC, mac string) liveNIC {
	t.Helper()
	for _, n := range nics {
		if n.MAC.Address == mac {
			return n
		}
	}
	t.Fatalf("no interface with MAC %s in live XML", mac)
	return liveNIC{}
}

// tapOf returns the tap name libvirt gave the NIC with that MAC.
func tapOf(t *testing.T, guest, mac string) string {
	t.Helper()
	n := nicByMAC(t, liveNICs(t, guest), mac)
	if n.Target.Dev == "" {
		t.Fatalf("%s: NIC %s has no target dev", guest, mac)
	}
	return n.Target.Dev
}

// domState returns `virsh domstate`.
func domState(guest string) string {
	out, _, _ := virsh("domstate", guest)
	return strings.TrimSpace(out)
}

// qemuPID reads the pid libvirt recorded for a running guest.
func qemuPID(t *testing.T, guest string) int {
	t.Helper()
	b, err := os.ReadFile("/run/libvirt/qemu/" + guest + ".pid")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file of %s: %v", guest, err)
	}
	return pid
}

// netBridge reads the bridge libvirt chose for a network from net-dumpxml.
func netBridge(t *testing.T, network string) string {
	t.Helper()
	var n struct {
		Bridge struct {
			Name string `xml:"name,attr"`
		} `xml:"bridge"`
	}
	if err := xml.Unmarshal([]byte(virshOK(t, "net-dumpxml", network)), &n); err != nil {
		t.Fatalf("net-dumpxml %s: %v", network, err)
	}
	if n.Bridge.Name == "" {
		t.Fatalf("net-dumpxml %s: no bridge name", network)
	}
	return n.Bridge.Name
}

// libvirtdPIDFile is where a libvirtd started without systemd writes its pid.
const libvirtdPIDFile = "/run/libvirtd.pid"

// restartLibvirtd stops libvirtd and starts it again, leaving guests running.
// Under systemd it asks systemd; otherwise it signals the daemon and starts
// `libvirtd -d`, which is how run.sh started it.
func restartLibvirtd(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		run(t, "systemctl", "restart", "libvirtd.service")
	} else {
		b, err := os.ReadFile(libvirtdPIDFile)
		if err != nil {
			t.Fatalf("libvirtd pid: %v", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("libvirtd pid file: %v", err)
		}
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			t.Fatalf("kill libvirtd %d: %v", pid, err)
		}
		if !waitFor(30*time.Second, func() bool { return syscall.Kill(pid, 0) != nil }) {
			t.Fatalf("libvirtd %d still running 30 s after SIGTERM", pid)
		}
		// Standard streams on /dev/null (nil): the daemon must not hold
		// the pipes go test reads the test's output from.
		if err := libvirtdCommand().Run(); err != nil {
			t.Fatalf("libvirtd -d: %v (see /var/log/libvirt/libvirtd.log)", err)
		}
	}
	if !waitFor(30*time.Second, func() bool { _, _, err := virsh("version"); return err == nil }) {
		t.Fatal("libvirtd does not answer 30 s after restart")
	}
}

// libvirtdCommand is `libvirtd -d` as test/e2e/libvirtd.sh runs it: on a
// hybrid cgroup layout in a private mount namespace without the cgroup2
// mount at /sys/fs/cgroup/unified, which libvirt's LXC driver cannot use.
//
// The daemon is started by its full path, as Debian's init script starts
// it: the script tells a running libvirtd by its argv[0], and deletes the
// pid file of one started as plain "libvirtd".
func libvirtdCommand() *exec.Cmd {
	var fs syscall.Statfs_t
	hybrid := exec.Command("mountpoint", "-q", "/sys/fs/cgroup/unified").Run() == nil &&
		syscall.Statfs("/sys/fs/cgroup", &fs) == nil && fs.Type == tmpfsMagic
	if hybrid {
		return exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
			`umount /sys/fs/cgroup/unified && exec "$(command -v libvirtd)" -d`)
	}
	path, err := exec.LookPath("libvirtd")
	if err != nil {
		path = "/usr/sbin/libvirtd"
	}
	return exec.Command(path, "-d")
}

// tmpfsMagic is TMPFS_MAGIC (linux/magic.h).
const tmpfsMagic = 0x01021994

var (
	domainID   = regexp.MustCompile(`^(<domain [^>]*?) id='[0-9]+'`)
	autoTarget = regexp.MustCompile(`<target dev='vnet[0-9]+'/>`)
	portID     = regexp.MustCompile(` portid='[0-9a-f-]+'`)
)

// normalizeLive strips what legitimately changes when a guest is started
// again: the domain id, the tap names libvirt picks (vnetN) and network ports'
// ids. Everything else of the live XML must survive save and restore.
func normalizeLive(x string) string {
	x = domainID.ReplaceAllString(x, "$1")
	x = autoTarget.ReplaceAllString(x, "<target dev='vnetN'/>")
	return portID.ReplaceAllString(x, "")
}
