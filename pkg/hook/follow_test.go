package hook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// TestFollowedLife: the MACs a guest follows live as long as the guest:
// a reconnect writes their entries back, a stop removes their entries
// (here roamed to the uplink) and the record, and a start begins a new
// life with none, record cleared and no entry written for them.
func TestFollowedLife(t *testing.T) {
	const followed = "02:00:00:00:00:66"
	cfg := cfgBr0 + "[bridge.br0]\nundeclared_macs = \"follow\"\n"
	for _, tc := range []struct {
		op, subop string
		// writes must contain entry, or must not when !written; kept: the
		// record is still there afterwards.
		written, kept bool
		entry         string
	}{
		{"reconnect", "begin", true, true, "replace " + followed},
		{"stopped", "end", true, false, "delete " + followed},
		{"start", "begin", false, false, followed},
	} {
		t.Run(tc.op, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "fdbhook.toml"), []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			d := runstate.Dir(filepath.Join(dir, "run"))
			if err := d.PutFollowed(runstate.Followed{Guest: "t2", NICs: map[string]runstate.FollowedNIC{"52:54:00:aa:cc:01": {MACs: []string{followed}}}}); err != nil {
				t.Fatal(err)
			}
			k := withRoamed(kerneltest.T2Host(), "52:54:00:aa:cc:01", followed)
			r := newTestRun(dir, "qemu-hook", startXML, nil, k).call((*Runner).RunQemu, []string{"t2", tc.op, tc.subop, "-"})
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			writes := strings.Join(k.WriteLog(), " ")
			if strings.Contains(writes, tc.entry) != tc.written {
				t.Errorf("writes %q: %q there %v, want %v", writes, tc.entry, !tc.written, tc.written)
			}
			if _, ok, err := d.GetFollowed("t2"); ok != tc.kept || err != nil {
				t.Errorf("record there %v (%v), want %v", ok, err, tc.kept)
			}
		})
	}
}
