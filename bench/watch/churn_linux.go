package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/fdbhook/fdbhook/bench/testbed"
	"github.com/fdbhook/fdbhook/pkg/kernel"
)

// churnOpts are the churn mode's settings (flags of main).
type churnOpts struct {
	variants []variant
	rates    []int
	guests   int // each with nics NICs, one tap each
	nics     int
	warmup   time.Duration // after the churn starts, before the window
	window   time.Duration
	probes   int
	ageing   time.Duration
	// profile, when set, is a directory for CPU and allocation profiles of
	// the window (the binaries are then bench/watchprof builds) and, with
	// perf, `perf record` output.
	profile string
	perf    bool
	// beforeCommit names the commit the before watcher was built from.
	beforeCommit string
	// logLevel is the watchers' log_level; keep is a directory where each
	// cell's watcher log is kept ("": none).
	logLevel, keep string
}

// variant is one watcher binary measured: "before" (the watcher the
// change started from) and "after" (this tree's).
type variant struct{ name, bin string }

const (
	churnBridge = "fdbtwcbr0"
	churnUplink = "fdbtwcu0" // the bridge's uplink; its peer is in the sender's namespace
	churnPeer   = "fdbtwcu1"
)

// churnNIC is NIC i of the simulated guests: guest i/nics, tap fdbtwcNNNNx.
func churnNIC(i, nics int) (guest string, nic testbed.NIC) {
	g := i / nics
	return fmt.Sprintf("fdbtwc%04d", g), testbed.NIC{Tap: fmt.Sprintf("fdbtwc%04d%c", g, 'a'+i%nics),
		MAC: fmt.Sprintf("52:54:00:fc:%02x:%02x", i>>8, i&0xff)}
}

// liveXML is what libvirt keeps in /run/libvirt/qemu/NAME.xml for a
// running guest, reduced to what fdbhook reads.
func liveXML(name, bridge string, nics []testbed.NIC) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "<domstatus state='running' reason='booted' pid='1'><domain type='qemu'><name>%s</name><devices>", name)
	for i, n := range nics {
		fmt.Fprintf(&b, "<interface type='bridge'><mac address='%s'/><source bridge='%s'/><target dev='%s'/><alias name='net%d'/></interface>",
			n.MAC, bridge, n.Tap, i)
	}
	b.WriteString("</devices></domain></domstatus>\n")
	return []byte(b.String())
}

// writeLive writes a live XML file as libvirt does: a temporary file
// renamed over the old one.
func writeLive(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, "."+name+".new")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name+".xml"))
}

// cell is one watcher at one churn rate: a fresh pair of namespaces, a
// fresh bridge, fresh guests, a fresh watcher.
type cell struct {
	o        churnOpts
	v        variant
	rate     int
	dir      string
	live     string
	labs     [2]*testbed.Lab // the watcher's, the sender's
	br       netlink.Link
	nics     []testbed.NIC
	k        *kernel.Conn
	w        *watcher
	counter  *fdbCounter
	sender   *sender
	res      cellResult
	stopSend context.CancelFunc
	started  time.Time // when the watcher was started
	sendDone sync.WaitGroup
}

// cellResult is what a cell measured.
type cellResult struct {
	variant string
	rate    int
	// space is how many source MACs the churn cycles through.
	space   int
	startup time.Duration
	cpu     time.Duration // utime+stime over the window, churn alone
	wall    time.Duration // the window, as it was
	// timerResyncs counts the watcher's timer resyncs in the window.
	timerResyncs int
	// probeCPU over probeWall: while the probes ran, the churn going on.
	probeCPU, probeWall time.Duration
	hotplug, drift      []time.Duration
	// hotplugLost and driftLost count the probes not managed within
	// probeLimit (in hotplug and drift at probeLimit).
	hotplugLost, driftLost int
	rssKiB                 int
	// resyncs: the full resyncs the watcher's log says lost
	// notifications asked for. received: notifications the watcher's own
	// socket handed it (-1: the watcher does not say).
	resyncs  int
	received int64
	// sent: FDB notifications the kernel sent, counted on a socket of the
	// bench's own; counterLost: overruns of that socket (then sent is a
	// lower bound). frames: churn frames sent; behind: pacing ticks the
	// sender could not keep up on.
	sent, counterLost, frames, behind int64
	load                              [2]string // load average at the start and end of the window
}

// churnSpace is how many source MACs a rate cycles through: enough that
// none comes back within the ageing time (plus a margin for the bridge's
// garbage collection), so every frame is a new entry; at least 50,000,
// as a busy segment has.
func churnSpace(rate int, ageing time.Duration) int {
	return max(50_000, int(float64(rate)*(ageing+3*time.Second).Seconds()))
}

// churn measures every variant at every rate. The variants take turns
// going first, so that a change in the machine's load falls on both.
func churn(o churnOpts) error {
	run := &churnRun{o: o, cells: map[string]map[int]cellResult{}}
	for _, v := range o.variants {
		run.cells[v.name] = map[int]cellResult{}
	}
	for i, rate := range o.rates {
		order := o.variants
		if i%2 == 1 && len(order) == 2 {
			order = []variant{o.variants[1], o.variants[0]}
		}
		for _, v := range order {
			res, err := runCell(o, v, rate)
			if err != nil {
				return err
			}
			run.cells[v.name][rate] = res
			progress("%s at %s: CPU %s, hotplug %s, drift %s, RSS %.1f MiB, %d resyncs", v.name, rateName(rate), pct(share(res)),
				medWorst(res.hotplug, res.hotplugLost), medWorst(res.drift, res.driftLost), float64(res.rssKiB)/1024, res.resyncs)
		}
	}
	run.report(os.Stdout)
	return nil
}

