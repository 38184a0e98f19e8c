package plan

import (
	"github.com/fdbhook/fdbhook/pkg/model"

	"fmt"
	"slices"
	"strings"

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
		c, skip, err := selectNIC(cfg, g, v, nic)
		switch {
		case err != nil:
			return nil, err
		case skip != "":
			p.Skips = append(p.Skips, Skip{NIC: nic.Label(), MAC: nic.MAC, Reason: skip})
		case nic.BadMAC != nil:
			p.Refusals = append(p.Refusals, Refusal{NIC: nic.Label(), MAC: nic.MAC, Bridge: c.bridge,
				Cause: "bad MAC address: " + nic.BadMAC.Error()})
		default:
			out = append(out, c)
		}
	}
	for mac := range g.Interfaces {
		if !slices.ContainsFunc(g.NICs, func(n guest.NIC) bool { return n.MAC == mac }) {
			p.Notes = append(p.Notes, fmt.Sprintf("metadata names %s, which no NIC of the guest has", mac))
		}
	}
	slices.Sort(p.Notes)
	return out, nil
}

// selectNIC decides whether one NIC is a candidate, and when it is not,
// says why it is skipped.
func selectNIC(cfg *config.Config, g *guest.Guest, v View, nic guest.NIC) (c candidate, skip string, err error) {
	switch {
	case nic.Type != "bridge" && nic.Type != "network":
		return c, fmt.Sprintf("type '%s' is never managed", nic.Type), nil
	case nic.VirtualPort == "openvswitch":
		return c, "Open vSwitch port", nil
	case nic.VirtualPort != "":
		return c, fmt.Sprintf("virtualport type '%s' is never managed", nic.VirtualPort), nil
	}
	var net *model.Network
	if nic.Network != "" {
		if net, err = v.Network(nic.Network); err != nil {
			return c, "", fmt.Errorf("%s: network %s: %w", nic.Label(), nic.Network, err)
		}
	}
	c = candidate{nic: nic, mac: nic.MAC, bridge: nic.Bridge, viaNetwork: nic.Network != "" && cfg.ManagesNetwork(nic.Network)}
	if c.bridge == "" && net != nil {
		c.bridge = net.Bridge
	}
	switch {
	case !c.viaNetwork && !cfg.ManagesBridge(c.bridge) && c.bridge == "" && nic.Network != "":
		return c, fmt.Sprintf("network %s is not managed", nic.Network), nil
	case !c.viaNetwork && !cfg.ManagesBridge(c.bridge) && nic.Network != "":
		return c, fmt.Sprintf("network %s and bridge %s are not managed", nic.Network, c.bridge), nil
	case !c.viaNetwork && !cfg.ManagesBridge(c.bridge):
		return c, fmt.Sprintf("bridge %s is not managed", c.bridge), nil
	case net != nil && net.MacTableLibvirt:
		return c, fmt.Sprintf("network %s has macTableManager='libvirt': libvirt manages it", net.Name), nil
	case !g.Manage:
		return c, fmt.Sprintf("guest opted out in its metadata (%s)", guest.Namespace), nil
	case !g.Manages(nic):
		return c, fmt.Sprintf("NIC opted out in the guest's metadata (%s)", guest.Namespace), nil
	}
	return c, "", nil
}

// Start plans a guest's start (and reconnect, attach): for every managed
// NIC, a static FDB entry for its MAC on its tap, then learning and unicast
// flooding off on the tap; bridge policy first.
func Start(cfg *config.Config, g *guest.Guest, v View) (*Plan, error) {
	return start(cfg, g, v, nil)
}

// start plans a start; ct, when not nil, makes the NICs' ports the
// container's veths instead of taps.
func start(cfg *config.Config, g *guest.Guest, v View, ct *Container) (*Plan, error) {
	p := &Plan{Guest: g.Name}
	cands, err := selectNICs(cfg, g, v, p)
	if err != nil {
		return nil, err
	}
	s := &starter{cfg: cfg, g: g, v: v, p: p, ct: ct, seen: map[macOnBridge]nicPort{}, filteringAfter: map[string]bool{}}
	for _, c := range cands {
		if err := s.nic(c); err != nil {
			return nil, err
		}
	}
	p.Steps = append(s.policy, s.ports...)
	return p, nil
}

