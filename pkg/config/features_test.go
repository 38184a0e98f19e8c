package config

import (
	"strings"
	"testing"
)

func TestParseFeatures(t *testing.T) {
	c, err := Parse([]byte(`
bridges = ["br0", "br1"]
[bridge.br0]
lock_ports = true
sticky = true
[bridge.br1]
vlan_filtering = "enable"
`))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Policy("br0"); !p.LockPorts || !p.Sticky || p.VlanFiltering != Leave {
		t.Errorf("br0 policy = %+v, want lock_ports and sticky on, vlan_filtering leave", p)
	}
	if p := c.Policy("br1"); p.LockPorts || p.Sticky {
		t.Errorf("br1 policy = %+v, want lock_ports and sticky off by default", p)
	}
	if p := c.Policy("unlisted"); p.LockPorts || p.Sticky {
		t.Errorf("unlisted policy = %+v, want everything off", p)
	}
}

func TestParseFeatureErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"lock_ports string", "[bridge.br0]\nlock_ports = \"yes\"", "lock_ports"},
		{"sticky number", "[bridge.br0]\nsticky = 1", "sticky"},
		{"misspelt lock_port", "[bridge.br0]\nlock_port = true", "unknown key bridge.br0.lock_port"},
		{"top-level lock_ports", "lock_ports = true", "unknown key lock_ports"},
		{"per-bridge pvid", "[bridge.br0]\npvid = 10", "unknown key bridge.br0.pvid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%q) = %v, want error containing %q", tc.in, err, tc.want)
			}
		})
	}
}
