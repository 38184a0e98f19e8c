package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/bench/testbed"
)

// Bridges of the benchmark namespace. All are listed in the bench config.
const (
	latencyBridge = "br0" // the shell baseline hard-codes br0 too
	emptyBridge   = "bre" // stop/start with an empty FDB
	largeBridge   = "brk" // the same, with fdbEntries other static entries
	floodBridge   = "brf" // flood reduction
	lxcBridge     = "brl" // the lxc hook beside the qemu hook
)

var sizes = []int{1, 8, 64}

// bench is the state shared by the phases.
type bench struct {
	o   opts
	lab *testbed.Lab
	r   *runner
	res *Results
	// cleanups undo what phases set up outside the lab (namespaces,
	// processes), last first.
	cleanups []func()
	// env is the minimal environment libvirtd gives a hook, plus
	// FDBHOOK_CONFIG pointing at the bench config.
	env []string
}

// writeConfig writes the packaged configuration to path with bridges as
// its "bridges" list: what the hooks read on a host is that file, whose
// comments cost the parser more than its settings.
func (o opts) writeConfig(path string, bridges ...string) error {
	text, err := os.ReadFile(o.config)
	if err != nil {
		return err
	}
	list := make([]string, len(bridges))
	for i, b := range bridges {
		list[i] = strconv.Quote(b)
	}
	re := regexp.MustCompile(`(?m)^bridges = \[\]$`)
	if len(re.FindAll(text, -1)) != 1 {
		return fmt.Errorf("%s: no single line \"bridges = []\" to set the bench's bridges on", o.config)
	}
	text = re.ReplaceAllLiteral(text, []byte("bridges = ["+strings.Join(list, ", ")+"]"))
	return os.WriteFile(path, text, 0o644)
}

func progress(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }

func measure(o opts) (*Results, error) {
	lab, err := testbed.Current(o.netns)
	if err != nil {
		return nil, err
	}
	defer lab.Close()
	// No IPv6 in the namespace: no router or neighbour solicitations,
	// MLD reports, … on the bench's ports, only the bench's own frames.
	for _, p := range []string{"/proc/sys/net/ipv6/conf/default/disable_ipv6", "/proc/sys/net/ipv6/conf/all/disable_ipv6"} {
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
	}
	cfgPath := filepath.Join(o.work, "fdbhook.toml")
	if err := o.writeConfig(cfgPath, latencyBridge, emptyBridge, largeBridge, floodBridge, lxcBridge); err != nil {
		return nil, err
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "FDBHOOK_CONFIG=" + cfgPath}
	r, err := newRunner(o.work, "child", env)
	if err != nil {
		return nil, err
	}
	defer r.close()
	b := &bench{o: o, lab: lab, r: r, env: env, res: &Results{Runs: o.runs, Commands: map[string]string{}}}
	defer func() {
		for i := len(b.cleanups) - 1; i >= 0; i-- {
			b.cleanups[i]()
		}
	}()
	if err := b.machine(); err != nil {
		return nil, err
	}
	if err := b.sizes(); err != nil {
		return nil, err
	}
	phases := []struct {
		name  string
		about string
		run   func() error
	}{
		{"latency", fmt.Sprintf("start latency: %d interleaved rounds", o.runs), b.latency},
		{"stop", fmt.Sprintf("stop and start against %d other static FDB entries", o.fdbEntries), b.stop},
		{"rss", "peak RSS", b.rss},
		{"flood", fmt.Sprintf("flood reduction: %d frames x %d rounds", o.floodFrames, o.floodRounds), b.flood},
		{"lxc", fmt.Sprintf("lxc hook beside the qemu hook: %d interleaved rounds", o.runs), b.lxcLatency},
		{"alt", fmt.Sprintf("the qemu hook beside its %s build: %d interleaved rounds", o.altName, o.runs), b.altLatency},
	}
	want := strings.Split(o.phases, ",")
	for i, p := range phases {
		if !slices.Contains(want, p.name) || p.name == "alt" && o.altHook == "" {
			continue
		}
		progress("%d/%d %s", i+1, len(phases), p.about)
		if err := p.run(); err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
	}
	b.res.Machine.LoadAfter = loadavg()
	return b.res, nil
}

func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}

func (b *bench) machine() error {
	m := &b.res.Machine
	m.Date = time.Now().UTC().Format("2006-01-02 15:04 UTC")
	m.LoadBefore = loadavg()
	m.Nproc = runtime.NumCPU()
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Machine[:])
	}
	out, code, err := output(b.env, b.o.hook, "--version")
	if err != nil || code != 0 {
		return fmt.Errorf("%s --version: exit %d %v: %s", b.o.hook, code, err, out)
	}
	m.Version = strings.TrimSpace(out)
	m.Go = runtime.Version()
	if out, _, err := output(b.env, "bridge", "-V"); err == nil {
		m.Iproute2 = strings.TrimSpace(out)
	}
	if out, _, err := output(b.env, "xmlstarlet", "--version"); err == nil {
		m.Xmlstar = strings.Fields(out + " ?")[0]
	}
	if out, _, err := output(b.env, "bash", "-c", "echo $BASH_VERSION"); err == nil {
		m.Bash = strings.TrimSpace(out)
	}
	_, err = os.Stat("/dev/log")
	m.DevLog = err == nil
	if link, err := os.Readlink("/proc/self/ns/net"); err == nil {
		m.Namespace = link
	}
	return nil
}

func (b *bench) sizes() error {
	b.res.Sizes = map[string]int64{}
	for _, p := range []string{b.o.hook, filepath.Join(filepath.Dir(b.o.hook), "network-hook"), b.o.noop, b.o.hookInit, b.o.noXMLQuery} {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		b.res.Sizes[filepath.Base(p)] = st.Size()
	}
	if b.o.altHook != "" {
		st, err := os.Stat(b.o.altHook)
		if err != nil {
			return err
		}
		b.res.Sizes["qemu-hook ("+b.o.altName+")"] = st.Size()
	}
	return nil
}
