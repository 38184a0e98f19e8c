package plan

import (
	"errors"

	"github.com/fdbhook/fdbhook/pkg/model"

	"fmt"
	"strings"
)

// View is the read-only kernel and libvirt state a plan is made from.
// Lookups of absent things return nil and no error.
type View interface {
	model.Reader
	// Network returns the libvirt network name, or nil when it is unknown.
	Network(name string) (*model.Network, error)
	// PortOwner returns the name of the running guest whose live XML has
	// port as a target device, or "" when none has.
	PortOwner(port string) (string, error)
}

// StepKind says what a Step does.
type StepKind int

const (
	// EnableVlanFiltering turns vlan_filtering on for Bridge.
	EnableVlanFiltering StepKind = iota
	// AddEntry replaces the static FDB entry for MAC on Port (for VLAN 0
	// and, on a filtering bridge, every VLAN of the port).
	AddEntry
	// SetFlags sets learning and unicast_flood of Port to Flags, locked
	// when WithLocked and mab when WithMab.
	SetFlags
	// DelEntry deletes one FDB entry (Entry).
	DelEntry
	// SetVlans makes Vlans the port's exact VLAN set (bridge vlan add/del).
	SetVlans
	// DelVlans removes Vlans from the port (bridge vlan del).
	DelVlans
	// AddVlans adds Vlans to the port, or updates their flags.
	AddVlans
	// ExtendEntry writes Entry, a static entry without a VLAN already on
	// Port, again, so that the kernel copies it to every VLAN of the port:
	// once vlan_filtering is on, an entry for VLAN 0 alone no longer
	// matches the port's frames.
	ExtendEntry
)

// Step is one kernel change, with what is needed to undo it.
type Step struct {
	Kind        StepKind
	NIC         string
	MAC         string
	Port        string
	PortIndex   int
	Bridge      string
	BridgeIndex int
	// Flags is the target for SetFlags; Prior what the port had.
	Flags model.Flags
	Prior model.Flags
	// WithLocked makes SetFlags (and its undo) send the locked flag too.
	// It is set for a port whose kernel reports the flag: a kernel without
	// locked ports is never sent the attribute.
	WithLocked bool
	// WithMab makes SetFlags (and its undo) send the MAB flag too, for a
	// port whose kernel reports it (Linux 6.2+); never otherwise.
	WithMab bool
	// PriorEntries are the entries for MAC on Bridge before AddEntry.
	PriorEntries []model.Entry
	// Entry is what DelEntry removes and ExtendEntry writes again.
	Entry model.Entry
	// Sticky makes AddEntry write the entry with NTF_STICKY.
	Sticky bool
	// Vlans is the target of SetVlans; PriorVlans what the port had,
	// read when the step is applied (the plan does not need it).
	Vlans      []model.Vlan
	PriorVlans []model.Vlan
	// Why explains the step in a dry run.
	Why string
}

func (s Step) String() string {
	switch s.Kind {
	case EnableVlanFiltering:
		return fmt.Sprintf("bridge %s: set vlan_filtering 1", s.Bridge)
	case AddEntry:
		out := fmt.Sprintf("%s: fdb replace %s dev %s master %s static", s.NIC, s.MAC, s.Port, s.Bridge)
		if s.Sticky {
			out += " sticky"
		}
		if s.Why != "" {
			out += " (" + s.Why + ")"
		}
		if len(s.PriorEntries) > 0 {
			prior := make([]string, len(s.PriorEntries))
			for i, e := range s.PriorEntries {
				prior[i] = e.String()
			}
			out += " (replaces " + strings.Join(prior, ", ") + ")"
		}
		return out
	case SetFlags:
		locked, mab := s.Flags.Locked || s.Prior.Locked, s.Flags.Mab || s.Prior.Mab
		return fmt.Sprintf("%s: link set dev %s %s (was %s)", s.NIC, s.Port, s.Flags.WordsMab(locked, mab), s.Prior.WordsMab(locked, mab))
	case SetVlans:
		return fmt.Sprintf("%s: bridge vlan dev %s: exactly vlan %s (other VLANs of the port removed)", s.NIC, s.Port, vlanList(s.Vlans))
	case DelVlans, AddVlans:
		verb := "del"
		if s.Kind == AddVlans {
			verb = "add"
		}
		out := fmt.Sprintf("%s: bridge vlan %s dev %s vid %s", s.NIC, verb, s.Port, vlanList(s.Vlans))
		if s.Why != "" {
			out += " (" + s.Why + ")"
		}
		return out
	case ExtendEntry:
		return fmt.Sprintf("bridge %s: fdb replace %s dev %s master %s %s (again, to cover the port's VLANs once vlan_filtering is on)",
			s.Bridge, s.Entry.MAC, s.Port, s.Bridge, s.Entry.Kind())
	case DelEntry:
		out := fmt.Sprintf("fdb del %s master %s", s.Entry, s.Bridge)
		if s.Why != "" {
			out += " (" + s.Why + ")"
		}
		return out
	}
	return "unknown step"
}

