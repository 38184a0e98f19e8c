package admin

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/manage"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// Level is a check's verdict.
type Level int

const (
	OK   Level = iota // works
	Warn              // works, but something is missing or worth doing
	Fail              // fdbhook will not work as configured
)

func (l Level) String() string {
	switch l {
	case OK:
		return "ok"
	case Warn:
		return "warn"
	}
	return "fail"
}

// Check is one line of doctor's answer.
type Check struct {
	Level Level
	Name  string
	Text  string
}

// Daemon is a running libvirt daemon.
type Daemon struct {
	Name    string
	PID     int
	Started time.Time
	// Reloaded is when the package last told this process to reload
	// (runstate's reload record naming its pid); zero when never.
	Reloaded time.Time
}

// Probe is what a throwaway bridge in a private network namespace showed
// this kernel can do; each field is nil when the feature works.
type Probe struct {
	// Err is set when the probe could not run at all.
	Err           error
	Flags         error // learning and unicast_flood off on a port
	Static        error // a static (NUD_NOARP) master entry
	Sticky        error // a sticky static entry
	Locked        error // a locked port
	Mab           error // MAC Authentication Bypass on a locked port
	VlanFiltering error // vlan_filtering on a bridge
}

// System is what doctor reads of the host; tests fill it with fakes.
type System struct {
	ConfigPath string
	// HooksDir is libvirt's hook directory (/etc/libvirt/hooks).
	HooksDir string
	Networks manage.Networks
	// Links dumps the devices of the current network namespace.
	Links func() ([]*model.Link, error)
	// PortVlans returns the VLANs of a bridge port (by index), for the
	// uplinks of a bridge configured with vlan_filtering = "enable"; nil:
	// not checked.
	PortVlans func(index int) ([]model.Vlan, error)
	// Uname returns the kernel's release and machine.
	Uname func() (release, machine string, err error)
	// Probe tries the kernel's bridge features in a private namespace.
	Probe func() Probe
	// LibvirtVersion returns libvirt's version and where it was read.
	LibvirtVersion func() (version, source string, err error)
	// Daemons lists the running libvirt daemons.
	Daemons func() ([]Daemon, error)
	// HooksSince is since when the package's hooks (DRIVER.d/fdbhook) have
	// been installed, as recorded when an upgrade replaced them (runstate's
	// HooksSince); nil or not ok: their ctime says it.
	HooksSince func() (time.Time, bool)
	// LxcDriver reports whether libvirt's LXC driver is installed: the lxc
	// hook is checked only then (nil: it is not).
	LxcDriver func() bool
	// Exec says what, beyond mode bits, keeps libvirt's daemons from
	// executing the hooks (noexec mounts, AppArmor); nil: not checked.
	Exec ExecPolicy
	// Identify returns the fdbhook program ("qemu-hook", "network-hook")
	// the file at path is and its version, or "" when it is not fdbhook.
	Identify func(path string) (program, version string)
	// Guests returns the defined guests (QEMU and LXC), whose metadata may
	// ask for undeclared_macs = "report"; nil: not checked.
	Guests func() ([]*guest.Guest, error)
	// Syslog reports whether the system log (/dev/log) can be reached;
	// nil: not checked.
	Syslog func() error
	// Version is this binary's version.
	Version string
	// Owner is the uid the configuration and the hooks must belong to:
	// 0 (root), since the hooks run as root and do what they say.
	Owner int
}

// Doctor checks whether fdbhook works, or would, on this host: one Check
// per question, each with what to do about it. The questions come in
// stages: the kernel, the configuration, libvirt, the installed hooks, the
// configured bridges and networks.
func Doctor(sys *System) []Check {
	out, probe, links, linksOK := kernelChecks(sys)
	cfg, cfgChecks := configChecks(sys.ConfigPath, sys.Owner)
	out = append(out, cfgChecks...)
	out = append(out, mabCheck(probe, cfg, sys.Guests)...)
	libvirtFound, libvirtOut := libvirtChecks(sys)
	out = append(out, libvirtOut...)
	manages := cfg != nil && cfg.Present && !cfg.Empty()
	out = append(out, installedHookChecks(sys, manages && libvirtFound)...)
	if cfg != nil {
		out = append(out, bridgeChecks(cfg, sys.Networks, links, linksOK)...)
		out = append(out, uplinkVlanChecks(cfg, sys.PortVlans, links, linksOK)...)
	}
	if sys.Syslog != nil {
		out = append(out, syslogCheck(sys.Syslog()))
	}
	return out
}

