package admin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// check is one line of doctor's output.
type check struct{ level, name, text string }

func (l *lab) doctor() ([]check, int, string) {
	l.t.Helper()
	out, stderr, code := l.fdbhook("doctor")
	var checks []check
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		level, rest, _ := strings.Cut(line, " ")
		name, text, ok := strings.Cut(strings.TrimSpace(rest), ": ")
		if !ok || (level != "ok" && level != "warn" && level != "fail") {
			l.t.Fatalf("doctor line %q is not LEVEL NAME: TEXT\n%s%s", line, out, stderr)
		}
		checks = append(checks, check{level, name, text})
	}
	return checks, code, out
}

// expect fails t unless some check called name has level and contains text.
func expect(t *testing.T, checks []check, out, name, level, text string) {
	t.Helper()
	for _, c := range checks {
		if c.name == name && c.level == level && strings.Contains(c.text, text) {
			return
		}
	}
	t.Errorf("doctor has no %q line at %s containing %q:\n%s", name, level, text, out)
}

// works runs a command in the lab and reports whether it succeeded: the
// independent witness of what the kernel supports.
func (l *lab) works(args ...string) bool {
	return exec.Command(args[0], append([]string{"-n", l.Name}, args[1:]...)...).Run() == nil
}

func libvirtInstalled() bool {
	for _, d := range []string{"libvirtd", "virtqemud"} {
		for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
			if exec.Command(filepath.Join(dir, d), "--version").Run() == nil {
				return true
			}
		}
	}
	return false
}

// Doctor's lines on this machine. Hooks not installed: "fail" when libvirt
// is installed and the configuration manages something (no guest start
// would be managed), "warn" otherwise; exit 1 exactly when a line fails.
func TestDoctorOnThisMachine(t *testing.T) {
	l := newLab(t, config)
	l.IP("link", "add", "fdbtbr0", "type", "bridge")
	l.IP("tuntap", "add", "dev", "fdbtg1", "mode", "tap")
	l.IP("link", "set", "fdbtg1", "master", "fdbtbr0")

	checks, code, out := l.doctor()
	t.Logf("doctor (exit %d), hooks not installed:\n%s", code, out)
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	expect(t, checks, out, "kernel", "ok", "Linux "+unix.ByteSliceToString(u.Release[:]))

	// What the kernel supports, asked through iproute2 in the lab.
	witness := func(name string, supported bool, okText, warnText string) {
		t.Helper()
		if supported {
			expect(t, checks, out, name, "ok", okText)
		} else {
			expect(t, checks, out, name, "warn", warnText)
		}
	}
	if !l.works("bridge", "link", "set", "dev", "fdbtg1", "learning", "off", "flood", "off") ||
		!l.works("bridge", "fdb", "replace", "52:54:00:fd:00:01", "dev", "fdbtg1", "master", "static") {
		t.Skipf("this kernel cannot turn off learning or add static entries: fdbhook cannot work here")
	}
	expect(t, checks, out, "port flags", "ok", "can be turned off")
	expect(t, checks, out, "static entries", "ok", "work")
	witness("vlan filtering", l.kernelHasVlanFiltering(), "supported", "not supported by this kernel")
	witness("locked ports", l.works("bridge", "link", "set", "dev", "fdbtg1", "locked", "on"), "supported", "not supported")
	sticky := l.works("bridge", "fdb", "replace", "52:54:00:fd:00:02", "dev", "fdbtg1", "master", "static", "sticky") &&
		strings.Contains(l.Bridge("fdb", "show", "dev", "fdbtg1"), "sticky")
	witness("sticky entries", sticky, "supported", "not supported")
	expect(t, checks, out, "config", "ok", "1 bridges, 0 networks")
	expect(t, checks, out, "bridge fdbtbr0", "ok", "fdbtbr0 is a Linux bridge with 1 ports")

	libvirt := libvirtInstalled()
	missing := "warn"
	if libvirt {
		expect(t, checks, out, "libvirt", "ok", "--version")
		missing = "fail"
	} else {
		expect(t, checks, out, "libvirt", "warn", "not found")
	}
	expect(t, checks, out, "qemu hook", missing, "not installed")
	expect(t, checks, out, "network hook", "warn", "not installed")
	if failed := strings.Contains(out, "\nfail ") || strings.HasPrefix(out, "fail "); failed != (code == 1) || (code != 0 && code != 1) {
		t.Errorf("doctor exit %d; a fail line is there: %v", code, failed)
	}

	// Install the hooks the way the package does: links in the .d
	// directories to the programs.
	hooks := filepath.Join(l.dir, "etc", "hooks")
	for driver, program := range map[string]string{"qemu": "qemu-hook", "network": "network-hook"} {
		d := filepath.Join(hooks, driver+".d")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(suite.Bin(program), filepath.Join(d, "fdbhook")); err != nil {
			t.Fatal(err)
		}
	}
	version, err := exec.Command(suite.Bin("qemu-hook"), "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	v := strings.Fields(string(version))[2]
	checks, code, out = l.doctor()
	t.Logf("doctor (exit %d), hooks installed:\n%s", code, out)
	expect(t, checks, out, "qemu hook", "ok", "-> "+suite.Bin("qemu-hook")+" (qemu-hook "+v+")")
	expect(t, checks, out, "network hook", "ok", "-> "+suite.Bin("network-hook")+" (network-hook "+v+")")
	if daemonRunning() {
		// It started before these hooks existed, and no other hook did.
		expect(t, checks, out, "qemu hook", "warn", "before "+filepath.Join(hooks, "qemu.d", "fdbhook")+" was installed")
	}
	if code != 0 {
		t.Errorf("doctor exit %d with the hooks installed on a working kernel, want 0", code)
	}

	// The wrong program in qemu.d fails.
	link := filepath.Join(hooks, "qemu.d", "fdbhook")
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(suite.Bin("network-hook"), link); err != nil {
		t.Fatal(err)
	}
	checks, code, out = l.doctor()
	expect(t, checks, out, "qemu hook", "fail", "runs network-hook")
	if code != 1 {
		t.Errorf("doctor exit %d with network-hook in qemu.d, want 1", code)
	}
}

// daemonRunning reports whether a libvirt daemon that runs qemu hooks is
// running on the host.
func daemonRunning() bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		if c := strings.TrimSpace(string(comm)); c == "libvirtd" || c == "virtqemud" {
			return true
		}
	}
	return false
}
