// Command watch measures "fdbhook watch" for make bench (bench/watch.sh):
//
//	hotplug: against the host's real libvirtd, the time from
//	  `virsh attach-interface --live` returning to the new tap being fully
//	  managed (learning off, flood off, its static entry), and the time to
//	  heal a drift made by hand (learning turned on, an entry deleted), both
//	  read back from the kernel;
//	idle: with simulated guests (live XML files and taps in the current
//	  network namespace, no QEMU), the watcher's start-up time, its CPU
//	  time over an idle period and its peak RSS.
//
// It prints a Markdown section on stdout.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netns"

	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/test/lab"
)

func main() {
	mode := flag.String("mode", "", "hotplug or idle")
	bin := flag.String("fdbhook", "bin/fdbhook", "the fdbhook binary")
	n := flag.Int("n", 30, "hotplug: hotplugs and drifts")
	guests := flag.Int("guests", 300, "idle: simulated guests")
	idle := flag.Duration("idle", 2*time.Minute, "idle: how long to measure")
	var co churnOpts
	before := flag.String("before", "", "churn: the watcher to compare with (an fdbhook binary built from an earlier commit)")
	flag.StringVar(&co.beforeCommit, "before-commit", "", "churn: the commit -before was built from")
	rates := flag.String("rates", "0,1000,5000,20000", "churn: new MACs per second on the uplink, one column each")
	flag.IntVar(&co.guests, "churn-guests", 500, "churn: simulated guests")
	flag.IntVar(&co.nics, "nics", 2, "churn: NICs per guest")
	flag.DurationVar(&co.warmup, "warmup", 13*time.Second, "churn: churn before the window, for the table to fill")
	flag.DurationVar(&co.window, "window", 65*time.Second, "churn: the measured window")
	flag.IntVar(&co.probes, "probes", 5, "churn: hotplugs and drifts in the window")
	flag.DurationVar(&co.ageing, "ageing", 10*time.Second, "churn: the bridge's ageing time")
	flag.StringVar(&co.profile, "profile", "", "churn: directory for the window's profiles (the binaries are bench/watchprof builds)")
	flag.BoolVar(&co.perf, "perf", false, "churn: also run perf record over the window (with -profile)")
	flag.StringVar(&co.logLevel, "log-level", "info", "churn: the watchers' log_level")
	flag.StringVar(&co.keep, "keep-logs", "", "churn: a directory to keep each watcher's log in")
	flag.Parse()
	var err error
	switch *mode {
	case "hotplug":
		err = hotplug(*bin, *n)
	case "idle":
		err = idleRun(*bin, *guests, *idle)
	case "churn":
		if co.rates, err = parseRates(*rates); err == nil {
			co.variants = []variant{{"after", *bin}}
			if *before != "" {
				co.variants = []variant{{"before", *before}, {"after", *bin}}
			}
			err = churn(co)
		}
	default:
		err = fmt.Errorf("-mode must be hotplug, idle or churn")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/watch: %v\n", err)
		os.Exit(1)
	}
}

