package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/fdbhook/fdbhook/bench/testbed"
)

// lxcRunDir is where the lxc hook reads a container's live state. The
// driver writes there only when it is a mount of its own (bench/run.sh
// mounts a tmpfs over it in the driver's private mount namespace), never
// into libvirt's real directory.
const lxcRunDir = "/run/libvirt/lxc"

// lxcVariant is one hook of the lxc phase: its NICs and its inputs.
type lxcVariant struct {
	name  string
	nics  []testbed.NIC
	argv  func(string) []string
	input map[int]*os.File
}

// guest names the variant's guest with n NICs.
func (v *lxcVariant) guest(n int) string {
	return fmt.Sprintf("bench%s%d", strings.TrimSuffix(v.name, "-hook"), n)
}

// lxcLatency times the lxc hook's `started begin` beside the qemu hook's
// `start begin`, for 1, 8 and 64 NICs on one bridge: taps for the QEMU
// guest, veths whose peers live in a container's network namespace (a
// process there stands for the container's init, named in a live state
// file as libvirt writes it) for the container. Both hooks run interleaved
// round by round, steady and first, like the start latency.
func (b *bench) lxcLatency() error {
	vs, err := b.lxcSetup()
	if err != nil {
		return err
	}
	series := map[string]*Series{}
	key := func(v string, n int, mode string) string { return fmt.Sprintf("%s/%d/%s", v, n, mode) }
	for _, v := range vs {
		for _, n := range sizes {
			for _, mode := range []string{"steady", "first"} {
				series[key(v.name, n, mode)] = &Series{Variant: v.name, NICs: n, Mode: mode}
			}
		}
	}
	for round := range b.o.runs {
		order, modes := vs, []string{"steady", "first"}
		if round%2 == 1 {
			order, modes = []*lxcVariant{vs[1], vs[0]}, []string{"first", "steady"}
		}
		for _, n := range sizes {
			for _, mode := range modes {
				for _, v := range order {
					d, err := b.lxcRun(v, n, mode, round)
					if err != nil {
						return err
					}
					s := series[key(v.name, n, mode)]
					s.Samples = append(s.Samples, ms(d))
				}
			}
		}
		if (round+1)%25 == 0 {
			progress("  round %d/%d (1 NIC first apply: qemu-hook %.2f ms, lxc-hook %.2f ms median so far)", round+1, b.o.runs,
				median(series[key("qemu-hook", 1, "first")].Samples), median(series[key("lxc-hook", 1, "first")].Samples))
		}
	}
	for _, n := range sizes {
		for _, v := range vs {
			for _, mode := range []string{"steady", "first"} {
				b.res.Lxc = append(b.res.Lxc, *series[key(v.name, n, mode)])
			}
		}
	}
	return nil
}

// lxcRun times one hook run: after a reset of the ports for mode first,
// read back after every full apply and now and then after a rerun.
func (b *bench) lxcRun(v *lxcVariant, n int, mode string, round int) (time.Duration, error) {
	if mode == "first" {
		if err := b.lab.Reset(v.nics[:n]); err != nil {
			return 0, err
		}
	}
	d, err := b.r.run(v.argv(v.guest(n)), v.input[n], true)
	if err != nil {
		return 0, err
	}
	if mode == "first" || round%25 == 0 {
		if err := b.lab.Check(lxcBridge, v.nics[:n], true); err != nil {
			return 0, fmt.Errorf("round %d, %s %s with %d NICs: %w", round, v.name, mode, n, err)
		}
	}
	return d, nil
}

// lxcSetup makes the lxc phase's bridge, taps, container and inputs, and
// the containers' live state files.
func (b *bench) lxcSetup() ([]*lxcVariant, error) {
	if err := ownMount(lxcRunDir); err != nil {
		return nil, err
	}
	br, err := b.lab.Bridge(lxcBridge)
	if err != nil {
		return nil, err
	}
	n := sizes[len(sizes)-1]
	taps, veths := testbed.NICs("blq", 0xc1, n), testbed.NICs("blv", 0xc2, n)
	names := make([]string, n)
	for i, t := range taps {
		names[i] = t.Tap
	}
	if _, err := b.lab.Taps(br, names); err != nil {
		return nil, err
	}
	initPid, err := b.container(br, veths)
	if err != nil {
		return nil, err
	}
	vs := []*lxcVariant{
		{name: "qemu-hook", nics: taps, argv: func(d string) []string { return []string{b.o.hook, d, "start", "begin", "-"} }},
		{name: "lxc-hook", nics: veths, argv: func(d string) []string { return []string{b.o.lxcHook, d, "started", "begin", "-"} }},
	}
	for _, v := range vs {
		v.input = map[int]*os.File{}
		for _, n := range sizes {
			xml := testbed.DomainXML(v.guest(n), lxcBridge, v.nics[:n])
			if v.name == "lxc-hook" {
				xml = []byte(strings.Replace(string(xml), "<domain type='kvm'", "<domain type='lxc'", 1))
				state := fmt.Sprintf("<domstatus state='running' reason='booted' pid='%d'>\n  <init pid='%d'/>\n%s</domstatus>\n", initPid, initPid, xml)
				if err := os.WriteFile(filepath.Join(lxcRunDir, v.guest(n)+".xml"), []byte(state), 0o600); err != nil {
					return nil, err
				}
			}
			if v.input[n], err = b.r.input(fmt.Sprintf("lxc-%s-%d.xml", v.name, n), xml); err != nil {
				return nil, err
			}
		}
	}
	return vs, nil
}

