package plan

import (
	"fmt"
	"slices"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
)

// candidate is a NIC that the configuration and metadata say to manage,
// with its bridge as the XML names it.
type candidate struct {
	nic guest.NIC
	mac string
	// bridge is the bridge the XML (or the NIC's network) names; may be "".
	bridge string
	// viaNetwork is true when the NIC is managed because its network is
	// listed (its bridge need not be).
	viaNetwork bool
}

// selectNICs sorts the guest's NICs into candidates, skips and refusals
// using only the XML, the configuration and libvirt's network files.
func selectNICs(cfg *config.Config, g *guest.Guest, v View, p *Plan) ([]candidate, error) {
	var out []candidate
	for _, nic := range g.NICs {
		skip := func(format string, args ...any) {
			p.Skips = append(p.Skips, Skip{NIC: nic.Label(), MAC: nic.MAC, Reason: fmt.Sprintf(format, args...)})
		}
		if nic.Type != "bridge" && nic.Type != "network" {
			skip("type '%s' is never managed", nic.Type)
			continue
		}
		if nic.VirtualPort == "openvswitch" {
			skip("Open vSwitch port")
			continue
		}
		if nic.VirtualPort != "" {
			skip("virtualport type '%s' is never managed", nic.VirtualPort)
			continue
		}
		var net *Network
		if nic.Network != "" {
			var err error
			if net, err = v.Network(nic.Network); err != nil {
				return nil, fmt.Errorf("%s: network %s: %w", nic.Label(), nic.Network, err)
			}
		}
		c := candidate{nic: nic, bridge: nic.Bridge,
			viaNetwork: nic.Network != "" && cfg.ManagesNetwork(nic.Network)}
		if c.bridge == "" && net != nil {
			c.bridge = net.Bridge
		}
		if !c.viaNetwork && !cfg.ManagesBridge(c.bridge) {
			switch {
			case c.bridge == "" && nic.Network != "":
				skip("network %s is not managed", nic.Network)
			case nic.Network != "":
				skip("network %s and bridge %s are not managed", nic.Network, c.bridge)
			default:
				skip("bridge %s is not managed", c.bridge)
			}
			continue
		}
		if net != nil && net.MacTableLibvirt {
			skip("network %s has macTableManager='libvirt': libvirt manages it", net.Name)
			continue
		}
		if !g.Manages(nic) {
			if !g.Manage {
				skip("guest opted out in its metadata (%s)", guest.Namespace)
			} else {
				skip("NIC opted out in the guest's metadata (%s)", guest.Namespace)
			}
			continue
		}
		mac, err := guest.NormalizeMAC(nic.MAC)
		if err != nil {
			p.Refusals = append(p.Refusals, Refusal{NIC: nic.Label(), MAC: nic.MAC, Bridge: c.bridge,
				Cause: "bad MAC address: " + err.Error()})
			continue
		}
		c.mac = mac
		out = append(out, c)
	}
	for mac := range g.Interfaces {
		if !slices.ContainsFunc(g.NICs, func(n guest.NIC) bool { return n.MAC == mac }) {
			p.Notes = append(p.Notes, fmt.Sprintf("metadata names %s, which no NIC of the guest has", mac))
		}
	}
	slices.Sort(p.Notes)
	return out, nil
}