type macOnBridge struct{ bridge, mac string }

type nicPort struct{ nic, port string }

// starter holds what planning a start carries from one NIC to the next.
type starter struct {
	cfg *config.Config
	g   *guest.Guest
	v   View
	p   *Plan
	// ct is the container whose veths are the ports; nil for a QEMU guest.
	ct *Container
	// seen is every MAC planned so far, per bridge, with its NIC and port.
	seen map[macOnBridge]nicPort
	// filteringAfter is, per bridge, its vlan_filtering as the plan leaves
	// it, decided at the bridge's first NIC.
	filteringAfter map[string]bool
	// policy are the bridge steps, which go first; ports the NICs' steps.
	policy, ports []Step
}

// features is what the guest, its NIC and the bridge ask for beyond the
// entry and the flags, less what the kernel cannot do.
type features struct {
	lock, sticky bool
	// report locks the port with MAB (undeclared_macs = "report").
	report bool
	vlans  []model.Vlan
}

// UndeclaredMACs is what is done about the source MACs a NIC sends from
// undeclared: the NIC's metadata beats the guest's, which beats the
// bridge's undeclared_macs. The one place that decides it.
func UndeclaredMACs(cfg *config.Config, g *guest.Guest, nic guest.NIC, bridge string) config.UndeclaredMACs {
	for _, v := range []string{g.Metadata(nic).UndeclaredMACs, g.UndeclaredMACs} {
		if v != "" {
			return config.UndeclaredMACs(v)
		}
	}
	return cfg.Policy(bridge).UndeclaredMACs
}

// nic plans one candidate NIC, in stages: resolve its port, check its MACs
// for duplicates, decide the bridge's policy, settle the features, emit the
// steps. A refusal or skip ends it early without an error.
func (s *starter) nic(c candidate) error {
	tap, br, ok, err := s.resolvePort(c)
	if err != nil || !ok {
		return err
	}
	md := s.g.Metadata(c.nic)
	macs := md.MACs()
	prior, said, ok, err := s.checkDuplicates(c, tap, br, macs)
	if err != nil || !ok {
		return err
	}
	filtering, err := s.bridgePolicy(c, br)
	if err != nil {
		return err
	}
	f, ok := s.features(c, md, tap, br, filtering)
	if !ok {
		return nil
	}
	return s.emit(c, md, tap, br, macs, prior, said, f)
}

func (s *starter) refuse(c candidate, bridge, format string, args ...any) {
	s.p.Refusals = append(s.p.Refusals, Refusal{NIC: c.nic.Label(), MAC: c.mac, Bridge: bridge, Cause: fmt.Sprintf(format, args...)})
}

// resolvePort finds the NIC's tap and the bridge the kernel has it on; ok
// is false when the NIC is refused or skipped.
func (s *starter) resolvePort(c candidate) (tap, br *model.Link, ok bool, err error) {
	label := c.nic.Label()
	if c.nic.Target == "" {
		s.refuse(c, c.bridge, "no <target dev> in the domain XML (is this the live XML of a running guest?)")
		return nil, nil, false, nil
	}
	tap, err = s.v.Link(c.nic.Target)
	if err != nil {
		return nil, nil, false, fmt.Errorf("%s: looking up %s: %w", label, c.nic.Target, err)
	}
	switch {
	case tap == nil:
		s.refuse(c, c.bridge, "device %s does not exist", c.nic.Target)
		return nil, nil, false, nil
	case s.notGuestPort(tap) != "":
		s.refuse(c, c.bridge, "%s", s.notGuestPort(tap))
		return nil, nil, false, nil
	case tap.MasterIndex == 0:
		s.refuse(c, c.bridge, "tap %s is not enslaved to any bridge", tap.Name)
		return nil, nil, false, nil
	case tap.MasterType != "bridge":
		s.refuse(c, c.bridge, "tap %s is a port of %s, which is not a Linux bridge (%s)", tap.Name, tap.Master, tap.MasterType)
		return nil, nil, false, nil
	}
	bridge := tap.Master
	if c.bridge != "" && c.bridge != bridge {
		s.p.Notes = append(s.p.Notes, fmt.Sprintf("%s: the XML puts %s on %s but the kernel has it on %s: trusting the kernel",
			label, tap.Name, c.bridge, bridge))
	}
	if !c.viaNetwork && !s.cfg.ManagesBridge(bridge) {
		s.p.Skips = append(s.p.Skips, Skip{NIC: label, MAC: c.mac,
			Reason: fmt.Sprintf("the kernel has %s on bridge %s, which is not managed", tap.Name, bridge)})
		return nil, nil, false, nil
	}
	br, err = s.v.LinkByIndex(tap.MasterIndex)
	if err != nil || br == nil {
		return nil, nil, false, fmt.Errorf("%s: looking up bridge %s: %v", label, bridge, err)
	}
	return tap, br, true, nil
}