// container makes the bench's container: a network namespace with a
// process in it (its "init"), and for each NIC a veth pair whose host end
// is on br and whose peer is moved into the namespace, as libvirt's LXC
// driver does. It returns the init's pid; the namespace and the process
// go away with the driver (b.cleanups).
func (b *bench) container(br netlink.Link, nics []testbed.NIC) (int, error) {
	name := fmt.Sprintf("fdbt-bench-ct-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("ip netns add %s: %v: %s", name, err, out)
	}
	b.cleanups = append(b.cleanups, func() { exec.Command("ip", "netns", "del", name).Run() })
	ns, err := netns.GetFromName(name)
	if err != nil {
		return 0, err
	}
	defer ns.Close()
	for i, n := range nics {
		_, peer, err := b.lab.Veth(br, n.Tap, fmt.Sprintf("blp%d", i))
		if err != nil {
			return 0, err
		}
		if err := b.lab.H.LinkSetNsFd(peer, int(ns)); err != nil {
			return 0, fmt.Errorf("moving %s into %s: %w", peer.Attrs().Name, name, err)
		}
	}
	init := exec.Command("ip", "netns", "exec", name, "sleep", "86400")
	if err := init.Start(); err != nil {
		return 0, err
	}
	b.cleanups = append(b.cleanups, func() { init.Process.Kill(); init.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", init.Process.Pid)); strings.HasSuffix(exe, "/sleep") {
			return init.Process.Pid, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the container's init (pid %d) did not exec sleep within 5 s", init.Process.Pid)
		}
	}
}

// ownMount fails unless dir is a mount point in this mount namespace.
func ownMount(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && fields[4] == dir {
			return nil
		}
	}
	return fmt.Errorf("%s is not a mount of its own here: the lxc phase writes containers' live state there, "+
		"which must not be libvirt's real directory (bench/run.sh mounts a tmpfs over it)", dir)
}

// lxcSection renders the lxc hook beside the qemu hook. "Within noise"
// means the difference of the medians is no larger than the larger of the
// two series' interquartile ranges: the spread each hook shows against
// itself on this machine.
func lxcSection(res *Results) string {
	if len(res.Lxc) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("### The lxc hook beside the qemu hook\n\n")
	fmt.Fprintf(&b, "`lxc-hook CONTAINER started begin -` for a container whose NICs are veths with their peers in the "+
		"container's network namespace (its init named in a live state file, as libvirt's LXC driver writes it), and "+
		"`qemu-hook GUEST start begin -` for a guest with as many taps, on one bridge, %d runs per cell, interleaved as above. "+
		"The lxc hook does the qemu hook's work plus reading the live state and one RTM_GETNSID. "+
		"*within noise*: the difference of the medians is at most the larger interquartile range (p75 − p25) of the two series.\n\n", res.Runs)
	b.WriteString("| NICs | mode | qemu-hook median | qemu-hook IQR | lxc-hook median | lxc-hook IQR | lxc − qemu | lxc ÷ qemu (per round) | |\n" +
		"|---:|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, n := range sizes {
		for _, mode := range []string{"first", "steady"} {
			q, l := findSeries(res.Lxc, "qemu-hook", n, mode, 0), findSeries(res.Lxc, "lxc-hook", n, mode, 0)
			if q == nil || l == nil {
				continue
			}
			fmt.Fprintf(&b, "| %d | %s | %s |\n", n, mode, besideCells(q.Samples, l.Samples))
		}
	}
	b.WriteString("\n")
	return b.String()
}

// spliceLxc writes the lxc section of a run of the lxc phase alone into
// the report md (splice).
func spliceLxc(md string, res *Results) error {
	return splice(md, res, "### The lxc hook beside the qemu hook\n", lxcSection(res), "BENCH_PHASES=lxc bench/run.sh")
}

// splice writes a section of a run of one phase alone (how) into the
// report md, in place of the section (starting with head) an earlier run
// wrote there, or after the start latency chart; the rest of the report
// stays as it was.
func splice(md string, res *Results, head, section, how string) error {
	data, err := os.ReadFile(md)
	if err != nil {
		return err
	}
	text := string(data)
	if section == "" {
		return fmt.Errorf("the results hold no series for %q", strings.TrimSpace(head))
	}
	m := res.Machine
	section = strings.Replace(section, "\n\n", fmt.Sprintf("\n\nMeasured on its own (`%s`) on %s, fdbhook %s, load average %s at the start, %s at the end.\n\n",
		how, m.Date, m.Version, m.LoadBefore, m.LoadAfter), 1)
	if i := strings.Index(text, head); i >= 0 {
		end := strings.Index(text[i+len(head):], "\n#")
		if end < 0 {
			text = text[:i]
		} else {
			text = text[:i] + text[i+len(head)+end+1:]
		}
	}
	at := strings.Index(text, "![start hook latency vs NIC count]")
	if at < 0 {
		return fmt.Errorf("%s has no start latency chart to put the section after", md)
	}
	at += strings.Index(text[at:], "\n\n") + 2
	return os.WriteFile(md, []byte(text[:at]+section+text[at:]), 0o644)
}
