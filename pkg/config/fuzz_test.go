package config

import (
	"strings"
	"testing"
)

// FuzzParse: any input either parses into a configuration that passes its
// own validation or gives a one-line error; never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"bridges = [\"br0\"]\nnetworks = [\"hostbr\"]\non_error = \"warn\"\n[bridge.br0]\nvlan_filtering = \"enable\"\n",
		"bridge = [\"br0\"]", "[bridge]\nbr0 = 1", "log_level = \"debug\"", "x = 1979-05-27T07:32:00Z",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		if err := c.validate(); err != nil {
			t.Fatalf("parsed config fails validation: %v", err)
		}
		for name := range c.Bridge {
			if p := c.Policy(name); p.VlanFiltering != Enable && p.VlanFiltering != Leave {
				t.Fatalf("policy %q for %s", p.VlanFiltering, name)
			}
		}
	})
}
