package admin

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// Report is the answer of status, as printed and as --json.
type Report struct {
	Config string `json:"config"`
	// Watcher is whether "fdbhook watch" runs; nil when not asked.
	Watcher  *WatcherReport `json:"watcher,omitempty"`
	Bridges  []BridgeReport `json:"bridges"`
	Problems []Problem      `json:"problems"`
	Notes    []string       `json:"notes"`
}

// WatcherReport says whether "fdbhook watch" runs, and since when.
type WatcherReport struct {
	Running bool      `json:"running"`
	PID     int       `json:"pid,omitempty"`
	Since   time.Time `json:"since,omitzero"`
}

// BridgeReport is one bridge.
type BridgeReport struct {
	Name string `json:"name"`
	// ManagedBy says why the bridge is looked at: "bridges", "network NAME";
	// empty for a bridge named on the command line that is not managed.
	ManagedBy []string `json:"managed_by"`
	Exists    bool     `json:"exists"`
	// VlanFiltering is the bridge's vlan_filtering; VlanSupported whether
	// this kernel can filter VLANs at all.
	VlanFiltering bool `json:"vlan_filtering"`
	VlanSupported bool `json:"vlan_filtering_supported"`
	// Promiscuous is IFF_PROMISC on the bridge device itself.
	Promiscuous bool          `json:"promiscuous"`
	Ports       []PortReport  `json:"ports"`
	Entries     []EntryReport `json:"static_entries"`
}

// PortReport is one bridge port.
type PortReport struct {
	Name   string `json:"name"`
	Index  int    `json:"index"`
	Kind   string `json:"kind"`   // guest, other, uplink
	Device string `json:"device"` // tap, veth, nic, bond, vlan, …
	// Learning, Flood and Locked are the bridge port flags; Locked is
	// omitted when the kernel does not report it.
	Learning bool  `json:"learning"`
	Flood    bool  `json:"flood"`
	Locked   *bool `json:"locked,omitempty"`
	// Promiscuity is the kernel's count: 0 means the device filters
	// unicast by its own MAC table.
	Promiscuity int `json:"promiscuity"`
	// PromiscReason says, on a promiscuous uplink, why the kernel keeps it
	// so (one of the Promisc* constants).
	PromiscReason string `json:"promisc_reason,omitempty"`
	Carrier       bool   `json:"carrier"`
	// Guest and NIC name the running guest's NIC on a guest port; Managed
	// says whether fdbhook manages it, and Reason why not.
	Guest   string `json:"guest,omitempty"`
	NIC     string `json:"nic,omitempty"`
	MAC     string `json:"mac,omitempty"`
	Managed bool   `json:"managed"`
	Reason  string `json:"reason,omitempty"`
	// Incoming: the guest is paused as the destination of a live
	// migration; the port gets its entries when the guest resumes here.
	Incoming bool `json:"incoming_migration,omitempty"`
}

// EntryReport is one static FDB entry on a bridge port.
type EntryReport struct {
	MAC    string `json:"mac"`
	Port   string `json:"port"`
	Vlan   int    `json:"vlan,omitempty"`
	Sticky bool   `json:"sticky,omitempty"`
	// State is ok, roamed, stale or unknown (see the Entry* constants).
	State string `json:"state"`
	Guest string `json:"guest,omitempty"`
	NIC   string `json:"nic,omitempty"`
	Why   string `json:"why,omitempty"`
}

// Problem kinds.
const (
	ProblemBridge     = "bridge"             // a managed bridge is missing or not a bridge
	ProblemVlan       = "vlan-filtering-off" // vlan_filtering = "enable" but off
	ProblemPortFlags  = "port-learning"      // a managed guest port still learns or floods
	ProblemNoEntry    = "missing-entry"      // a managed guest MAC has no static entry on its port
	ProblemRoamed     = "roamed-entry"       // a running guest's MAC has a static entry on another port
	ProblemStale      = "stale-entry"        // a static entry whose guest is gone
	ProblemPromisc    = "uplink-promiscuous" // an uplink stays promiscuous although every guest port is managed
	ProblemRefused    = "refused"            // a start would refuse a NIC
	ProblemGuestError = "guest-error"        // a guest could not be planned at all
)

