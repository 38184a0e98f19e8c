package plan

import "fmt"

// EnableFiltering returns the steps that turn vlan_filtering on for br: the
// switch itself, then every static entry without a VLAN on the bridge's
// guest ports written again (ExtendEntry), so that those guests keep
// receiving unicast once the bridge classifies frames by VLAN. It is the
// one place that decides what turning the filter on implies, for a guest
// start and for a network start alike.
func EnableFiltering(v View, br *Link) ([]Step, error) {
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
