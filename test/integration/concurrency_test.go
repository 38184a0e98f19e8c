package integration

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// seed returns the random seed of a test: $FDBHOOK_TEST_SEED to replay a
// failure, the clock otherwise. It is logged either way.
func seed(t *testing.T) uint64 {
	t.Helper()
	s := uint64(time.Now().UnixNano())
	if env := os.Getenv("FDBHOOK_TEST_SEED"); env != "" {
		v, err := strconv.ParseUint(env, 10, 64)
		if err != nil {
			t.Fatalf("FDBHOOK_TEST_SEED: %v", err)
		}
		s = v
	}
	t.Logf("seed %d (replay with FDBHOOK_TEST_SEED=%d)", s, s)
	return s
}

// TestConcurrentGuests: 32 guests on one bridge start at once (libvirt
// runs hooks of different guests in parallel); a random half of them
// stop again while the others are still starting: their taps go first, as
// when QEMU exits, and for some the guest's entry first roamed to the
// uplink. In the end every running guest is fully managed and no entry is
// left for a stopped guest's MAC. Repeated 20 times, each in a fresh
// namespace.
func TestConcurrentGuests(t *testing.T) {
	t.Parallel()
	const guests, reps = 32, 20
	rng := rand.New(rand.NewPCG(seed(t), 0))
	runs := 0
	began := time.Now()
	for rep := 1; rep <= reps; rep++ {
		ok := t.Run(fmt.Sprintf("rep %d", rep), func(t *testing.T) {
			runs += concurrentRep(t, guests, rng)
		})
		if !ok {
			break
		}
	}
	t.Logf("%d repetitions of %d guests: %d hook runs in %s", reps, guests, runs, time.Since(began).Round(time.Millisecond))
}

func concurrentRep(t *testing.T, guests int, rng *rand.Rand) int {
	l := newLab(t)
	l.AddBridge("br0")
	l.AddVeth("up0", "up1", "br0")
	var batch []string
	tap := func(i int) string { return fmt.Sprintf("fdbtc%02d", i) }
	for i := range guests {
		batch = append(batch, "tuntap add dev "+tap(i)+" mode tap", "link set "+tap(i)+" master br0")
	}
	l.Batch("ip", batch)
	up0 := l.Index("up0")

	type guestPlan struct {
		stop  bool
		roam  bool
		delay time.Duration
	}
	plans := make([]guestPlan, guests)
	for i, p := range rng.Perm(guests) {
		plans[p].stop = i < guests/2
		plans[p].roam = plans[p].stop && rng.IntN(2) == 0
		plans[p].delay = time.Duration(rng.IntN(3000)) * time.Microsecond
	}
	dirs := make([]string, guests)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
		runs int
	)
	report := func(format string, args ...any) {
		mu.Lock()
		errs = append(errs, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	hook := func(i int, op, subop string, xml []byte) bool {
		r, err := l.runHook(dirs[i], call{Args: []string{fmt.Sprintf("fdbt-c%02d", i), op, subop, "-"}, Stdin: xml})
		mu.Lock()
		runs++
		mu.Unlock()
		switch {
		case err != nil:
			report("guest %d %s: %v", i, op, err)
		case r.Code != 0 || r.Stdout != "":
			report("guest %d %s %s: %s", i, op, subop, r)
		default:
			return true
		}
		return false
	}
	start := make(chan struct{})
	for i := range guests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := nic{MAC: mac(10, i), Bridge: "br0", Target: tap(i)}
			name := fmt.Sprintf("fdbt-c%02d", i)
			<-start
			time.Sleep(plans[i].delay)
			if !hook(i, "start", "begin", domain(name, "", n)) || !plans[i].stop {
				return
			}
			h, err := netlink.NewHandleAt(l.NetNS)
			if err != nil {
				report("guest %d: netlink handle: %v", i, err)
				return
			}
			defer h.Close()
			if plans[i].roam {
				hw, _ := net.ParseMAC(n.MAC)
				if err := h.NeighSet(&netlink.Neigh{LinkIndex: up0, Family: unix.AF_BRIDGE, State: unix.NUD_NOARP,
					Flags: unix.NTF_MASTER, HardwareAddr: hw}); err != nil {
					report("guest %d: roaming its entry to up0: %v", i, err)
				}
			}
			link, err := h.LinkByName(n.Target)
			if err == nil {
				err = h.LinkDel(link)
			}
			if err != nil {
				report("guest %d: deleting its tap: %v", i, err)
				return
			}
			hook(i, "stopped", "end", domain(name, "", stopped(n)...))
		}()
	}
	close(start)
	wg.Wait()
	for _, e := range errs {
		t.Error(e)
	}
	if _, err := os.Stat(l.lock); err != nil {
		t.Errorf("the guests' runs did not take the lab's run lock: %v", err)
	}

	s := l.snap()
	for i := range guests {
		m := mac(10, i)
		es := s.entriesFor(m)
		if plans[i].stop {
			if _, exists := s.Ports[tap(i)]; exists {
				t.Errorf("stopped guest %d: tap %s still exists", i, tap(i))
			}
			if len(es) > 0 {
				t.Errorf("stopped guest %d (roamed %v): entries left: %v", i, plans[i].roam, es)
			}
			continue
		}
		p := s.Ports[tap(i)]
		if p.Learning || p.Flood || p.Master != "br0" {
			t.Errorf("running guest %d: port %s is %s, want learning and flood off on br0", i, tap(i), p)
		}
		if len(es) != 1 || es[0].Port != tap(i) || es[0].State != unix.NUD_NOARP {
			t.Errorf("running guest %d: entries %v, want one static entry on %s", i, es, tap(i))
		}
	}
	if t.Failed() {
		t.Logf("plans (stop, roam, delay): %v", plans)
	}
	return runs
}

