package admin

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fdbhook/fdbhook/pkg/manage"
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
	// Mab is MAC Authentication Bypass (on in undeclared_macs = "report"
	// mode); omitted when the kernel does not report it.
	Mab *bool `json:"mab,omitempty"`
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
	// Undeclared are, on a managed guest port, the source MACs the guest
	// sent from that it did not declare: the port's locked entries, whose
	// frames the kernel drops (undeclared_macs = "report"). Not a problem
	// of fdbhook's: the admin declares them as extra MACs, or not.
	Undeclared []UndeclaredMAC `json:"undeclared_macs,omitempty"`
	// Followed are, on a managed guest port, the MACs the watcher
	// authorised for the guest's NIC (undeclared_macs = "follow"): they
	// have static entries like declared MACs, until the guest stops.
	// FollowFull: the NIC sent from more MACs than follow_max, and its
	// port's MAB is off until the guest stops.
	Followed   []string `json:"followed_macs,omitempty"`
	FollowFull bool     `json:"follow_max_reached,omitempty"`
}

// UndeclaredMAC is one locked entry on a managed guest port.
type UndeclaredMAC struct {
	MAC  string `json:"mac"`
	Vlan int    `json:"vlan,omitempty"`
	// LastSeen is how long ago, in seconds, the kernel last saw a frame
	// from the MAC (NDA_CACHEINFO); omitted when it did not say.
	LastSeen int `json:"last_seen_seconds,omitempty"`
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
	ProblemHook       = "hook"               // libvirt cannot run an installed hook
)