// checkDuplicates refuses the NIC when one of its MACs is on another NIC of
// this guest on the same bridge, or belongs to another guest (judge);
// otherwise it returns each MAC's entries, which the steps replace, and
// what the judge said of each.
func (s *starter) checkDuplicates(c candidate, tap, br *model.Link, macs []string) (prior [][]model.Entry, said []MACJudgement, ok bool, err error) {
	prior, said = make([][]model.Entry, len(macs)), make([]MACJudgement, len(macs))
	for i, mac := range macs {
		what := "duplicate MAC"
		if i > 0 {
			what = "duplicate extra MAC " + mac
		}
		if other, dup := s.seen[macOnBridge{br.Name, mac}]; dup {
			s.refuse(c, br.Name, "%s: NIC %s of this guest has it on the same bridge (ports %s and %s)", what, other.nic, other.port, tap.Name)
			return nil, nil, false, nil
		}
		entries, err := s.v.Entries(br, mac)
		if err != nil {
			return nil, nil, false, fmt.Errorf("%s: reading FDB of %s for %s: %w", c.nic.Label(), br.Name, mac, err)
		}
		if said[i], err = s.judge(c, mac, entries, tap, br); err != nil {
			return nil, nil, false, err
		}
		if said[i].Refuse != "" {
			s.refuse(c, br.Name, "%s: %s", what, said[i].Refuse)
			return nil, nil, false, nil
		}
		prior[i] = entries
	}
	for _, mac := range macs {
		s.seen[macOnBridge{br.Name, mac}] = nicPort{c.nic.Label(), tap.Name}
	}
	return prior, said, true, nil
}

// MACJudge is implemented by a View that knows every running guest: the
// admin commands' and the watcher's. It decides whether a MAC of the
// guest's NIC on port tap of bridge br is that NIC's, when other running
// guests have it too (manage.State.DecideMAC). The hooks' View does not
// implement it: there a static entry on another guest's tap refuses the
// NIC (at a start, that port is older than the new guest's).
type MACJudge interface {
	JudgeMAC(guest, nic, mac string, tap, br *model.Link) (MACJudgement, error)
}

// MACJudgement is what a MACJudge decided about one MAC.
type MACJudgement struct {
	// Refuse says why the NIC may not have the MAC; "" when it may.
	Refuse string
	// Pin writes the entry sticky: another running guest has the MAC on
	// the bridge, and its frames would move a plain static entry.
	Pin bool
	// Why is said of the entry's step (the log, the dry run).
	Why string
}

