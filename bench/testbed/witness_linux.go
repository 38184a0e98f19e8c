package testbed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// bridgeJSON runs iproute2's bridge with -j inside the lab's namespace and
// decodes its output: an independent witness of what netlink code did.
func (l *Lab) bridgeJSON(v any, args ...string) error {
	var out, errb bytes.Buffer
	err := l.Do(func() error {
		cmd := exec.Command("bridge", append([]string{"-j"}, args...)...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		return cmd.Run()
	})
	if err != nil {
		return fmt.Errorf("bridge %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	if err := json.Unmarshal(out.Bytes(), v); err != nil {
		return fmt.Errorf("bridge %s: decoding output: %w", strings.Join(args, " "), err)
	}
	return nil
}

type portJSON struct {
	Ifname   string `json:"ifname"`
	Master   string `json:"master"`
	State    string `json:"state"`
	Learning *bool  `json:"learning"`
	Flood    *bool  `json:"flood"`
}

type fdbJSON struct {
	MAC    string   `json:"mac"`
	Ifname string   `json:"ifname"`
	Master string   `json:"master"`
	State  string   `json:"state"`
	Flags  []string `json:"flags"`
}

// PortStates returns the STP state (forwarding, disabled, …) of each port
// of bridge, by name, as `bridge link show` reports it.
func (l *Lab) PortStates(bridge string) (map[string]string, error) {
	var ports []portJSON
	if err := l.bridgeJSON(&ports, "-d", "link", "show"); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range ports {
		if p.Master == bridge {
			out[p.Ifname] = p.State
		}
	}
	return out, nil
}

// Check reads bridge's ports and FDB back with iproute2 and returns an
// error unless every NIC is in the wanted state: managed means learning
// off, flood off and a static entry for the NIC's MAC on its tap;
// unmanaged means learning and flood on and no static entry for the MAC.
func (l *Lab) Check(bridge string, nics []NIC, managed bool) error {
	var ports []portJSON
	if err := l.bridgeJSON(&ports, "-d", "link", "show"); err != nil {
		return err
	}
	var fdb []fdbJSON
	if err := l.bridgeJSON(&fdb, "fdb", "show", "br", bridge); err != nil {
		return err
	}
	byName := map[string]portJSON{}
	for _, p := range ports {
		byName[p.Ifname] = p
	}
	static := map[string]string{} // MAC -> port of its static entry
	for _, e := range fdb {
		if e.State == "static" && e.Master == bridge {
			static[e.MAC] = e.Ifname
		}
	}
	for _, n := range nics {
		p, ok := byName[n.Tap]
		switch {
		case !ok || p.Master != bridge:
			return fmt.Errorf("%s is not a port of %s", n.Tap, bridge)
		case p.Learning == nil || p.Flood == nil:
			return fmt.Errorf("bridge -d link show does not report learning/flood for %s", n.Tap)
		case managed && (*p.Learning || *p.Flood):
			return fmt.Errorf("%s: learning %v flood %v, want both off", n.Tap, *p.Learning, *p.Flood)
		case !managed && (!*p.Learning || !*p.Flood):
			return fmt.Errorf("%s: learning %v flood %v, want both on", n.Tap, *p.Learning, *p.Flood)
		case managed && static[n.MAC] != n.Tap:
			return fmt.Errorf("no static entry %s dev %s master %s (have %q)", n.MAC, n.Tap, bridge, static[n.MAC])
		case !managed && static[n.MAC] != "":
			return fmt.Errorf("static entry %s dev %s is still there", n.MAC, static[n.MAC])
		}
	}
	return nil
}

// HasStatic reports whether bridge has a static entry for mac (on any
// port), asking iproute2 (`bridge fdb get`, one lookup, not a dump).
func (l *Lab) HasStatic(bridge, mac string) (bool, error) {
	var entries []fdbJSON
	err := l.bridgeJSON(&entries, "fdb", "get", mac, "br", bridge)
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			return false, nil
		}
		return false, err
	}
	for _, e := range entries {
		if e.State == "static" {
			return true, nil
		}
	}
	return false, nil
}

// CountStatic returns how many static entries bridge's FDB holds.
func (l *Lab) CountStatic(bridge string) (int, error) {
	var fdb []fdbJSON
	if err := l.bridgeJSON(&fdb, "fdb", "show", "br", bridge); err != nil {
		return 0, err
	}
	n := 0
	for _, e := range fdb {
		if e.State == "static" && e.Master == bridge {
			n++
		}
	}
	return n, nil
}
