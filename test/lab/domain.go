package lab

import (
	"fmt"
	"strings"
)

// Domain is a libvirt domain as tests write it: for a hook's standard
// input and a definition (XML), or as a running guest's live XML (Live).
// Every suite and unit test that needs domain XML builds it here.
type Domain struct {
	Name string
	// Type is <domain type>: kvm when empty; lxc for a container.
	Type string
	// ID is <domain id>, which libvirt writes for a running domain; none
	// when 0.
	ID   int
	UUID string // none when empty
	// Metadata is the raw XML inside <metadata> (none when empty); OptOut
	// adds fdbhook's <interface manage="no"/> for each of these MACs.
	Metadata string
	OptOut   []string
	// Body is raw XML between the name and the devices: memory, os,
	// features, … (none when empty).
	Body string
	// Devices is raw XML inside <devices> before the NICs: emulator,
	// disks, controllers, consoles.
	Devices string
	NICs    []NIC
}

// NIC is one <interface>.
type NIC struct {
	// Type is the interface type: bridge when empty.
	Type    string
	MAC     string // no <mac> when empty
	Bridge  string // <source bridge>
	Network string // <source network>
	Target  string // no <target> when empty
	// Alias is <alias name>: none when empty; "-" for net<index>.
	Alias string
	// VirtualPort is <virtualport type>: none when empty, an untyped
	// <virtualport/> when "-".
	VirtualPort string
	Model       string // <model type>, none when empty
	// Extra is raw XML inside <interface>, after the rest.
	Extra string
}

// Status is what libvirt's live XML says around a running domain.
type Status struct {
	// State and Reason are <domstatus state reason>: running and booted
	// when empty.
	State, Reason string
	// Pid is <domstatus pid> (QEMU's, or the LXC driver's controller's).
	Pid int
	// Job is <job async>: "migration in" on a live migration's
	// destination, "migration out" on its source; none when empty.
	Job string
	// Init is a container's <init pid> (LXC driver); none when 0.
	Init int
	// Extra is raw XML inside <domstatus> before the domain (taint flags).
	Extra string
}

// XML is the domain as libvirt hands it to a hook and keeps its
// definition.
func (d Domain) XML() string {
	var b strings.Builder
	typ := d.Type
	if typ == "" {
		typ = "kvm"
	}
	fmt.Fprintf(&b, "<domain type='%s'", typ)
	if d.ID != 0 {
		fmt.Fprintf(&b, " id='%d'", d.ID)
	}
	fmt.Fprintf(&b, ">\n  <name>%s</name>\n", d.Name)
	if d.UUID != "" {
		fmt.Fprintf(&b, "  <uuid>%s</uuid>\n", d.UUID)
	}
	if d.Metadata != "" || len(d.OptOut) > 0 {
		b.WriteString("  <metadata>\n")
		if d.Metadata != "" {
			b.WriteString("    " + d.Metadata + "\n")
		}
		if len(d.OptOut) > 0 {
			b.WriteString("    <fdbhook:fdb xmlns:fdbhook=\"urn:fdbhook:1\">\n")
			for _, m := range d.OptOut {
				fmt.Fprintf(&b, "      <fdbhook:interface mac=\"%s\" manage=\"no\"/>\n", m)
			}
			b.WriteString("    </fdbhook:fdb>\n")
		}
		b.WriteString("  </metadata>\n")
	}
	b.WriteString(d.Body)
	b.WriteString("  <devices>\n" + d.Devices)
	for i, n := range d.NICs {
		b.WriteString(n.xml(i))
	}
	b.WriteString("  </devices>\n</domain>\n")
	return b.String()
}

func (n NIC) xml(index int) string {
	var b strings.Builder
	typ := n.Type
	if typ == "" {
		typ = "bridge"
	}
	fmt.Fprintf(&b, "    <interface type='%s'>\n", typ)
	if n.MAC != "" {
		fmt.Fprintf(&b, "      <mac address='%s'/>\n", n.MAC)
	}
	if n.Bridge != "" || n.Network != "" {
		b.WriteString("      <source")
		if n.Network != "" {
			fmt.Fprintf(&b, " network='%s'", n.Network)
		}
		if n.Bridge != "" {
			fmt.Fprintf(&b, " bridge='%s'", n.Bridge)
		}
		b.WriteString("/>\n")
	}
	switch n.VirtualPort {
	case "":
	case "-":
		b.WriteString("      <virtualport/>\n")
	default:
		fmt.Fprintf(&b, "      <virtualport type='%s'/>\n", n.VirtualPort)
	}
	if n.Target != "" {
		fmt.Fprintf(&b, "      <target dev='%s'/>\n", n.Target)
	}
	if n.Model != "" {
		fmt.Fprintf(&b, "      <model type='%s'/>\n", n.Model)
	}
	b.WriteString(n.Extra)
	switch n.Alias {
	case "":
	case "-":
		fmt.Fprintf(&b, "      <alias name='net%d'/>\n", index)
	default:
		fmt.Fprintf(&b, "      <alias name='%s'/>\n", n.Alias)
	}
	b.WriteString("    </interface>\n")
	return b.String()
}

// Live is the domain's live XML as libvirt keeps it in its run directory
// (/run/libvirt/qemu/NAME.xml, /run/libvirt/lxc/NAME.xml): a <domstatus>
// around the running domain.
func (d Domain) Live(s Status) string {
	var b strings.Builder
	state, reason := s.State, s.Reason
	if state == "" {
		state = "running"
	}
	if reason == "" {
		reason = "booted"
	}
	fmt.Fprintf(&b, "<domstatus state='%s' reason='%s' pid='%d'>\n", state, reason, s.Pid)
	if s.Job != "" {
		fmt.Fprintf(&b, "  <job type='none' async='%s'/>\n", s.Job)
	}
	if s.Init != 0 {
		fmt.Fprintf(&b, "  <init pid='%d'/>\n", s.Init)
	}
	b.WriteString(s.Extra)
	b.WriteString(d.XML())
	b.WriteString("</domstatus>\n")
	return b.String()
}

// BridgeNICs are NICs of type bridge on bridge, one per "target/mac" pair
// (no target when it is empty), each with its alias.
func BridgeNICs(bridge string, targetMACs ...string) []NIC {
	out := make([]NIC, len(targetMACs))
	for i, tm := range targetMACs {
		target, mac, _ := strings.Cut(tm, "/")
		out[i] = NIC{Bridge: bridge, Target: target, MAC: mac, Alias: "-"}
	}
	return out
}
