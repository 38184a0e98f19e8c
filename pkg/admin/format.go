package admin

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fdbhook/fdbhook/pkg/manage"
)

// Format writes the report as tables, one per bridge, then the problems
// and notes.
func (rep *Report) Format(w io.Writer) {
	for i, b := range rep.Bridges {
		if i > 0 {
			fmt.Fprintln(w)
		}
		b.format(w)
	}
	if len(rep.Bridges) == 0 {
		fmt.Fprintln(w, "no managed bridges")
	}
	fmt.Fprintln(w)
	if len(rep.Problems) == 0 {
		fmt.Fprintln(w, "no problems found")
	} else {
		fmt.Fprintf(w, "problems (%d):\n", len(rep.Problems))
		for _, p := range rep.Problems {
			where := ""
			if p.Bridge != "" {
				where = p.Bridge + ": "
			}
			fmt.Fprintf(w, "  %s%s\n", where, p.Text)
		}
	}
	if wr := rep.Watcher; wr != nil {
		if wr.Running {
			fmt.Fprintf(w, "watcher: running (pid %d) since %s\n", wr.PID, wr.Since.Format(time.RFC3339))
		} else {
			fmt.Fprintln(w, "watcher: not running: changes to running guests (hotplug, a NIC moved, flags or entries changed by hand) are not healed until the next start or 'fdbhook reconcile'")
		}
	}
	if len(rep.Notes) > 0 {
		fmt.Fprintln(w, "notes:")
		for _, n := range rep.Notes {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
}

// format writes the bridge's heading, then a table of its ports and one
// of its static entries.
func (b *BridgeReport) format(w io.Writer) {
	if !b.Exists {
		fmt.Fprintf(w, "%s: does not exist\n", b.heading())
		return
	}
	fmt.Fprintln(w, b.heading())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PORT\tKIND\tDEVICE\tLEARNING\tFLOOD\tLOCKED\tPROMISC\tGUEST")
	for _, p := range b.Ports {
		locked := "-"
		if p.Locked != nil {
			locked = onOff(*p.Locked)
		}
		if p.Mab != nil && *p.Mab {
			locked += "+mab" // undeclared_macs = "report"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", p.Name, p.Kind, p.Device,
			onOff(p.Learning), onOff(p.Flood), locked, p.Promiscuity, p.owner())
	}
	if len(b.Ports) == 0 {
		fmt.Fprintln(tw, "  (no ports)")
	}
	tw.Flush()
	b.formatUndeclared(w)
	b.formatFollowed(w)
	if len(b.Entries) == 0 {
		fmt.Fprintln(w, "  no static entries")
		return
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  STATIC ENTRY\tPORT\tVLAN\tSTATE\tGUEST")
	for _, e := range b.Entries {
		vlan := "-"
		if e.Vlan != 0 {
			vlan = strconv.Itoa(e.Vlan)
		}
		state := e.State
		if e.Sticky {
			state += " (sticky)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", e.MAC, e.Port, vlan, state, e.owner())
	}
	tw.Flush()
}

// formatFollowed writes the MACs the bridge's managed guest NICs follow
// (undeclared_macs = "follow"), when there are any, and the NICs that
// reached follow_max.
func (b *BridgeReport) formatFollowed(w io.Writer) {
	var rows, full []string
	for _, p := range b.Ports {
		for _, m := range p.Followed {
			rows = append(rows, fmt.Sprintf("  %s\t%s\t%s %s\n", m, p.Name, p.Guest, p.NIC))
		}
		if p.FollowFull {
			full = append(full, fmt.Sprintf("%s %s on %s", p.Guest, p.NIC, p.Name))
		}
	}
	subTable(w, rows, "followed MACs (%d): the guests sent from them undeclared, and the watcher authorised them until the guest stops",
		"FOLLOWED MAC\tPORT\tGUEST")
	for _, f := range full {
		fmt.Fprintf(w, "  %s sent from more MACs than follow_max: it follows no more, MAB is off on its port until the guest stops\n", f)
	}
}

// formatUndeclared writes the undeclared MACs of the bridge's managed
// guest ports, when there are any: a table, and what to do about them.
func (b *BridgeReport) formatUndeclared(w io.Writer) {
	var rows []string
	for _, p := range b.Ports {
		for _, u := range p.Undeclared {
			seen := "-"
			if u.LastSeen > 0 {
				seen = (time.Duration(u.LastSeen) * time.Second).String() + " ago"
			}
			vlan := "-"
			if u.Vlan != 0 {
				vlan = strconv.Itoa(u.Vlan)
			}
			rows = append(rows, fmt.Sprintf("  %s\t%s\t%s\t%s %s\t%s\n", u.MAC, p.Name, vlan, p.Guest, p.NIC, seen))
		}
	}
	subTable(w, rows, "undeclared MACs (%d): the guests send from them, their frames are dropped; declare the ones they should have as extra MACs",
		"UNDECLARED MAC\tPORT\tVLAN\tGUEST\tLAST SEEN")
}

// subTable writes, under a bridge, a title (its %d the number of rows), a
// header and the rows (tab-separated, each ending in a newline) as an
// aligned table; nothing when there are no rows.
func subTable(w io.Writer, rows []string, title, header string) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "  "+title+"\n", len(rows))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  "+header)
	for _, r := range rows {
		fmt.Fprint(tw, r)
	}
	tw.Flush()
}

// heading is the bridge's first line: why it is shown, and its
// vlan_filtering and promiscuity when it exists.
func (b *BridgeReport) heading() string {
	head := "bridge " + b.Name
	if len(b.ManagedBy) > 0 {
		head += " (managed: " + strings.Join(b.ManagedBy, ", ") + ")"
	} else {
		head += " (not managed)"
	}
	switch {
	case !b.Exists:
		return head
	case b.VlanFiltering:
		head += ": vlan_filtering on"
	case b.VlanSupported:
		head += ": vlan_filtering off"
	default:
		head += ": vlan_filtering off (not supported by this kernel)"
	}
	if b.Promiscuous {
		head += ", promiscuous"
	}
	return head
}

// owner is a port's GUEST column: the guest NIC on it and whether it is
// managed.
func (p *PortReport) owner() string {
	switch {
	case p.Guest != "" && p.Managed && p.Incoming:
		return p.Guest + " " + p.NIC + " " + p.MAC + " (incoming migration)"
	case p.Guest != "" && p.Managed:
		return p.Guest + " " + p.NIC + " " + p.MAC
	case p.Guest != "":
		return p.Guest + " " + p.NIC + " " + p.MAC + " (not managed: " + p.Reason + ")"
	case p.Kind == manage.KindOther:
		return "(no running guest)"
	}
	return "-"
}

// owner is an entry's GUEST column: whose it is and why it has its state.
func (e *EntryReport) owner() string {
	var who []string
	if e.Guest != "" {
		who = append(who, e.Guest+" "+e.NIC)
	}
	if e.Why != "" {
		who = append(who, e.Why)
	}
	if len(who) == 0 {
		return "-"
	}
	return strings.Join(who, ": ")
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