// syslogCheck says where the hooks' and the watcher's log lines go.
func syslogCheck(err error) Check {
	if err == nil {
		return Check{OK, "log", "the system log is reachable: the hooks log there (facility daemon, tag fdbhook), the watcher too (tag fdbhook-watch)"}
	}
	return Check{Warn, "log", fmt.Sprintf("no system log (%v): the hooks' log lines are lost (a refused start still shows its cause in virsh's error), "+
		"and fdbhook watch logs to standard error only: start a syslog daemon or systemd-journald, or run the watcher as fdbhook.service", err)}
}

// kernelChecks asks whether this kernel has what fdbhook needs: its
// version (3.17+ takes an uplink out of promiscuous mode), and the bridge
// features a throwaway bridge shows. It returns the devices it read for
// the later stages, and what the probe found; linksOK is false when they
// could not be read.
func kernelChecks(sys *System) (out []Check, probe Probe, links []*model.Link, linksOK bool) {
	if rel, mach, err := sys.Uname(); err != nil {
		out = append(out, Check{Warn, "kernel", fmt.Sprintf("uname: %v", err)})
	} else if olderThan(parseVersion(rel), 3, 17) {
		out = append(out, Check{Warn, "kernel", fmt.Sprintf("Linux %s (%s) is older than 3.17: the bridge never takes an uplink out of promiscuous mode", rel, mach)})
	} else {
		out = append(out, Check{OK, "kernel", fmt.Sprintf("Linux %s (%s)", rel, mach)})
	}
	links, err := sys.Links()
	if err != nil {
		out = append(out, Check{Fail, "kernel", fmt.Sprintf("reading network devices: %v", err)})
	}
	probe = sys.Probe()
	return append(out, probeChecks(probe, links)...), probe, links, err == nil
}

// mabCheck says whether the kernel has MAC Authentication Bypass, which
// undeclared_macs = "report" needs: a warning when a bridge asks for it
// and the kernel has none (the ports are then managed as with "ignore",
// and nothing shows the MACs the guests lose traffic to), a line that
// fails nothing otherwise. Who asks: a bridge's configuration, or a
// defined guest's metadata (guests; nil: not read).
func mabCheck(p Probe, cfg *config.Config, guests func() ([]*guest.Guest, error)) []Check {
	if p.Err != nil {
		return nil // probeChecks said so
	}
	var asking []string
	follow := false // someone asks for "follow", not only "report"
	ask := func(who string, u config.UndeclaredMACs) {
		if u.Detects() {
			asking = append(asking, who)
			follow = follow || u == config.Follow
		}
	}
	if cfg != nil {
		for _, b := range slices.Sorted(maps.Keys(cfg.Bridge)) {
			ask("[bridge."+b+"]", cfg.Bridge[b].UndeclaredMACs)
		}
	}
	if guests != nil {
		gs, _ := guests() // unreadable definitions: other checks say so
		for _, g := range gs {
			// The guest asks when it or one of its NICs does; a NIC's
			// "follow" names the mode in the line.
			u := config.UndeclaredMACs(g.UndeclaredMACs)
			for _, m := range g.Interfaces {
				if config.UndeclaredMACs(m.UndeclaredMACs).Detects() && !u.Detects() || m.UndeclaredMACs == string(config.Follow) {
					u = config.UndeclaredMACs(m.UndeclaredMACs)
				}
			}
			ask("guest "+g.Name, u)
		}
	}
	mode := `undeclared_macs = "report"`
	if follow {
		mode = `undeclared_macs = "report" or "follow"`
	}
	switch {
	case p.Mab == nil && len(asking) > 0:
		return []Check{{OK, "mac authentication bypass", "supported (kernel 6.2+): " + mode + " (" + strings.Join(asking, ", ") + ") shows the MACs guests send from undeclared"}}
	case p.Mab == nil:
		return []Check{{OK, "mac authentication bypass", "supported (kernel 6.2+): optional, undeclared_macs = \"report\" can show the MACs guests send from undeclared, \"follow\" authorise them"}}
	case len(asking) > 0:
		return []Check{{Warn, "mac authentication bypass", fmt.Sprintf("%s (%s): undeclared-MAC detection is unavailable on this kernel, it needs MAC Authentication Bypass (Linux 6.2+) (%v); the ports are managed as with \"ignore\": "+
			"declare the MACs the guests send from as extra MACs in their metadata (<fdbhook:mac address=\"…\"/> in <fdbhook:interface>)", mode, strings.Join(asking, ", "), p.Mab)}}
	}
	return []Check{{OK, "mac authentication bypass", fmt.Sprintf("not supported (needs kernel 6.2+; %v): optional, only undeclared_macs = \"report\" and \"follow\" use it, and nothing asks for it", p.Mab)}}
}

