package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/fdbhook/fdbhook/bench/testbed"
)

// fdbSide is one of the two identical bridges of the stop phase.
type fdbSide struct {
	bridge  string
	fdb     int // other static entries
	uplink  netlink.Link
	stopXML *os.File
	stopMAC string
	start   []testbed.NIC
	startIn *os.File
	// r runs status and reconcile with a config naming only this bridge.
	r *runner
}

// stop measures the stop path (`stopped end` for a guest whose static
// entry roamed to the uplink) and the steady start of an 8-NIC guest on two
// identical bridges, one with an empty FDB and one holding fdbEntries other
// static entries, interleaved run by run. Both look entries up per MAC, so
// neither should grow with the FDB. status and reconcile are measured the
// same way when this build of the fdbhook command has them.
func (b *bench) stop() error {
	b.res.FDBEntries = b.o.fdbEntries
	sides := []*fdbSide{{bridge: emptyBridge}, {bridge: largeBridge, fdb: b.o.fdbEntries}}
	for i, s := range sides {
		if err := b.side(s, byte(0xe0+i), i); err != nil {
			return fmt.Errorf("%s: %w", s.bridge, err)
		}
	}
	if err := b.fillFDB(sides[1]); err != nil {
		return err
	}
	cmds, err := b.commands(sides)
	if err != nil {
		return err
	}
	type key struct {
		variant string
		fdb     int
	}
	series := map[key]*Series{}
	add := func(variant string, nics, fdb int, d time.Duration) {
		k := key{variant, fdb}
		if series[k] == nil {
			mode := "steady"
			if variant == "stop" {
				mode = "roamed"
			}
			series[k] = &Series{Variant: variant, NICs: nics, Mode: mode, FDB: fdb}
		}
		series[k].Samples = append(series[k].Samples, ms(d))
	}
	for round := range b.o.stopRuns {
		order := sides
		if round%2 == 1 {
			order = []*fdbSide{sides[1], sides[0]}
		}
		for _, s := range order {
			// The guest's entry roamed to the uplink (as after a live
			// migration); the stop hook must remove it.
			if err := b.lab.StaticEntry(s.uplink, s.stopMAC); err != nil {
				return err
			}
			d, err := b.r.run([]string{b.o.hook, "stop-" + s.bridge, "stopped", "end", "-"}, s.stopXML, true)
			if err != nil {
				return err
			}
			add("stop", 1, s.fdb, d)
			if round%10 == 0 || round == b.o.stopRuns-1 {
				if left, err := b.lab.HasStatic(s.bridge, s.stopMAC); err != nil {
					return err
				} else if left {
					return fmt.Errorf("stopped end left the roamed entry %s on %s", s.stopMAC, s.bridge)
				}
			}
			d, err = b.r.run([]string{b.o.hook, "start-" + s.bridge, "start", "begin", "-"}, s.startIn, true)
			if err != nil {
				return err
			}
			add("start", len(s.start), s.fdb, d)
			for _, c := range cmds {
				argv := append([]string{b.o.admin}, c.args...)
				d, code, err := s.r.runCode(argv, nil)
				if err != nil {
					return err
				}
				if code != c.exit[s.bridge] {
					return fmt.Errorf("%s on %s: exit %d, the untimed try exited %d: %s", strings.Join(argv, " "), s.bridge, code, c.exit[s.bridge], s.r.stderrText())
				}
				add(c.name, 0, s.fdb, d)
			}
		}
	}
	for _, s := range sides {
		if err := b.lab.Check(s.bridge, s.start, true); err != nil {
			return err
		}
	}
	if n, err := b.lab.CountStatic(largeBridge); err != nil {
		return err
	} else if n < b.o.fdbEntries {
		return fmt.Errorf("%s holds %d static entries at the end, want at least %d", largeBridge, n, b.o.fdbEntries)
	}
	for _, v := range append([]string{"stop", "start"}, cmdNames(cmds)...) {
		for _, s := range sides {
			if sr := series[key{v, s.fdb}]; sr != nil {
				b.res.Stop = append(b.res.Stop, *sr)
			}
		}
	}
	return nil
}

