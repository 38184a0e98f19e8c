package hook

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestOperationTablesAgree: the events the hooks act on (package events,
// consulted before the hook's packages initialise) are exactly those the
// hook's tables say what to do for.
func TestOperationTablesAgree(t *testing.T) {
	cmp := func(a, b [2]string) int {
		if a[0] != b[0] {
			return strings.Compare(a[0], b[0])
		}
		return strings.Compare(a[1], b[1])
	}
	for _, h := range []struct {
		name string
		d    domainHook
	}{{"qemu", qemuDomain}, {"lxc", lxcDomain}} {
		var acted [][2]string
		for ev, row := range h.d.ops {
			if row.act != ignore {
				acted = append(acted, ev)
			}
		}
		slices.SortFunc(acted, cmp)
		want := slices.SortedFunc(maps.Keys(h.d.acts), cmp)
		if !slices.Equal(acted, want) {
			t.Errorf("the %s table acts on %v, package events lists %v", h.name, acted, want)
		}
		for ev, on := range h.d.acts {
			if !on {
				t.Errorf("package events lists %s event %v as false: list only what is acted on", h.name, ev)
			}
		}
	}
}