// uplinkVlanChecks warns, for each bridge configured with vlan_filtering =
// "enable", of each port that is no guest's (an uplink) and is a member of
// the bridge's default VLAN alone, untagged: once vlan_filtering is on,
// the bridge drops the tagged frames of every other VLAN on it, silently.
func uplinkVlanChecks(cfg *config.Config, portVlans func(int) ([]model.Vlan, error), links []*model.Link, linksOK bool) []Check {
	if portVlans == nil || !linksOK {
		return nil
	}
	var out []Check
	for _, br := range links {
		if br.Type != "bridge" || !br.VlanCapable || cfg.Policy(br.Name).VlanFiltering != config.Enable {
			continue
		}
		pvid := cmp.Or(br.DefaultPvid, 1)
		for _, p := range links {
			if p.MasterIndex != br.Index || p.IsGuestPort() {
				continue
			}
			vl, err := portVlans(p.Index)
			switch {
			case err != nil:
				out = append(out, Check{Warn, "bridge " + br.Name, fmt.Sprintf("reading the VLANs of %s: %v", p.Name, err)})
			case len(vl) == 1 && vl[0] == (model.Vlan{ID: pvid, Pvid: true, Untagged: true}):
				out = append(out, Check{Warn, "bridge " + br.Name, fmt.Sprintf("[bridge.%s] vlan_filtering = \"enable\": uplink %s is a member of VLAN %d alone, untagged (the bridge's default): "+
					"once vlan_filtering is on, the tagged frames of every other VLAN are dropped on it; if it carries tagged VLANs, add them (bridge vlan add dev %s vid 10-20), or write vlan_filtering = \"leave\"",
					br.Name, p.Name, pvid, p.Name)})
			}
		}
	}
	return out
}

// libvirtChecks asks whether libvirt is installed, and new enough (6.5+)
// to run the hooks in hooks/qemu.d; found is false when it is not
// installed.
func libvirtChecks(sys *System) (found bool, out []Check) {
	version, source, err := sys.LibvirtVersion()
	switch {
	case err != nil:
		return false, []Check{{Warn, "libvirt", fmt.Sprintf("not found (%v): fdbhook's hooks run only under libvirt; install libvirt-daemon", err)}}
	case olderThan(parseVersion(version), 6, 5):
		return true, []Check{{Fail, "libvirt", fmt.Sprintf("%s (%s) is older than 6.5 and runs no hooks from hooks/qemu.d: install the hook as %s instead",
			version, source, filepath.Join(sys.HooksDir, "qemu"))}}
	}
	return true, []Check{{OK, "libvirt", fmt.Sprintf("%s (%s)", version, source)}}
}

// olderThan reports whether version v (as parseVersion reads it) is
// older than major.minor; a version without both numbers is not.
func olderThan(v []int, major, minor int) bool {
	return len(v) >= 2 && (v[0] < major || v[0] == major && v[1] < minor)
}

