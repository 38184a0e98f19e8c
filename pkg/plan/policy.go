package plan

import (
	"fmt"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// VlanAction is what the configuration asks of a bridge's vlan_filtering,
// given what the bridge and the kernel can do.
type VlanAction int

const (
	VlanLeave  VlanAction = iota // nothing: "leave", or the bridge filters already
	VlanEnable                   // turn vlan_filtering on
	VlanCannot                   // "enable", but this kernel has no bridge VLAN filtering
)

// VlanPolicy is the one place that reads the vlan_filtering policy of
// bridge br: for a guest start and a network start (BridgePolicy), and
// for status and doctor, which say what a start would do.
func VlanPolicy(cfg *config.Config, br *model.Link) VlanAction {
	switch {
	case br.VlanFiltering || cfg.Policy(br.Name).VlanFiltering != config.Enable:
		return VlanLeave
	case !br.VlanCapable:
		return VlanCannot
	}
	return VlanEnable
}

// BridgePolicy decides what the configuration asks of bridge br, for a
// guest start and a network start alike: the steps that turn its
// vlan_filtering on when the configuration says "enable" and the kernel
// can, a warning when the kernel cannot, and whether the bridge filters
// VLANs once the steps are done.
func BridgePolicy(cfg *config.Config, v View, br *model.Link) (steps []Step, warning string, filtering bool, err error) {
	switch VlanPolicy(cfg, br) {
	case VlanLeave:
		return nil, "", br.VlanFiltering, nil
	case VlanCannot:
		return nil, fmt.Sprintf("bridge %s: vlan_filtering = \"enable\" cannot take effect: this kernel has no bridge VLAN filtering", br.Name), false, nil
	}
	steps, err = EnableFiltering(v, br)
	return steps, "", err == nil, err
}

// EnableFiltering returns the steps that turn vlan_filtering on for br: the
// switch itself, then every static entry without a VLAN on the bridge's
// guest ports written again (ExtendEntry), so that those guests keep
// receiving unicast once the bridge classifies frames by VLAN. It is the
// one place that decides what turning the filter on implies, for a guest
// start and for a network start alike.
func EnableFiltering(v View, br *model.Link) ([]Step, error) {
	steps := []Step{{Kind: EnableVlanFiltering, Bridge: br.Name, BridgeIndex: br.Index}}
	entries, err := v.BridgeEntries(br)
	if err != nil {
		return nil, fmt.Errorf("reading the FDB of %s: %w", br.Name, err)
	}
	for _, e := range entries {
		if !e.Static() || e.Vlan != 0 || e.PortIndex == br.Index {
			continue
		}
		port, err := v.LinkByIndex(e.PortIndex)
		if err != nil {
			return nil, fmt.Errorf("looking up port %d of %s: %w", e.PortIndex, br.Name, err)
		}
		if port == nil || !port.IsGuestPort() {
			continue
		}
		steps = append(steps, Step{Kind: ExtendEntry, MAC: e.MAC, Port: port.Name, PortIndex: port.Index,
			Bridge: br.Name, BridgeIndex: br.Index, Entry: e})
	}
	return steps, nil
}
