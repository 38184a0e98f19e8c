package libvirt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/test/lab"
)

func lxcFixture(t *testing.T, name string) string {
	return string(lab.Recorded(t, "libvirt-9.0-lxc", name))
}

// TestContainerInit reads libvirt 9.0's live state as captured: at
// `reconnect begin` it names the init pid; at `started begin` it says 0,
// and the init is the controller's one child.
func TestContainerInit(t *testing.T) {
	for _, c := range []struct {
		name, state string
		children    map[string]string // task -> /proc/CTRL/task/TASK/children
		want        int
		why         string // part of the reason when want is 0
	}{
		{name: "reconnect", state: "run-lxc-fdbtlxc1-at-reconnect-begin.xml", want: 31023},
		{name: "started, init from the controller's child", state: "run-lxc-fdbtlxc1-at-started-begin.xml",
			children: map[string]string{"31022": "31023 ", "31030": ""}, want: 31023},
		{name: "started, controller without children", state: "run-lxc-fdbtlxc1-at-started-begin.xml",
			children: map[string]string{"31022": ""}, why: "has 0 children"},
		{name: "started, controller with two children", state: "run-lxc-fdbtlxc1-at-started-begin.xml",
			children: map[string]string{"31022": "31023 31040"}, why: "has 2 children"},
		{name: "not running", why: "no live state"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			run, proc := filepath.Join(dir, "lxc"), filepath.Join(dir, "proc")
			if err := os.MkdirAll(run, 0o755); err != nil {
				t.Fatal(err)
			}
			if c.state != "" {
				write(t, filepath.Join(run, "fdbtlxc1.xml"), lxcFixture(t, c.state))
			}
			for task, kids := range c.children {
				write(t, filepath.Join(proc, "31022", "task", task, "children"), kids)
			}
			f := New(Paths{LxcRunDir: run, ProcDir: proc})
			pid, why, err := f.ContainerInit("fdbtlxc1")
			if err != nil {
				t.Fatal(err)
			}
			if pid != c.want || (c.want == 0 && !strings.Contains(why, c.why)) {
				t.Errorf("ContainerInit = %d, %q; want %d, a reason with %q", pid, why, c.want, c.why)
			}
		})
	}
}

// TestContainerState: the controller and init pids of the captured state;
// a broken pid is an error that names the attribute.
func TestContainerState(t *testing.T) {
	c, err := parseContainer([]byte(lxcFixture(t, "run-lxc-fdbtlxc1-at-started-begin.xml")))
	if err != nil || c.ControllerPid != 31022 || c.InitPid != 0 {
		t.Errorf("started begin: %+v, %v; want controller 31022, init 0", c, err)
	}
	if _, err := parseContainer([]byte(`<domstatus pid='12'><init pid='x'/></domstatus>`)); err == nil || !strings.Contains(err.Error(), "<init pid>") {
		t.Errorf("bad init pid: %v", err)
	}
	if _, err := parseContainer([]byte(`<domain/>`)); err == nil {
		t.Error("a <domain> without <domstatus> was accepted")
	}
	for _, tc := range []struct {
		name, xml   string
		init        int
		errContains string
	}{
		{"init after a taint", `<domstatus pid='5'><taint flag='x'/><init pid='7'/><domain/></domstatus>`, 7, ""},
		{"the domain's own <init> is not libvirt's", `<domstatus pid='5'><domain><os><init>/bin/sh</init></os></domain></domstatus>`, 0, ""},
		{"init after the domain", `<domstatus pid='5'><domain><os><init>/bin/sh</init></os></domain><init pid='8'/></domstatus>`, 8, ""},
		{"the domain after init is not read", `<domstatus pid='5'><init pid='9'/><domain><devices>` + strings.Repeat(`<interface type='bridge'/>`, 64), 9, ""},
		{"broken before init", `<domstatus pid='5'><taint>`, 0, "<taint>"},
		{"empty", ``, 0, "no element"},
	} {
		c, err := parseContainer([]byte(tc.xml))
		switch {
		case tc.errContains != "" && (err == nil || !strings.Contains(err.Error(), tc.errContains)):
			t.Errorf("%s: %+v, %v; want an error with %q", tc.name, c, err, tc.errContains)
		case tc.errContains == "" && (err != nil || c.ControllerPid != 5 || c.InitPid != tc.init):
			t.Errorf("%s: %+v, %v; want controller 5, init %d", tc.name, c, err, tc.init)
		}
	}
}

// TestPortOwnerContainers: a container's veth in the LXC live state has an
// owner, as a QEMU guest's tap does.
func TestPortOwnerContainers(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "lxc", "fdbtlxc1.xml"), lxcFixture(t, "run-lxc-fdbtlxc1-at-reconnect-begin.xml"))
	if err := os.MkdirAll(filepath.Join(dir, "qemu"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := New(Paths{QemuRunDir: filepath.Join(dir, "qemu"), LxcRunDir: filepath.Join(dir, "lxc")})
	for _, port := range []string{"fdbtlxv1a", "vnet1"} {
		if owner, err := f.PortOwner(port); err != nil || owner != "fdbtlxc1" {
			t.Errorf("PortOwner(%s) = %q, %v; want fdbtlxc1", port, owner, err)
		}
	}
}