func runCell(o churnOpts, v variant, rate int) (res cellResult, err error) {
	c := &cell{o: o, v: v, rate: rate}
	c.res = cellResult{variant: v.name, rate: rate, space: churnSpace(rate, o.ageing), received: -1}
	defer c.close()
	progress("%s watcher, %d new MACs/s: building %d guests × %d NICs", v.name, rate, o.guests, o.nics)
	if err := c.build(); err != nil {
		return c.res, err
	}
	if err := c.start(); err != nil {
		return c.res, err
	}
	if err := c.measure(); err != nil {
		return c.res, fmt.Errorf("%s watcher at %d/s: %w\n%s", v.name, rate, err, tail(c.w.output(), 20))
	}
	return c.res, c.finish()
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/watch: "+format+"\n", args...)
}

// build makes the namespaces, the bridge with its ageing time, the
// guests' taps and live XML, and the uplink whose far end is in the
// sender's namespace.
func (c *cell) build() error {
	for i := range c.labs {
		l, err := testbed.New()
		if err != nil {
			return err
		}
		c.labs[i] = l
	}
	var err error
	if c.dir, err = os.MkdirTemp("", "fdbt-wchurn-"); err != nil {
		return err
	}
	c.live = filepath.Join(c.dir, "libvirt", "qemu")
	for _, d := range []string{c.live, filepath.Join(c.dir, "etc", "qemu")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	cfg := fmt.Sprintf("bridges = [%q]\nlog_level = %q\n[watch]\nresync = %q\n", churnBridge, c.o.logLevel, timerResync)
	if err := os.WriteFile(filepath.Join(c.dir, "fdbhook.toml"), []byte(cfg), 0o644); err != nil {
		return err
	}
	if err := c.bridge(); err != nil {
		return err
	}
	if err := c.guests(); err != nil {
		return err
	}
	return c.uplink()
}

func (c *cell) bridge() error {
	lab := c.labs[0]
	ageing := uint32(c.o.ageing / (10 * time.Millisecond)) // clock ticks (USER_HZ)
	if err := lab.H.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: churnBridge}, AgeingTime: &ageing}); err != nil {
		return fmt.Errorf("creating %s: %w", churnBridge, err)
	}
	br, err := lab.Link(churnBridge)
	if err != nil {
		return err
	}
	c.br = br
	return lab.H.LinkSetUp(br)
}

// guests creates every simulated guest: taps enslaved, live XML written.
func (c *cell) guests() error {
	byGuest := map[string][]testbed.NIC{}
	var names []string
	for i := range c.o.guests * c.o.nics {
		g, nic := churnNIC(i, c.o.nics)
		if byGuest[g] == nil {
			names = append(names, g)
		}
		byGuest[g] = append(byGuest[g], nic)
		c.nics = append(c.nics, nic)
	}
	taps := make([]string, len(c.nics))
	for i, n := range c.nics {
		taps[i] = n.Tap
	}
	if _, err := c.labs[0].Taps(c.br, taps); err != nil {
		return err
	}
	for _, g := range names {
		if err := writeLive(c.live, g, liveXML(g, churnBridge, byGuest[g])); err != nil {
			return err
		}
	}
	return nil
}

// uplink creates the veth pair and moves its far end to the sender's namespace.
func (c *cell) uplink() error {
	a, b := c.labs[0], c.labs[1]
	_, out, err := a.Veth(c.br, churnUplink, churnPeer)
	if err != nil {
		return err
	}
	if err := a.H.LinkSetNsFd(out, int(b.NS)); err != nil {
		return fmt.Errorf("moving %s to the sender's namespace: %w", churnPeer, err)
	}
	peer, err := b.Link(churnPeer)
	if err != nil {
		return err
	}
	return b.H.LinkSetUp(peer)
}

// start starts the counter and the watcher, and waits until the watcher
// has managed every guest port.
func (c *cell) start() error {
	var err error
	if c.counter, err = countFDB(c.labs[0]); err != nil {
		return err
	}
	if c.k, err = kernel.Open(c.labs[0].NS, kernel.DefaultTimeout); err != nil {
		return err
	}
	env := []string{"FDBHOOK_LIBVIRT_RUN=" + filepath.Join(c.dir, "libvirt"), "FDBHOOK_LIBVIRT_ETC=" + filepath.Join(c.dir, "etc"),
		"FDBHOOK_LOCK=" + filepath.Join(c.dir, "lock")}
	env = append(env, c.profileEnv()...)
	t0 := time.Now()
	c.w, err = startWatcherWith(func(cmd *exec.Cmd) error {
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		return c.labs[0].Do(cmd.Start)
	}, c.v.bin, c.dir, env...)
	if err != nil {
		return err
	}
	for _, n := range c.nics {
		if _, err := waitManagedFor(c.k, n.Tap, churnBridge, n.MAC, t0, 60*time.Second); err != nil {
			return fmt.Errorf("start-up: %w\n%s", err, tail(c.w.output(), 20))
		}
	}
	c.res.startup = time.Since(t0)
	c.started = t0
	return nil
}

// profileEnv asks a bench/watchprof build to profile the window.
func (c *cell) profileEnv() []string {
	if c.o.profile == "" {
		return nil
	}
	dir := filepath.Join(c.o.profile, fmt.Sprintf("%s-%d", c.v.name, c.rate))
	os.MkdirAll(dir, 0o755)
	return []string{"FDBHOOK_PROF_DIR=" + dir, "FDBHOOK_PROF_SIGNALS=1"}
}