// hookSpec is one libvirt driver's hook that fdbhook provides.
type hookSpec struct {
	driver, program string
	// daemons are the libvirt daemons that run this driver's hooks.
	daemons []string
	// missing is the level of a missing hook when fdbhook manages
	// something under libvirt, and missingWhy what then goes unmanaged.
	missing    Level
	missingWhy string
	// object is what fails to start when libvirt cannot run the hook.
	object string
}

var hookSpecs = []hookSpec{
	{"qemu", "qemu-hook", []string{"libvirtd", "virtqemud"}, Fail, "no guest start is managed", "guest"},
	{"network", "network-hook", []string{"libvirtd", "virtnetworkd"}, Warn, "bridge policy (vlan_filtering) is applied at the first guest start instead of at network start", "network"},
	{"lxc", "lxc-hook", []string{"libvirtd", "virtlxcd"}, Warn, "no start of a container of libvirt's LXC driver is managed", "container"},
}

// installedHookChecks asks, for each hook fdbhook provides, whether
// libvirt runs it. A missing hook is only a warning unless strict (the
// configuration manages something and libvirt is installed).
func installedHookChecks(sys *System, strict bool) []Check {
	var out []Check
	daemons, err := sys.Daemons()
	if err != nil {
		out = append(out, Check{Warn, "libvirt", fmt.Sprintf("listing libvirt daemons: %v", err)})
	}
	for _, h := range hookSpecs {
		if h.driver == "lxc" && (sys.LxcDriver == nil || !sys.LxcDriver()) {
			continue // no containers to manage
		}
		missing := h.missing
		if !strict {
			missing = Warn
		}
		out = append(out, hookChecks(sys, h, daemons, missing)...)
	}
	return out
}

// probeChecks says which of the bridge features fdbhook uses this kernel
// has, from the probe's throwaway bridge; VLAN filtering from an existing
// bridge when there is one. Missing port flags or static entries fail:
// fdbhook cannot work; the others are optional.
func probeChecks(p Probe, links []*model.Link) []Check {
	if p.Err != nil {
		return []Check{{Warn, "kernel features", fmt.Sprintf("not probed: %v (run as root)", p.Err)}}
	}
	var out []Check
	one := func(name string, err error, okText string, missing Level, missingText string) {
		if err == nil {
			out = append(out, Check{OK, name, okText})
		} else {
			out = append(out, Check{missing, name, fmt.Sprintf("%s (%v)", missingText, err)})
		}
	}
	one("port flags", p.Flags, "learning and unicast_flood can be turned off on bridge ports", Fail,
		"this kernel cannot turn off learning or unicast_flood on a bridge port: fdbhook cannot work here")
	one("static entries", p.Static, "static FDB entries (bridge fdb replace … master static) work", Fail,
		"this kernel cannot add static bridge FDB entries: fdbhook cannot work here")
	// VLAN filtering: an existing bridge answers first; the probe otherwise.
	vlan := p.VlanFiltering
	source := "a throwaway bridge"
	for _, l := range links {
		if l.Type == "bridge" {
			source = "bridge " + l.Name
			vlan = nil
			if !l.VlanCapable {
				vlan = errors.New("the bridge reports no default PVID")
			}
			break
		}
	}
	one("vlan filtering", vlan, "supported (checked on "+source+"): with vlan_filtering on, the kernel can take an uplink out of promiscuous mode", Warn,
		"not supported by this kernel (CONFIG_BRIDGE_VLAN_FILTERING): uplinks stay promiscuous and vlan_filtering = \"enable\" has no effect; Debian's own kernels have it (checked on "+source+")")
	one("locked ports", p.Locked, "supported (kernel 5.18+)", Warn,
		"not supported (needs kernel 5.18+): optional, source-MAC locking is unavailable")
	one("sticky entries", p.Sticky, "supported", Warn,
		"not supported: optional, a static entry can roam to another port (fdbhook removes roamed entries at guest stop)")
	return out
}

