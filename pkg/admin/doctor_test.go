package admin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// fakeSystem is a host with a working kernel, libvirt 9.0 and nothing
// installed; tests change what they look at.
func fakeSystem(t *testing.T) (*System, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	hooks := filepath.Join(dir, "hooks")
	for _, d := range []string{"qemu.d", "network.d"} {
		if err := os.MkdirAll(filepath.Join(hooks, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &System{
		ConfigPath: filepath.Join(dir, "fdbhook.toml"),
		HooksDir:   hooks,
		Networks:   noNetworks{},
		Links: func() ([]*model.Link, error) {
			return []*model.Link{{Name: "br0", Index: 2, Type: "bridge", VlanCapable: true},
				{Name: "eth0", Index: 3, Type: "device", MasterIndex: 2},
				{Name: "bond0", Index: 4, Type: "bond"}}, nil
		},
		Uname:          func() (string, string, error) { return "6.1.0-18-amd64", "x86_64", nil },
		Probe:          func() Probe { return Probe{} },
		LibvirtVersion: func() (string, string, error) { return "9.0.0", "libvirtd --version", nil },
		Daemons:        func() ([]Daemon, error) { return nil, nil },
		Identify: func(p string) (string, string) {
			data, _ := os.ReadFile(p)
			if prog, ok := strings.CutPrefix(string(data), "fdbhook "); ok {
				return strings.TrimSpace(prog), "1.0"
			}
			return "", ""
		},
		Version: "1.0",
		Owner:   os.Getuid(), // what the test writes is the test's own
	}, dir
}

func writeFile(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func find(checks []Check, name string) []Check {
	var out []Check
	for _, c := range checks {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

func expect(t *testing.T, checks []Check, name string, level Level, text string) {
	t.Helper()
	for _, c := range find(checks, name) {
		if c.Level == level && strings.Contains(c.Text, text) {
			return
		}
	}
	t.Errorf("no %q check at %s containing %q in:\n%s", name, level, text, formatted(checks))
}

// expectChecks expects a check for each line of wants, "NAME | LEVEL |
// TEXT" (LEVEL as Level.String says it), at that level and with TEXT in
// its message. Blank lines and lines starting with # are skipped.
func expectChecks(t *testing.T, checks []Check, wants string) {
	t.Helper()
	levels := []Level{OK, Warn, Fail}
	for _, line := range strings.Split(wants, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, " | ", 3)
		i := slices.IndexFunc(levels, func(l Level) bool { return len(f) == 3 && l.String() == f[1] })
		if i < 0 {
			t.Fatalf("expectChecks: %q is not NAME | LEVEL | TEXT", line)
		}
		expect(t, checks, f[0], levels[i], f[2])
	}
}

func formatted(checks []Check) string {
	var b strings.Builder
	FormatChecks(&b, checks)
	return b.String()
}

// installQemuHook writes cfg as the configuration and a qemu-hook binary
// in dir, links it into the hooks' qemu.d, and returns the binary's path.
func installQemuHook(t *testing.T, sys *System, dir, cfg string) (bin string) {
	t.Helper()
	writeFile(t, sys.ConfigPath, cfg, 0o644)
	bin = filepath.Join(dir, "qemu-hook")
	writeFile(t, bin, "fdbhook qemu-hook", 0o755)
	if err := os.Symlink(bin, filepath.Join(sys.HooksDir, "qemu.d", "fdbhook")); err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestDoctorNothingInstalled(t *testing.T) {
	sys, _ := fakeSystem(t)
	checks := Doctor(sys)
	expectChecks(t, checks, `
		kernel | ok | Linux 6.1.0-18-amd64 (x86_64)
		config | warn | does not exist: fdbhook manages nothing
		# Nothing to manage: a missing hook is a warning, not a failure.
		qemu hook | warn | not installed
		network hook | warn | not installed
		vlan filtering | ok | checked on bridge br0
	`)
	if Failed(checks) {
		t.Errorf("a host with nothing installed and nothing configured fails:\n%s", formatted(checks))
	}
}

func TestDoctorInstalledAndConfigured(t *testing.T) {
	sys, dir := fakeSystem(t)
	bin := installQemuHook(t, sys, dir, "bridges = [\"br0\", \"bond0\", \"br9\"]\n")
	// The daemon started before the hook was installed, and no other hook
	// existed then.
	sys.Daemons = func() ([]Daemon, error) {
		return []Daemon{{Name: "libvirtd", PID: 42, Started: time.Now().Add(-time.Hour)}}, nil
	}
	checks := Doctor(sys)
	expectChecks(t, checks, `
		config | ok | 3 bridges
		qemu hook | warn | libvirtd (pid 42) started
		# Configured, so a missing network hook is a warning, a missing bridge
		# and a bond a failure.
		network hook | warn | not installed
		bridge br0 | ok | br0 is a Linux bridge with 1 ports
		bridge bond0 | fail | not a Linux bridge
		bridge br9 | fail | does not exist
	`)
	expect(t, checks, "qemu hook", OK, "-> "+bin+" (qemu-hook 1.0)")
	// What to do about the missing bridge: the line that names it, the
	// bridges there are, the command that creates it.
	expect(t, checks, "bridge br9", Fail, "bridge br9 does not exist (bridges, line 1 of "+sys.ConfigPath+"); the Linux bridges here are br0: fix the name there, or create the bridge (ip link add br9 type bridge)")

	// Another program's hook existed before the daemon started, fdbhook's
	// came after: libvirt runs the hook directory, no reload needed,
	// whether the other hook sorts before fdbhook's or after it.
	hook := filepath.Join(sys.HooksDir, "qemu.d", "fdbhook")
	for _, other := range []string{"00-other", "zz-other"} {
		path := filepath.Join(sys.HooksDir, "qemu.d", other)
		writeFile(t, path, "#!/bin/sh\n", 0o755)
		started := changedAt(t, path).Add(time.Nanosecond)
		// Install fdbhook's link again, until the file system's coarse
		// clock gives it a later ctime.
		for !changedAt(t, hook).After(started) {
			time.Sleep(5 * time.Millisecond)
			if err := os.Remove(hook); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(bin, hook); err != nil {
				t.Fatal(err)
			}
		}
		sys.Daemons = func() ([]Daemon, error) {
			return []Daemon{{Name: "libvirtd", PID: 42, Started: started}}, nil
		}
		checks = Doctor(sys)
		for _, c := range find(checks, "qemu hook") {
			if c.Level != OK && strings.Contains(c.Text, "pid 42") {
				t.Errorf("%s predates the daemon, still told to reload: %s", other, c.Text)
			}
		}
		expect(t, checks, "qemu hook", OK, "active: libvirtd (pid 42) started at")
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// changedAt is path's ctime, not following a link.
func changedAt(t *testing.T, path string) time.Time {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return changed(fi)
}

// A daemon started before the hooks runs them once the package reloaded
// it: doctor tells that from the reload record naming the daemon's pid.
func TestDoctorReloadedDaemon(t *testing.T) {
	sys, dir := fakeSystem(t)
	installQemuHook(t, sys, dir, "bridges = [\"br0\"]\n")
	started := time.Now().Add(-time.Hour)
	lfi, err := os.Lstat(filepath.Join(sys.HooksDir, "qemu.d", "fdbhook"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		reloaded time.Time
		level    Level
		text     string
	}{
		{time.Time{}, Warn, "libvirtd (pid 42) started"},
		{time.Now().Add(-30 * time.Minute), Warn, "libvirtd (pid 42) started"}, // reloaded before the install
		{time.Now().Add(time.Minute), OK, "active: libvirtd (pid 42) was reloaded at"},
		// The record keeps whole seconds: a reload in the second of the
		// install is after it.
		{changed(lfi).Truncate(time.Second), OK, "active: libvirtd (pid 42) was reloaded at"},
		{changed(lfi).Truncate(time.Second).Add(-time.Second), Warn, "libvirtd (pid 42) started"},
	} {
		sys.Daemons = func() ([]Daemon, error) {
			return []Daemon{{Name: "libvirtd", PID: 42, Started: started, Reloaded: c.reloaded}}, nil
		}
		expect(t, Doctor(sys), "qemu hook", c.level, c.text)
	}
}

// An upgrade replaces the hook files: their ctime is new, the package's
// record says since when its hooks have been there.
func TestDoctorHooksSinceUpgrade(t *testing.T) {
	sys, dir := fakeSystem(t)
	installQemuHook(t, sys, dir, "bridges = [\"br0\"]\n")
	started := time.Now().Add(-time.Hour)
	sys.Daemons = func() ([]Daemon, error) { return []Daemon{{Name: "libvirtd", PID: 42, Started: started}}, nil }
	for _, c := range []struct {
		since time.Time
		ok    bool
		level Level
		text  string
	}{
		{level: Warn, text: "libvirtd (pid 42) started"}, // no record
		{since: started.Add(-time.Hour), ok: true, level: OK, text: "active: libvirtd (pid 42) started at"},
		{since: started.Add(time.Minute), ok: true, level: Warn, text: "libvirtd (pid 42) started"},
	} {
		sys.HooksSince = func() (time.Time, bool) { return c.since, c.ok }
		expect(t, Doctor(sys), "qemu hook", c.level, c.text)
	}
}

func TestDoctorHookProblems(t *testing.T) {
	sys, dir := fakeSystem(t)
	writeFile(t, sys.ConfigPath, "bridges = [\"br0\"]\n", 0o644)
	// Configured and libvirt present: a missing qemu hook fails.
	expect(t, Doctor(sys), "qemu hook", Fail, "not installed")

	qd := filepath.Join(sys.HooksDir, "qemu.d")
	writeFile(t, filepath.Join(qd, "fdbhook"), "fdbhook qemu-hook", 0o644)
	expect(t, Doctor(sys), "qemu hook", Fail, "not an executable file")

	writeFile(t, filepath.Join(qd, "fdbhook"), "fdbhook network-hook", 0o755)
	expect(t, Doctor(sys), "qemu hook", Fail, "runs network-hook")

	writeFile(t, filepath.Join(qd, "fdbhook"), "fdbhook qemu-hook", 0o777)
	expect(t, Doctor(sys), "permissions", Fail, "group- or world-writable")

	if err := os.Remove(filepath.Join(qd, "fdbhook")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "gone", "qemu-hook"), filepath.Join(qd, "fdbhook")); err != nil {
		t.Fatal(err)
	}
	expect(t, Doctor(sys), "qemu hook", Fail, "broken link")
}

func TestDoctorConfig(t *testing.T) {
	sys, _ := fakeSystem(t)
	writeFile(t, sys.ConfigPath, "bridges = [\"br0\"]\nbogus = 1\n", 0o644)
	expect(t, Doctor(sys), "config", Fail, "unknown key bogus")

	writeFile(t, sys.ConfigPath, "bridges = [\"br0\"]\n", 0o666)
	expect(t, Doctor(sys), "permissions", Fail, "mode 0666 is group- or world-writable")

	if os.Getuid() != 0 {
		t.Skipf("not root: cannot give the file another owner to test the ownership check")
	}
	sys.Owner = 0
	writeFile(t, sys.ConfigPath, "bridges = [\"br0\"]\n", 0o644)
	if err := os.Chown(sys.ConfigPath, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	expect(t, Doctor(sys), "permissions", Fail, "owned by uid 1000, not 0")
}

// TestDoctorGroupWritable: a file or directory the hooks trust (the
// configuration, its directory, an installed hook) fails the permissions
// check when its group may write it, not only when everyone may; the
// usual modes, and a sticky directory, pass.
func TestDoctorGroupWritable(t *testing.T) {
	for _, c := range []struct {
		what string
		mode os.FileMode
		bad  bool
	}{
		{"config", 0o664, true},
		{"config", 0o644, false},
		{"config dir", 0o775, true},
		{"config dir", 0o755, false},
		{"config dir", 0o777 | os.ModeSticky, false},
		{"hook", 0o775, true},
		{"hook", 0o755, false},
	} {
		t.Run(fmt.Sprintf("%s %v", c.what, c.mode), func(t *testing.T) {
			sys, dir := fakeSystem(t)
			writeFile(t, sys.ConfigPath, "bridges = [\"br0\"]\n", 0o644)
			hook := filepath.Join(sys.HooksDir, "qemu.d", "fdbhook")
			writeFile(t, hook, "fdbhook qemu-hook", 0o755)
			path := map[string]string{"config": sys.ConfigPath, "config dir": dir, "hook": hook}[c.what]
			if err := os.Chmod(path, c.mode); err != nil {
				t.Fatal(err)
			}
			checks := Doctor(sys)
			perms := find(checks, "permissions")
			if !c.bad {
				if len(perms) != 0 {
					t.Errorf("mode %04o of the %s fails: %s", c.mode.Perm(), c.what, formatted(perms))
				}
				return
			}
			want := fmt.Sprintf("%s: mode %04o is group- or world-writable", path, c.mode.Perm())
			if len(perms) != 1 || perms[0].Level != Fail || !strings.Contains(perms[0].Text, want) {
				t.Errorf("mode %04o of the %s: want one failed permissions check containing %q, got:\n%s", c.mode.Perm(), c.what, want, formatted(checks))
			}
		})
	}
}

func TestDoctorKernelAndLibvirt(t *testing.T) {
	sys, _ := fakeSystem(t)
	sys.Probe = func() Probe {
		return Probe{Flags: errors.New("EOPNOTSUPP"), VlanFiltering: errors.New("no PVID"), Locked: errors.New("EINVAL")}
	}
	sys.Links = func() ([]*model.Link, error) { return nil, nil } // no bridge: the probe answers
	sys.Uname = func() (string, string, error) { return "3.16.0", "x86_64", nil }
	sys.LibvirtVersion = func() (string, string, error) { return "6.0.0", "dpkg package libvirt-daemon", nil }
	checks := Doctor(sys)
	expectChecks(t, checks, `
		kernel | warn | older than 3.17
		port flags | fail | cannot turn off learning
		static entries | ok | work
		vlan filtering | warn | not supported by this kernel
		locked ports | warn | not supported
		sticky entries | ok | supported
		libvirt | fail | older than 6.5
	`)

	sys.Probe = func() Probe { return Probe{Err: errors.New("operation not permitted")} }
	expect(t, Doctor(sys), "kernel features", Warn, "not probed")
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]string{
		"6.1.0-18-amd64": "[6 1 0]", "9.0.0": "[9 0 0]", "6.18.44-fc-v769": "[6 18 44]",
		"1:9.0.0-4+deb12u2": "[9 0 0]", "10.5": "[10 5]", "": "[]", "x1": "[]",
	} {
		if got := fmt.Sprint(parseVersion(in)); got != want {
			t.Errorf("parseVersion(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestStartTicks(t *testing.T) {
	// A command name with spaces and parentheses, as /proc may show.
	stat := []byte("8164 (libvirtd (x) y) S 1 8164 8164 0 -1 4194624 1 2 3 4 5 6 7 8 20 0 19 0 123456 1 2 3\n")
	got, err := startTicks(stat)
	if err != nil || got != 123456 {
		t.Errorf("startTicks = %d, %v; want 123456", got, err)
	}
	if _, err := startTicks([]byte("1 (x) S 1")); err == nil {
		t.Error("startTicks of a short line: no error")
	}
}

// networkSet is libvirt's networks as doctor reads them: by name, nil for
// an undefined one; fail names one whose file cannot be read.
type networkSet struct {
	nets map[string]*model.Network
	fail string
}

func (n networkSet) Network(name string) (*model.Network, error) {
	if name == n.fail {
		return nil, errors.New("/run/libvirt/network/" + name + ".xml: permission denied")
	}
	return n.nets[name], nil
}

// TestDoctorNetworks: each network in "networks" is resolved to its
// bridge through libvirt's files and judged as a bridge is, except that a
// network's bridge that does not exist (the network is not started) is a
// warning, not a failure; a network libvirt manages itself, one it has no
// definition of and one without a bridge are warnings; one whose file
// cannot be read fails.
func TestDoctorNetworks(t *testing.T) {
	sys, _ := fakeSystem(t)
	writeFile(t, sys.ConfigPath, "networks = [\"ok\", \"down\", \"nic\", \"mtm\", \"undefined\", \"nobridge\", \"unreadable\"]\n", 0o644)
	sys.Networks = networkSet{fail: "unreadable", nets: map[string]*model.Network{
		"ok":       {Name: "ok", Bridge: "br0"},
		"down":     {Name: "down", Bridge: "virbr9"},
		"nic":      {Name: "nic", Bridge: "bond0"},
		"mtm":      {Name: "mtm", Bridge: "br0", MacTableLibvirt: true},
		"nobridge": {Name: "nobridge"},
	}}
	checks := Doctor(sys)
	expectChecks(t, checks, `
		network ok | ok | br0 (of network ok) is a Linux bridge with 1 ports, vlan_filtering off
		network down | warn | bridge virbr9 (of network down) does not exist
		network nic | fail | bond0 (of network nic) is
		network mtm | warn | macTableManager='libvirt'
		network undefined | warn | libvirt has no definition of it
		network nobridge | warn | names no bridge yet
		network unreadable | fail | permission denied
	`)
	for _, name := range []string{"ok", "down", "mtm", "undefined", "nobridge"} {
		for _, c := range find(checks, "network "+name) {
			if c.Level == Fail {
				t.Errorf("network %s fails doctor: %s", name, c.Text)
			}
		}
	}
	if len(find(checks, "network mtm")) != 1 {
		t.Errorf("a network libvirt manages is judged beyond the warning: %v", find(checks, "network mtm"))
	}
	if !Failed(checks) {
		t.Error("doctor does not fail with a network that fails")
	}
}

// TestDoctorSyslog: doctor says where the log lines go, and warns when
// nothing receives them.
func TestDoctorSyslog(t *testing.T) {
	sys, _ := fakeSystem(t)
	sys.Syslog = func() error { return nil }
	expect(t, Doctor(sys), "log", OK, "the system log is reachable")
	sys.Syslog = func() error { return errors.New("Unix syslog delivery error") }
	expect(t, Doctor(sys), "log", Warn, "no system log (Unix syslog delivery error): the hooks' log lines are lost")
}

// TestDoctorMAB: a kernel without MAC Authentication Bypass is a warning
// that names what to do when a bridge asks for undeclared_macs =
// "report", and an optional feature otherwise; never a failure.
func TestDoctorMAB(t *testing.T) {
	sys, _ := fakeSystem(t)
	sys.Probe = func() Probe { return Probe{Mab: errors.New("the kernel does not report the mab flag")} }
	writeFile(t, sys.ConfigPath, "bridges = [\"br0\"]\n[bridge.br0]\nundeclared_macs = \"report\"\n", 0o644)
	checks := Doctor(sys)
	expect(t, checks, "mac authentication bypass", Warn, `undeclared_macs = "report" ([bridge.br0]): undeclared-MAC detection is unavailable on this kernel, it needs MAC Authentication Bypass (Linux 6.2+)`)
	expect(t, checks, "mac authentication bypass", Warn, `declare the MACs the guests send from as extra MACs in their metadata (<fdbhook:mac address="…"/>`)

	writeFile(t, sys.ConfigPath, "bridges = [\"br0\"]\n", 0o644)
	checks = Doctor(sys)
	expect(t, checks, "mac authentication bypass", OK, "not supported (needs kernel 6.2+")

	// A defined guest's NIC asks for it in its metadata.
	g := domain(t, "web1", nil, "bridge:br0:vnet0:"+macG1)
	g.Interfaces[macG1] = guest.Interface{MAC: macG1, Manage: true, UndeclaredMACs: "report"}
	sys.Guests = func() ([]*guest.Guest, error) { return []*guest.Guest{g}, nil }
	checks = Doctor(sys)
	expect(t, checks, "mac authentication bypass", Warn, `undeclared_macs = "report" (guest web1): undeclared-MAC detection is unavailable`)
	g.UndeclaredMACs = "follow"
	checks = Doctor(sys)
	expect(t, checks, "mac authentication bypass", Warn, `undeclared_macs = "report" or "follow" (guest web1): undeclared-MAC detection is unavailable`)
	sys.Guests = nil

	writeFile(t, sys.ConfigPath, "bridges = [\"br0\"]\n[bridge.br0]\nundeclared_macs = \"follow\"\n", 0o644)
	checks = Doctor(sys)
	expect(t, checks, "mac authentication bypass", Warn, `undeclared_macs = "report" or "follow" ([bridge.br0]): undeclared-MAC detection is unavailable on this kernel`)

	sys.Probe = func() Probe { return Probe{} }
	writeFile(t, sys.ConfigPath, "bridges = [\"br0\"]\n[bridge.br0]\nundeclared_macs = \"report\"\n", 0o644)
	checks = Doctor(sys)
	expect(t, checks, "mac authentication bypass", OK, `supported (kernel 6.2+): undeclared_macs = "report" ([bridge.br0])`)
	if len(find(checks, "mac authentication bypass")) != 1 {
		t.Errorf("want one MAB line:\n%s", formatted(checks))
	}
}

// TestDoctorUplinkDefaultVlanOnly: with vlan_filtering = "enable", an
// uplink that is a member of the bridge's default VLAN alone, untagged,
// is warned of (its tagged frames of other VLANs are dropped once the
// bridge filters); not a guest's tap, not an uplink with tagged VLANs,
// not a bridge left alone.
func TestDoctorUplinkDefaultVlanOnly(t *testing.T) {
	sys, _ := fakeSystem(t)
	sys.Links = func() ([]*model.Link, error) {
		return []*model.Link{{Name: "br0", Index: 2, Type: "bridge", VlanCapable: true, DefaultPvid: 1},
			{Name: "eth0", Index: 3, Type: "device", MasterIndex: 2},
			{Name: "bond1", Index: 4, Type: "bond", MasterIndex: 2},
			{Name: "vnet0", Index: 5, Type: "tuntap", TunMode: "tap", MasterIndex: 2}}, nil
	}
	vlans := map[int][]model.Vlan{
		3: {{ID: 1, Pvid: true, Untagged: true}},
		4: {{ID: 1, Pvid: true, Untagged: true}, {ID: 10}},
		5: {{ID: 1, Pvid: true, Untagged: true}},
	}
	sys.PortVlans = func(i int) ([]model.Vlan, error) { return vlans[i], nil }
	writeFile(t, sys.ConfigPath, "bridges = [\"br0\"]\n[bridge.br0]\nvlan_filtering = \"enable\"\n", 0o644)
	checks := Doctor(sys)
	expect(t, checks, "bridge br0", Warn, `[bridge.br0] vlan_filtering = "enable": uplink eth0 is a member of VLAN 1 alone, untagged (the bridge's default): once vlan_filtering is on, the tagged frames of every other VLAN are dropped on it`)
	for _, c := range find(checks, "bridge br0") {
		if c.Level == Fail || strings.Contains(c.Text, "bond1") || strings.Contains(c.Text, "vnet0") {
			t.Errorf("unexpected check: %s %s", c.Level, c.Text)
		}
	}
	writeFile(t, sys.ConfigPath, "bridges = [\"br0\"]\n", 0o644)
	for _, c := range find(Doctor(sys), "bridge br0") {
		if strings.Contains(c.Text, "uplink") {
			t.Errorf("vlan_filtering left alone, still warned: %s", c.Text)
		}
	}
}
