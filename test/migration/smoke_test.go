package migration

import "testing"

func TestSmoke(t *testing.T) {
	p := NewPair(t)
	g := Guest{Name: "fdbmig-smoke", MAC: "52:54:00:4d:49:01", Tap: "fdbmigt0"}
	p.A.Create(t, g)
	t.Logf("A entries %v flags %s", p.A.staticEntries(t, g.MAC), p.A.portFlags(t, g.Tap))
	d, err := p.A.Migrate(g, p.B)
	t.Logf("migrate %v %v", d, err)
	t.Logf("A entries %v flags %s state %s", p.A.staticEntries(t, g.MAC), p.A.portFlags(t, g.Tap), p.A.State(g.Name))
	t.Logf("B entries %v flags %s state %s marks %v", p.B.staticEntries(t, g.MAC), p.B.portFlags(t, g.Tap), p.B.State(g.Name), p.B.Marks())
}