// configChecks loads the configuration and checks its file's ownership and
// mode: the hooks run as root and do what it says.
func configChecks(path string, owner int) (*config.Config, []Check) {
	var out []Check
	cfg, err := config.Load(path)
	switch {
	case err != nil:
		return nil, []Check{{Fail, "config", fmt.Sprintf("%v: fix it; until then every guest start fails (exit 3)", err)}}
	case !cfg.Present:
		return cfg, []Check{{Warn, "config", fmt.Sprintf("%s does not exist: fdbhook manages nothing; create it and list bridges or networks", path)}}
	case cfg.Empty():
		out = append(out, Check{Warn, "config", fmt.Sprintf("%s lists no bridges or networks: fdbhook manages nothing", path)})
	default:
		out = append(out, Check{OK, "config", fmt.Sprintf("%s: %d bridges, %d networks, on_error = %q", path, len(cfg.Bridges), len(cfg.Networks), cfg.OnError)})
	}
	for _, p := range []string{path, filepath.Dir(path)} {
		if c, bad := ownedBy(p, owner); bad {
			out = append(out, c)
		}
	}
	return cfg, out
}

// ownedBy checks that path belongs to owner (root in production) and is
// not writable by group or others; bad is true with a failing check
// otherwise.
func ownedBy(path string, owner int) (Check, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return Check{Fail, "permissions", err.Error()}, true
	}
	var why []string
	if uid, ok := fileUID(fi); ok && uid != owner {
		why = append(why, fmt.Sprintf("owned by uid %d, not %d (chown %d %s)", uid, owner, owner, path))
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		why = append(why, fmt.Sprintf("mode %04o is group- or world-writable (chmod go-w %s)", fi.Mode().Perm(), path))
	}
	if len(why) == 0 {
		return Check{}, false
	}
	return Check{Fail, "permissions", fmt.Sprintf("%s: %s: whoever can write it controls what hooks running as root do", path, strings.Join(why, "; "))}, true
}

// hookChecks looks for h's program among the hooks libvirt runs for its
// driver: the main hook and every file in driver.d, in the order libvirt
// runs them. Not finding it is a check at level missing.
func hookChecks(sys *System, h hookSpec, daemons []Daemon, missing Level) []Check {
	s := &hookScan{sys: sys, h: h, name: h.driver + " hook", daemons: daemons, otherHookBefore: map[string]bool{}}
	main, dir := filepath.Join(sys.HooksDir, h.driver), filepath.Join(sys.HooksDir, h.driver+".d")
	candidates := []string{main}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.add(Warn, "%v", err)
	}
	for _, e := range entries {
		candidates = append(candidates, filepath.Join(dir, e.Name()))
	}
	// libvirt runs a driver's hooks when it found any at its start, so
	// every other hook counts, wherever it sorts.
	for _, path := range candidates {
		s.other(path)
	}
	for _, path := range candidates {
		s.candidate(path)
	}
	if !s.found {
		s.add(missing, "not installed: no %s in %s or %s: %s; link %s.d/fdbhook to the installed %s",
			h.program, main, dir, h.missingWhy, main, h.program)
	}
	return s.out
}

// hookScan is the state of hookChecks while it walks one driver's hooks.
type hookScan struct {
	sys     *System
	h       hookSpec
	name    string // the checks' name: "qemu hook"
	daemons []Daemon
	out     []Check
	// found is set once an fdbhook program is seen, right or wrong.
	found bool
	// otherHookBefore holds the daemons some other program's hook
	// predates: libvirt noticed the hooks directory at their start.
	otherHookBefore map[string]bool
}

func (s *hookScan) add(l Level, format string, args ...any) {
	s.out = append(s.out, Check{Level: l, Name: s.name, Text: fmt.Sprintf(format, args...)})
}

// other notes the daemons that path predates when it is another
// program's executable hook.
func (s *hookScan) other(path string) {
	lfi, err := os.Lstat(path)
	if err != nil {
		return
	}
	fi, err := os.Stat(path)
	if err != nil || !executable(fi) {
		return
	}
	if prog, _ := s.sys.Identify(path); prog != "" {
		return
	}
	for _, d := range s.daemons {
		if changed(lfi).Before(d.Started) {
			s.otherHookBefore[d.Name] = true
		}
	}
}

