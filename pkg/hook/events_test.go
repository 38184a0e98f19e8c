package hook

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/events"
)

// TestOperationTablesAgree: the events the hooks act on (package events,
// consulted before the hook's packages initialise) are exactly those the
// hook's tables say what to do for.
func TestOperationTablesAgree(t *testing.T) {
	var acted [][2]string
	for ev, row := range qemuOps {
		if row.act != ignore {
			acted = append(acted, ev)
		}
	}
	cmp := func(a, b [2]string) int {
		if a[0] != b[0] {
			return strings.Compare(a[0], b[0])
		}
		return strings.Compare(a[1], b[1])
	}
	slices.SortFunc(acted, cmp)
	want := slices.SortedFunc(maps.Keys(events.Qemu), cmp)
	if !slices.Equal(acted, want) {
		t.Errorf("qemuOps acts on %v, events.Qemu lists %v", acted, want)
	}
	for ev, on := range events.Qemu {
		if !on {
			t.Errorf("events.Qemu lists %v as false: list only what is acted on", ev)
		}
	}
}