// Start plans a guest's start (and reconnect, attach): for every managed
// NIC, a static FDB entry for its MAC on its tap, then learning and unicast
// flooding off on the tap; bridge policy first.
func Start(cfg *config.Config, g *guest.Guest, v View) (*Plan, error) {
	p := &Plan{Guest: g.Name}
	cands, err := selectNICs(cfg, g, v, p)
	if err != nil {
		return nil, err
	}
	type key struct{ bridge, mac string }
	seen := map[key]struct{ nic, port string }{}
	filteringAfter := map[string]bool{}
	var policy, ports []Step
	for _, c := range cands {
		label := c.nic.Label()
		refuse := func(bridge, format string, args ...any) {
			p.Refusals = append(p.Refusals, Refusal{NIC: label, MAC: c.mac, Bridge: bridge, Cause: fmt.Sprintf(format, args...)})
		}
		if c.nic.Target == "" {
			refuse(c.bridge, "no <target dev> in the domain XML (is this the live XML of a running guest?)")
			continue
		}
		tap, err := v.Link(c.nic.Target)
		if err != nil {
			return nil, fmt.Errorf("%s: looking up %s: %w", label, c.nic.Target, err)
		}
		switch {
		case tap == nil:
			refuse(c.bridge, "device %s does not exist", c.nic.Target)
			continue
		case !tap.IsTap():
			refuse(c.bridge, "%s is %s, not a guest tap: refusing to touch it", tap.Name, tap.Describe())
			continue
		case tap.MasterIndex == 0:
			refuse(c.bridge, "tap %s is not enslaved to any bridge", tap.Name)
			continue
		case tap.MasterType != "bridge":
			refuse(c.bridge, "tap %s is a port of %s, which is not a Linux bridge (%s)", tap.Name, tap.Master, tap.MasterType)
			continue
		}
		bridge := tap.Master
		if c.bridge != "" && c.bridge != bridge {
			p.Notes = append(p.Notes, fmt.Sprintf("%s: the XML puts %s on %s but the kernel has it on %s: trusting the kernel",
				label, tap.Name, c.bridge, bridge))
		}
		if !c.viaNetwork && !cfg.ManagesBridge(bridge) {
			p.Skips = append(p.Skips, Skip{NIC: label, MAC: c.mac,
				Reason: fmt.Sprintf("the kernel has %s on bridge %s, which is not managed", tap.Name, bridge)})
			continue
		}
		br, err := v.LinkByIndex(tap.MasterIndex)
		if err != nil || br == nil {
			return nil, fmt.Errorf("%s: looking up bridge %s: %v", label, bridge, err)
		}
		md := g.Metadata(c.nic)
		macs := append([]string{c.mac}, md.ExtraMACs...)
		prior := make([][]Entry, len(macs))
		refused := false
		for i, mac := range macs {
			what := "duplicate MAC"
			if i > 0 {
				what = "duplicate extra MAC " + mac
			}
			if other, dup := seen[key{bridge, mac}]; dup {
				refuse(bridge, "%s: NIC %s of this guest has it on the same bridge (ports %s and %s)", what, other.nic, other.port, tap.Name)
				refused = true
				break
			}
			entries, err := v.Entries(br, mac)
			if err != nil {
				return nil, fmt.Errorf("%s: reading FDB of %s for %s: %w", label, bridge, mac, err)
			}
			if owner, err := duplicateOwner(v, entries, tap, br); err != nil {
				return nil, err
			} else if owner != "" {
				refuse(bridge, "%s: it already has a static entry on %s, another guest's port (this guest's port is %s)", what, owner, tap.Name)
				refused = true
				break
			}
			prior[i] = entries
		}
		if refused {
			continue
		}
		for _, mac := range macs {
			seen[key{bridge, mac}] = struct{ nic, port string }{label, tap.Name}
		}
		pol := cfg.Policy(bridge)
		// The bridge's policy is decided once, at its first NIC; the NICs
		// after it see vlan_filtering as the plan will leave it.
		filtering, decided := filteringAfter[bridge]
		if !decided {
			filtering = br.VlanFiltering
			if pol.VlanFiltering == config.Enable && !filtering {
				if br.VlanCapable {
					policy = append(policy, Step{Kind: EnableVlanFiltering, Bridge: bridge, BridgeIndex: br.Index})
					filtering = true
				} else {
					p.Warnings = append(p.Warnings, fmt.Sprintf("bridge %s: vlan_filtering = \"enable\" cannot take effect: this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING); managing ports without it", bridge))
				}
			}
			filteringAfter[bridge] = filtering
		}
		// An option the kernel cannot honour is a refusal under
		// on_error = "fail" (a security option must not silently vanish)
		// and a warning under "warn".
		cannot := func(format string, args ...any) bool {
			msg := fmt.Sprintf(format, args...)
			if cfg.OnError == config.Warn {
				p.Warnings = append(p.Warnings, fmt.Sprintf("%s %s on %s: %s: managing the NIC without it", label, c.mac, bridge, msg))
				return false
			}
			refuse(bridge, "%s", msg)
			return true
		}
		lock := md.Lock.Or(g.Lock.Or(pol.LockPorts))
		if lock && !tap.LockCapable {
			if cannot("cannot lock port %s: this kernel has no locked bridge ports (IFLA_BRPORT_LOCKED, Linux 5.18+)", tap.Name) {
				continue
			}
			lock = false
		}
		sticky := md.Sticky.Or(g.Sticky.Or(pol.Sticky))
		if sticky && !br.StickyCapable {
			if cannot("cannot write sticky entries: this kernel has no sticky bridge entries (NTF_STICKY, Linux 4.20+)") {
				continue
			}
			sticky = false
		}
		var vlans []Vlan
		if md.HasVlans() {
			switch {
			case c.nic.Type != "bridge":
				if cannot("pvid and vlans apply to type='bridge' NICs only, this one is type='%s'", c.nic.Type) {
					continue
				}
			case !br.VlanCapable:
				if cannot("cannot give port %s VLANs: this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)", tap.Name) {
					continue
				}
			case !filtering:
				if cannot("cannot give port %s VLANs: bridge %s does not filter VLANs (vlan_filtering 0)", tap.Name, bridge) {
					continue
				}
			default:
				vlans = portVlans(md.Pvid, md.Vlans)
			}
		}
		base := Step{NIC: label, MAC: c.mac, Port: tap.Name, PortIndex: tap.Index, Bridge: bridge, BridgeIndex: br.Index}
		if vlans != nil {
			set := base
			set.Kind, set.Vlans = SetVlans, vlans
			ports = append(ports, set)
		}
		for i, mac := range macs {
			add := base
			add.Kind, add.MAC, add.PriorEntries, add.Sticky = AddEntry, mac, prior[i], sticky
			if i > 0 {
				add.Why = "extra MAC"
			}
			ports = append(ports, add)
		}
		// A port found locked stays locked when this guest does not ask
		// for it: someone else (an 802.1X authenticator) may have locked it.
		want := Flags{Locked: lock || tap.Flags.Locked}
		if tap.Flags != want {
			set := base
			set.Kind, set.Flags, set.Prior = SetFlags, want, tap.Flags
			ports = append(ports, set)
		}
		if lock {
			// A locked port passes every source MAC that has an entry on
			// it, learned ones too: drop those the port learned before
			// learning went off, or they pass until they age out.
			learned, err := v.PortEntries(br, tap)
			if err != nil {
				return nil, fmt.Errorf("%s: reading FDB entries of %s: %w", label, tap.Name, err)
			}
			for _, e := range learned {
				if e.Static() || e.Local() || e.NTFlags&NTFExtLearn != 0 || e.PortIndex != tap.Index || slices.Contains(macs, e.MAC) {
					continue
				}
				del := base
				del.Kind, del.MAC, del.Entry, del.Why = DelEntry, e.MAC, e, "learned on "+tap.Name+" before it was locked"
				ports = append(ports, del)
			}
		}
	}
	p.Steps = append(policy, ports...)
	return p, nil
}

// portVlans is the VLAN set of a port with untagged VLAN pvid (0: none)
// and tagged VLANs tagged.
func portVlans(pvid int, tagged []int) []Vlan {
	out := []Vlan{}
	if pvid != 0 {
		out = append(out, Vlan{ID: pvid, Pvid: true, Untagged: true})
	}
	for _, id := range tagged {
		out = append(out, Vlan{ID: id})
	}
	return out
}

// duplicateOwner returns the name of another guest tap on the same bridge
// that holds a static entry among entries, or "".
func duplicateOwner(v View, entries []Entry, tap, br *Link) (string, error) {
	for _, e := range entries {
		if !e.Static() || e.PortIndex == tap.Index || e.PortIndex == br.Index {
			continue
		}
		port, err := v.LinkByIndex(e.PortIndex)
		if err != nil {
			return "", fmt.Errorf("looking up port %d of %s: %w", e.PortIndex, br.Name, err)
		}
		// Only another tap is a guest port to the qemu hook; a static entry
		// on anything else (a veth or bond uplink) roamed there and is
		// simply replaced.
		if port != nil && port.IsTap() && port.MasterIndex == br.Index {
			return port.Name, nil
		}
	}
	return "", nil
}
