package admin

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/model"
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
	VlanFiltering error // vlan_filtering on a bridge
}

// System is what doctor reads of the host; tests fill it with fakes.
type System struct {
	ConfigPath string
	// HooksDir is libvirt's hook directory (/etc/libvirt/hooks).
	HooksDir string
	Networks Networks
	// Links dumps the devices of the current network namespace.
	Links func() ([]*model.Link, error)
	// Uname returns the kernel's release and machine.
	Uname func() (release, machine string, err error)
	// Probe tries the kernel's bridge features in a private namespace.
	Probe func() Probe
	// LibvirtVersion returns libvirt's version and where it was read.
	LibvirtVersion func() (version, source string, err error)
	// Daemons lists the running libvirt daemons.
	Daemons func() ([]Daemon, error)
	// Identify returns the fdbhook program ("qemu-hook", "network-hook")
	// the file at path is and its version, or "" when it is not fdbhook.
	Identify func(path string) (program, version string)
	// Version is this binary's version.
	Version string
	// Owner is the uid the configuration and the hooks must belong to:
	// 0 (root), since the hooks run as root and do what they say.
	Owner int
}

// Doctor checks whether fdbhook works, or would, on this host: one Check
// per question, each with what to do about it.
func Doctor(sys *System) []Check {
	var out []Check
	add := func(l Level, name, format string, args ...any) {
		out = append(out, Check{Level: l, Name: name, Text: fmt.Sprintf(format, args...)})
	}
	// Kernel.
	if rel, mach, err := sys.Uname(); err != nil {
		add(Warn, "kernel", "uname: %v", err)
	} else if v := parseVersion(rel); len(v) >= 2 && (v[0] < 3 || v[0] == 3 && v[1] < 17) {
		add(Warn, "kernel", "Linux %s (%s) is older than 3.17: the bridge never takes an uplink out of promiscuous mode", rel, mach)
	} else {
		add(OK, "kernel", "Linux %s (%s)", rel, mach)
	}
	links, linkErr := sys.Links()
	if linkErr != nil {
		add(Fail, "kernel", "reading network devices: %v", linkErr)
	}
	out = append(out, probeChecks(sys.Probe(), links)...)

	// Configuration.
	cfg, cfgChecks := configChecks(sys.ConfigPath, sys.Owner)
	out = append(out, cfgChecks...)

	// libvirt.
	libvirtFound := false
	version, source, err := sys.LibvirtVersion()
	switch {
	case err != nil:
		add(Warn, "libvirt", "not found (%v): fdbhook's hooks run only under libvirt; install libvirt-daemon", err)
	default:
		libvirtFound = true
		if v := parseVersion(version); len(v) >= 2 && (v[0] < 6 || v[0] == 6 && v[1] < 5) {
			add(Fail, "libvirt", "%s (%s) is older than 6.5 and runs no hooks from hooks/qemu.d: install the hook as %s instead",
				version, source, filepath.Join(sys.HooksDir, "qemu"))
		} else {
			add(OK, "libvirt", "%s (%s)", version, source)
		}
	}
	manages := cfg != nil && cfg.Present && !cfg.Empty()
	daemons, derr := sys.Daemons()
	if derr != nil {
		add(Warn, "libvirt", "listing libvirt daemons: %v", derr)
	}
	for _, h := range []struct {
		driver, program string
		daemons         []string
		missing         Level
		missingWhy      string
	}{
		{"qemu", "qemu-hook", []string{"libvirtd", "virtqemud"}, Fail, "no guest start is managed"},
		{"network", "network-hook", []string{"libvirtd", "virtnetworkd"}, Warn, "bridge policy (vlan_filtering) is applied at the first guest start instead of at network start"},
	} {
		level := h.missing
		if !manages || !libvirtFound {
			level = Warn
		}
		out = append(out, hookChecks(sys, h.driver, h.program, h.daemons, daemons, level, h.missingWhy)...)
	}

	// Bridges and networks of the configuration.
	if cfg != nil {
		out = append(out, bridgeChecks(cfg, sys.Networks, links, linkErr == nil)...)
	}
	return out
}

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

