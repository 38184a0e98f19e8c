package guest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/antchfx/xmlquery"
)

// Namespace is the XML namespace of fdbhook's per-guest metadata.
const Namespace = "urn:fdbhook:1"

// MaxInput bounds the XML a hook accepts on stdin. Real domain XML is a few
// KiB; the bound keeps a runaway writer from exhausting memory.
const MaxInput = 16 << 20

// maxDepth bounds element nesting; domain XML is about six levels deep.
const maxDepth = 64

// ErrInput marks every error caused by the XML itself (as opposed to I/O).
var ErrInput = errors.New("bad domain XML")

// Guest is one libvirt domain as far as fdbhook is concerned.
type Guest struct {
	Name string
	UUID string
	// Type is the domain type (<domain type=…>): kvm or qemu for QEMU
	// guests, lxc for libvirt's containers.
	Type string
	// Manage is false when the domain's metadata opts the whole guest out.
	Manage bool
	// Lock and Sticky are the guest-wide settings of the metadata
	// (<fdbhook:fdb lock="yes|no" sticky="yes|no">): Unset leaves the
	// bridge's configured policy.
	Lock   Setting
	Sticky Setting
	// UndeclaredMACs is the guest-wide undeclared-macs attribute
	// (<fdbhook:fdb undeclared-macs="ignore|report|follow">); "" leaves
	// the bridge's undeclared_macs.
	UndeclaredMACs string
	NICs           []NIC
	// State is the guest's state in libvirt's live XML (<domstatus
	// state='running'>: running, paused, …); empty for a plain <domain>.
	// Reason is why it is in that state (booted, unpaused, migrated, …),
	// Pid its QEMU process (a container's controller): together they tell
	// a guest that started or resumed since they were last read.
	State  string
	Reason string
	Pid    int
	// IncomingMigration is set when the live XML says the guest is the
	// destination of a live migration whose CPUs have not started here
	// yet. libvirt 9.0 writes, from "start begin" to the resume (measured):
	//
	//	<domstatus state='paused' reason='starting up' pid='…'>
	//	  <job type='none' async='migration in' phase='prepare' …/>
	//
	// (the reason may also be 'migration'); the source of the same
	// migration has async='migration out'. A post-copy destination runs
	// (state 'running'): its guest is here, it is not waiting.
	IncomingMigration bool
	// OutgoingMigration is set while the live XML says the guest is the
	// source of a live migration (<job async='migration out'>, from its
	// begin to its end, running or paused). Once the destination resumes
	// it, the guest's announcement moves its MACs' entries on this host's
	// bridge from its taps to the uplink: expected, not a roam.
	OutgoingMigration bool
	// Interfaces holds the per-NIC metadata, keyed by lower-case MAC, as
	// written by the admin (it may name MACs the guest does not have).
	Interfaces map[string]Interface
}

// NIC is one <interface> of the domain.
type NIC struct {
	// Index is the NIC's position among the domain's interfaces, from 0.
	Index int
	// Alias is libvirt's device alias (net0, …); empty in inactive XML.
	Alias string
	// Type is the interface type: bridge, network, user, ethernet, direct, …
	Type string
	// MAC is the address in lower-case colon form, normalised here once;
	// when it is not a usable address (BadMAC set), as written, lower-cased.
	MAC string
	// BadMAC says why MAC is not a unicast, non-zero 48-bit address.
	BadMAC error
	// Bridge is <source bridge=…>; for type='network' NICs libvirt fills it in
	// the live XML only.
	Bridge string
	// Network is <source network=…>: type='network' NICs, and type='bridge'
	// NICs that libvirt rewrote from a <forward mode='bridge'/> network.
	Network string
	// Target is <target dev=…>, the host-side port; absent before start and
	// after stop.
	Target string
	// VirtualPort is <virtualport type=…> (openvswitch, 802.1Qbh, …).
	VirtualPort string
}

