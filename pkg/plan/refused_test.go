package plan

import "testing"

func TestRefused(t *testing.T) {
	if err := (&Plan{}).Refused(); err != nil {
		t.Errorf("a plan without refusals: %v, want nil", err)
	}
	p := &Plan{Refusals: []Refusal{
		{NIC: "net0", MAC: "52:54:00:aa:cc:01", Bridge: "br0", Cause: "tap vnet0 does not exist"},
		{NIC: "net1", Cause: "no MAC address"},
	}}
	want := "52:54:00:aa:cc:01 on br0: tap vnet0 does not exist; net1: no MAC address"
	if err := p.Refused(); err == nil || err.Error() != want {
		t.Errorf("Refused() = %v, want %q", err, want)
	}
}
