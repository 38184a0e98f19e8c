package main

import (
	"math"
	"slices"
)

// Results is everything one measure run found; report renders it.
type Results struct {
	Machine Machine
	Seconds float64
	// Runs is the number of timed runs per latency series.
	Runs int
	// Latency holds the start-hook series: fdbhook, shell and noop at each
	// NIC count, steady (rerun) and first (after a reset), sample i of
	// every series taken in the same interleaved round i.
	Latency []Series
	// Lxc holds the lxc hook's started begin beside the qemu hook's
	// start begin (variants lxc-hook, qemu-hook), interleaved likewise.
	Lxc []Series
	// Alt holds another build of the qemu hook (named AltName) beside it:
	// a start with one NIC, first and steady, and prepare begin.
	Alt     []Series
	AltName string
	// Stop holds the stop, start and reconcile series on the bridge with
	// an empty FDB and on the one with FDBEntries other static entries.
	Stop       []Series
	FDBEntries int
	// FDBLoadSeconds is how long `bridge -batch` took to add them.
	FDBLoadSeconds float64
	// Commands says, per command (status, reconcile), whether it could be
	// measured, and why not.
	Commands map[string]string
	RSS      RSS
	Sizes    map[string]int64
	Flood    []FloodRound
	// FloodPorts is the number of guest taps on the flood bridge.
	FloodPorts int
}

// Machine describes where the numbers come from.
type Machine struct {
	Date      string
	Nproc     int
	CPU       string
	Kernel    string
	Version   string
	Go        string
	Iproute2  string
	Xmlstar   string
	Bash      string
	DevLog    bool
	Namespace string
	// LoadBefore and LoadAfter are /proc/loadavg at the start and the end
	// of the measurements: other work on the machine shows there.
	LoadBefore string
	LoadAfter  string
}

// Series is one set of timed runs, in milliseconds.
type Series struct {
	Variant string // fdbhook, shell, noop; stop, start, status, reconcile
	NICs    int
	Mode    string // steady, first
	FDB     int    // other static entries on the bridge
	Samples []float64
}

// RSS is peak resident memory of hook runs, from /usr/bin/time (%M, KiB).
type RSS struct {
	Runs        int
	HookFirst   []int64 // 64 NICs, after a reset
	HookSteady  []int64 // 64 NICs, rerun
	Noop        []int64
	ShellSteady []int64
}

// FloodRound is one burst of unknown-unicast frames into the flood bridge.
type FloodRound struct {
	Managed bool
	Sent    int
	// SendSeconds is how long the sender took to hand all frames to the
	// kernel, which forwards (and floods) them in the sender's context.
	SendSeconds float64
	Retries     int
	// Delivered counts frames read from the guest taps' queues.
	Delivered int64
	PerTapMin int64
	PerTapMax int64
	// Other counts frames of any other kind read from the taps during the
	// round; OtherSample is the start of one, in hex.
	Other       int64
	OtherSample string
	// TapTx and TapDropped are the taps' kernel counters (tx_packets,
	// tx_dropped deltas): copies the bridge made, read back independently.
	TapTx      uint64
	TapDropped uint64
	UplinkRx   uint64
}

func findSeries(list []Series, variant string, nics int, mode string, fdb int) *Series {
	for i := range list {
		s := &list[i]
		if s.Variant == variant && s.NICs == nics && s.Mode == mode && s.FDB == fdb {
			return s
		}
	}
	return nil
}

// quantile returns the nearest-rank q-quantile of xs.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if q <= 0 {
		return s[0]
	}
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// pairedRatio is the median over rounds of a[i]/b[i]: both were measured
// in the same interleaved round, so machine noise largely cancels.
func pairedRatio(a, b []float64) float64 {
	n := min(len(a), len(b))
	r := make([]float64, 0, n)
	for i := range n {
		if b[i] > 0 {
			r = append(r, a[i]/b[i])
		}
	}
	return median(r)
}

func maxInt(xs []int64) int64 {
	var m int64
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func medianInt(xs []int64) float64 {
	f := make([]float64, len(xs))
	for i, x := range xs {
		f[i] = float64(x)
	}
	return median(f)
}
