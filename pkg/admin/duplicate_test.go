package admin

import (
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/manage"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// dupHost is br0 with uplink eth0 and taps vnet1 (older) and vnet2, set up
// by the case; a and b are running guests with NICs on them.
type dupCase struct {
	name string
	// setup changes the host: flags, entries, the bridge.
	setup func(k *kerneltest.Kernel)
	// b is the second guest's live XML NIC ("" : none); optOut opts b's
	// NIC out.
	b      string
	optOut bool
	// ask is the question's guest ("a" or "b"), rewrite and outgoing its
	// flags.
	ask               string
	rewrite, outgoing bool

	action manage.MACAction
	owner  string // the keeper's guest, for manage.RefuseNIC
	pin    bool
	why    string // in Why
}

func TestDecideMAC(t *testing.T) {
	// managedAWith: A's port vnet1 managed, A's MAC's entry on port.
	managedAWith := func(port string) func(*kerneltest.Kernel) {
		return func(k *kerneltest.Kernel) { k.SetFlags("vnet1", kerneltest.Managed); k.AddStatic(macG1, port) }
	}
	managedA, learnedByB, roamed := managedAWith("vnet1"), managedAWith("vnet2"), managedAWith("eth0")
	// heldByB: A's MAC's entry on B's managed port vnet2.
	heldByB := func(k *kerneltest.Kernel) { k.SetFlags("vnet2", kerneltest.Managed); k.AddStatic(macG1, "vnet2") }
	for _, tc := range []dupCase{
		{name: "A first, B second: A keeps it, pinned", setup: managedA, b: macG1, ask: "a",
			action: manage.WriteEntry, pin: true, why: "pinned: guest b (net0 on vnet2) has this MAC too"},
		{name: "A first, B second: B refused", setup: managedA, b: macG1, ask: "b",
			action: manage.RefuseNIC, owner: "a", why: "guest a (net0 on vnet1) has it on this bridge too and keeps it; this guest's port vnet2 is left as it is"},
		{name: "B's port learned A's entry: A takes it back, also between starts", b: macG1, ask: "a", setup: learnedByB,
			action: manage.WriteEntry, pin: true, why: "back from vnet2, the port of guest b, which learned it from a frame"},
		{name: "B's port learned A's entry: B still refused", b: macG1, ask: "b", setup: learnedByB,
			action: manage.RefuseNIC, owner: "a"},
		{name: "the holder that does not learn keeps it, though its port is newer", b: macG1, ask: "a", setup: heldByB,
			action: manage.RefuseNIC, owner: "b"},
		{name: "neither managed: the older port keeps it", b: macG1, ask: "b",
			action: manage.RefuseNIC, owner: "a"},
		{name: "an opted-out duplicate never keeps it, but pins", b: macG1, optOut: true, ask: "a",
			setup:  func(k *kerneltest.Kernel) { k.AddStatic(macG1, "vnet2") },
			action: manage.WriteEntry, pin: true, why: "back from vnet2"},
		{name: "sticky entries: A keeps it, B refused", b: macG1, ask: "b",
			setup: func(k *kerneltest.Kernel) {
				k.SetFlags("vnet1", kerneltest.Managed)
				k.AddEntry(model.Entry{MAC: macG1, Port: "vnet1", State: model.NUDNoARP, NTFlags: model.NTFMaster | model.NTFSticky})
			},
			action: manage.RefuseNIC, owner: "a"},
		{name: "no sticky entries in this kernel: nothing pinned", b: macG1, ask: "a",
			setup:  func(k *kerneltest.Kernel) { managedA(k); k.Device("br0").StickyCapable = false },
			action: manage.WriteEntry},
		{name: "uplink roam while the guest runs: left there", ask: "a", setup: roamed,
			action: manage.LeaveEntry, why: "a duplicate or a spoof"},
		{name: "uplink roam, the guest started or resumed: written back", ask: "a", rewrite: true, setup: roamed,
			action: manage.WriteEntry},
		{name: "migration out: the announcement's move is left", ask: "a", outgoing: true, setup: roamed,
			action: manage.LeaveEntry, why: "migrating away"},
		{name: "a static entry on a managed tap of a guest without the MAC: refused", b: macG2, ask: "a", setup: heldByB,
			action: manage.RefuseNIC, why: "it already has a static entry on vnet2, the port of guest b"},
		{name: "a spoofer's learning port took it: written back, not pinned", b: macG2, ask: "a", setup: learnedByB,
			action: manage.WriteEntry, why: "back from vnet2"},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t) })
	}
}

func (tc dupCase) run(t *testing.T) {
	k := kerneltest.New()
	k.Add(kerneltest.Bridge("br0"))
	k.Add(kerneltest.Uplink("eth0", "br0"))
	k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning))
	k.Add(kerneltest.Tap("vnet2", "br0", kerneltest.Learning))
	if tc.setup != nil {
		tc.setup(k)
	}
	running := []*guest.Guest{domain(t, "a", nil, "bridge:br0:vnet1:"+macG1)}
	if tc.b != "" {
		var optOut []string
		if tc.optOut {
			optOut = []string{tc.b}
		}
		running = append(running, domain(t, "b", optOut, "bridge:br0:vnet2:"+tc.b))
	}
	st := state(t, k, cfgBr0, running, nil)
	port := map[string]string{"a": "vnet1", "b": "vnet2"}[tc.ask]
	d, err := st.DecideMAC(manage.MACQuestion{Guest: tc.ask, NIC: "net0", MAC: macG1, Port: st.Kernel.Device(port),
		Bridge: st.Kernel.Device("br0"), Rewrite: tc.rewrite, OutgoingMigration: tc.outgoing})
	if err != nil {
		t.Fatal(err)
	}
	owner := ""
	if d.Owner != nil {
		owner = d.Owner.Guest
	}
	if d.Action != tc.action || owner != tc.owner || d.Pin != tc.pin || !strings.Contains(d.Why, tc.why) {
		t.Errorf("decision %+v (owner %q), want action %d, owner %q, pin %v, why containing %q", d, owner, tc.action, tc.owner, tc.pin, tc.why)
	}
	if k.Writes() != 0 {
		t.Errorf("deciding wrote to the kernel")
	}
}