// Doing says what the step does, for an error that names it:
// "<mac> on <bridge>: <what>". String is the step as a command, for the
// dry run and the log.
func (s Step) Doing() string {
	var what string
	switch s.Kind {
	case EnableVlanFiltering:
		return "bridge " + s.Bridge + ": setting vlan_filtering 1"
	case ExtendEntry:
		return s.MAC + " on " + s.Bridge + ": writing the entry on " + s.Port + " again for the port's VLANs (vlan_filtering is on)"
	case AddEntry:
		what = "adding static entry on " + s.Port
		if s.Sticky {
			what = "adding sticky static entry on " + s.Port
		}
	case SetFlags:
		what = "setting " + s.Flags.String() + " on " + s.Port
	case DelEntry:
		what = "deleting " + s.Entry.String()
	case SetVlans:
		what = "setting the VLANs of " + s.Port
	case DelVlans:
		what = "removing VLANs from " + s.Port
	case AddVlans:
		what = "adding VLANs to " + s.Port
	}
	if s.MAC == "" {
		return s.Bridge + ": " + what
	}
	return s.MAC + " on " + s.Bridge + ": " + what
}

func vlanList(vlans []model.Vlan) string {
	vl := make([]string, len(vlans))
	for i, v := range vlans {
		vl[i] = v.String()
	}
	return strings.Join(vl, ", ")
}

// Skip is a NIC left alone, with the reason.
type Skip struct {
	NIC    string
	MAC    string
	Reason string
}

// Refusal is a NIC that should be managed but cannot be safely.
type Refusal struct {
	NIC    string
	MAC    string
	Bridge string
	Cause  string
}

func (r Refusal) Error() string {
	where := r.MAC
	if where == "" {
		where = r.NIC
	}
	if r.Bridge != "" {
		where += " on " + r.Bridge
	}
	return where + ": " + r.Cause
}

// Refused is the error of a plan that refuses NICs, nil when it refuses
// none: each refusal as Refusal.Error says it, in the plan's order. A
// refused plan is never applied, in part or whole.
func (p *Plan) Refused() error {
	if len(p.Refusals) == 0 {
		return nil
	}
	msgs := make([]string, len(p.Refusals))
	for i, r := range p.Refusals {
		msgs[i] = r.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// Plan is everything one hook event will do.
type Plan struct {
	Guest    string
	Steps    []Step
	Skips    []Skip
	Refusals []Refusal
	// Notes are facts worth logging (e.g. XML and kernel disagreeing).
	Notes []string
	// Warnings are configured policies the kernel cannot honour.
	Warnings []string
}

// Format renders the plan for a dry run, one line per item.
func (p *Plan) Format() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plan for %s:\n", p.Guest)
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "  do     %s\n", s)
	}
	for _, s := range p.Skips {
		fmt.Fprintf(&b, "  skip   %s %s: %s\n", s.NIC, s.MAC, s.Reason)
	}
	for _, r := range p.Refusals {
		fmt.Fprintf(&b, "  refuse %s: %s\n", r.NIC, r.Error())
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "  warn   %s\n", w)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "  note   %s\n", n)
	}
	switch {
	case len(p.Refusals) > 0:
		b.WriteString("  (refused: nothing is applied)\n")
	case len(p.Steps) == 0:
		b.WriteString("  (no kernel changes)\n")
	}
	return b.String()
}
