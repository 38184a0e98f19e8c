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
	policyDone := map[string]bool{}
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
		if other, dup := seen[key{bridge, c.mac}]; dup {
			refuse(bridge, "duplicate MAC: NIC %s of this guest has it on the same bridge (ports %s and %s)", other.nic, other.port, tap.Name)
			continue
		}
		seen[key{bridge, c.mac}] = struct{ nic, port string }{label, tap.Name}
		br, err := v.LinkByIndex(tap.MasterIndex)
		if err != nil || br == nil {
			return nil, fmt.Errorf("%s: looking up bridge %s: %v", label, bridge, err)
		}
		entries, err := v.Entries(br, c.mac)
		if err != nil {
			return nil, fmt.Errorf("%s: reading FDB of %s for %s: %w", label, bridge, c.mac, err)
		}
		if owner, err := duplicateOwner(v, entries, tap, br); err != nil {
			return nil, err
		} else if owner != "" {
			refuse(bridge, "duplicate MAC: it already has a static entry on %s, another guest's port (this guest's port is %s)", owner, tap.Name)
			continue
		}
		if !policyDone[bridge] {
			policyDone[bridge] = true
			if cfg.Policy(bridge).VlanFiltering == config.Enable && !br.VlanFiltering {
				if br.VlanCapable {
					policy = append(policy, Step{Kind: EnableVlanFiltering, Bridge: bridge, BridgeIndex: br.Index})
				} else {
					p.Warnings = append(p.Warnings, fmt.Sprintf("bridge %s: vlan_filtering = \"enable\" cannot take effect: this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING); managing ports without it", bridge))
				}
			}
		}
		base := Step{NIC: label, MAC: c.mac, Port: tap.Name, PortIndex: tap.Index, Bridge: bridge, BridgeIndex: br.Index}
		add := base
		add.Kind, add.PriorEntries = AddEntry, entries
		ports = append(ports, add)
		off := Flags{}
		if tap.Flags != off {
			set := base
			set.Kind, set.Flags, set.Prior = SetFlags, off, tap.Flags
			ports = append(ports, set)
		}
	}
	p.Steps = append(policy, ports...)
	return p, nil
}

// duplicateOwner returns the name of another live guest port on the same
// bridge that holds a static entry among entries, or "".
func duplicateOwner(v View, entries []Entry, tap, br *Link) (string, error) {
	for _, e := range entries {
		if !e.Static() || e.PortIndex == tap.Index || e.PortIndex == br.Index {
			continue
		}
		port, err := v.LinkByIndex(e.PortIndex)
		if err != nil {
			return "", fmt.Errorf("looking up port %d of %s: %w", e.PortIndex, br.Name, err)
		}
		if port != nil && port.IsGuestPort() && port.MasterIndex == br.Index {
			return port.Name, nil
		}
	}
	return "", nil
}
