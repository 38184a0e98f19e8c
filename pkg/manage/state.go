package manage

import (
	"fmt"
	"slices"
	"time"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// Networks resolves libvirt networks from libvirt's files (libvirt.Files).
type Networks interface {
	Network(name string) (*model.Network, error)
}

// State is everything status and reconcile decide from.
type State struct {
	Config   *config.Config
	Kernel   *Snapshot
	Networks Networks
	// Running are the live XMLs of running guests, sorted by name.
	Running []*guest.Guest
	// RunningComplete is false when a running guest's live XML could not
	// be read: a tap may then belong to a guest we do not know of, so no
	// entry is called stale for lack of an owner.
	RunningComplete bool
	// Defined are the persistent definitions (running or not); when nil,
	// they are read from definedDirs when first needed (the watcher needs
	// them only for its clean-ups).
	Defined     []*guest.Guest
	definedDirs []string
	// Incoming are the running guests paused as the destination of a live
	// migration (Arrivals): their ports wait for the resume.
	Incoming map[string]bool
	// Containers proves, for each running container of libvirt's LXC
	// driver (by name), which veths are its own (Prove).
	Containers Proofs
	// Notes are things worth telling that are not problems.
	Notes []string

	// owners maps a tap to the running guest naming it, and claims a MAC
	// to the running guests' NICs that have it, both built from Running
	// when first needed (Running must not change after that).
	owners map[string]string
	claims map[string][]Claim
}

// ReadState reads everything the decisions about running guests are made
// from, once, for every program that makes them (the fdbhook command's
// status, reconcile and metrics, and the watcher): the configuration cfg,
// the kernel through k (one snapshot), libvirt's files on h, the running
// guests of both drivers (live, refreshed by the caller) with the MACs
// their records on h say they follow (AttachFollowed), which of them
// are arriving by live migration (their marks on h, at now), which veths
// are each container's own, and the definitions of both drivers.
func ReadState(h host.Host, cfg *config.Config, k model.Reader, live *Live, now time.Time) (*State, error) {
	snap, err := Take(k)
	if err != nil {
		return nil, err
	}
	st := &State{Config: cfg, Kernel: snap, Networks: libvirt.New(h.Libvirt), Running: live.List(),
		RunningComplete: live.Complete, Notes: slices.Clone(live.Notes)}
	for _, err := range AttachFollowed(h.RunDir, st.Running) {
		st.Notes = append(st.Notes, err.Error())
	}
	st.Incoming = Arrivals(st.Running, h.RunDir, now)
	st.Containers = Prove(st.Running, HostView{Reader: k, Files: libvirt.New(h.Libvirt)})
	qemu, lxc := h.DefinedDirs()
	st.definedDirs = []string{qemu, lxc}
	return st, nil
}

// Definitions are the definitions of both drivers, read the first time
// they are needed; notes of files skipped go to the state's notes.
func (st *State) Definitions() ([]*guest.Guest, error) {
	if st.Defined != nil || st.definedDirs == nil {
		return st.Defined, nil
	}
	defined, notes, err := ReadDefined(st.definedDirs...)
	if err != nil {
		return nil, err
	}
	st.Defined, st.definedDirs = defined, nil
	st.Notes = append(st.Notes, notes...)
	return st.Defined, nil
}

// view is the plan.View of a State: kernel lookups from the snapshot,
// networks from libvirt's files, port owners from the running guests, and
// a MAC that several of them have decided by DecideMAC.
type view struct {
	*Snapshot
	st *State
}

func (v view) Network(name string) (*model.Network, error) { return v.st.Networks.Network(name) }
func (v view) PortOwner(port string) (string, error)       { return v.st.portOwners()[port], nil }

// JudgeMAC implements plan.MACJudge.
func (v view) JudgeMAC(guest, nic, mac string, tap, br *model.Link) (plan.MACJudgement, error) {
	d, err := v.st.DecideMAC(MACQuestion{Guest: guest, NIC: nic, MAC: mac, Port: tap, Bridge: br, Rewrite: true})
	if err != nil || d.Action == RefuseNIC {
		return plan.MACJudgement{Refuse: d.Why}, err
	}
	return plan.MACJudgement{Pin: d.Pin, Why: d.Why}, nil
}

func (st *State) view() view { return view{Snapshot: st.Kernel, st: st} }

// portOwners maps each running guest's port to the guest.
func (st *State) portOwners() map[string]string {
	if st.owners == nil {
		st.owners = libvirt.PortOwners(st.Running)
	}
	return st.owners
}

// ManagedBridge is a bridge status looks at, and why.
type ManagedBridge struct {
	Name    string
	Sources []string // "bridges", "network NAME", "guest NICs"
	Managed bool
}

// bridges lists the managed bridges: "bridges", then the bridges of
// "networks" as libvirt's files name them. Networks that cannot be
// resolved go to notes.
func (st *State) Bridges() ([]*ManagedBridge, []string) {
	var out []*ManagedBridge
	var notes []string
	add := func(name, source string) {
		for _, b := range out {
			if b.Name == name {
				if !slices.Contains(b.Sources, source) {
					b.Sources = append(b.Sources, source)
				}
				return
			}
		}
		out = append(out, &ManagedBridge{Name: name, Sources: []string{source}, Managed: true})
	}
	for _, b := range st.Config.Bridges {
		add(b, "bridges")
	}
	for _, n := range st.Config.Networks {
		net, err := st.Networks.Network(n)
		switch {
		case err != nil:
			notes = append(notes, fmt.Sprintf("network %s: %v", n, err))
		case net == nil:
			notes = append(notes, fmt.Sprintf("network %s (in \"networks\"): libvirt has no definition of it", n))
		case net.Bridge == "":
			notes = append(notes, fmt.Sprintf("network %s: its definition names no bridge (not started yet?)", n))
		default:
			add(net.Bridge, "network "+n)
			if net.MacTableLibvirt {
				notes = append(notes, fmt.Sprintf("network %s has macTableManager='libvirt': libvirt manages its NICs, fdbhook leaves them alone", n))
			}
		}
	}
	return out, notes
}