// Interface is the fdbhook metadata of one NIC.
type Interface struct {
	MAC string
	// Manage is false when the admin opted the NIC out.
	Manage bool
	// Lock and Sticky override the guest's and the bridge's settings.
	Lock   Setting
	Sticky Setting
	// UndeclaredMACs ("ignore", "report", "follow"; "" when absent)
	// overrides the guest's and the bridge's undeclared_macs.
	UndeclaredMACs string
	// Pvid is the untagged VLAN of the NIC's port (0: not declared).
	Pvid int
	// Vlans are the tagged VLANs of the port, sorted, without Pvid.
	Vlans []int
	// ExtraMACs are further source MACs the NIC sends from (VRRP virtual
	// MACs, a nested guest): they get static entries on the same port.
	ExtraMACs []string
	// Followed are the MACs the watcher authorised for the NIC under
	// undeclared_macs = "follow" in the guest's present life (from the run
	// directory, never from the XML: SetFollowed); they get static
	// entries like ExtraMACs. FollowFull: the NIC reached its bridge's
	// follow_max, and its port's MAC Authentication Bypass stays off.
	Followed   []string
	FollowFull bool
}

// MACs are the NIC's source MACs that get static entries on its port: its
// own, its extra MACs, and the MACs it follows.
func (m Interface) MACs() []string {
	return append(append([]string{m.MAC}, m.ExtraMACs...), m.Followed...)
}

// SetFollowed gives the NIC with MAC nicMAC the followed MACs macs (those
// it declares are left out) and FollowFull full, replacing earlier ones.
func (g *Guest) SetFollowed(nicMAC string, macs []string, full bool) {
	m, ok := g.Interfaces[nicMAC]
	if !ok {
		if len(macs) == 0 && !full {
			return
		}
		m = Interface{MAC: nicMAC, Manage: true}
	}
	m.Followed, m.FollowFull = nil, full
	for _, mac := range macs {
		if mac != nicMAC && !slices.Contains(m.ExtraMACs, mac) && !slices.Contains(m.Followed, mac) {
			m.Followed = append(m.Followed, mac)
		}
	}
	if g.Interfaces == nil {
		g.Interfaces = map[string]Interface{}
	}
	g.Interfaces[nicMAC] = m
}

// HasVlans reports whether the metadata declares VLANs for the NIC.
func (m Interface) HasVlans() bool { return m.Pvid != 0 || len(m.Vlans) > 0 }

// Setting is a yes/no attribute that may be absent.
type Setting int

const (
	// Unset means the attribute is absent: the next level decides.
	Unset Setting = iota
	// Yes is "yes".
	Yes
	// No is "no".
	No
)

// Or returns s, or def when s is Unset.
func (s Setting) Or(def bool) bool {
	switch s {
	case Yes:
		return true
	case No:
		return false
	}
	return def
}

// MaxExtraMACs bounds the extra MACs of one NIC.
const MaxExtraMACs = 64

// Metadata returns the NIC's metadata (the zero Interface with Manage true
// when the metadata does not name it).
func (g *Guest) Metadata(n NIC) Interface {
	if m, ok := g.Interfaces[n.MAC]; ok {
		return m
	}
	return Interface{MAC: n.MAC, Manage: true}
}

// Label names the NIC in messages: its alias when it has one.
func (n NIC) Label() string {
	if n.Alias != "" {
		return n.Alias
	}
	return fmt.Sprintf("interface %d", n.Index)
}

// Manages reports whether the metadata leaves NIC n managed.
func (g *Guest) Manages(n NIC) bool {
	if !g.Manage {
		return false
	}
	if m, ok := g.Interfaces[n.MAC]; ok {
		return m.Manage
	}
	return true
}

// Read reads at most MaxInput bytes of domain XML from r and parses it.
func Read(r io.Reader) (*Guest, error) {
	data, err := ReadInput(r)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// ReadInput reads a hook's standard input, refusing more than MaxInput bytes.
func ReadInput(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInput+1))
	if err != nil {
		return nil, fmt.Errorf("reading standard input: %w", err)
	}
	if len(data) > MaxInput {
		return nil, fmt.Errorf("%w: standard input is larger than %d MiB", ErrInput, MaxInput>>20)
	}
	return data, nil
}