// TestConcurrentDuplicateMAC: two guests with the same MAC start at the
// same moment. The run lock makes the second see the first's entry:
// exactly one starts, the other is refused naming the winner's port, and
// the loser's tap is untouched.
func TestConcurrentDuplicateMAC(t *testing.T) {
	t.Parallel()
	const reps = 10
	for rep := 1; rep <= reps; rep++ {
		l := newLab(t)
		l.AddBridge("br0")
		l.AddVeth("up0", "up1", "br0")
		l.AddTap("fdbtx", "br0")
		l.AddTap("fdbty", "br0")
		m := mac(11, rep)
		var wg sync.WaitGroup
		res := make([]result, 2)
		errs := make([]error, 2)
		for i, tapName := range []string{"fdbtx", "fdbty"} {
			dir := t.TempDir()
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := "fdbt-" + tapName
				res[i], errs[i] = l.runHook(dir, call{Args: []string{name, "start", "begin", "-"},
					Stdin: domain(name, "", nic{MAC: m, Bridge: "br0", Target: tapName})})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := os.Stat(l.lock); err != nil {
			t.Fatalf("rep %d: the runs did not take the lab's run lock: %v", rep, err)
		}
		winner, loser := 0, 1
		if res[0].Code != 0 {
			winner, loser = 1, 0
		}
		taps := []string{"fdbtx", "fdbty"}
		if res[winner].Code != 0 || res[loser].Code != 1 {
			t.Errorf("rep %d: want one exit 0 and one exit 1, got %s and %s", rep, res[0], res[1])
			continue
		}
		if !strings.Contains(res[loser].Stderr, "duplicate MAC") || !strings.Contains(res[loser].Stderr, taps[winner]) {
			t.Errorf("rep %d: refusal does not name the duplicate on %s: %s", rep, taps[winner], res[loser])
		}
		l.checkManaged(t, taps[winner], m)
		if p := l.snap().Ports[taps[loser]]; !p.Learning || !p.Flood {
			t.Errorf("rep %d: refused guest's tap %s changed: %s", rep, taps[loser], p)
		}
	}
}