// Why an uplink stays promiscuous, as PortReport.PromiscReason.
const (
	PromiscNoManagedPorts = "no_managed_guest_ports"        // nothing on the bridge is managed: expected
	PromiscGuestsLearning = "guest_ports_learning"          // a managed guest port learns or floods: reconcile
	PromiscReporting      = "guest_ports_reporting"         // managed guest ports have MAB (undeclared_macs = "report"), so they learn: expected
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
// managed or not) with its ports, static entries and problems, and what
// keeps libvirt from running the installed hooks (hooks: HookExecChecks;
// nil when not checked).
func Status(st *manage.State, hooks []Check, only []string) (*Report, error) {
	a, err := manage.Analyze(st) // reads the definitions: their notes first
	if err != nil {
		return nil, err
	}
	rep := &Report{Config: st.Config.Path, Bridges: []BridgeReport{}, Problems: []Problem{}, Notes: configNotes(st)}
	managed, notes := a.Bridges()
	rep.Notes = append(rep.Notes, notes...)
	shown, notes := shownBridges(managed, only, st.Config.Path)
	rep.Notes = append(rep.Notes, notes...)
	for _, mb := range shown {
		br, probs, notes, err := bridgeReport(a, mb)
		if err != nil {
			return nil, err
		}
		rep.Bridges = append(rep.Bridges, br)
		rep.Problems = append(rep.Problems, probs...)
		rep.Notes = append(rep.Notes, notes...)
	}
	guestProblems(a, rep, shown, len(only) > 0)
	for _, c := range hooks {
		switch c.Level {
		case Fail:
			rep.Problems = append(rep.Problems, Problem{Kind: ProblemHook, Text: c.Name + ": " + c.Text})
		case Warn:
			rep.Notes = append(rep.Notes, c.Name+": "+c.Text)
		}
	}
	return rep, nil
}

// configNotes says when the configuration manages nothing, then passes on
// the notes of reading the state.
func configNotes(st *manage.State) []string {
	notes := []string{}
	if !st.Config.Present {
		notes = append(notes, fmt.Sprintf("%s does not exist: fdbhook manages nothing", st.Config.Path))
	} else if st.Config.Empty() {
		notes = append(notes, fmt.Sprintf("%s lists no bridges or networks: fdbhook manages nothing", st.Config.Path))
	}
	return append(notes, st.Notes...)
}

// shownBridges picks the bridges to report: all managed ones, or those
// named in only, in that order; a named bridge that is not managed is
// shown unjudged, with a note saying so.
func shownBridges(managed []*manage.ManagedBridge, only []string, configPath string) ([]*manage.ManagedBridge, []string) {
	if len(only) == 0 {
		return managed, nil
	}
	var shown []*manage.ManagedBridge
	var notes []string
	for _, name := range only {
		if i := slices.IndexFunc(managed, func(b *manage.ManagedBridge) bool { return b.Name == name }); i >= 0 {
			shown = append(shown, managed[i])
			continue
		}
		shown = append(shown, &manage.ManagedBridge{Name: name})
		notes = append(notes, fmt.Sprintf("bridge %s is not managed by %s: shown, nothing flagged", name, configPath))
	}
	return shown, notes
}

// guestProblems adds what the running guests' start plans say: a guest
// that cannot be planned (only when every bridge is shown), the NICs a
// start would refuse on a shown bridge, and the plans' warnings as notes.
func guestProblems(a *manage.Analysis, rep *Report, shown []*manage.ManagedBridge, filtered bool) {
	isShown := func(bridge string) bool {
		return bridge == "" || slices.ContainsFunc(shown, func(b *manage.ManagedBridge) bool { return b.Name == bridge })
	}
	for _, gp := range a.Plans {
		if gp.Err != nil {
			if !filtered {
				rep.Problems = append(rep.Problems, Problem{Kind: ProblemGuestError, Guest: gp.Guest.Name,
					Text: fmt.Sprintf("guest %s: %v", gp.Guest.Name, gp.Err)})
			}
			continue
		}
		for _, r := range gp.Plan.Refusals {
			if isShown(r.Bridge) {
				rep.Problems = append(rep.Problems, Problem{Kind: ProblemRefused, Bridge: r.Bridge, Guest: gp.Guest.Name,
					NIC: r.NIC, MAC: r.MAC, Text: fmt.Sprintf("guest %s %s: a start would refuse it: %s", gp.Guest.Name, r.NIC, r.Error())})
			}
		}
		for _, w := range gp.Plan.Warnings {
			if !slices.Contains(rep.Notes, w) {
				rep.Notes = append(rep.Notes, w)
			}
		}
	}
}

// bridgeReport reports one bridge: a row per port and per static entry,
// the problems it shows (flagged only when the bridge is managed) and
// notes.
func bridgeReport(a *manage.Analysis, mb *manage.ManagedBridge) (BridgeReport, []Problem, []string, error) {
	r := &bridgeReporter{a: a, mb: mb, rep: BridgeReport{Name: mb.Name, ManagedBy: mb.Sources, Ports: []PortReport{}, Entries: []EntryReport{}}}
	if r.rep.ManagedBy == nil {
		r.rep.ManagedBy = []string{}
	}
	br := r.bridge()
	if br == nil {
		return r.rep, r.probs, r.notes, nil
	}
	all, err := a.State.Kernel.BridgeEntries(br)
	if err != nil {
		return r.rep, nil, nil, err
	}
	static := manage.StaticEntries(all, br)
	ports := a.State.Kernel.Ports(br)
	for _, p := range ports {
		r.port(p, static, all)
	}
	for _, e := range static {
		r.entry(e, ports, static)
	}
	r.promiscReasons(br, ports)
	return r.rep, r.probs, r.notes, nil
}

// bridgeReporter collects the report of one bridge, stage by stage: the
// bridge device, its ports, its static entries, its uplinks' promiscuity.
type bridgeReporter struct {
	a     *manage.Analysis
	mb    *manage.ManagedBridge
	rep   BridgeReport
	probs []Problem
	notes []string

	// What the port stage found, for the promiscuity stage.
	managedPorts   []string
	autoPorts      []*model.Link // learning or flooding: the kernel's "auto" ports
	autoLabels     []string
	guestsLearning int
	// reporting counts the managed guest ports in report mode (MAB on).
	reporting int
}

// flag records a problem, on a managed bridge only: a bridge named on the
// command line but not managed is shown, never judged.
func (r *bridgeReporter) flag(p Problem) {
	if r.mb.Managed {
		p.Bridge = r.mb.Name
		r.probs = append(r.probs, p)
	}
}

// bridge decides whether there is a Linux bridge to report on, and returns
// it (nil when there is none). A missing bridge is a problem when the
// configuration names it, and a note when only a network's definition does
// (the network may not be started yet). It also flags vlan_filtering
// that is configured but off.
func (r *bridgeReporter) bridge() *model.Link {
	name := r.mb.Name
	br := r.a.State.Kernel.Device(name)
	switch {
	case br == nil:
		if slices.Contains(r.mb.Sources, "bridges") || !r.mb.Managed {
			r.flag(Problem{Kind: ProblemBridge, Text: fmt.Sprintf("bridge %s does not exist", name)})
		} else {
			r.notes = append(r.notes, fmt.Sprintf("bridge %s (%s) does not exist yet (network not started?)", name, strings.Join(r.mb.Sources, ", ")))
		}
		return nil
	case br.Type != "bridge":
		r.rep.Exists = true
		r.flag(Problem{Kind: ProblemBridge, Text: fmt.Sprintf("%s is %s, not a Linux bridge", name, br.Describe())})
		return nil
	}
	r.rep.Exists = true
	r.rep.VlanFiltering, r.rep.VlanSupported, r.rep.Promiscuous = br.VlanFiltering, br.VlanCapable, br.PromiscFlag
	if plan.VlanPolicy(r.a.State.Config, br) == plan.VlanEnable {
		r.flag(Problem{Kind: ProblemVlan, Text: fmt.Sprintf("vlan_filtering = \"enable\" is configured for %s but it is off: run reconcile (or start a guest on it)", br.Name)})
	}
	return br
}

// port adds one port's row. A managed guest port whose guest is the paused
// destination of a live migration is only noted (it gets its entries at
// the resume); any other managed guest port is checked by guestPort, and
// its locked entries (all holds the bridge's entries) listed as its
// undeclared MACs.
func (r *bridgeReporter) port(p *model.Link, static, all []model.Entry) {
	kind, ref := r.a.PortKind(p)
	managed := ref != nil && ref.Managed
	incoming := managed && r.a.State.Incoming[ref.Guest]
	r.rep.Ports = append(r.rep.Ports, portRow(p, kind, ref, incoming))
	if p.Flags.Learning || p.Flags.Flood {
		r.autoPorts = append(r.autoPorts, p)
		r.autoLabels = append(r.autoLabels, portLabel(p, kind, ref))
	}
	if !managed {
		return
	}
	r.managedPorts = append(r.managedPorts, p.Name)
	row := &r.rep.Ports[len(r.rep.Ports)-1]
	row.Undeclared = Undeclared(all, p)
	row.Followed, row.FollowFull = slices.Clone(ref.Followed), ref.FollowFull
	if p.Flags.Mab {
		r.reporting++
	}
	if incoming {
		// Not a problem: libvirt pauses the guest here until the
		// switch-over, and its frames still go to the source.
		r.notes = append(r.notes, fmt.Sprintf("guest port %s (%s): incoming live migration: the guest is paused here and still runs on the source; its entries are written when it resumes here", p.Name, ref.Label()))
		return
	}
	r.guestPort(p, ref, static)
}

// portRow is the row of one port; ref is the running guest's NIC on it, if
// any.
func portRow(p *model.Link, kind string, ref *manage.NICRef, incoming bool) PortReport {
	pr := PortReport{Name: p.Name, Index: p.Index, Kind: kind, Device: manage.Device(p),
		Learning: p.Flags.Learning, Flood: p.Flags.Flood, Promiscuity: p.Promiscuity, Carrier: p.Carrier, Incoming: incoming}
	if p.LockCapable {
		locked := p.Flags.Locked
		pr.Locked = &locked
	}
	if p.MabCapable {
		mab := p.Flags.Mab
		pr.Mab = &mab
	}
	if ref != nil {
		pr.Guest, pr.NIC, pr.MAC, pr.Managed, pr.Reason = ref.Guest, ref.NIC, ref.MAC, ref.Managed, ref.Why
	}
	return pr
}

// portLabel names a port with whose it is, for the promiscuity problem.
func portLabel(p *model.Link, kind string, ref *manage.NICRef) string {
	switch {
	case ref != nil && ref.Managed:
		return fmt.Sprintf("%s (%s)", p.Name, ref.Label())
	case ref != nil:
		return fmt.Sprintf("%s (%s, not managed)", p.Name, ref.Label())
	case kind == manage.KindOther:
		return fmt.Sprintf("%s (no running guest)", p.Name)
	}
	return p.Name
}

// Undeclared returns the locked entries on port p among entries, sorted by
// MAC: the source MACs its guest sent from undeclared, when the port has
// MAB (undeclared_macs = "report").
func Undeclared(entries []model.Entry, p *model.Link) []UndeclaredMAC {
	var out []UndeclaredMAC
	for _, e := range entries {
		if e.Locked() && e.PortIndex == p.Index {
			out = append(out, UndeclaredMAC{MAC: e.MAC, Vlan: e.Vlan, LastSeen: int(e.Updated / time.Second)})
		}
	}
	slices.SortFunc(out, func(a, b UndeclaredMAC) int {
		return cmp.Or(strings.Compare(a.MAC, b.MAC), cmp.Compare(a.Vlan, b.Vlan))
	})
	return out
}

// guestPort flags a managed guest port that lacks what a start gives it:
// flood off and learning off (or on, locked with MAB, in report mode), and
// the guest's static entry on the port (saying where the entry is
// instead, when it roamed).
func (r *bridgeReporter) guestPort(p *model.Link, ref *manage.NICRef, static []model.Entry) {
	if !p.Flags.Managed() {
		r.guestsLearning++
		r.flag(Problem{Kind: ProblemPortFlags, Port: p.Name, Guest: ref.Guest, NIC: ref.NIC, MAC: ref.MAC,
			Text: fmt.Sprintf("guest port %s (%s) still has %s: run reconcile", p.Name, ref.Label(), p.Flags.LearnFlood())})
	}
	for _, mac := range ref.MACs {
		if slices.ContainsFunc(static, func(e model.Entry) bool { return e.PortIndex == p.Index && e.MAC == mac }) {
			continue
		}
		what := ""
		if mac != ref.MAC {
			what = "extra MAC "
		}
		text := fmt.Sprintf("guest %s %s (%s%s): no static entry on its port %s", ref.Guest, ref.NIC, what, mac, p.Name)
		if i := slices.IndexFunc(static, func(e model.Entry) bool { return e.MAC == mac }); i >= 0 {
			text += fmt.Sprintf(" (its static entry is on %s)", static[i].Port)
		}
		r.flag(Problem{Kind: ProblemNoEntry, Port: p.Name, Guest: ref.Guest, NIC: ref.NIC, MAC: mac,
			Text: text + ": run reconcile"})
	}
}

// entry adds one static entry's row, classified by whose it is, and flags
// a stale entry and a roamed one. A roamed entry whose guest port on this
// bridge has no entry of its own is already flagged, by guestPort, as the
// missing entry.
func (r *bridgeReporter) entry(e model.Entry, ports []*model.Link, static []model.Entry) {
	state, owner, why := r.a.Classify(e)
	er := EntryReport{MAC: e.MAC, Port: e.Port, Vlan: e.Vlan, Sticky: e.NTFlags&model.NTFSticky != 0, State: state, Why: why}
	if owner != nil {
		er.Guest, er.NIC = owner.Guest, owner.NIC
	}
	r.rep.Entries = append(r.rep.Entries, er)
	switch state {
	case manage.EntryStale:
		r.flag(Problem{Kind: ProblemStale, Port: e.Port, MAC: e.MAC,
			Text: fmt.Sprintf("stale entry %s: %s: run reconcile", e, why)})
	case manage.EntryRoamed:
		if owner.Managed && slices.ContainsFunc(ports, func(p *model.Link) bool { return p.Name == owner.Port }) &&
			!slices.ContainsFunc(static, func(x model.Entry) bool { return x.Port == owner.Port && x.MAC == e.MAC }) {
			return
		}
		r.flag(Problem{Kind: ProblemRoamed, Port: e.Port, Guest: owner.Guest, NIC: owner.NIC, MAC: e.MAC,
			Text: fmt.Sprintf("static entry %s: %s", e, why)})
	}
}

// promiscReasons says why each promiscuous uplink stays so. With no
// managed guest port, or a managed one still learning, that is expected
// (or already flagged); otherwise every managed guest port is done and the
// cause lies elsewhere (promiscWhy): a problem when something on this host
// can change it, a note when not.
func (r *bridgeReporter) promiscReasons(br *model.Link, ports []*model.Link) {
	for i, p := range ports {
		if r.rep.Ports[i].Kind != manage.KindUplink || p.Promiscuity == 0 {
			continue
		}
		switch {
		case len(r.managedPorts) == 0:
			r.rep.Ports[i].PromiscReason = PromiscNoManagedPorts
			continue
		case r.guestsLearning > 0:
			r.rep.Ports[i].PromiscReason = PromiscGuestsLearning
			continue
		case r.reporting > 0:
			// The kernel counts a port that learns as one that needs the
			// uplink promiscuous, locked or not.
			r.rep.Ports[i].PromiscReason = PromiscReporting
			r.notes = append(r.notes, fmt.Sprintf("uplink %s stays promiscuous (promiscuity %d): %d managed guest port(s) report undeclared MACs (undeclared_macs = \"report\"), and a port with MAC Authentication Bypass learns",
				p.Name, p.Promiscuity, r.reporting))
			continue
		}
		why, code, fixable := promiscWhy(br, p, r.autoPorts, r.autoLabels)
		r.rep.Ports[i].PromiscReason = code
		text := fmt.Sprintf("uplink %s is still promiscuous (promiscuity %d) although all %d managed guest ports have learning and flooding off: %s",
			p.Name, p.Promiscuity, len(r.managedPorts), why)
		if fixable {
			r.flag(Problem{Kind: ProblemPromisc, Port: p.Name, Text: text})
		} else {
			r.notes = append(r.notes, text)
		}
	}
}

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