// Parse parses a <domain>, or a <domstatus> around one.
func Parse(data []byte) (*Guest, error) {
	root, err := parseRoot(data)
	if err != nil {
		return nil, err
	}
	dom := root
	if root.Data == "domstatus" {
		dom = child(root, "domain")
		if dom == nil {
			return nil, fmt.Errorf("%w: <domstatus> has no <domain>", ErrInput)
		}
	} else if root.Data != "domain" {
		return nil, fmt.Errorf("%w: root element is <%s>, want <domain>", ErrInput, root.Data)
	}
	g := &Guest{Manage: true, Interfaces: map[string]Interface{}}
	if root.Data == "domstatus" {
		g.State, g.Reason = root.SelectAttr("state"), root.SelectAttr("reason")
		g.Pid, _ = strconv.Atoi(root.SelectAttr("pid")) // 0 when absent or not a number: unknown
		job := child(root, "job")
		g.IncomingMigration = g.State == "paused" && job != nil && job.SelectAttr("async") == "migration in"
		g.OutgoingMigration = job != nil && job.SelectAttr("async") == "migration out"
	}
	g.Type = dom.SelectAttr("type")
	if n := child(dom, "name"); n != nil {
		g.Name = strings.TrimSpace(n.InnerText())
	}
	if g.Name == "" {
		return nil, fmt.Errorf("%w: <domain> has no <name>", ErrInput)
	}
	if n := child(dom, "uuid"); n != nil {
		g.UUID = strings.TrimSpace(n.InnerText())
	}
	if md := child(dom, "metadata"); md != nil {
		if err := g.parseMetadata(md); err != nil {
			return nil, fmt.Errorf("%w: %s: metadata %s: %v", ErrInput, g.Name, Namespace, err)
		}
	}
	if devs := child(dom, "devices"); devs != nil {
		for _, el := range children(devs, "interface") {
			g.NICs = append(g.NICs, parseNIC(el, len(g.NICs)))
		}
	}
	return g, nil
}

func parseNIC(el *xmlquery.Node, index int) NIC {
	n := NIC{Index: index, Type: el.SelectAttr("type")}
	if e := child(el, "mac"); e != nil {
		n.MAC = strings.ToLower(strings.TrimSpace(e.SelectAttr("address")))
	}
	// A NIC without <mac> has no usable address either.
	if mac, err := NormalizeMAC(n.MAC); err == nil {
		n.MAC = mac
	} else {
		n.BadMAC = err
	}
	if e := child(el, "source"); e != nil {
		n.Bridge = e.SelectAttr("bridge")
		n.Network = e.SelectAttr("network")
	}
	if e := child(el, "target"); e != nil {
		n.Target = e.SelectAttr("dev")
	}
	if e := child(el, "alias"); e != nil {
		n.Alias = e.SelectAttr("name")
	}
	if e := child(el, "virtualport"); e != nil {
		n.VirtualPort = e.SelectAttr("type")
		if n.VirtualPort == "" {
			n.VirtualPort = "unspecified"
		}
	}
	return n
}

// parseMetadata reads <fdbhook:fdb> elements in the fdbhook namespace;
// elements of other namespaces belong to other tools and are ignored.
func (g *Guest) parseMetadata(md *xmlquery.Node) error {
	for el := md.FirstChild; el != nil; el = el.NextSibling {
		if el.Type != xmlquery.ElementNode || el.NamespaceURI != Namespace {
			continue
		}
		if el.Data != "fdb" {
			return fmt.Errorf("unknown element <%s>", el.Data)
		}
		manage, err := manageAttr(el)
		if err != nil {
			return err
		}
		g.Manage = g.Manage && manage
		if g.Lock, err = settingAttr(el, "lock"); err != nil {
			return err
		}
		if g.Sticky, err = settingAttr(el, "sticky"); err != nil {
			return err
		}
		if g.UndeclaredMACs, err = undeclaredAttr(el); err != nil {
			return err
		}
		for c := el.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != xmlquery.ElementNode {
				continue
			}
			if c.Data != "interface" {
				return fmt.Errorf("unknown element <%s> in <fdb>", c.Data)
			}
			mac, err := NormalizeMAC(c.SelectAttr("mac"))
			if err != nil {
				return fmt.Errorf("<interface mac=%q>: %v", c.SelectAttr("mac"), err)
			}
			m, err := parseInterface(c, mac)
			if err != nil {
				return fmt.Errorf("<interface mac=%q>: %v", mac, err)
			}
			if _, dup := g.Interfaces[mac]; dup {
				return fmt.Errorf("<interface mac=%q> given twice", mac)
			}
			g.Interfaces[mac] = m
		}
	}
	return nil
}