// candidate checks one file libvirt would run: a broken link that looks
// like fdbhook's fails, and fdbhook's must be the right program, usable,
// and seen by the daemons that run it.
func (s *hookScan) candidate(path string) {
	lfi, err := os.Lstat(path)
	if err != nil {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		if target, _ := os.Readlink(path); strings.Contains(target, "fdbhook") || strings.Contains(path, "fdbhook") {
			s.add(Fail, "%s", brokenLink(path, target))
		}
		return
	}
	prog, version := s.sys.Identify(path)
	if prog == "" {
		return
	}
	s.found = true
	if !s.usable(path, prog, fi) {
		return
	}
	text := fmt.Sprintf("%s (%s %s)", path, prog, version)
	if real, err := filepath.EvalSymlinks(path); err == nil && real != path {
		text = fmt.Sprintf("%s -> %s (%s %s)", path, real, prog, version)
	}
	s.add(OK, "%s", text)
	if version != "" && s.sys.Version != "" && version != s.sys.Version {
		s.add(Warn, "%s is version %s but this program is %s: reinstall one or the other", path, version, s.sys.Version)
	}
	installed := changed(lfi)
	if s.sys.HooksSince != nil && path == filepath.Join(s.sys.HooksDir, s.h.driver+".d", "fdbhook") {
		if since, ok := s.sys.HooksSince(); ok && since.Before(installed) {
			installed = since
		}
	}
	for _, d := range s.daemons {
		if slices.Contains(s.h.daemons, d.Name) {
			s.active(d, path, installed)
		}
	}
	if s.sys.Exec != nil {
		s.out = append(s.out, execChecks(s.sys.Exec, s.h, path, s.daemons)...)
	}
}

// usable fails an fdbhook hook that is the other hook's program, is not
// an executable file (libvirt skips it), or is writable by others than
// its owner.
func (s *hookScan) usable(path, prog string, fi fs.FileInfo) bool {
	switch {
	case prog != s.h.program:
		s.add(Fail, "%s runs %s; the %s hook must be %s", path, prog, s.h.driver, s.h.program)
		return false
	case !executable(fi):
		s.add(Fail, "%s", notExecutable(path))
		return false
	}
	if c, bad := ownedBy(path, s.sys.Owner); bad {
		s.out = append(s.out, c)
		return false
	}
	return true
}

// active says whether daemon d runs the hook at path, installed at
// installed: libvirt notices a driver's hooks only at its start or a
// reload, unless the hooks directory already had a hook then.
func (s *hookScan) active(d Daemon, path string, installed time.Time) {
	switch {
	case s.otherHookBefore[d.Name] || !installed.After(d.Started):
		s.add(OK, "active: %s (pid %d) started at %s, after the %s hooks directory had a hook",
			d.Name, d.PID, d.Started.Format(time.DateTime), s.h.driver)
	// The record has whole seconds; the install happened earlier in the
	// same package run.
	case !d.Reloaded.IsZero() && !d.Reloaded.Before(installed.Truncate(time.Second)):
		s.add(OK, "active: %s (pid %d) was reloaded at %s, after %s was installed",
			d.Name, d.PID, d.Reloaded.Format(time.DateTime), path)
	default:
		s.add(Warn, "%s (pid %d) started at %s, before %s was installed (%s): it runs %s hooks only if reloaded since (systemctl reload %s, or kill -HUP %d; the package does this on install)",
			d.Name, d.PID, d.Started.Format(time.DateTime), path, installed.Format(time.DateTime), s.h.driver, d.Name, d.PID)
	}
}

func executable(fi fs.FileInfo) bool { return fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 }

