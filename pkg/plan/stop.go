package plan

import (
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
	type key struct{ bridge, mac string }
	var keys []key
	macs := map[string]bool{}
	// vlansOf is, per MAC, the VLANs the start gave its NIC's port.
	vlansOf := map[string][]Vlan{}
	for _, c := range cands {
		if md := g.Metadata(c.nic); md.HasVlans() {
			vlansOf[c.mac] = portVlans(md.Pvid, md.Vlans)
		}
		bridges := []string{c.bridge}
		if c.bridge == "" {
			bridges = cfg.Bridges
			p.Notes = append(p.Notes, fmt.Sprintf("%s: bridge of network %s unknown: searching every configured bridge", c.nic.Label(), c.nic.Network))
		}
		// Extra MACs of the NIC are cleaned like its own.
		for _, mac := range append([]string{c.mac}, g.Metadata(c.nic).ExtraMACs...) {
			macs[mac] = true
			for _, b := range bridges {
				if k := (key{b, mac}); !slices.Contains(keys, k) {
					keys = append(keys, k)
				}
			}
		}
	}
	type portKey struct{ bridge, port string }
	persistent := map[portKey]bool{}
	var persistOrder []portKey
	// gaveVlans is, per persistent port, the VLANs the guest's start gave it.
	gaveVlans := map[portKey][]Vlan{}
	links := map[string]*Link{}
	for _, k := range keys {
		br, err := v.Link(k.bridge)
		if err != nil {
			return nil, fmt.Errorf("looking up bridge %s: %w", k.bridge, err)
		}
		if br == nil || br.Type != "bridge" {
			p.Notes = append(p.Notes, fmt.Sprintf("bridge %s does not exist: nothing to clean there", k.bridge))
			continue
		}
		links[br.Name] = br
		entries, err := v.Entries(br, k.mac)
		if err != nil {
			return nil, fmt.Errorf("reading FDB of %s for %s: %w", br.Name, k.mac, err)
		}
		for _, e := range entries {
			if !e.Static() || e.PortIndex == br.Index {
				continue
			}
			port, err := v.LinkByIndex(e.PortIndex)
			if err != nil {
				return nil, fmt.Errorf("looking up port %d of %s: %w", e.PortIndex, br.Name, err)
			}
			if port == nil {
				continue
			}
			why := "roamed to " + port.Name
			if port.IsTap() {
				owner, err := v.PortOwner(port.Name)
				if err != nil {
					return nil, fmt.Errorf("finding the guest of %s: %w", port.Name, err)
				}
				if owner != "" && owner != g.Name {
					p.Notes = append(p.Notes, fmt.Sprintf("%s on %s belongs to running guest %s: left alone", e, br.Name, owner))
					continue
				}
				why = "port " + port.Name + " outlived the guest"
				pk := portKey{br.Name, port.Name}
				if !persistent[pk] {
					persistent[pk] = true
					persistOrder = append(persistOrder, pk)
					links[port.Name] = port
				}
				if vl, ok := vlansOf[k.mac]; ok {
					gaveVlans[pk] = vl
				}
			}
			p.Steps = append(p.Steps, Step{Kind: DelEntry, MAC: k.mac, Port: port.Name, PortIndex: port.Index,
				Bridge: br.Name, BridgeIndex: br.Index, Entry: e, Why: why})
		}
	}
	for _, pk := range persistOrder {
		br, port := links[pk.bridge], links[pk.port]
		entries, err := v.PortEntries(br, port)
		if err != nil {
			return nil, fmt.Errorf("reading FDB entries of %s: %w", port.Name, err)
		}
		other := ""
		for _, e := range entries {
			if e.Static() && !macs[e.MAC] {
				other = e.MAC
				break
			}
		}
		defaults := Flags{Learning: true, Flood: true}
		switch {
		case other != "":
			p.Notes = append(p.Notes, fmt.Sprintf("port %s also carries a static entry for %s: its flags are left as they are", port.Name, other))
		case port.Flags != defaults:
			p.Steps = append(p.Steps, Step{Kind: SetFlags, Port: port.Name, PortIndex: port.Index, Bridge: br.Name,
				BridgeIndex: br.Index, Flags: defaults, Prior: port.Flags, WithLocked: port.LockCapable, NIC: "port " + port.Name})
		}
		if vl := gaveVlans[pk]; other == "" && vl != nil && br.VlanCapable {
			p.Steps = append(p.Steps, restoreVlans(br, port, vl)...)
		}
	}
	return p, nil
}

// restoreVlans takes the VLANs a guest's start gave a port that outlived
// the guest off it again, and gives it the bridge's default pvid, as a
// newly enslaved port gets: the next guest on the port starts from the
// bridge's defaults, not from this guest's VLANs. (A VLAN the port no
// longer has makes the kernel stop at it; clean-up goes on.)
func restoreVlans(br, port *Link, gave []Vlan) []Step {
	base := Step{NIC: "port " + port.Name, Port: port.Name, PortIndex: port.Index, Bridge: br.Name, BridgeIndex: br.Index}
	del := base
	del.Kind, del.Vlans, del.Why = DelVlans, gave, "the stopped guest's VLANs"
	steps := []Step{del}
	if br.DefaultPvid != 0 {
		add := base
		add.Kind, add.Vlans, add.Why = AddVlans, []Vlan{{ID: br.DefaultPvid, Pvid: true, Untagged: true}}, "the bridge's default pvid"
		steps = append(steps, add)
	}
	return steps
}