// Why an uplink stays promiscuous, as PortReport.PromiscReason.
const (
	PromiscNoManagedPorts = "no_managed_guest_ports"        // nothing on the bridge is managed: expected
	PromiscGuestsLearning = "guest_ports_learning"          // a managed guest port learns or floods: reconcile
	PromiscKernel         = "kernel_without_vlan_filtering" // nothing on this host can change it
	PromiscVlanOff        = "vlan_filtering_off"            // the bridge does not filter VLANs
	PromiscBridge         = "bridge_promiscuous"            // promiscuous mode set on the bridge device
	PromiscPortsLearning  = "other_ports_learning"          // another port than the uplink learns or floods
	PromiscByHand         = "set_by_hand"                   // promiscuous mode set on the uplink itself
	PromiscDevice         = "driver_or_capture"             // the driver cannot filter, or a capture holds it
)

// Problem is one thing an admin should look at.
type Problem struct {
	Kind   string `json:"kind"`
	Bridge string `json:"bridge,omitempty"`
	Port   string `json:"port,omitempty"`
	Guest  string `json:"guest,omitempty"`
	NIC    string `json:"nic,omitempty"`
	MAC    string `json:"mac,omitempty"`
	Text   string `json:"text"`
}

// Status reports every managed bridge (or only the bridges named in only,
// managed or not) with its ports, static entries and problems.
func Status(st *State, only []string) (*Report, error) {
	rep := &Report{Config: st.Config.Path, Bridges: []BridgeReport{}, Problems: []Problem{}, Notes: []string{}}
	if !st.Config.Present {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s does not exist: fdbhook manages nothing", st.Config.Path))
	} else if st.Config.Empty() {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s lists no bridges or networks: fdbhook manages nothing", st.Config.Path))
	}
	rep.Notes = append(rep.Notes, st.Notes...)
	managed, notes := st.bridges()
	rep.Notes = append(rep.Notes, notes...)
	a := analyze(st)
	// Bridges the guests' taps are really on count too (the kernel is
	// the truth for a network NIC whose bridge moved).
	for _, gp := range a.plans {
		if gp.err != nil {
			continue
		}
		for _, s := range gp.p.Steps {
			if s.Kind == plan.AddEntry && !slices.ContainsFunc(managed, func(b *managedBridge) bool { return b.name == s.Bridge }) {
				managed = append(managed, &managedBridge{name: s.Bridge, sources: []string{"guest NICs"}, managed: true})
			}
		}
	}
	shown := managed
	if len(only) > 0 {
		shown = nil
		for _, name := range only {
			i := slices.IndexFunc(managed, func(b *managedBridge) bool { return b.name == name })
			if i >= 0 {
				shown = append(shown, managed[i])
			} else {
				shown = append(shown, &managedBridge{name: name})
				rep.Notes = append(rep.Notes, fmt.Sprintf("bridge %s is not managed by %s: shown, nothing flagged", name, st.Config.Path))
			}
		}
	}
	isShown := func(bridge string) bool {
		return bridge == "" || slices.ContainsFunc(shown, func(b *managedBridge) bool { return b.name == bridge })
	}
	for _, mb := range shown {
		br, probs, notes, err := a.bridgeReport(mb)
		if err != nil {
			return nil, err
		}
		rep.Bridges = append(rep.Bridges, br)
		rep.Problems = append(rep.Problems, probs...)
		rep.Notes = append(rep.Notes, notes...)
	}
	for _, gp := range a.plans {
		if gp.err != nil {
			if len(only) == 0 {
				rep.Problems = append(rep.Problems, Problem{Kind: ProblemGuestError, Guest: gp.g.Name,
					Text: fmt.Sprintf("guest %s: %v", gp.g.Name, gp.err)})
			}
			continue
		}
		for _, r := range gp.p.Refusals {
			if isShown(r.Bridge) {
				rep.Problems = append(rep.Problems, Problem{Kind: ProblemRefused, Bridge: r.Bridge, Guest: gp.g.Name,
					NIC: r.NIC, MAC: r.MAC, Text: fmt.Sprintf("guest %s %s: a start would refuse it: %s", gp.g.Name, r.NIC, r.Error())})
			}
		}
		for _, w := range gp.p.Warnings {
			if !slices.Contains(rep.Notes, w) {
				rep.Notes = append(rep.Notes, w)
			}
		}
	}
	return rep, nil
}

