package admin

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDoctorLxcHook: the lxc hook is checked only where libvirt's LXC
// driver is installed; there a missing one is a warning, and an installed
// one is reported like the qemu hook.
func TestDoctorLxcHook(t *testing.T) {
	sys, dir := fakeSystem(t)
	installQemuHook(t, sys, dir, "bridges = [\"br0\"]\n")
	if c := find(Doctor(sys), "lxc hook"); len(c) != 0 {
		t.Errorf("lxc hook checked without the LXC driver: %v", c)
	}
	sys.LxcDriver = func() bool { return true }
	checks := Doctor(sys)
	expect(t, checks, "lxc hook", Warn, "not installed")
	if Failed(find(checks, "lxc hook")) {
		t.Errorf("a missing lxc hook fails the doctor:\n%s", formatted(checks))
	}
	bin := filepath.Join(dir, "lxc-hook")
	writeFile(t, bin, "fdbhook lxc-hook", 0o755)
	if err := os.MkdirAll(filepath.Join(sys.HooksDir, "lxc.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(sys.HooksDir, "lxc.d", "fdbhook")); err != nil {
		t.Fatal(err)
	}
	expect(t, Doctor(sys), "lxc hook", OK, "lxc.d/fdbhook -> "+bin)
}
