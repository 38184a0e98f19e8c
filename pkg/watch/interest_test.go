package watch

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
)

// watchingSource records the watchlists the watcher gives it.
type watchingSource struct {
	mu  sync.Mutex
	got []*kernel.Watchlist
}

func (w *watchingSource) Name() string                           { return "watching" }
func (w *watchingSource) Run(ctx context.Context, _ func(Event)) { <-ctx.Done() }
func (w *watchingSource) Watch(wl *kernel.Watchlist) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, wl)
}

func (w *watchingSource) last() *kernel.Watchlist {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.got) == 0 {
		return nil
	}
	return w.got[len(w.got)-1]
}

// TestWatcherPublishesWatchlist: after a batch, a source that follows the
// guests gets their ports on a bridge (by index) and all their MACs; a
// hotplugged NIC's port and MAC join them with the batch that manages it,
// an unplugged one leaves them.
func TestWatcherPublishesWatchlist(t *testing.T) {
	r := newRig(t, twoBridges)
	ws := &watchingSource{}
	r.w.Sources = []Source{ws}
	r.k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning))
	r.k.Add(kerneltest.Tap("vnet8", "br2", kerneltest.Learning)) // a bridge not managed: watched all the same
	r.guest("g1", "running", "br0:vnet1:"+mac1, "br2:vnet8:"+mac9)
	r.start()
	r.waitFor("g1 managed", r.managed("vnet1", mac1))
	vnet1, vnet8 := r.k.Index("vnet1"), r.k.Index("vnet8")
	has := func(ports []int, macs ...string) func() bool {
		return func() bool {
			wl := ws.last()
			if wl == nil || len(wl.Ports) != len(ports) || len(wl.MACs) != len(macs) {
				return false
			}
			for _, p := range ports {
				if wl.Ports[p] != "g1" {
					return false
				}
			}
			for _, m := range macs {
				if !slices.Equal(wl.MACs[macKey(t, m)], []string{"g1"}) {
					return false
				}
			}
			return true
		}
	}
	r.waitFor("g1's ports and MACs", has([]int{vnet1, vnet8}, mac1, mac9))

	r.k.Add(kerneltest.Tap("vnet2", "br0", kerneltest.Learning))
	r.guest("g1", "running", "br0:vnet1:"+mac1, "br0:vnet2:"+mac2)
	r.emit(Event{Guest: "g1", Why: "test: hotplug"})
	r.waitFor("the hotplugged NIC managed", r.managed("vnet2", mac2))
	r.waitFor("the hotplugged NIC watched", has([]int{vnet1, r.k.Index("vnet2")}, mac1, mac2))

	r.k.Delete("vnet2")
	r.guest("g1", "running", "br0:vnet1:"+mac1)
	r.emit(Event{Guest: "g1", Why: "test: unplug"})
	r.waitFor("the unplugged NIC no longer watched", has([]int{vnet1}, mac1))
}

func macKey(t *testing.T, s string) [6]byte {
	hw, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return [6]byte(hw)
}
