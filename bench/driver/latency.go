package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fdbhook/fdbhook/bench/testbed"
)

// variant is one way of doing a guest start's port work.
type variant struct {
	name string
	argv func(domain string) []string
	// r runs it when not the bench's runner (another environment).
	r *runner
}

// latency times `start begin` for guests with 1, 8 and 64 NICs on br0:
// fdbhook, the shell baseline and the no-op floor, interleaved round by
// round (the order of variants and modes alternates between rounds) so
// that drifts of a noisy machine hit all of them alike.
//
// steady: the guest's ports are already managed (a rerun: reconnect, or a
// second hook run); first: learning, flooding and the entries were reset
// outside the timed region, so the hook does the full work.
func (b *bench) latency() error {
	br, err := b.lab.Bridge(latencyBridge)
	if err != nil {
		return err
	}
	nics := testbed.NICs("tap", 0xbe, sizes[len(sizes)-1])
	names := make([]string, len(nics))
	for i, n := range nics {
		names[i] = n.Tap
	}
	if _, err := b.lab.Taps(br, names); err != nil {
		return err
	}
	inputs := map[int]*os.File{}
	series := map[string]*Series{}
	key := func(v string, n int, mode string) string { return fmt.Sprintf("%s/%d/%s", v, n, mode) }
	variants := []variant{
		{"fdbhook", func(d string) []string { return []string{b.o.hook, d, "start", "begin", "-"} }, nil},
		{"shell", func(d string) []string { return []string{b.o.shell, d, "start", "begin", "-"} }, nil},
	}
	// Floors: programs that do nothing, measured once per round, and the
	// hook itself for an operation it ignores (three of a guest's five
	// hook calls: prepare, started, release's sibling operations).
	//
	// unmanaged: the hook for a start with a configuration that manages
	// nothing: it reads the configuration, sets up logging and exits
	// before the XML, the lock or netlink.
	unmanaged, err := b.unmanagedRunner()
	if err != nil {
		return err
	}
	defer unmanaged.close()
	floors := []variant{
		{"noop", func(string) []string { return []string{b.o.noop, "guest", "start", "begin", "-"} }, nil},
		{"prepare", func(string) []string { return []string{b.o.hook, "guest", "prepare", "begin", "-"} }, nil},
		{"hookinit", func(string) []string { return []string{b.o.hookInit, "guest", "start", "begin", "-"} }, nil},
		{"noxmlquery", func(string) []string { return []string{b.o.noXMLQuery, "guest", "start", "begin", "-"} }, nil},
		{"unmanaged", func(string) []string { return []string{b.o.hook, "guest", "start", "begin", "-"} }, unmanaged},
	}
	for _, f := range floors {
		series[key(f.name, 0, "")] = &Series{Variant: f.name}
	}
	for _, n := range sizes {
		f, err := b.r.input(fmt.Sprintf("domain-%d.xml", n), testbed.DomainXML(guestName(n), latencyBridge, nics[:n]))
		if err != nil {
			return err
		}
		inputs[n] = f
		for _, v := range variants {
			for _, mode := range []string{"steady", "first"} {
				series[key(v.name, n, mode)] = &Series{Variant: v.name, NICs: n, Mode: mode}
			}
		}
		// Both hooks must leave the same, correct state behind.
		for _, v := range variants {
			if err := b.lab.Reset(nics[:n]); err != nil {
				return err
			}
			if _, err := b.r.run(v.argv(guestName(n)), f, true); err != nil {
				return err
			}
			if err := b.lab.Check(latencyBridge, nics[:n], true); err != nil {
				return fmt.Errorf("after %s with %d NICs: %w", v.name, n, err)
			}
		}
	}
	for round := range b.o.runs {
		order := variants
		modes := []string{"steady", "first"}
		if round%2 == 1 {
			order = []variant{variants[1], variants[0]}
			modes = []string{"first", "steady"}
		}
		for _, f := range floors {
			r := b.r
			if f.r != nil {
				r = f.r
			}
			d, err := r.run(f.argv(""), inputs[1], true)
			if err != nil {
				return err
			}
			s := series[key(f.name, 0, "")]
			s.Samples = append(s.Samples, ms(d))
		}
		for _, n := range sizes {
			for _, mode := range modes {
				for _, v := range order {
					if mode == "first" {
						if err := b.lab.Reset(nics[:n]); err != nil {
							return err
						}
					}
					d, err := b.r.run(v.argv(guestName(n)), inputs[n], true)
					if err != nil {
						return err
					}
					s := series[key(v.name, n, mode)]
					s.Samples = append(s.Samples, ms(d))
					// Read the result back after every full apply, and
					// now and then after a rerun.
					if mode == "first" || round%25 == 0 {
						if err := b.lab.Check(latencyBridge, nics[:n], true); err != nil {
							return fmt.Errorf("round %d, %s %s with %d NICs: %w", round, v.name, mode, n, err)
						}
					}
				}
			}
		}
		if (round+1)%25 == 0 {
			f := series[key("fdbhook", 1, "first")].Samples
			s := series[key("shell", 1, "first")].Samples
			progress("  round %d/%d (1 NIC first apply: fdbhook %.2f ms, shell %.2f ms median so far)",
				round+1, b.o.runs, median(f), median(s))
		}
	}
	for _, n := range sizes {
		for _, v := range []string{"fdbhook", "shell"} {
			for _, mode := range []string{"steady", "first"} {
				b.res.Latency = append(b.res.Latency, *series[key(v, n, mode)])
			}
		}
	}
	for _, f := range floors {
		b.res.Latency = append(b.res.Latency, *series[key(f.name, 0, "")])
	}
	return nil
}

func guestName(nics int) string { return fmt.Sprintf("bench%d", nics) }

// unmanagedRunner runs programs in the bench's environment, but with a
// configuration file that manages no bridge.
func (b *bench) unmanagedRunner() (*runner, error) {
	cfg := filepath.Join(b.o.work, "unmanaged.toml")
	if err := b.o.writeConfig(cfg); err != nil {
		return nil, err
	}
	var env []string
	for _, e := range b.env {
		if !strings.HasPrefix(e, "FDBHOOK_CONFIG=") {
			env = append(env, e)
		}
	}
	return newRunner(b.o.work, "unmanaged", append(env, "FDBHOOK_CONFIG="+cfg))
}
