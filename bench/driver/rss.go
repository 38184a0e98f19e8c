package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fdbhook/fdbhook/bench/testbed"
)

// rss measures peak resident memory of hook runs with GNU time's %M. The
// driver's own wait4 rusage is not used: Go starts children with
// CLONE_VM|CLONE_VFORK, and the kernel then folds the driver's memory
// high-water mark into the child's ru_maxrss. GNU time forks a small
// process, so its figure is the hook's own.
func (b *bench) rss() error {
	const timeBin = "/usr/bin/time"
	if _, err := os.Stat(timeBin); err != nil {
		return fmt.Errorf("%s is missing (Debian package time): %w", timeBin, err)
	}
	n := sizes[len(sizes)-1]
	nics := testbed.NICs("tap", 0xbe, n)
	in, err := b.r.input(fmt.Sprintf("domain-%d.xml", n), testbed.DomainXML(guestName(n), latencyBridge, nics))
	if err != nil {
		return err
	}
	out := filepath.Join(b.o.work, "time.out")
	measure := func(argv []string) (int64, error) {
		full := append([]string{timeBin, "-f", "%M", "-o", out}, argv...)
		if _, err := b.r.run(full, in, false); err != nil {
			return 0, err
		}
		data, err := os.ReadFile(out)
		if err != nil {
			return 0, err
		}
		lines := strings.Fields(string(data))
		if len(lines) == 0 {
			return 0, fmt.Errorf("%s wrote nothing", timeBin)
		}
		return strconv.ParseInt(lines[len(lines)-1], 10, 64)
	}
	hook := []string{b.o.hook, guestName(n), "start", "begin", "-"}
	shell := []string{b.o.shell, guestName(n), "start", "begin", "-"}
	noop := []string{b.o.noop}
	rs := &b.res.RSS
	rs.Runs = b.o.rssRuns
	for range b.o.rssRuns {
		if err := b.lab.Reset(nics); err != nil {
			return err
		}
		k, err := measure(hook)
		if err != nil {
			return err
		}
		rs.HookFirst = append(rs.HookFirst, k)
		if err := b.lab.Check(latencyBridge, nics, true); err != nil {
			return err
		}
		if k, err = measure(hook); err != nil {
			return err
		}
		rs.HookSteady = append(rs.HookSteady, k)
		if k, err = measure(noop); err != nil {
			return err
		}
		rs.Noop = append(rs.Noop, k)
		if k, err = measure(shell); err != nil {
			return err
		}
		rs.ShellSteady = append(rs.ShellSteady, k)
	}
	return nil
}
