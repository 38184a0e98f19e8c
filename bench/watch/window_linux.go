package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fdbhook/fdbhook/bench/testbed"
	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// measure starts the churn, lets the bridge's table fill to its steady
// state (warmup), then measures the watcher's CPU time over the window,
// with no guest event in it: what the churn alone costs. Then, the churn
// going on, it runs the probes one after the other, alternately a
// hotplugged guest and a drift made by hand, and measures the CPU time
// they take too.
func (c *cell) measure() error {
	var err error
	if c.sender, err = openSender(c.labs[1], churnPeer); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.stopSend = cancel
	sendErr := make(chan error, 1)
	c.sendDone.Add(1)
	go func() {
		defer c.sendDone.Done()
		sendErr <- c.sender.run(ctx, c.rate, c.res.space, c.o.warmup+c.o.window+time.Minute)
	}()
	warmup := c.o.warmup
	if c.rate == 0 {
		warmup = 2 * time.Second
	}
	time.Sleep(warmup)
	pid := c.w.cmd.Process.Pid
	c.res.load[0] = loadavg()
	stopProfile, err := c.startProfile(pid, 1)
	if err != nil {
		return err
	}
	w0 := time.Now()
	if c.res.cpu, c.res.wall, err = cpuOver(pid, func() error { time.Sleep(c.o.window); return nil }); err != nil {
		return err
	}
	c.res.timerResyncs = timerResyncs(c.started, w0, w0.Add(c.res.wall))
	stopProfile()
	if stopProfile, err = c.startProfile(pid, 2); err != nil {
		return err
	}
	if c.res.probeCPU, c.res.probeWall, err = cpuOver(pid, c.probe); err != nil {
		return err
	}
	stopProfile()
	c.res.load[1] = loadavg()
	cancel()
	c.sendDone.Wait()
	c.res.frames, c.res.behind = c.sender.sent.Load(), c.sender.behind.Load()
	select {
	case err := <-sendErr:
		return err
	default:
		return nil
	}
}

// timerResync is the cells' [watch] resync.
const timerResync = 60 * time.Second

// timerResyncs counts the timer resyncs of a watcher started at start that
// fall between from and to.
func timerResyncs(start, from, to time.Time) int {
	n := 0
	for t := start.Add(timerResync); !t.After(to); t = t.Add(timerResync) {
		if !t.Before(from) {
			n++
		}
	}
	return n
}

// cpuOver runs f and returns the CPU time process pid used meanwhile, and
// the wall time.
func cpuOver(pid int, f func() error) (used, wall time.Duration, err error) {
	c0, err := cpu(pid)
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	if err := f(); err != nil {
		return 0, 0, err
	}
	c1, err := cpu(pid)
	return c1 - c0, time.Since(t0), err
}

// probeGap separates the probes, so that the batches of one are over
// before the next starts.
const probeGap = 250 * time.Millisecond

// probeLimit is how long a probe waits for its tap to be managed; one
// that is not by then counts as lost, at probeLimit.
const probeLimit = 5 * time.Second

// probe runs o.probes hotplugs and as many drifts, alternately.
func (c *cell) probe() error {
	record := func(d time.Duration, err error, to *[]time.Duration, lost *int) error {
		if errors.Is(err, errNotManaged) {
			d, err = probeLimit, nil
			*lost++
		}
		*to = append(*to, d)
		return err
	}
	for i := range c.o.probes {
		time.Sleep(probeGap)
		d, err := c.hotplug(i)
		if err := record(d, err, &c.res.hotplug, &c.res.hotplugLost); err != nil {
			return err
		}
		time.Sleep(probeGap)
		d, err = c.driftProbe(i)
		if err := record(d, err, &c.res.drift, &c.res.driftLost); err != nil {
			return err
		}
	}
	return nil
}

// hotplug starts a new one-NIC guest as libvirt does: its tap created and
// enslaved, then its live XML written; the time runs from the XML written
// to the tap managed, read back from the kernel.
func (c *cell) hotplug(i int) (time.Duration, error) {
	name := fmt.Sprintf("fdbtwcp%03d", i)
	nic := testbed.NIC{Tap: fmt.Sprintf("fdbtwcp%03dt", i), MAC: fmt.Sprintf("52:54:00:fb:00:%02x", i)}
	if _, err := c.labs[0].Taps(c.br, []string{nic.Tap}); err != nil {
		return 0, err
	}
	if err := writeLive(c.live, name, liveXML(name, churnBridge, []testbed.NIC{nic})); err != nil {
		return 0, err
	}
	d, err := waitManagedFor(c.k, nic.Tap, churnBridge, nic.MAC, time.Now(), probeLimit)
	if err != nil {
		return 0, fmt.Errorf("hotplug %d: %w", i, err)
	}
	return d, nil
}

