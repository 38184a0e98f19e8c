package plan

import (
	"github.com/fdbhook/fdbhook/pkg/model"

	"fmt"

	"github.com/fdbhook/fdbhook/pkg/config"
)

// BridgePolicy decides what the configuration asks of bridge br, for a
// guest start and a network start alike: the steps that turn its
// vlan_filtering on when the configuration says "enable" and the kernel
// can, a warning when the kernel cannot, and whether the bridge filters
// VLANs once the steps are done.
func BridgePolicy(cfg *config.Config, v View, br *model.Link) (steps []Step, warning string, filtering bool, err error) {
	if br.VlanFiltering || cfg.Policy(br.Name).VlanFiltering != config.Enable {
		return nil, "", br.VlanFiltering, nil
	}
	if !br.VlanCapable {
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