// parseInterface reads one <fdbhook:interface> and its <fdbhook:mac>
// children.
func parseInterface(el *xmlquery.Node, mac string) (Interface, error) {
	m := Interface{MAC: mac}
	var err error
	if m.Manage, err = manageAttr(el); err != nil {
		return m, err
	}
	if m.Lock, err = settingAttr(el, "lock"); err != nil {
		return m, err
	}
	if m.Sticky, err = settingAttr(el, "sticky"); err != nil {
		return m, err
	}
	if m.UndeclaredMACs, err = undeclaredAttr(el); err != nil {
		return m, err
	}
	if v := el.SelectAttr("pvid"); v != "" {
		if m.Pvid, err = ParseVlan(v); err != nil {
			return m, fmt.Errorf("pvid=%q: %v", v, err)
		}
	}
	if v := el.SelectAttr("vlans"); v != "" {
		if m.Vlans, err = ParseVlanList(v); err != nil {
			return m, fmt.Errorf("vlans=%q: %v", v, err)
		}
		if slices.Contains(m.Vlans, m.Pvid) {
			return m, fmt.Errorf("VLAN %d is both the pvid and tagged", m.Pvid)
		}
	}
	for c := el.FirstChild; c != nil; c = c.NextSibling {
		if c.Type != xmlquery.ElementNode {
			continue
		}
		if c.Data != "mac" || c.NamespaceURI != Namespace {
			return m, fmt.Errorf("unknown element <%s>", c.Data)
		}
		extra, err := NormalizeMAC(c.SelectAttr("address"))
		if err != nil {
			return m, fmt.Errorf("<mac address=%q>: %v", c.SelectAttr("address"), err)
		}
		if extra == mac || slices.Contains(m.ExtraMACs, extra) {
			return m, fmt.Errorf("<mac address=%q> given twice", extra)
		}
		if len(m.ExtraMACs) == MaxExtraMACs {
			return m, fmt.Errorf("more than %d extra MACs", MaxExtraMACs)
		}
		m.ExtraMACs = append(m.ExtraMACs, extra)
	}
	return m, nil
}

func settingAttr(el *xmlquery.Node, name string) (Setting, error) {
	switch v := el.SelectAttr(name); v {
	case "":
		return Unset, nil
	case "yes":
		return Yes, nil
	case "no":
		return No, nil
	default:
		return Unset, fmt.Errorf("%s=%q: want \"yes\" or \"no\"", name, v)
	}
}

// undeclaredAttr reads the undeclared-macs attribute: "ignore", "report",
// "follow", or "" when absent (the values of the configuration's
// undeclared_macs).
func undeclaredAttr(el *xmlquery.Node) (string, error) {
	switch v := el.SelectAttr("undeclared-macs"); v {
	case "", "ignore", "report", "follow":
		return v, nil
	default:
		return "", fmt.Errorf("undeclared-macs=%q: want \"ignore\", \"report\" or \"follow\"", v)
	}
}

// ParseVlan parses one VLAN ID (1-4094).
func ParseVlan(s string) (int, error) {
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || v < 1 || v > 4094 {
		return 0, fmt.Errorf("%q is not a VLAN ID (1-4094)", s)
	}
	return v, nil
}

// ParseVlanList parses a comma-separated list of VLAN IDs and ranges
// ("10,20-30") into sorted, distinct IDs.
func ParseVlanList(s string) ([]int, error) {
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := ParseVlan(lo)
		if err != nil {
			return nil, err
		}
		last := first
		if isRange {
			if last, err = ParseVlan(hi); err != nil {
				return nil, err
			}
			if last < first {
				return nil, fmt.Errorf("range %q runs backwards", strings.TrimSpace(part))
			}
		}
		for v := first; v <= last; v++ {
			if seen[v] {
				return nil, fmt.Errorf("VLAN %d given twice", v)
			}
			seen[v] = true
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

func manageAttr(el *xmlquery.Node) (bool, error) {
	switch v := el.SelectAttr("manage"); v {
	case "", "yes":
		return true, nil
	case "no":
		return false, nil
	default:
		return false, fmt.Errorf("manage=%q: want \"yes\" or \"no\"", v)
	}
}

// NormalizeMAC checks that s is a unicast, non-zero 48-bit MAC address and
// returns it in lower-case colon form.
func NormalizeMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%q is not a 48-bit MAC address", s)
	}
	if hw[0]&1 != 0 {
		return "", fmt.Errorf("%s is a multicast address", hw)
	}
	if bytes.Equal(hw, make(net.HardwareAddr, 6)) {
		return "", fmt.Errorf("%s is the all-zero address", hw)
	}
	return hw.String(), nil
}

