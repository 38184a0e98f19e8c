package guest

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestFeatureMetadata(t *testing.T) {
	base := string(fixture(t, "qemu-t2-start-begin.xml"))
	with := func(md string) []byte { return []byte(strings.Replace(base, "<metadata>", "<metadata>"+md, 1)) }

	g, err := Parse(with(`<f:fdb xmlns:f="urn:fdbhook:1" lock="yes" sticky="no">` +
		`<f:interface mac="52:54:00:AA:CC:01" lock="no" sticky="yes" pvid="10" vlans="30,20-22">` +
		`<f:mac address="00:00:5E:00:01:0A"/><f:mac address="52:54:00:00:00:77"/></f:interface>` +
		`<f:interface mac="52:54:00:aa:cc:03"/></f:fdb>`))
	if err != nil {
		t.Fatal(err)
	}
	if g.Lock != Yes || g.Sticky != No {
		t.Errorf("guest lock %v sticky %v, want yes and no", g.Lock, g.Sticky)
	}
	m := g.Metadata(g.NICs[0])
	if m.Lock != No || m.Sticky != Yes || m.Pvid != 10 || !slices.Equal(m.Vlans, []int{20, 21, 22, 30}) ||
		!slices.Equal(m.ExtraMACs, []string{"00:00:5e:00:01:0a", "52:54:00:00:00:77"}) || !m.HasVlans() {
		t.Errorf("net0 metadata = %+v", m)
	}
	if m := g.Metadata(g.NICs[2]); m.Lock != Unset || m.Sticky != Unset || m.HasVlans() || len(m.ExtraMACs) != 0 || !m.Manage {
		t.Errorf("net2 metadata = %+v, want nothing set", m)
	}
	if m := g.Metadata(g.NICs[1]); !m.Manage || m.Lock != Unset {
		t.Errorf("unnamed NIC metadata = %+v, want the defaults", m)
	}
	// NIC beats guest beats bridge.
	if !Unset.Or(true) || Unset.Or(false) || !Yes.Or(false) || No.Or(true) {
		t.Errorf("Setting.Or is wrong")
	}
	// The default-namespace form virsh writes.
	g, err = Parse(with(`<fdb xmlns="urn:fdbhook:1"><interface mac="52:54:00:aa:cc:01" vlans="5"><mac address="00:00:5e:00:01:0b"/></interface></fdb>`))
	if err != nil {
		t.Fatal(err)
	}
	if m := g.Metadata(g.NICs[0]); m.Pvid != 0 || !slices.Equal(m.Vlans, []int{5}) || !slices.Equal(m.ExtraMACs, []string{"00:00:5e:00:01:0b"}) {
		t.Errorf("default-namespace metadata = %+v", m)
	}

	// undeclared-macs: the NIC's beats the guest's; absent is "".
	g, err = Parse(with(`<f:fdb xmlns:f="urn:fdbhook:1" undeclared-macs="report">` +
		`<f:interface mac="52:54:00:aa:cc:01" undeclared-macs="ignore"/><f:interface mac="52:54:00:aa:cc:02" undeclared-macs="follow"/><f:interface mac="52:54:00:aa:cc:03"/></f:fdb>`))
	if err != nil {
		t.Fatal(err)
	}
	if g.UndeclaredMACs != "report" || g.Metadata(g.NICs[0]).UndeclaredMACs != "ignore" || g.Metadata(g.NICs[1]).UndeclaredMACs != "follow" || g.Metadata(g.NICs[2]).UndeclaredMACs != "" {
		t.Errorf("undeclared-macs: guest %q, net0 %q, net1 %q, net2 %q; want report, ignore, follow, \"\"",
			g.UndeclaredMACs, g.Metadata(g.NICs[0]).UndeclaredMACs, g.Metadata(g.NICs[1]).UndeclaredMACs, g.Metadata(g.NICs[2]).UndeclaredMACs)
	}

	const pre = `<f:fdb xmlns:f="urn:fdbhook:1"><f:interface mac="52:54:00:aa:cc:01" `
	for name, tc := range map[string]struct{ md, want string }{
		"bad guest lock":       {`<f:fdb xmlns:f="urn:fdbhook:1" lock="true"/>`, `lock="true"`},
		"bad guest sticky":     {`<f:fdb xmlns:f="urn:fdbhook:1" sticky="1"/>`, `sticky="1"`},
		"bad nic lock":         {pre + `lock="on"/></f:fdb>`, `lock="on"`},
		"bad guest undeclared": {`<f:fdb xmlns:f="urn:fdbhook:1" undeclared-macs="yes"/>`, `undeclared-macs="yes": want "ignore", "report" or "follow"`},
		"bad nic undeclared":   {pre + `undeclared-macs="learn"/></f:fdb>`, `undeclared-macs="learn"`},
		"pvid zero":            {pre + `pvid="0"/></f:fdb>`, "not a VLAN ID"},
		"pvid 4095":            {pre + `pvid="4095"/></f:fdb>`, "not a VLAN ID"},
		"pvid text":            {pre + `pvid="ten"/></f:fdb>`, "not a VLAN ID"},
		"vlans backwards":      {pre + `vlans="30-20"/></f:fdb>`, "runs backwards"},
		"vlans out of range":   {pre + `vlans="10,4095"/></f:fdb>`, "not a VLAN ID"},
		"vlans empty item":     {pre + `vlans="10,,20"/></f:fdb>`, "not a VLAN ID"},
		"vlans overlap":        {pre + `vlans="10-20,15"/></f:fdb>`, "VLAN 15 given twice"},
		"pvid also tagged":     {pre + `pvid="10" vlans="5-15"/></f:fdb>`, "both the pvid and tagged"},
		"extra mac bad":        {pre + `><f:mac address="zz"/></f:interface></f:fdb>`, "not a 48-bit"},
		"extra mac multicast":  {pre + `><f:mac address="01:00:5e:00:00:01"/></f:interface></f:fdb>`, "multicast"},
		"extra mac is nic":     {pre + `><f:mac address="52:54:00:AA:CC:01"/></f:interface></f:fdb>`, "given twice"},
		"extra mac twice":      {pre + `><f:mac address="00:00:5e:00:01:0a"/><f:mac address="00:00:5e:00:01:0a"/></f:interface></f:fdb>`, "given twice"},
		"unknown child":        {pre + `><f:vlan id="3"/></f:interface></f:fdb>`, "unknown element <vlan>"},
		"too many extra macs":  {pre + ">" + strings.Repeat(`<f:mac address="00:00:5e:00:01:0a"/>`, 1) + manyMACs(MaxExtraMACs) + `</f:interface></f:fdb>`, "more than 64"},
	} {
		if _, err := Parse(with(tc.md)); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Parse = %v, want ErrInput containing %q", name, err, tc.want)
		}
	}
}

func manyMACs(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(`<f:mac address="02:00:00:00:` + hex2(i/256) + ":" + hex2(i%256) + `"/>`)
	}
	return b.String()
}

func hex2(i int) string { return string("0123456789abcdef"[i/16]) + string("0123456789abcdef"[i%16]) }

func TestParseVlanList(t *testing.T) {
	got, err := ParseVlanList(" 1, 4094,100-102 ")
	if err != nil || !slices.Equal(got, []int{1, 100, 101, 102, 4094}) {
		t.Errorf("ParseVlanList = %v, %v", got, err)
	}
}