// judge decides a MAC through the View's MACJudge, or by the hooks' rule:
// a static entry for it on another guest's tap refuses the NIC.
func (s *starter) judge(c candidate, mac string, entries []model.Entry, tap, br *model.Link) (MACJudgement, error) {
	if j, ok := s.v.(MACJudge); ok {
		return j.JudgeMAC(s.g.Name, c.nic.Label(), mac, tap, br)
	}
	owner, err := duplicateOwner(s.v, entries, tap, br)
	if err != nil || owner == "" {
		return MACJudgement{}, err
	}
	whose := "another guest's port"
	if g, err := s.v.PortOwner(owner); err == nil && g != "" {
		whose = "the port of guest " + g
	}
	return MACJudgement{Refuse: fmt.Sprintf("it already has a static entry on %s, %s (this guest's port is %s)", owner, whose, tap.Name)}, nil
}

// bridgePolicy decides the bridge's policy once, at its first NIC, and
// returns vlan_filtering as the plan leaves it; the NICs after the first
// see that.
func (s *starter) bridgePolicy(c candidate, br *model.Link) (filtering bool, err error) {
	if filtering, decided := s.filteringAfter[br.Name]; decided {
		return filtering, nil
	}
	steps, warning, filtering, err := BridgePolicy(s.cfg, s.v, br)
	if err != nil {
		return false, fmt.Errorf("%s: %w", c.nic.Label(), err)
	}
	s.policy = append(s.policy, steps...)
	if warning != "" {
		s.p.Warnings = append(s.p.Warnings, warning+" (CONFIG_BRIDGE_VLAN_FILTERING); managing ports without it")
	}
	s.filteringAfter[br.Name] = filtering
	return filtering, nil
}

// cannot handles an option the kernel cannot honour: a refusal under
// on_error = "fail" (a security option must not silently vanish), a
// warning under "warn". It reports whether the NIC is refused.
func (s *starter) cannot(c candidate, bridge, format string, args ...any) bool {
	msg := fmt.Sprintf(format, args...)
	if s.cfg.OnError == config.Warn {
		s.p.Warnings = append(s.p.Warnings, fmt.Sprintf("%s %s on %s: %s: managing the NIC without it", c.nic.Label(), c.mac, bridge, msg))
		return false
	}
	s.refuse(c, bridge, "%s", msg)
	return true
}

// features settles lock, sticky and VLANs: the NIC's setting beats the
// guest's, which beats the bridge's; ok is false when the NIC is refused.
func (s *starter) features(c candidate, md guest.Interface, tap, br *model.Link, filtering bool) (f features, ok bool) {
	pol := s.cfg.Policy(br.Name)
	f.lock = md.Lock.Or(s.g.Lock.Or(pol.LockPorts))
	if f.lock && !tap.LockCapable {
		if s.cannot(c, br.Name, "cannot lock port %s: this kernel has no locked bridge ports (IFLA_BRPORT_LOCKED, Linux 5.18+)", tap.Name) {
			return f, false
		}
		f.lock = false
	}
	if u := UndeclaredMACs(s.cfg, s.g, c.nic, br.Name); u.Detects() {
		// Never a refusal: reporting is for the admin's eyes, following
		// needs the watcher anyway, and without either the NIC is managed
		// as it always was.
		f.report = tap.MabCapable
		if !f.report {
			s.p.Warnings = append(s.p.Warnings, fmt.Sprintf("guest %s %s %s on %s, port %s: this kernel has no MAC Authentication Bypass (Linux 6.2+): undeclared MACs cannot be detected (undeclared_macs = %q); the port is managed as with \"ignore\"",
				s.g.Name, c.nic.Label(), c.mac, br.Name, tap.Name, u))
		}
		if f.report && u == config.Follow && md.FollowFull {
			// The NIC sent from more MACs than follow_max: MAB off, so
			// that the kernel makes no more locked entries, and the port
			// locked, so that only the MACs with entries pass.
			f.report, f.lock = false, tap.LockCapable
		}
	}
	f.sticky = md.Sticky.Or(s.g.Sticky.Or(pol.Sticky))
	if f.sticky && !br.StickyCapable {
		if s.cannot(c, br.Name, "cannot write sticky entries: this kernel has no sticky bridge entries (NTF_STICKY, Linux 4.20+)") {
			return f, false
		}
		f.sticky = false
	}
	if !md.HasVlans() {
		return f, true
	}
	var why string
	switch {
	case c.nic.Type != "bridge":
		why = fmt.Sprintf("pvid and vlans apply to type='bridge' NICs only, this one is type='%s'", c.nic.Type)
	case !br.VlanCapable:
		why = fmt.Sprintf("cannot give port %s VLANs: this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)", tap.Name)
	case !filtering:
		why = fmt.Sprintf("cannot give port %s VLANs: bridge %s does not filter VLANs (vlan_filtering 0)", tap.Name, br.Name)
	default:
		f.vlans = portVlans(md.Pvid, md.Vlans)
		return f, true
	}
	return f, !s.cannot(c, br.Name, "%s", why)
}

