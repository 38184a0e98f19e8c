package plan

import (
	"testing"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/model"
)

func TestVlanPolicy(t *testing.T) {
	cfg, err := config.Parse([]byte("bridges = [\"br0\", \"br1\"]\n[bridge.br0]\nvlan_filtering = \"enable\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		br   model.Link
		want VlanAction
	}{
		{model.Link{Name: "br0", VlanCapable: true}, VlanEnable},
		{model.Link{Name: "br0", VlanCapable: true, VlanFiltering: true}, VlanLeave},
		{model.Link{Name: "br0"}, VlanCannot},
		{model.Link{Name: "br1", VlanCapable: true}, VlanLeave}, // "leave" by default
		{model.Link{Name: "br9", VlanCapable: true}, VlanLeave}, // not configured
	} {
		if got := VlanPolicy(cfg, &tc.br); got != tc.want {
			t.Errorf("%s (filtering %v, capable %v): %d, want %d", tc.br.Name, tc.br.VlanFiltering, tc.br.VlanCapable, got, tc.want)
		}
	}
}