// parseRoot checks nesting depth with a scan of the bytes (it keeps a
// hostile document from building a deep tree), then builds the tree: the
// XML is parsed once.
func parseRoot(data []byte) (*xmlquery.Node, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: standard input is empty", ErrInput)
	}
	elements, err := checkNesting(data, maxDepth)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	if elements == 0 {
		return nil, fmt.Errorf("%w: no root element (is this XML?)", ErrInput)
	}
	doc, err := xmlquery.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	for n := doc.FirstChild; n != nil; n = n.NextSibling {
		if n.Type == xmlquery.ElementNode {
			return n, nil
		}
	}
	return nil, fmt.Errorf("%w: no root element", ErrInput)
}

// checkNesting counts the elements of an XML document and refuses one
// nested deeper than limit, without building anything. It needs only XML's
// lexical structure: '<' opens markup; comments, CDATA sections,
// processing instructions and declarations hold no elements; a quoted
// attribute value may hold '>' and "/>". Malformed input is left to the
// parser that follows.
func checkNesting(data []byte, limit int) (elements int, err error) {
	depth := 0
	for i := 0; i < len(data); i++ {
		if data[i] != '<' {
			continue
		}
		rest := data[i+1:]
		var n int
		switch {
		case bytes.HasPrefix(rest, []byte("!--")):
			n = skipPast(rest, "-->")
		case bytes.HasPrefix(rest, []byte("![CDATA[")):
			n = skipPast(rest, "]]>")
		case bytes.HasPrefix(rest, []byte("?")):
			n = skipPast(rest, "?>")
		case bytes.HasPrefix(rest, []byte("!")) && len(rest) > 1:
			// As encoding/xml does, the byte after "<!" belongs to the
			// declaration whatever it is.
			n = 2 + skipMarkup(rest[2:], true)
		case bytes.HasPrefix(rest, []byte("/")):
			depth--
			n = skipMarkup(rest, false)
		default:
			elements++
			if depth++; depth > limit {
				return elements, fmt.Errorf("elements nested deeper than %d", limit)
			}
			n = skipMarkup(rest, false)
			if n > 1 && rest[n-2] == '/' {
				depth-- // <empty/>
			}
		}
		i += n
	}
	return elements, nil
}

// skipPast returns how many bytes of b run up to and including end (all of
// b when end is missing).
func skipPast(b []byte, end string) int {
	if j := bytes.Index(b, []byte(end)); j >= 0 {
		return j + len(end)
	}
	return len(b)
}

// skipMarkup returns how many bytes of b run up to and including the '>'
// that closes the markup b is inside, passing over quoted strings; in a
// declaration (<!DOCTYPE … [ <!ENTITY …> ]>) inner markup nests and
// comments are passed over.
func skipMarkup(b []byte, nested bool) int {
	var quote byte
	open := 1
	for j := 0; j < len(b); j++ {
		c := b[j]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '<' && nested && bytes.HasPrefix(b[j+1:], []byte("!--")):
			j += skipPast(b[j+1:], "-->")
		case c == '<' && nested:
			open++
		case c == '>':
			if open--; open == 0 {
				return j + 1
			}
		}
	}
	return len(b)
}

func child(n *xmlquery.Node, name string) *xmlquery.Node {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == xmlquery.ElementNode && c.Data == name && c.NamespaceURI == "" {
			return c
		}
	}
	return nil
}

func children(n *xmlquery.Node, name string) []*xmlquery.Node {
	var out []*xmlquery.Node
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == xmlquery.ElementNode && c.Data == name && c.NamespaceURI == "" {
			out = append(out, c)
		}
	}
	return out
}