// side builds one bridge: an uplink veth, 8 taps of a running guest and 8
// taps of other guests; the guest's ports are managed before timing starts.
func (b *bench) side(s *fdbSide, tag byte, idx int) error {
	br, err := b.lab.Bridge(s.bridge)
	if err != nil {
		return err
	}
	p := s.bridge[len(s.bridge)-1:] // e or k
	if s.uplink, _, err = b.lab.Veth(br, "u"+p+"0", "u"+p+"1"); err != nil {
		return err
	}
	s.start = testbed.NICs(p+"t", tag, 8)
	names := make([]string, 0, 16)
	for i, n := range s.start {
		names = append(names, n.Tap, fmt.Sprintf("%so%d", p, i))
	}
	if _, err := b.lab.Taps(br, names); err != nil {
		return err
	}
	if s.startIn, err = b.r.input("start-"+s.bridge+".xml", testbed.DomainXML("start-"+s.bridge, s.bridge, s.start)); err != nil {
		return err
	}
	if _, err := b.r.run([]string{b.o.hook, "start-" + s.bridge, "start", "begin", "-"}, s.startIn, true); err != nil {
		return err
	}
	if err := b.lab.Check(s.bridge, s.start, true); err != nil {
		return err
	}
	// The stopped guest: its tap is gone, its XML has no <target>.
	s.stopMAC = fmt.Sprintf("52:54:00:5e:00:%02x", idx+1)
	stop := []testbed.NIC{{MAC: s.stopMAC}}
	if s.stopXML, err = b.r.input("stop-"+s.bridge+".xml", testbed.DomainXML("stop-"+s.bridge, s.bridge, stop)); err != nil {
		return err
	}
	cfg := filepath.Join(b.o.work, "fdbhook-"+s.bridge+".toml")
	if err := b.o.writeConfig(cfg, s.bridge); err != nil {
		return err
	}
	env := []string{"FDBHOOK_CONFIG=" + cfg}
	for _, e := range b.env {
		if !strings.HasPrefix(e, "FDBHOOK_CONFIG=") {
			env = append(env, e)
		}
	}
	s.r, err = newRunner(b.o.work, "cmd-"+s.bridge, env)
	return err
}

// fillFDB adds fdbEntries static entries to the large bridge with
// `bridge -batch`: half on the uplink, half on the other guests' taps.
func (b *bench) fillFDB(s *fdbSide) error {
	var sb strings.Builder
	for i := range s.fdb {
		port := "uk0"
		if i%2 == 1 {
			port = fmt.Sprintf("ko%d", (i/2)%8)
		}
		fmt.Fprintf(&sb, "fdb add 02:fd:b1:%02x:%02x:%02x dev %s master static\n", (i>>16)&0xff, (i>>8)&0xff, i&0xff, port)
	}
	path := filepath.Join(b.o.work, "fdb-batch.txt")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		return err
	}
	t0 := time.Now()
	out, code, err := output(b.env, "bridge", "-batch", path)
	if err != nil || code != 0 {
		return fmt.Errorf("bridge -batch: exit %d %v: %s", code, err, out)
	}
	b.res.FDBLoadSeconds = time.Since(t0).Seconds()
	n, err := b.lab.CountStatic(s.bridge)
	if err != nil {
		return err
	}
	if n < s.fdb {
		return fmt.Errorf("%s holds %d static entries after the batch, want at least %d", s.bridge, n, s.fdb)
	}
	progress("  %s: %d static entries (bridge -batch took %.2f s)", s.bridge, n, b.res.FDBLoadSeconds)
	return nil
}

// command is an fdbhook command to time.
type command struct {
	name string
	args []string
	// exit is, per bridge, the code the untimed try exited with: status
	// may report findings with a non-zero code; every timed run must agree.
	exit map[string]int
}

func cmdNames(cs []command) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.name
	}
	return out
}

// commands finds out which of status and reconcile this fdbhook has,
// and records why the others cannot be measured.
func (b *bench) commands(sides []*fdbSide) ([]command, error) {
	var cmds []command
	for _, name := range []string{"status", "reconcile"} {
		help, code, err := output(b.env, b.o.admin, name, "--help")
		if err != nil || code != 0 {
			b.res.Commands[name] = "n/a (command not available)"
			continue
		}
		c := command{name: name, args: []string{name}, exit: map[string]int{}}
		if name == "reconcile" && strings.Contains(help, "--dry-run") {
			c.args = append(c.args, "--dry-run")
		}
		// One untimed try per bridge: a command that exists but fails to
		// run here (usage, configuration or input errors) is reported
		// rather than timed.
		argv := append([]string{b.o.admin}, c.args...)
		var codes []string
		for _, s := range sides {
			_, code, err := s.r.runCode(argv, nil)
			if err != nil {
				return nil, err
			}
			if code >= 2 {
				b.res.Commands[name] = fmt.Sprintf("n/a (exit %d on %s: %s)", code, s.bridge, firstLine(s.r.stderrText()))
				break
			}
			c.exit[s.bridge] = code
			codes = append(codes, fmt.Sprintf("%s: exit %d", s.bridge, code))
		}
		if _, failed := b.res.Commands[name]; failed {
			continue
		}
		b.res.Commands[name] = fmt.Sprintf("`fdbhook %s` with a config naming only the bridge measured (%s)",
			strings.Join(c.args, " "), strings.Join(codes, ", "))
		cmds = append(cmds, c)
	}
	return cmds, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
