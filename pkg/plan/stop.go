package plan

import (
	"github.com/fdbhook/fdbhook/pkg/model"

	"fmt"
	"slices"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
)

// Stop plans the clean-up after a guest stopped. The kernel has already
// deleted the guest's taps and the entries that pointed at them; what can
// be left is static entries for the guest's MACs that roamed to another
// port (the uplink, after a migration), and persistent ports that still
// carry the guest's entries. Ports and entries of other running guests are
// never touched.
func Stop(cfg *config.Config, g *guest.Guest, v View) (*Plan, error) {
	p := &Plan{Guest: g.Name}
	cands, err := selectNICs(cfg, g, v, p)
	if err != nil {
		return nil, err
	}
	p.Refusals = nil // a bad MAC was never managed: nothing to clean
	s := &stopper{g: g, v: v, p: p, macs: map[string]bool{}, vlansOf: map[string][]model.Vlan{},
		persistent: map[portKey]*persistentPort{}}
	for _, k := range s.keys(cfg, cands) {
		if err := s.entries(k); err != nil {
			return nil, err
		}
	}
	for _, pk := range s.order {
		if err := s.restorePort(s.persistent[pk]); err != nil {
			return nil, err
		}
	}
	return p, nil
}

type portKey struct{ bridge, port string }

// persistentPort is a tap that outlived the guest, with what its start
// gave it.
type persistentPort struct {
	br, port *model.Link
	vlans    []model.Vlan
}

// stopper holds what planning a stop gathers on the way.
type stopper struct {
	g *guest.Guest
	v View
	p *Plan
	// macs are the guest's MACs, extra MACs included.
	macs map[string]bool
	// vlansOf is, per MAC, the VLANs the start gave its NIC's port.
	vlansOf map[string][]model.Vlan
	// persistent are the taps that outlived the guest, in order found.
	persistent map[portKey]*persistentPort
	order      []portKey
}

// keys lists the (bridge, MAC) pairs to search: every MAC of every managed
// NIC (extra MACs are cleaned like the NIC's own) on its bridge, or on
// every configured bridge when the NIC's network's bridge is unknown.
func (s *stopper) keys(cfg *config.Config, cands []candidate) []macOnBridge {
	var keys []macOnBridge
	for _, c := range cands {
		md := s.g.Metadata(c.nic)
		if md.HasVlans() {
			s.vlansOf[c.mac] = portVlans(md.Pvid, md.Vlans)
		}
		bridges := []string{c.bridge}
		if c.bridge == "" {
			bridges = cfg.Bridges
			s.p.Notes = append(s.p.Notes, fmt.Sprintf("%s: bridge of network %s unknown: searching every configured bridge", c.nic.Label(), c.nic.Network))
		}
		for _, mac := range md.MACs() {
			s.macs[mac] = true
			for _, b := range bridges {
				if k := (macOnBridge{b, mac}); !slices.Contains(keys, k) {
					keys = append(keys, k)
				}
			}
		}
	}
	return keys
}

// entries plans the deletion of the static entries for one MAC on one
// bridge that outlived the guest: roamed to another port, or on a tap no
// other running guest owns, which is then a persistent port.
func (s *stopper) entries(k macOnBridge) error {
	br, err := s.v.Link(k.bridge)
	if err != nil {
		return fmt.Errorf("looking up bridge %s: %w", k.bridge, err)
	}
	if br == nil || br.Type != "bridge" {
		s.p.Notes = append(s.p.Notes, fmt.Sprintf("bridge %s does not exist: nothing to clean there", k.bridge))
		return nil
	}
	entries, err := s.v.Entries(br, k.mac)
	if err != nil {
		return fmt.Errorf("reading FDB of %s for %s: %w", br.Name, k.mac, err)
	}
	for _, e := range entries {
		if !e.Static() || e.PortIndex == br.Index {
			continue
		}
		port, err := s.v.LinkByIndex(e.PortIndex)
		if err != nil {
			return fmt.Errorf("looking up port %d of %s: %w", e.PortIndex, br.Name, err)
		}
		if port == nil {
			continue
		}
		why := "roamed to " + port.Name
		if port.IsTap() {
			owner, err := s.v.PortOwner(port.Name)
			if err != nil {
				return fmt.Errorf("finding the guest of %s: %w", port.Name, err)
			}
			if owner != "" && owner != s.g.Name {
				s.p.Notes = append(s.p.Notes, fmt.Sprintf("%s on %s belongs to running guest %s: left alone", e, br.Name, owner))
				continue
			}
			why = "port " + port.Name + " outlived the guest"
			s.persist(br, port, k.mac)
		}
		s.p.Steps = append(s.p.Steps, Step{Kind: DelEntry, MAC: k.mac, Port: port.Name, PortIndex: port.Index,
			Bridge: br.Name, BridgeIndex: br.Index, Entry: e, Why: why})
	}
	return nil
}

