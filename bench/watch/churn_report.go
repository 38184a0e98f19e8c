package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// churnRun is every cell of one churn run, by variant and rate.
type churnRun struct {
	o     churnOpts
	cells map[string]map[int]cellResult
}

func (r *churnRun) get(v string, rate int) cellResult { return r.cells[v][rate] }

// share is CPU time over wall time in the window, as a percentage of one
// core; probeShare the same while the probes ran.
func share(c cellResult) float64 { return percent(c.cpu, c.wall) }

func probeShare(c cellResult) float64 { return percent(c.probeCPU, c.probeWall) }

func percent(cpu, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return 100 * cpu.Seconds() / wall.Seconds()
}

func pct(x float64) string { return fmt.Sprintf("%.2f %%", x) }

func rateName(rate int) string {
	if rate == 0 {
		return "quiet"
	}
	return group(rate) + " new MACs/s"
}

// group writes n with thousands separators.
func group(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// medWorst is "median (worst)" of probes, lost of which were not managed
// within probeLimit.
func medWorst(ds []time.Duration, lost int) string {
	if len(ds) == 0 {
		return "–"
	}
	s := summarize(ds)
	med, worst := ms(s.median), ms(s.worst)
	if s.median >= probeLimit {
		med = "> " + probeLimit.String()
	}
	if lost > 0 {
		worst = fmt.Sprintf("> %s: %d of %d not managed by then", probeLimit, lost, len(ds))
	}
	return fmt.Sprintf("%s (%s)", med, worst)
}

// report writes the churn section of bench/results.md.
func (r *churnRun) report(w io.Writer) {
	o := r.o
	fmt.Fprintf(w, "### The watcher on a busy segment\n\n")
	fmt.Fprintf(w, "%d simulated guests × %d NICs (%d guest ports: live XML files and persistent taps, no QEMU, no libvirtd) on one bridge with ageing time %s, in a network namespace of the bench's own; the uplink is a veth whose far end is in a second namespace, where a packet socket sends frames from many source MACs to one unknown unicast MAC, each from a source the bridge has not seen within its ageing time, so each frame is one entry learned on the uplink and, %s later, one aged out. Per column, each watcher runs on a fresh bridge: start-up (every port managed), %s of churn to fill the table, then a %s window with no guest event, over which its CPU time is read (utime+stime from /proc/PID/stat, as a share of one core): what the churn costs, with the watcher's timer resyncs (`[watch] resync = \"60s\"`, the default) that fall in the window. Then, the churn going on, %d hotplugs (a new one-NIC guest: tap created and enslaved, then its live XML written; timed from the XML written to the tap managed, read back from the kernel every 1 ms) and %d drifts (learning and flood turned back on by hand on a guest's tap; timed to off again), alternately, %s apart; the CPU time they cost is shown too. Peak RSS is VmHWM at the end. The notifications are counted from the watcher's start to its stop (its start-up, which writes 1,000 entries and flags, included): the kernel's on a socket of the bench's own, without a filter; the watcher's as it says at exit.%s\n\n",
		o.guests, o.nics, o.guests*o.nics, o.ageing, o.ageing, o.warmup, o.window, o.probes, o.probes, probeGap, r.variantsSaid())
	fmt.Fprintf(w, "| | watcher |")
	for _, rate := range o.rates {
		fmt.Fprintf(w, " %s |", rateName(rate))
	}
	fmt.Fprintf(w, "\n|---|---|%s\n", strings.Repeat("---:|", len(o.rates)))
	r.row(w, "watcher CPU, share of one core", func(c cellResult) string { return pct(share(c)) })
	r.ratioRow(w, "CPU, before ÷ after", func(c cellResult) float64 { return share(c) })
	r.row(w, "timer resyncs in the window", func(c cellResult) string { return fmt.Sprint(c.timerResyncs) })
	r.row(w, "watcher CPU while the probes ran", func(c cellResult) string {
		return fmt.Sprintf("%s (%.1f s)", pct(probeShare(c)), c.probeWall.Seconds())
	})
	r.row(w, "hotplug → managed, median (worst)", func(c cellResult) string { return medWorst(c.hotplug, c.hotplugLost) })
	r.row(w, "drift → healed, median (worst)", func(c cellResult) string { return medWorst(c.drift, c.driftLost) })
	r.row(w, "peak RSS", func(c cellResult) string { return fmt.Sprintf("%.1f MiB", float64(c.rssKiB)/1024) })
	r.row(w, "full resyncs for lost notifications", func(c cellResult) string { return fmt.Sprint(c.resyncs) })
	r.row(w, "FDB notifications the kernel sent, watcher start to stop", func(c cellResult) string { return sentCell(c) })
	r.row(w, "notifications the watcher's socket received, start to stop", func(c cellResult) string {
		if c.received < 0 {
			return "all, unfiltered"
		}
		return group(int(c.received))
	})
	r.row(w, "start-up: every port managed", func(c cellResult) string { return ms(c.startup) })
	r.row(w, "churn frames sent (source MACs cycled)", func(c cellResult) string {
		s := fmt.Sprintf("%s (%s)", group(int(c.frames)), group(c.space))
		if c.behind > 0 {
			s += fmt.Sprintf(", %d ticks behind", c.behind)
		}
		return s
	})
	r.row(w, "load average (1, 5, 15 min), window start → probes' end", func(c cellResult) string { return c.load[0] + " → " + c.load[1] })
	fmt.Fprintln(w)
	r.targets(w)
}

// variantsSaid says which watchers the columns compare.
func (r *churnRun) variantsSaid() string {
	if len(r.o.variants) < 2 {
		return " The watcher is this tree's."
	}
	return fmt.Sprintf(" *before* is the watcher built from commit %s (the netlink library's subscriptions, an FDB dump per batch), *after* this tree's (its own notification socket with a socket filter, FDB entries looked up per MAC).", r.o.beforeCommit)
}

func sentCell(c cellResult) string {
	s := group(int(c.sent))
	if c.counterLost > 0 {
		s = "≥ " + s
	}
	return s
}

func (r *churnRun) row(w io.Writer, what string, f func(cellResult) string) {
	for _, v := range r.o.variants {
		fmt.Fprintf(w, "| %s | %s |", what, v.name)
		for _, rate := range r.o.rates {
			fmt.Fprintf(w, " %s |", f(r.get(v.name, rate)))
		}
		fmt.Fprintln(w)
	}
}

func (r *churnRun) ratioRow(w io.Writer, what string, f func(cellResult) float64) {
	if len(r.o.variants) != 2 {
		return
	}
	fmt.Fprintf(w, "| %s | |", what)
	for _, rate := range r.o.rates {
		b, a := f(r.get(r.o.variants[0].name, rate)), f(r.get(r.o.variants[1].name, rate))
		if a <= 0 {
			fmt.Fprintf(w, " – |")
			continue
		}
		fmt.Fprintf(w, " %.1fx |", b/a)
	}
	fmt.Fprintln(w)
}

// targets says which of the targets the after watcher met: CPU at 5,000
// and 20,000 new MACs/s, and at 5,000 the probes' latency and the peak
// RSS; with the uplink quiet, CPU no worse than before.
func (r *churnRun) targets(w io.Writer) {
	after := r.o.variants[len(r.o.variants)-1].name
	fmt.Fprintf(w, "| target (the *%s* watcher) | measured | |\n|---|---|---|\n", after)
	if _, ok := r.cells[after][0]; ok {
		r.quietTarget(w, r.get(after, 0))
	}
	if c, ok := r.cells[after][20000]; ok {
		fmt.Fprintf(w, "| CPU at 20,000 new MACs/s ≤ 5 %% of one core | %s | %s |\n", pct(share(c)), verdict(share(c) <= 5))
	}
	c, ok := r.cells[after][5000]
	if !ok {
		fmt.Fprintln(w)
		return
	}
	h, d := summarize(c.hotplug), summarize(c.drift)
	fmt.Fprintf(w, "| CPU at 5,000 new MACs/s ≤ 2 %% of one core | %s | %s |\n", pct(share(c)), verdict(share(c) <= 2))
	fmt.Fprintf(w, "| at 5,000 new MACs/s: hotplug → managed median < 50 ms, worst < 200 ms | %s | %s |\n", medWorst(c.hotplug, c.hotplugLost),
		verdict(h.median < 50*time.Millisecond && h.worst < 200*time.Millisecond))
	fmt.Fprintf(w, "| at 5,000 new MACs/s: drift → healed as fast | %s | %s |\n", medWorst(c.drift, c.driftLost),
		verdict(d.median < 50*time.Millisecond && d.worst < 200*time.Millisecond))
	fmt.Fprintf(w, "| at 5,000 new MACs/s: peak RSS < 30 MiB | %.1f MiB | %s |\n\n", float64(c.rssKiB)/1024, verdict(c.rssKiB < 30*1024))
}

// quietTarget: with the uplink quiet, no worse than the before watcher,
// within two clock ticks of the window (the resolution of the figure).
func (r *churnRun) quietTarget(w io.Writer, c cellResult) {
	if len(r.o.variants) != 2 {
		return
	}
	b := r.get(r.o.variants[0].name, 0)
	tol := 100 * (20 * time.Millisecond).Seconds() / c.wall.Seconds()
	fmt.Fprintf(w, "| quiet CPU no worse than before (± 2 clock ticks, %s) | %s (before %s) | %s |\n", pct(tol), pct(share(c)), pct(share(b)),
		verdict(share(c) <= share(b)+tol))
}