// hookChecks looks for the fdbhook program among the hooks libvirt runs for
// driver: the main hook and every file in driver.d.
func hookChecks(sys *System, driver, program string, daemonNames []string, daemons []Daemon, missing Level, missingWhy string) []Check {
	name := driver + " hook"
	var out []Check
	candidates := []string{filepath.Join(sys.HooksDir, driver)}
	dir := filepath.Join(sys.HooksDir, driver+".d")
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		out = append(out, Check{Warn, name, err.Error()})
	}
	for _, e := range entries {
		candidates = append(candidates, filepath.Join(dir, e.Name()))
	}
	var found []string
	var otherHookBefore = map[string]bool{} // daemon → some other hook predates it
	for _, path := range candidates {
		lfi, err := os.Lstat(path)
		if err != nil {
			continue
		}
		fi, err := os.Stat(path)
		if err != nil {
			if target, _ := os.Readlink(path); strings.Contains(target, "fdbhook") || strings.Contains(path, "fdbhook") {
				out = append(out, Check{Fail, name, fmt.Sprintf("%s is a broken link to %s: reinstall fdbhook", path, target)})
			}
			continue
		}
		prog, version := sys.Identify(path)
		if prog == "" {
			if executable(fi) {
				for _, d := range daemons {
					if changed(lfi).Before(d.Started) {
						otherHookBefore[d.Name] = true
					}
				}
			}
			continue
		}
		found = append(found, path)
		switch {
		case prog != program:
			out = append(out, Check{Fail, name, fmt.Sprintf("%s runs %s; the %s hook must be %s", path, prog, driver, program)})
			continue
		case !executable(fi):
			out = append(out, Check{Fail, name, fmt.Sprintf("%s is not an executable file: libvirt skips it (chmod 755 %s)", path, path)})
			continue
		}
		if c, bad := ownedBy(path, sys.Owner); bad {
			out = append(out, c)
			continue
		}
		text := fmt.Sprintf("%s (%s %s)", path, program, version)
		if real, err := filepath.EvalSymlinks(path); err == nil && real != path {
			text = fmt.Sprintf("%s -> %s (%s %s)", path, real, program, version)
		}
		out = append(out, Check{OK, name, text})
		if version != "" && sys.Version != "" && version != sys.Version {
			out = append(out, Check{Warn, name, fmt.Sprintf("%s is version %s but this program is %s: reinstall one or the other", path, version, sys.Version)})
		}
		for _, d := range daemons {
			if !slices.Contains(daemonNames, d.Name) {
				continue
			}
			installed := changed(lfi)
			switch {
			case otherHookBefore[d.Name] || !installed.After(d.Started):
				out = append(out, Check{OK, name, fmt.Sprintf("active: %s (pid %d) started at %s, after the %s hooks directory had a hook",
					d.Name, d.PID, d.Started.Format(time.DateTime), driver)})
				continue
			// The record has whole seconds; the install happened earlier
			// in the same package run.
			case !d.Reloaded.IsZero() && !d.Reloaded.Before(installed.Truncate(time.Second)):
				out = append(out, Check{OK, name, fmt.Sprintf("active: %s (pid %d) was reloaded at %s, after %s was installed",
					d.Name, d.PID, d.Reloaded.Format(time.DateTime), path)})
				continue
			}
			out = append(out, Check{Warn, name, fmt.Sprintf("%s (pid %d) started at %s, before %s was installed (%s): it runs %s hooks only if reloaded since (systemctl reload %s, or kill -HUP %d; the package does this on install)",
				d.Name, d.PID, d.Started.Format(time.DateTime), path, changed(lfi).Format(time.DateTime), driver, d.Name, d.PID)})
		}
	}
	if len(found) == 0 {
		out = append(out, Check{missing, name, fmt.Sprintf("not installed: no %s in %s or %s: %s; link %s.d/fdbhook to the installed %s",
			program, filepath.Join(sys.HooksDir, driver), dir, missingWhy, filepath.Join(sys.HooksDir, driver), program)})
	}
	return out
}

func executable(fi fs.FileInfo) bool { return fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 }

// bridgeChecks checks that every configured bridge exists and is a Linux
// bridge, and that every configured network resolves to one.
func bridgeChecks(cfg *config.Config, nets Networks, links []*model.Link, linksOK bool) []Check {
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
			out = append(out, Check{missing, name, fmt.Sprintf("bridge %s%s does not exist", bridge, via)})
		case l.Type != "bridge":
			out = append(out, Check{Fail, name, fmt.Sprintf("%s%s is %s, not a Linux bridge: fdbhook manages Linux bridges only", bridge, via, l.Describe())})
		default:
			vf := "off"
			if l.VlanFiltering {
				vf = "on"
			}
			out = append(out, Check{OK, name, fmt.Sprintf("%s%s is a Linux bridge with %d ports, vlan_filtering %s", bridge, via, ports[l.Index], vf)})
			if cfg.Policy(bridge).VlanFiltering == config.Enable && !l.VlanCapable {
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
