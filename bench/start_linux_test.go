package bench

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/bench/testbed"
	"github.com/fdbhook/fdbhook/pkg/apply"
	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// view joins a kernel connection and (empty) libvirt state, as the hook does.
type view struct {
	*kernel.Conn
	*libvirt.Files
}

// start does in process what `qemu-hook GUEST start begin` does between
// reading its input and exiting: connect, parse, read ahead, plan, apply.
func start(lab *testbed.Lab, cfg *config.Config, xml []byte) (*plan.Plan, error) {
	k, err := kernel.Open(lab.NS, kernel.DefaultTimeout)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	g, err := guest.Parse(xml)
	if err != nil {
		return nil, err
	}
	k.Prefetch(ports(g))
	p, err := plan.Start(cfg, g, view{k, libvirt.New(libvirt.Paths{})})
	if err != nil {
		return nil, err
	}
	if len(p.Refusals) > 0 {
		return nil, fmt.Errorf("refused: %v", p.Refusals)
	}
	return p, apply.Apply(k, p.Steps)
}

// ports is what the hook hands kernel.Conn.Prefetch: each NIC's tap and
// MACs.
func ports(g *guest.Guest) map[string][]string {
	out := map[string][]string{}
	for _, nic := range g.NICs {
		if nic.Target != "" && nic.BadMAC == nil {
			out[nic.Target] = append(append(out[nic.Target], nic.MAC), g.Metadata(nic).ExtraMACs...)
		}
	}
	return out
}

// BenchmarkStart measures a guest start in process, in a fresh network
// namespace with a bridge and 64 taps: connect + parse + plan + apply
// ("start"), and applying a ready plan alone ("apply"). "first" resets the
// ports outside the timer so every iteration does the full work; "steady"
// reruns on managed ports.
func BenchmarkStart(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skipf("needs root to create a network namespace, a bridge and taps (euid %d)", os.Geteuid())
	}
	lab, err := testbed.New()
	if err != nil {
		b.Skipf("cannot create a network namespace: %v", err)
	}
	defer lab.Close()
	br, err := lab.Bridge("br0")
	if err != nil {
		b.Fatal(err)
	}
	all := testbed.NICs("tap", 0xbe, 64)
	names := make([]string, len(all))
	for i, n := range all {
		names[i] = n.Tap
	}
	if _, err := lab.Taps(br, names); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Parse([]byte(`bridges = ["br0"]`))
	if err != nil {
		b.Fatal(err)
	}
	reset := func(b *testing.B, nics []testbed.NIC) {
		b.StopTimer()
		if err := lab.Reset(nics); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	for _, n := range []int{1, 8, 64} {
		nics := all[:n]
		xml := testbed.DomainXML(fmt.Sprintf("bench%d", n), "br0", nics)
		b.Run(fmt.Sprintf("nics=%d/start/first", n), func(b *testing.B) {
			for range b.N {
				reset(b, nics)
				if _, err := start(lab, cfg, xml); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := lab.Check("br0", nics, true); err != nil {
				b.Fatal(err)
			}
		})
		b.Run(fmt.Sprintf("nics=%d/start/steady", n), func(b *testing.B) {
			for range b.N {
				if _, err := start(lab, cfg, xml); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := lab.Check("br0", nics, true); err != nil {
				b.Fatal(err)
			}
		})
		b.Run(fmt.Sprintf("nics=%d/parse", n), func(b *testing.B) {
			for range b.N {
				g, err := guest.Parse(xml)
				if err != nil || len(g.NICs) != n {
					b.Fatalf("parse: %d NICs, %v", len(g.NICs), err)
				}
			}
		})
		b.Run(fmt.Sprintf("nics=%d/apply/first", n), func(b *testing.B) {
			if err := lab.Reset(nics); err != nil {
				b.Fatal(err)
			}
			k, err := kernel.Open(lab.NS, time.Second)
			if err != nil {
				b.Fatal(err)
			}
			defer k.Close()
			g, err := guest.Parse(xml)
			if err != nil {
				b.Fatal(err)
			}
			p, err := plan.Start(cfg, g, view{k, libvirt.New(libvirt.Paths{})})
			if err != nil {
				b.Fatal(err)
			}
			if want := 2 * n; len(p.Steps) != want {
				b.Fatalf("plan for reset ports has %d steps, want %d:\n%s", len(p.Steps), want, p.Format())
			}
			b.ResetTimer()
			for range b.N {
				reset(b, nics)
				if err := apply.Apply(k, p.Steps); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := lab.Check("br0", nics, true); err != nil {
				b.Fatal(err)
			}
		})
	}
}
