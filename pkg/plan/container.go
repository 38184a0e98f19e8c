package plan

import (
	"fmt"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// Container is what proves that a veth is a container's port: the network
// namespace of the container's init process. libvirt's LXC driver creates
// each NIC as a veth pair, enslaves the host end (the NIC's <target dev>)
// to the bridge and moves the other end into the container's namespace.
type Container struct {
	// InitPid is the container's init process (libvirt's live state).
	InitPid int
	// NetnsID is the id the host's network namespace gives the namespace
	// of InitPid (RTM_GETNSID); -1 when it gives it none, which means no
	// veth of the host has its peer there.
	NetnsID int
	// Unknown, when not empty, says why the init process is not known:
	// then no veth can be proved to be the container's.
	Unknown string
}

// StartContainer plans a container's start (and reconnect) as Start plans
// a QEMU guest's, except that a NIC's port must be a veth whose peer lives
// in the network namespace of the container's init process. Any other
// device the XML names, a tap or a veth whose peer is elsewhere (an uplink,
// another container's), is refused.
func StartContainer(cfg *config.Config, g *guest.Guest, v View, ct Container) (*Plan, error) {
	return start(cfg, g, v, &ct)
}

// notGuestPort says why l, the device a NIC's XML names, is not a port
// this guest may have managed; "" when it is.
func (s *starter) notGuestPort(l *model.Link) string {
	if s.ct != nil {
		return s.ct.disowns(l)
	}
	if !l.IsTap() {
		return fmt.Sprintf("%s is %s, not a guest tap: refusing to touch it", l.Name, l.Describe())
	}
	return ""
}

// disowns says why l is not provably one of the container's veths; "" when
// it is.
func (ct *Container) disowns(l *model.Link) string {
	switch {
	case l.IsTap():
		return fmt.Sprintf("%s is a tap, not a container's veth: refusing to touch it", l.Name)
	case l.Type != "veth":
		return fmt.Sprintf("%s is %s, not a container's veth: refusing to touch it", l.Name, l.Describe())
	case ct.Unknown != "":
		return fmt.Sprintf("cannot prove veth %s is the container's: %s", l.Name, ct.Unknown)
	case l.PeerNetnsID < 0:
		return fmt.Sprintf("veth %s has its peer in the host's network namespace, not in the container's (init pid %d): refusing to touch it",
			l.Name, ct.InitPid)
	case ct.NetnsID < 0 || l.PeerNetnsID != ct.NetnsID:
		return fmt.Sprintf("veth %s has its peer in network namespace id %d, not in the container's (init pid %d): refusing to touch it",
			l.Name, l.PeerNetnsID, ct.InitPid)
	}
	return ""
}