func parseRates(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("-rates: %q is not a rate", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func sh(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// watcher runs `fdbhook watch` with its files under dir.
type watcher struct {
	cmd *exec.Cmd
	log string
}

func startWatcher(bin, dir string, extraEnv ...string) (*watcher, error) {
	return startWatcherWith(func(c *exec.Cmd) error { return c.Start() }, bin, dir, extraEnv...)
}

// startWatcherWith is startWatcher with start starting the command (in
// another network namespace, for the churn mode).
func startWatcherWith(start func(*exec.Cmd) error, bin, dir string, extraEnv ...string) (*watcher, error) {
	logPath := filepath.Join(dir, "watch.log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, "watch")
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C",
		"FDBHOOK_CONFIG=" + filepath.Join(dir, "fdbhook.toml"),
		"FDBHOOK_RUN_DIR=" + filepath.Join(dir, "run-fdbhook")}, extraEnv...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := start(cmd); err != nil {
		return nil, err
	}
	return &watcher{cmd: cmd, log: logPath}, nil
}

func (w *watcher) output() string { b, _ := os.ReadFile(w.log); return string(b) }

// stop sends SIGTERM and returns how long the watcher took to exit.
func (w *watcher) stop() (time.Duration, error) {
	t0 := time.Now()
	w.cmd.Process.Signal(syscall.SIGTERM)
	err := w.cmd.Wait()
	return time.Since(t0), err
}

// cpu returns the process's user+system CPU time.
func cpu(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100, nil
}

// peakRSS returns VmHWM in KiB.
func peakRSS(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmHWM")
}

// managed reports, from the kernel, whether port is on bridge with
// learning and flood off and holds the one static entry for mac.
func managed(k *kernel.Conn, port, bridge, mac string) bool {
	l, err := k.Link(port)
	if err != nil || l == nil || l.Master != bridge || l.Flags.Learning || l.Flags.Flood {
		return false
	}
	br, err := k.Link(bridge)
	if err != nil || br == nil {
		return false
	}
	es, err := k.Entries(br, mac)
	if err != nil {
		return false
	}
	n := 0
	for _, e := range es {
		if e.Vlan != 0 {
			continue
		}
		if e.PortIndex != l.Index || !e.Static() {
			return false
		}
		n++
	}
	return n == 1
}

// waitManaged polls every millisecond for up to 5 s.
func waitManaged(k *kernel.Conn, port, bridge, mac string, t0 time.Time) (time.Duration, error) {
	return waitManagedFor(k, port, bridge, mac, t0, 5*time.Second)
}

type stats struct{ median, p90, worst time.Duration }

func summarize(ds []time.Duration) stats {
	s := slices.Clone(ds)
	slices.Sort(s)
	return stats{median: s[len(s)/2], p90: s[len(s)*9/10], worst: s[len(s)-1]}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

const (
	hpGuest  = "fdbtwb1"
	hpBridge = "fdbtwbbr0"
)

func hotplugXML(ports int) string {
	var devices strings.Builder
	devices.WriteString("    <memballoon model='none'/>\n    <controller type='pci' index='0' model='pcie-root'/>\n")
	for i := 1; i <= ports; i++ {
		fmt.Fprintf(&devices, "    <controller type='pci' index='%d' model='pcie-root-port'/>\n", i)
	}
	return lab.Domain{Name: hpGuest, Type: "qemu",
		Body:    "  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n  <os><type arch='x86_64' machine='q35'>hvm</type></os>\n  <features><acpi/></features>\n",
		Devices: devices.String(),
		NICs:    []lab.NIC{{MAC: "52:54:00:fe:00:00", Bridge: hpBridge, Model: "virtio", Extra: "      <rom enabled='no'/>\n"}}}.XML()
}

func hotplug(bin string, n int) (err error) {
	dir, err := os.MkdirTemp("", "fdbt-wbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	exec.Command("virsh", "destroy", hpGuest).Run()
	exec.Command("virsh", "undefine", hpGuest).Run()
	exec.Command("ip", "link", "del", hpBridge).Run()
	if err := sh("ip", "link", "add", hpBridge, "type", "bridge"); err != nil {
		return err
	}
	defer exec.Command("ip", "link", "del", hpBridge).Run()
	if err := sh("ip", "link", "set", hpBridge, "up"); err != nil {
		return err
	}
	os.WriteFile(filepath.Join(dir, "fdbhook.toml"), []byte(fmt.Sprintf("bridges = [%q]\nlog_level = \"info\"\n", hpBridge)), 0o644)
	xml := filepath.Join(dir, "guest.xml")
	os.WriteFile(xml, []byte(hotplugXML(n+8)), 0o644) // spare ports: q35 puts its USB controller and more on root ports too
	if err := sh("virsh", "define", xml); err != nil {
		return err
	}
	defer func() {
		exec.Command("virsh", "destroy", hpGuest).Run()
		exec.Command("virsh", "undefine", hpGuest).Run()
	}()
	if err := sh("virsh", "start", hpGuest); err != nil {
		return err
	}
	w, err := startWatcher(bin, dir)
	if err != nil {
		return err
	}
	defer func() {
		if w.cmd.ProcessState == nil {
			w.stop()
		}
	}()
	for t0 := time.Now(); !strings.Contains(w.output(), "connected to libvirt"); time.Sleep(10 * time.Millisecond) {
		if time.Since(t0) > 10*time.Second {
			return fmt.Errorf("the watcher did not connect to libvirt:\n%s", w.output())
		}
	}
	k, err := kernel.Open(netns.None(), kernel.DefaultTimeout)
	if err != nil {
		return err
	}
	defer k.Close()
	type nicRef struct{ mac, tap string }
	var nics []nicRef
	var attach []time.Duration
	for i := 1; i <= n; i++ {
		mac := fmt.Sprintf("52:54:00:fe:00:%02x", i)
		before, err := bridgeTaps(k, hpBridge)
		if err != nil {
			return err
		}
		if err := sh("virsh", "attach-interface", hpGuest, "--type", "bridge", "--source", hpBridge,
			"--mac", mac, "--model", "virtio", "--live"); err != nil {
			return err
		}
		t0 := time.Now()
		after, err := bridgeTaps(k, hpBridge)
		if err != nil {
			return err
		}
		var tap string
		for _, t := range after {
			if !slices.Contains(before, t) {
				tap = t
			}
		}
		if tap == "" {
			return fmt.Errorf("no new tap on %s after attaching %s", hpBridge, mac)
		}
		d, err := waitManaged(k, tap, hpBridge, mac, t0)
		if err != nil {
			return fmt.Errorf("hotplug %d: %w\n%s", i, err, w.output())
		}
		attach = append(attach, d)
		nics = append(nics, nicRef{mac, tap})
	}
	var drift []time.Duration
	kinds := []string{"learning and flood turned on", "static entry deleted"}
	for i := 0; i < n; i++ {
		nic := nics[i%len(nics)]
		var err error
		if i%2 == 0 {
			err = sh("bridge", "link", "set", "dev", nic.tap, "learning", "on", "flood", "on")
		} else {
			err = sh("bridge", "fdb", "del", nic.mac, "dev", nic.tap, "master")
		}
		if err != nil {
			return err
		}
		t0 := time.Now()
		d, err := waitManaged(k, nic.tap, hpBridge, nic.mac, t0)
		if err != nil {
			return fmt.Errorf("drift %d (%s): %w", i, kinds[i%2], err)
		}
		drift = append(drift, d)
	}
	exit, err := w.stop()
	if err != nil {
		return fmt.Errorf("watcher exit: %v", err)
	}
	a, d := summarize(attach), summarize(drift)
	fmt.Printf("Real libvirtd (%s), one diskless q35 TCG guest, %d hotplugs of a type='bridge' NIC then %d drifts made by hand (alternately learning+flood on, the static entry deleted). Latency is from `virsh attach-interface` (or the `bridge` command) returning to the tap being fully managed, read back from the kernel over netlink (polled every 1 ms).\n\n", libvirtVersion(), n, n)
	fmt.Printf("| measure | n | median | p90 | worst | target | |\n|---|---:|---:|---:|---:|---|---|\n")
	fmt.Printf("| hotplug to managed | %d | %s | %s | %s | median < 200 ms, worst < 1 s | %s |\n", len(attach), ms(a.median), ms(a.p90), ms(a.worst),
		verdict(a.median < 200*time.Millisecond && a.worst < time.Second))
	fmt.Printf("| drift to healed | %d | %s | %s | %s | median < 200 ms, worst < 1 s | %s |\n", len(drift), ms(d.median), ms(d.p90), ms(d.worst),
		verdict(d.median < 200*time.Millisecond && d.worst < time.Second))
	fmt.Printf("| exit after SIGTERM | 1 | %s | | | under 1 s | %s |\n\n", ms(exit), verdict(exit < time.Second))
	return nil
}

func libvirtVersion() string {
	out, err := exec.Command("libvirtd", "--version").Output()
	if err != nil {
		return "libvirt"
	}
	return strings.TrimSpace(string(out))
}

// bridgeTaps lists the taps enslaved to bridge.
func bridgeTaps(k *kernel.Conn, bridge string) ([]string, error) {
	links, err := k.Links()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range links {
		if l.Master == bridge && l.IsTap() {
			out = append(out, l.Name)
		}
	}
	return out, nil
}

const idleBridge = "fdbtwibr0"

// idleRun runs in a network namespace of its own (bench/watch.sh).
func idleRun(bin string, guests int, idle time.Duration) error {
	dir, err := os.MkdirTemp("", "fdbt-wbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	live := filepath.Join(dir, "libvirt", "qemu")
	os.MkdirAll(live, 0o755)
	os.MkdirAll(filepath.Join(dir, "etc", "qemu"), 0o755)
	os.WriteFile(filepath.Join(dir, "fdbhook.toml"), []byte(fmt.Sprintf("bridges = [%q]\nlog_level = \"info\"\n[watch]\nresync = \"60s\"\n", idleBridge)), 0o644)
	lines := []string{"link add " + idleBridge + " type bridge", "link set " + idleBridge + " up"}
	type g struct{ name, tap, mac string }
	var gs []g
	for i := 0; i < guests; i++ {
		x := g{fmt.Sprintf("fdbtwi%03d", i), fmt.Sprintf("fdbtwit%03d", i), fmt.Sprintf("52:54:00:fd:%02x:%02x", i/256, i%256)}
		gs = append(gs, x)
		lines = append(lines, "tuntap add "+x.tap+" mode tap", "link set "+x.tap+" master "+idleBridge)
		xml := fmt.Sprintf("<domstatus state='running' reason='booted' pid='1'><domain type='qemu'><name>%s</name><devices><interface type='bridge'><mac address='%s'/><source bridge='%s'/><target dev='%s'/><alias name='net0'/></interface></devices></domain></domstatus>\n",
			x.name, x.mac, idleBridge, x.tap)
		os.WriteFile(filepath.Join(live, x.name+".xml"), []byte(xml), 0o600)
	}
	cmd := exec.Command("ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip -batch: %v: %s", err, out)
	}
	k, err := kernel.Open(netns.None(), kernel.DefaultTimeout)
	if err != nil {
		return err
	}
	defer k.Close()
	t0 := time.Now()
	w, err := startWatcher(bin, dir, "FDBHOOK_LIBVIRT_RUN="+filepath.Join(dir, "libvirt"), "FDBHOOK_LIBVIRT_ETC="+filepath.Join(dir, "etc"),
		"FDBHOOK_LOCK="+filepath.Join(dir, "lock"))
	if err != nil {
		return err
	}
	defer func() {
		if w.cmd.ProcessState == nil {
			w.stop()
		}
	}()
	for {
		all := true
		for _, x := range gs {
			if !managed(k, x.tap, idleBridge, x.mac) {
				all = false
				break
			}
		}
		if all {
			break
		}
		if time.Since(t0) > 30*time.Second {
			return fmt.Errorf("not every simulated guest managed 30 s after start:\n%s", w.output())
		}
		time.Sleep(5 * time.Millisecond)
	}
	startup := time.Since(t0)
	pid := w.cmd.Process.Pid
	c0, err := cpu(pid)
	if err != nil {
		return err
	}
	time.Sleep(idle)
	c1, err := cpu(pid)
	if err != nil {
		return err
	}
	rss, err := peakRSS(pid)
	if err != nil {
		return err
	}
	// Still every guest as a start leaves it?
	for _, x := range gs {
		if !managed(k, x.tap, idleBridge, x.mac) {
			return fmt.Errorf("%s not managed after the idle period", x.tap)
		}
	}
	exit, err := w.stop()
	if err != nil {
		return fmt.Errorf("watcher exit: %v", err)
	}
	used := c1 - c0
	fmt.Printf("**Simulated guests**: 300 real TCG guests do not fit this machine, so this part runs the watcher in a network namespace of its own with %d live XML files (one NIC each, `<domstatus state='running'>`) and %d persistent taps on one bridge, no QEMU and no libvirtd (the libvirt source keeps retrying its absent socket every 5 s, which is included). `[watch] resync = \"60s\"`: the idle period holds two full resyncs of every guest. CPU is utime+stime from /proc/PID/stat, peak RSS is VmHWM (start-up included).\n\n", guests, guests)
	fmt.Printf("| measure | value | target | |\n|---|---:|---|---|\n")
	fmt.Printf("| start-up: every guest managed | %s | | |\n", ms(startup))
	fmt.Printf("| CPU time over %s idle, %d guests | %.3f s | under 0.2 s | %s |\n", idle, guests, used.Seconds(), verdict(used < 200*time.Millisecond))
	fmt.Printf("| peak RSS | %.1f MiB | under 30 MiB | %s |\n", float64(rss)/1024, verdict(rss < 30*1024))
	fmt.Printf("| exit after SIGTERM | %s | under 1 s | %s |\n\n", ms(exit), verdict(exit < time.Second))
	return nil
}
