// Command driver measures fdbhook against the shell hook admins write today
// and against the floor of exec'ing a Go binary, and renders the results.
//
//	ip netns exec NS driver measure -netns NS -o results.json   (root)
//	driver report -i results.json -gobench gobench.txt -kernelbench kernelbench.txt -md results.md -svg latency.svg
//
// measure builds bridges and taps in its own network namespace and fork-execs
// the hooks from there, so every hook runs against that namespace's kernel
// state and no traffic leaves it.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: driver measure|report [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "measure":
		err = measureMain(os.Args[2:])
	case "report":
		err = reportMain(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (want measure or report)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "driver: %v\n", err)
		os.Exit(1)
	}
}

// opts are the measure command's settings.
type opts struct {
	hook, admin string
	lxcHook     string
	shell, noop string
	hookInit    string
	noXMLQuery  string
	altHook     string
	altName     string
	work        string
	config      string
	netns       string
	phases      string
	runs        int
	stopRuns    int
	rssRuns     int
	fdbEntries  int
	floodFrames int
	floodRounds int
}

func measureMain(args []string) error {
	var o opts
	fs := flag.NewFlagSet("measure", flag.ExitOnError)
	fs.StringVar(&o.hook, "hook", "bin/qemu-hook", "fdbhook's qemu hook binary")
	fs.StringVar(&o.admin, "admin", "bin/fdbhook", "fdbhook's admin command (status, reconcile)")
	fs.StringVar(&o.lxcHook, "lxc-hook", "bin/lxc-hook", "fdbhook's lxc hook binary")
	fs.StringVar(&o.shell, "shell", "bench/shell-hook.sh", "the baseline shell hook")
	fs.StringVar(&o.noop, "noop", "bench/bin/noop", "a static Go binary that does nothing")
	fs.StringVar(&o.netns, "netns", "", "the named network namespace the driver runs in (ip netns exec NAME)")
	fs.StringVar(&o.phases, "phases", "latency,stop,rss,flood,lxc", "phases to run, comma-separated")
	fs.StringVar(&o.hookInit, "hookinit", "bench/bin/hookinit", "a program that only initialises qemu-hook's imports")
	fs.StringVar(&o.noXMLQuery, "noxmlquery", "bench/bin/noxmlquery", "a program that only initialises the hook's imports less xmlquery")
	fs.StringVar(&o.altHook, "alt-hook", "", "another build of the qemu hook, timed beside it in the alt phase")
	fs.StringVar(&o.altName, "alt-name", "alt", "what the alt phase calls the other build")
	fs.StringVar(&o.work, "work", "bench/out", "directory for configs, inputs and raw samples")
	fs.StringVar(&o.config, "config", "packaging/fdbhook.toml", "the packaged configuration, comments and all: the hooks read it with the bench's bridges")
	fs.IntVar(&o.runs, "runs", 200, "timed runs per latency series")
	fs.IntVar(&o.stopRuns, "stop-runs", 200, "timed runs per stop/reconcile series")
	fs.IntVar(&o.rssRuns, "rss-runs", 20, "runs under /usr/bin/time for peak RSS")
	fs.IntVar(&o.fdbEntries, "fdb-entries", 10000, "other static FDB entries on the large bridge")
	fs.IntVar(&o.floodFrames, "flood-frames", 20000, "frames per flood round")
	fs.IntVar(&o.floodRounds, "flood-rounds", 3, "rounds of (unmanaged, managed) flood measurements")
	out := fs.String("o", "bench/out/results.json", "results file")
	fs.Parse(args)
	for _, p := range []*string{&o.hook, &o.lxcHook, &o.admin, &o.shell, &o.noop, &o.hookInit, &o.noXMLQuery, &o.work, &o.config, &o.altHook} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		return err
	}
	start := time.Now()
	res, err := measure(o)
	if err != nil {
		return err
	}
	res.Seconds = time.Since(start).Seconds()
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*out, data, 0o644)
}

func reportMain(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	in := fs.String("i", "bench/out/results.json", "results of driver measure")
	gobench := fs.String("gobench", "bench/out/gobench.txt", "output of go test -bench . in bench/")
	kernelbench := fs.String("kernelbench", "bench/out/kernelbench.txt", "output of go test -bench ./pkg/kernel")
	md := fs.String("md", "bench/results.md", "Markdown report to write")
	svg := fs.String("svg", "bench/latency.svg", "latency chart to write")
	lxcOnly := fs.Bool("lxc-only", false, "the results hold the lxc phase alone: replace that section of -md, leave the rest")
	altOnly := fs.Bool("alt-only", false, "the results hold the alt phase alone: replace that section of -md, leave the rest")
	fs.Parse(args)
	data, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	var res Results
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	if *lxcOnly {
		return spliceLxc(*md, &res)
	}
	if *altOnly {
		return spliceAlt(*md, &res)
	}
	gb, err := os.ReadFile(*gobench)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	kb, err := os.ReadFile(*kernelbench)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	chart := latencySVG(&res)
	if err := os.WriteFile(*svg, []byte(chart), 0o644); err != nil {
		return err
	}
	text, table := report(&res, parseGoBench(string(gb)), parseGoBench(string(kb)), filepath.Base(*svg))
	if err := os.WriteFile(*md, []byte(text), 0o644); err != nil {
		return err
	}
	fmt.Print(table)
	return nil
}