// emit appends the NIC's steps: its VLANs, its entries, its flags, and on
// a port it locks, the deletion of what the port learned before.
func (s *starter) emit(c candidate, md guest.Interface, tap, br *model.Link, macs []string, prior [][]model.Entry, said []MACJudgement, f features) error {
	base := Step{NIC: c.nic.Label(), MAC: c.mac, Port: tap.Name, PortIndex: tap.Index, Bridge: br.Name, BridgeIndex: br.Index}
	if f.vlans != nil {
		set := base
		set.Kind, set.Vlans = SetVlans, f.vlans
		s.ports = append(s.ports, set)
	}
	for i, mac := range macs {
		add := base
		add.Kind, add.MAC, add.PriorEntries = AddEntry, mac, prior[i]
		add.Sticky = f.sticky || said[i].Pin && br.StickyCapable
		var why []string
		switch {
		case slices.Contains(md.Followed, mac):
			why = append(why, "followed MAC")
		case i > 0:
			why = append(why, "extra MAC")
		}
		if said[i].Why != "" {
			why = append(why, said[i].Why)
		}
		add.Why = strings.Join(why, "; ")
		s.ports = append(s.ports, add)
	}
	// A port found locked stays locked when this guest does not ask for
	// it: someone else (an 802.1X authenticator) may have locked it; not
	// one with MAB on, which a guest's report mode locked.
	want := model.Flags{Locked: f.lock || tap.Flags.Locked && !tap.Flags.Mab}
	if f.report {
		want = model.Reporting
	}
	if tap.Flags != want {
		set := base
		set.Kind, set.Flags, set.Prior, set.WithLocked, set.WithMab = SetFlags, want, tap.Flags, tap.LockCapable, tap.MabCapable
		s.ports = append(s.ports, set)
	}
	if !f.lock && !f.report {
		return nil
	}
	// A locked port passes every source MAC that has an entry on it,
	// learned ones too: drop those the port learned before learning went
	// off (or before it was locked, in report mode), or they pass until
	// they age out. Locked entries pass nothing, and are the report.
	learned, err := s.v.PortEntries(br, tap)
	if err != nil {
		return fmt.Errorf("%s: reading FDB entries of %s: %w", c.nic.Label(), tap.Name, err)
	}
	for _, e := range learned {
		if e.Static() || e.Local() || e.Locked() || e.NTFlags&model.NTFExtLearn != 0 || e.PortIndex != tap.Index || slices.Contains(macs, e.MAC) {
			continue
		}
		del := base
		del.Kind, del.MAC, del.Entry, del.Why = DelEntry, e.MAC, e, "learned on "+tap.Name+" before it was locked"
		s.ports = append(s.ports, del)
	}
	return nil
}

// portVlans is the VLAN set of a port with untagged VLAN pvid (0: none)
// and tagged VLANs tagged.
func portVlans(pvid int, tagged []int) []model.Vlan {
	out := []model.Vlan{}
	if pvid != 0 {
		out = append(out, model.Vlan{ID: pvid, Pvid: true, Untagged: true})
	}
	for _, id := range tagged {
		out = append(out, model.Vlan{ID: id})
	}
	return out
}

// duplicateOwner returns the name of another guest tap on the same bridge
// that holds a static entry among entries, or "".
func duplicateOwner(v View, entries []model.Entry, tap, br *model.Link) (string, error) {
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