// persist notes port as a tap that outlived the guest, found through mac.
func (s *stopper) persist(br, port *model.Link, mac string) {
	pk := portKey{br.Name, port.Name}
	pp := s.persistent[pk]
	if pp == nil {
		pp = &persistentPort{br: br, port: port}
		s.persistent[pk] = pp
		s.order = append(s.order, pk)
	}
	if vl, ok := s.vlansOf[mac]; ok {
		pp.vlans = vl
	}
}

// restorePort gives a tap that outlived the guest the kernel's defaults
// back (learning and flooding on, unlocked, the bridge's default pvid
// instead of the guest's VLANs), unless it carries another MAC's static
// entry: then it belongs to someone else now and is left as it is.
func (s *stopper) restorePort(pp *persistentPort) error {
	br, port := pp.br, pp.port
	entries, err := s.v.PortEntries(br, port)
	if err != nil {
		return fmt.Errorf("reading FDB entries of %s: %w", port.Name, err)
	}
	for _, e := range entries {
		if e.Static() && !s.macs[e.MAC] {
			s.p.Notes = append(s.p.Notes, fmt.Sprintf("port %s also carries a static entry for %s: its flags are left as they are", port.Name, e.MAC))
			return nil
		}
	}
	// MAB goes off with the rest: a report-mode port would otherwise keep
	// it, and the kernel flushes the port's locked entries then.
	if defaults := (model.Flags{Learning: true, Flood: true}); port.Flags != defaults {
		s.p.Steps = append(s.p.Steps, Step{Kind: SetFlags, Port: port.Name, PortIndex: port.Index, Bridge: br.Name,
			BridgeIndex: br.Index, Flags: defaults, Prior: port.Flags, WithLocked: port.LockCapable, WithMab: port.MabCapable, NIC: "port " + port.Name})
	}
	if pp.vlans != nil && br.VlanCapable {
		s.p.Steps = append(s.p.Steps, restoreVlans(br, port, pp.vlans)...)
	}
	return nil
}

// restoreVlans takes the VLANs a guest's start gave a port that outlived
// the guest off it again, and gives it the bridge's default pvid, as a
// newly enslaved port gets: the next guest on the port starts from the
// bridge's defaults, not from this guest's VLANs. (A VLAN the port no
// longer has makes the kernel stop at it; clean-up goes on.)
func restoreVlans(br, port *model.Link, gave []model.Vlan) []Step {
	base := Step{NIC: "port " + port.Name, Port: port.Name, PortIndex: port.Index, Bridge: br.Name, BridgeIndex: br.Index}
	del := base
	del.Kind, del.Vlans, del.Why = DelVlans, gave, "the stopped guest's VLANs"
	steps := []Step{del}
	if br.DefaultPvid != 0 {
		add := base
		add.Kind, add.Vlans, add.Why = AddVlans, []model.Vlan{{ID: br.DefaultPvid, Pvid: true, Untagged: true}}, "the bridge's default pvid"
		steps = append(steps, add)
	}
	return steps
}