// bridgeReport reports one bridge and its problems.
func (a *analysis) bridgeReport(mb *managedBridge) (BridgeReport, []Problem, []string, error) {
	rep := BridgeReport{Name: mb.name, ManagedBy: mb.sources, Ports: []PortReport{}, Entries: []EntryReport{}}
	if rep.ManagedBy == nil {
		rep.ManagedBy = []string{}
	}
	var probs []Problem
	var notes []string
	flag := func(p Problem) {
		if mb.managed {
			p.Bridge = mb.name
			probs = append(probs, p)
		}
	}
	br := a.st.Kernel.Device(mb.name)
	switch {
	case br == nil:
		if slices.Contains(mb.sources, "bridges") || !mb.managed {
			flag(Problem{Kind: ProblemBridge, Text: fmt.Sprintf("bridge %s does not exist", mb.name)})
		} else {
			notes = append(notes, fmt.Sprintf("bridge %s (%s) does not exist yet (network not started?)", mb.name, strings.Join(mb.sources, ", ")))
		}
		return rep, probs, notes, nil
	case br.Type != "bridge":
		rep.Exists = true
		flag(Problem{Kind: ProblemBridge, Text: fmt.Sprintf("%s is %s, not a Linux bridge", mb.name, br.Describe())})
		return rep, probs, notes, nil
	}
	rep.Exists = true
	rep.VlanFiltering, rep.VlanSupported, rep.Promiscuous = br.VlanFiltering, br.VlanCapable, br.PromiscFlag
	if a.st.Config.Policy(br.Name).VlanFiltering == config.Enable && !br.VlanFiltering && br.VlanCapable {
		flag(Problem{Kind: ProblemVlan, Text: fmt.Sprintf("vlan_filtering = \"enable\" is configured for %s but it is off: run reconcile (or start a guest on it)", br.Name)})
	}
	all, err := a.st.Kernel.BridgeEntries(br)
	if err != nil {
		return rep, nil, nil, err
	}
	static := staticEntries(all, br)
	// What sits on each port, for the missing-entry check.
	onPort := map[int][]model.Entry{}
	for _, e := range static {
		onPort[e.PortIndex] = append(onPort[e.PortIndex], e)
	}
	ports := a.st.Kernel.Ports(br)
	var managedPorts []string
	var autoPorts []*model.Link // learning or flooding: the kernel's "auto" ports
	var autoLabels []string
	guestsLearning := 0
	for _, p := range ports {
		kind, ref := a.portKind(p)
		pr := PortReport{Name: p.Name, Index: p.Index, Kind: kind, Device: device(p),
			Learning: p.Flags.Learning, Flood: p.Flags.Flood, Promiscuity: p.Promiscuity, Carrier: p.Carrier}
		if p.LockCapable {
			locked := p.Flags.Locked
			pr.Locked = &locked
		}
		auto := p.Flags.Learning || p.Flags.Flood
		what := p.Name
		if ref != nil {
			pr.Guest, pr.NIC, pr.MAC, pr.Managed, pr.Reason = ref.Guest, ref.NIC, ref.MAC, ref.Managed, ref.Why
			what = fmt.Sprintf("%s (%s)", p.Name, ref.label())
			if !ref.Managed {
				what = fmt.Sprintf("%s (%s, not managed)", p.Name, ref.label())
			}
		} else if kind == KindOther {
			what = fmt.Sprintf("%s (no running guest)", p.Name)
		}
		if auto {
			autoPorts = append(autoPorts, p)
			autoLabels = append(autoLabels, what)
		}
		if ref != nil && ref.Managed && a.st.Incoming[ref.Guest] {
			// Not a problem: libvirt pauses the guest here until the
			// switch-over, and its frames still go to the source.
			pr.Incoming = true
			managedPorts = append(managedPorts, p.Name)
			notes = append(notes, fmt.Sprintf("guest port %s (%s): incoming live migration: the guest is paused here and still runs on the source; its entries are written when it resumes here", p.Name, ref.label()))
		} else if ref != nil && ref.Managed {
			managedPorts = append(managedPorts, p.Name)
			if auto {
				guestsLearning++
				flag(Problem{Kind: ProblemPortFlags, Port: p.Name, Guest: ref.Guest, NIC: ref.NIC, MAC: ref.MAC,
					Text: fmt.Sprintf("guest port %s (%s) still has %s: run reconcile", p.Name, ref.label(), learnFlood(p.Flags))})
			}
			if !slices.ContainsFunc(onPort[p.Index], func(e model.Entry) bool { return e.MAC == ref.MAC }) {
				text := fmt.Sprintf("guest %s %s (%s): no static entry on its port %s", ref.Guest, ref.NIC, ref.MAC, p.Name)
				if i := slices.IndexFunc(static, func(e model.Entry) bool { return e.MAC == ref.MAC }); i >= 0 {
					text += fmt.Sprintf(" (its static entry is on %s)", static[i].Port)
				}
				flag(Problem{Kind: ProblemNoEntry, Port: p.Name, Guest: ref.Guest, NIC: ref.NIC, MAC: ref.MAC,
					Text: text + ": run reconcile"})
			}
		}
		rep.Ports = append(rep.Ports, pr)
	}
	for _, e := range static {
		state, owner, why := a.classify(e)
		er := EntryReport{MAC: e.MAC, Port: e.Port, Vlan: e.Vlan, Sticky: e.NTFlags&model.NTFSticky != 0, State: state, Why: why}
		if owner != nil {
			er.Guest, er.NIC = owner.Guest, owner.NIC
		}
		rep.Entries = append(rep.Entries, er)
		switch state {
		case EntryStale:
			flag(Problem{Kind: ProblemStale, Port: e.Port, MAC: e.MAC,
				Text: fmt.Sprintf("stale entry %s: %s: run reconcile", e, why)})
		case EntryRoamed:
			// A managed NIC of this bridge without its own entry is
			// flagged above, with where the entry went; flag the rest.
			if owner.Managed && slices.ContainsFunc(ports, func(p *model.Link) bool { return p.Name == owner.Port }) &&
				!slices.ContainsFunc(static, func(x model.Entry) bool { return x.Port == owner.Port && x.MAC == owner.MAC }) {
				continue
			}
			flag(Problem{Kind: ProblemRoamed, Port: e.Port, Guest: owner.Guest, NIC: owner.NIC, MAC: e.MAC,
				Text: fmt.Sprintf("static entry %s: %s", e, why)})
		}
	}
	for i, p := range ports {
		if rep.Ports[i].Kind != KindUplink || p.Promiscuity == 0 {
			continue
		}
		switch {
		case len(managedPorts) == 0:
			rep.Ports[i].PromiscReason = PromiscNoManagedPorts
		case guestsLearning > 0:
			rep.Ports[i].PromiscReason = PromiscGuestsLearning
		}
	}
	if len(managedPorts) > 0 && guestsLearning == 0 {
		for i, p := range ports {
			if kind, _ := a.portKind(p); kind != KindUplink || p.Promiscuity == 0 {
				continue
			}
			why, code, fixable := promiscWhy(br, p, autoPorts, autoLabels)
			rep.Ports[i].PromiscReason = code
			text := fmt.Sprintf("uplink %s is still promiscuous (promiscuity %d) although all %d managed guest ports have learning and flooding off: %s",
				p.Name, p.Promiscuity, len(managedPorts), why)
			if fixable {
				flag(Problem{Kind: ProblemPromisc, Port: p.Name, Text: text})
			} else {
				notes = append(notes, text)
			}
		}
	}
	return rep, probs, notes, nil
}