// bridgeChecks checks that every configured bridge exists and is a Linux
// bridge, and that every configured network resolves to one.
func bridgeChecks(cfg *config.Config, nets manage.Networks, links []*model.Link, linksOK bool) []Check {
	var out []Check
	byName := map[string]*model.Link{}
	ports := map[int]int{}
	for _, l := range links {
		byName[l.Name] = l
		ports[l.MasterIndex]++
	}
	check := func(name, bridge, via string, missing Level) {
		if !linksOK {
			return
		}
		l := byName[bridge]
		switch {
		case l == nil:
			out = append(out, Check{missing, name, noBridge(cfg, links, bridge, via)})
		case l.Type != "bridge":
			out = append(out, Check{Fail, name, fmt.Sprintf("%s%s is %s, not a Linux bridge: fdbhook manages Linux bridges only", bridge, via, l.Describe())})
		default:
			vf := "off"
			if l.VlanFiltering {
				vf = "on"
			}
			out = append(out, Check{OK, name, fmt.Sprintf("%s%s is a Linux bridge with %d ports, vlan_filtering %s", bridge, via, ports[l.Index], vf)})
			if plan.VlanPolicy(cfg, l) == plan.VlanCannot {
				out = append(out, Check{Warn, name, fmt.Sprintf("[bridge.%s] vlan_filtering = \"enable\" cannot take effect: this kernel has no bridge VLAN filtering", bridge)})
			}
		}
	}
	for _, b := range cfg.Bridges {
		check("bridge "+b, b, "", Fail)
	}
	for _, n := range cfg.Networks {
		name := "network " + n
		net, err := nets.Network(n)
		switch {
		case err != nil:
			out = append(out, Check{Fail, name, err.Error()})
		case net == nil:
			out = append(out, Check{Warn, name, "libvirt has no definition of it (virsh net-list --all): its NICs are not managed"})
		case net.MacTableLibvirt:
			out = append(out, Check{Warn, name, "has <bridge macTableManager='libvirt'/>: libvirt manages its NICs and fdbhook leaves them alone; drop one or the other"})
		case net.Bridge == "":
			out = append(out, Check{Warn, name, "its definition names no bridge yet (start the network)"})
		default:
			check(name, net.Bridge, " (of network "+n+")", Warn)
		}
	}
	return out
}

// noBridge says that a configured bridge does not exist, where the
// configuration names it, which bridges do, and what to do.
func noBridge(cfg *config.Config, links []*model.Link, bridge, via string) string {
	var have []string
	for _, l := range links {
		if l.Type == "bridge" {
			have = append(have, l.Name)
		}
	}
	slices.Sort(have)
	there := "there is no Linux bridge on this host"
	if len(have) > 0 {
		there = "the Linux bridges here are " + strings.Join(have, ", ")
	}
	if via != "" {
		return fmt.Sprintf("bridge %s%s does not exist (%s): start the network (virsh net-start), or fix its definition", bridge, via, there)
	}
	return fmt.Sprintf("bridge %s does not exist (bridges, %s); %s: fix the name there, or create the bridge (ip link add %s type bridge)",
		bridge, config.Where(cfg.Path, "bridges"), there, bridge)
}

// parseVersion reads the leading dotted numbers of s ("6.1.0-18-amd64" →
// [6 1 0]).
func parseVersion(s string) []int {
	var out []int
	if epoch, rest, ok := strings.Cut(s, ":"); ok && epoch != "" && strings.Trim(epoch, "0123456789") == "" {
		s = rest // a package version's epoch ("1:9.0.0-4")
	}
	for _, f := range strings.Split(s, ".") {
		end := strings.IndexFunc(f, func(r rune) bool { return r < '0' || r > '9' })
		if end == 0 {
			break
		}
		if end < 0 {
			end = len(f)
		}
		n, err := strconv.Atoi(f[:end])
		if err != nil {
			break
		}
		out = append(out, n)
		if end < len(f) {
			break
		}
	}
	return out
}

// FormatChecks writes one line per check.
func FormatChecks(w io.Writer, checks []Check) {
	for _, c := range checks {
		fmt.Fprintf(w, "%-4s  %s: %s\n", c.Level, c.Name, c.Text)
	}
}

// Failed reports whether any check failed.
func Failed(checks []Check) bool {
	return slices.ContainsFunc(checks, func(c Check) bool { return c.Level == Fail })
}