// driftProbe turns learning and flood back on on a guest's tap, by hand;
// the time runs from that write to the tap managed again.
func (c *cell) driftProbe(i int) (time.Duration, error) {
	n := c.nics[(i*97+13)%len(c.nics)]
	l, err := c.k.Link(n.Tap)
	if err != nil || l == nil {
		return 0, fmt.Errorf("drift %d: %s: %v", i, n.Tap, err)
	}
	if err := c.k.SetPortFlags(l.Index, model.Flags{Learning: true, Flood: true}, false, false); err != nil {
		return 0, fmt.Errorf("drift %d: learning and flood on for %s: %w", i, n.Tap, err)
	}
	d, err := waitManagedFor(c.k, n.Tap, churnBridge, n.MAC, time.Now(), probeLimit)
	if err != nil {
		return 0, fmt.Errorf("drift %d: %w", i, err)
	}
	return d, nil
}

// startProfile asks a bench/watchprof build for its n-th profile (1: the
// window, 2: the probes) until the returned function is called, and runs
// `perf record` over the same time when asked to.
func (c *cell) startProfile(pid, n int) (stop func(), err error) {
	if c.o.profile == "" {
		return func() {}, nil
	}
	dir := filepath.Join(c.o.profile, fmt.Sprintf("%s-%d", c.v.name, c.rate))
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return nil, err
	}
	var perf *exec.Cmd
	if c.o.perf {
		perf = exec.Command("perf", "record", "-q", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", filepath.Join(dir, fmt.Sprintf("perf-%d.data", n)))
		perf.Stderr = os.Stderr
		if err := perf.Start(); err != nil {
			return nil, fmt.Errorf("perf record: %w", err)
		}
	}
	return func() {
		syscall.Kill(pid, syscall.SIGUSR2)
		// The profiles are written once end-N.heap is: the watcher must
		// not be stopped, nor profiled again, before.
		for t0 := time.Now(); time.Since(t0) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("end-%d.heap", n))); err == nil {
				break
			}
		}
		if perf != nil {
			perf.Process.Signal(syscall.SIGINT)
			perf.Wait()
		}
	}, nil
}

// Lines of the watchers' logs the cell counts. Both watchers log a full
// resync asked for by lost notifications at warning level with
// "resyncing"; this tree's watcher says at exit how many notifications
// its socket handed it.
var (
	resyncLine   = regexp.MustCompile(`(?m)^.*: warning: .*resyncing.*$`)
	receivedLine = regexp.MustCompile(`netlink: (\d+) notifications received`)
)

// finish stops the watcher and the counter and reads what they counted.
func (c *cell) finish() error {
	pid := c.w.cmd.Process.Pid
	rss, err := peakRSS(pid)
	if err != nil {
		return err
	}
	c.res.rssKiB = rss
	if _, err := c.w.stop(); err != nil {
		return fmt.Errorf("watcher exit: %v\n%s", err, tail(c.w.output(), 20))
	}
	log := c.w.output()
	c.res.resyncs = len(resyncLine.FindAllString(log, -1))
	if m := receivedLine.FindStringSubmatch(log); m != nil {
		c.res.received, _ = strconv.ParseInt(m[1], 10, 64)
	}
	c.res.sent, c.res.counterLost = c.counter.close()
	c.counter = nil
	return nil
}

func (c *cell) close() {
	if c.stopSend != nil {
		c.stopSend()
		c.sendDone.Wait()
	}
	if c.sender != nil {
		c.sender.close()
	}
	if c.w != nil && c.w.cmd.ProcessState == nil {
		c.w.stop()
	}
	if c.counter != nil {
		c.counter.close()
	}
	if c.k != nil {
		c.k.Close()
	}
	for _, l := range c.labs {
		if l != nil {
			l.Close()
		}
	}
	if c.dir != "" {
		if c.o.keep != "" {
			os.MkdirAll(c.o.keep, 0o755)
			os.Rename(filepath.Join(c.dir, "watch.log"), filepath.Join(c.o.keep, fmt.Sprintf("%s-%d.log", c.v.name, c.rate)))
		}
		os.RemoveAll(c.dir)
	}
}

// errNotManaged is the error of a port not managed in time.
var errNotManaged = errors.New("not managed")

// waitManagedFor polls every millisecond for up to limit.
func waitManagedFor(k *kernel.Conn, port, bridge, mac string, t0 time.Time, limit time.Duration) (time.Duration, error) {
	for !managed(k, port, bridge, mac) {
		if time.Since(t0) > limit {
			return 0, fmt.Errorf("%s (%s) %w %s later", port, mac, errNotManaged, limit)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(t0), nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