// learnFlood names a port's learning and flood, the flags a managed guest
// port must not have; whether it is locked is the port's own column.
func learnFlood(f model.Flags) model.Flags { return model.Flags{Learning: f.Learning, Flood: f.Flood} }

// promiscWhy explains, after the kernel's br_manage_promisc, why a bridge
// keeps uplink promiscuous, in words and as a Promisc* code; fixable is
// false when nothing on this host can change it (the kernel has no VLAN
// filtering).
func promiscWhy(br, uplink *model.Link, autoPorts []*model.Link, labels []string) (why, code string, fixable bool) {
	switch {
	case !br.VlanFiltering && !br.VlanCapable:
		return fmt.Sprintf("vlan_filtering is off on %s and this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING); the kernel only clears promiscuity on a VLAN-filtering bridge", br.Name), PromiscKernel, false
	case !br.VlanFiltering:
		return fmt.Sprintf("vlan_filtering is off on %s (the kernel only clears promiscuity on a VLAN-filtering bridge): set [bridge.%s] vlan_filtering = \"enable\" and run reconcile", br.Name, br.Name), PromiscVlanOff, true
	case br.PromiscFlag:
		return fmt.Sprintf("bridge %s itself is in promiscuous mode (ip link set %s promisc off)", br.Name, br.Name), PromiscBridge, true
	case len(autoPorts) > 1:
		return fmt.Sprintf("more than one port learns or floods (%s); at most one may, the uplink", strings.Join(labels, ", ")), PromiscPortsLearning, true
	case len(autoPorts) == 1 && autoPorts[0].Index != uplink.Index:
		return fmt.Sprintf("port %s learns or floods, so the uplink must stay promiscuous", labels[0]), PromiscPortsLearning, true
	case uplink.PromiscFlag:
		return fmt.Sprintf("promiscuous mode was set on %s by hand (ip link set %s promisc off)", uplink.Name, uplink.Name), PromiscByHand, true
	}
	return "the bridge would let it filter, so either its driver cannot filter unicast in hardware (veth, some NICs) or something else holds it promiscuous (a packet capture)", PromiscDevice, true
}
