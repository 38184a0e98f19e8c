package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/fdbhook/fdbhook/bench/testbed"
)

// altModes are the runs of the alt phase: a guest start with one NIC, its
// ports reset (first) or already managed (steady), and "prepare begin",
// which the hook ignores before its packages initialise.
var altModes = []string{"first", "steady", "prepare"}

// altLatency times another build of the qemu hook (-alt-hook, named
// -alt-name) beside the qemu hook, interleaved round by round with the
// order alternating: the cost of a build choice (a dependency's version,
// say) as a guest start sees it.
func (b *bench) altLatency() error {
	br, err := b.lab.Bridge(latencyBridge)
	if err != nil {
		return err
	}
	nics := testbed.NICs("tap", 0xbe, 1)
	if _, err := b.lab.Taps(br, []string{nics[0].Tap}); err != nil {
		return err
	}
	in, err := b.r.input("domain-1.xml", testbed.DomainXML(guestName(1), latencyBridge, nics))
	if err != nil {
		return err
	}
	hooks := []string{b.o.hook, b.o.altHook}
	names := []string{"qemu-hook", b.o.altName}
	series := map[string]*Series{}
	for _, name := range names {
		for _, mode := range altModes {
			series[name+"/"+mode] = &Series{Variant: name, NICs: 1, Mode: mode}
		}
	}
	for round := range b.o.runs {
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		for _, mode := range altModes {
			for _, i := range order {
				d, err := b.altRun(hooks[i], mode, nics, in, round)
				if err != nil {
					return fmt.Errorf("%s: %w", names[i], err)
				}
				s := series[names[i]+"/"+mode]
				s.Samples = append(s.Samples, ms(d))
			}
		}
	}
	for _, name := range names {
		for _, mode := range altModes {
			b.res.Alt = append(b.res.Alt, *series[name+"/"+mode])
		}
	}
	b.res.AltName = b.o.altName
	return nil
}

// altRun times one run of hook in mode.
func (b *bench) altRun(hook, mode string, nics []testbed.NIC, in *os.File, round int) (d time.Duration, err error) {
	if mode == "prepare" {
		return b.r.run([]string{hook, guestName(1), "prepare", "begin", "-"}, in, true)
	}
	if mode == "first" {
		if err := b.lab.Reset(nics); err != nil {
			return 0, err
		}
	}
	d, err = b.r.run([]string{hook, guestName(1), "start", "begin", "-"}, in, true)
	if err == nil && (mode == "first" || round%25 == 0) {
		err = b.lab.Check(latencyBridge, nics, true)
	}
	return d, err
}

// altSection renders the alt phase: each mode's medians and spreads, the
// difference, and whether it is within noise (as for the lxc hook).
func altSection(res *Results) string {
	if len(res.Alt) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### The qemu hook beside its %s build\n\n", res.AltName)
	fmt.Fprintf(&b, "`qemu-hook GUEST start begin -` with one NIC (*first*: its port reset; *steady*: already managed) and "+
		"`qemu-hook GUEST prepare begin -` (ignored before the hook's packages initialise), for the qemu hook and its %s build "+
		"(`-alt-hook`), %d runs per cell, interleaved, the order alternating round by round. "+
		"*within noise*: the difference of the medians is at most the larger interquartile range of the two series.\n\n", res.AltName, res.Runs)
	fmt.Fprintf(&b, "| run | qemu-hook median | IQR | %[1]s median | IQR | %[1]s − qemu-hook | ÷ (per round) | |\n"+
		"|---|---:|---:|---:|---:|---:|---:|---|\n", res.AltName)
	for _, mode := range altModes {
		q, a := findSeries(res.Alt, "qemu-hook", 1, mode, 0), findSeries(res.Alt, res.AltName, 1, mode, 0)
		if q == nil || a == nil {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s |\n", mode, besideCells(q.Samples, a.Samples))
	}
	if q, a := res.Sizes["qemu-hook"], res.Sizes["qemu-hook ("+res.AltName+")"]; q > 0 && a > 0 {
		fmt.Fprintf(&b, "\nBinaries: qemu-hook %.1f MiB, its %s build %.1f MiB.\n", float64(q)/(1<<20), res.AltName, float64(a)/(1<<20))
	}
	b.WriteString("\n")
	return b.String()
}

// besideCells are the table cells of series b beside series a: median and
// IQR of each, the difference of the medians, the median of the per-round
// ratios, and the verdict: within noise when the difference is at most the
// larger of the two interquartile ranges.
func besideCells(a, b []float64) string {
	am, bm := median(a), median(b)
	ai := quantile(a, 0.75) - quantile(a, 0.25)
	bi := quantile(b, 0.75) - quantile(b, 0.25)
	verdict := "within noise"
	if d := bm - am; d > max(ai, bi) || -d > max(ai, bi) {
		verdict = "**outside noise**"
	}
	return fmt.Sprintf("%s ms | %s ms | %s ms | %s ms | %+.2f ms | %sx | %s", f2(am), f2(ai), f2(bm), f2(bi),
		bm-am, f2(pairedRatio(b, a)), verdict)
}

// spliceAlt writes the alt section of a run of the alt phase alone into
// the report md (splice).
func spliceAlt(md string, res *Results) error {
	return splice(md, res, "### The qemu hook beside its ", altSection(res), "BENCH_PHASES=alt bench/run.sh")
}
