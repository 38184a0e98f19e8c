package testbed

import (
	"fmt"
	"strings"

	"github.com/fdbhook/fdbhook/test/lab"
)

// NIC is one bridged guest interface: its MAC and its tap.
type NIC struct {
	MAC string
	Tap string
}

// NICs returns n NICs whose taps are prefix0…prefix(n-1) and whose MACs are
// 52:54:00:<tag>:HH:LL, so different guests of one benchmark never share a
// MAC.
func NICs(prefix string, tag byte, n int) []NIC {
	out := make([]NIC, n)
	for i := range out {
		out[i] = NIC{
			MAC: fmt.Sprintf("52:54:00:%02x:%02x:%02x", tag, i>>8, i&0xff),
			Tap: fmt.Sprintf("%s%d", prefix, i),
		}
	}
	return out
}

// DomainXML renders live domain XML, as libvirt passes it to a start hook,
// with one <interface type='bridge'> on bridge per NIC. A NIC without a tap
// gets no <target>, as in the XML of a stopped guest.
func DomainXML(name, bridge string, nics []NIC) []byte {
	d := lab.Domain{Name: name, ID: 7, UUID: fmt.Sprintf("0f0b0e0c-0000-4000-8000-%012x", len(name)*1000+len(nics)),
		Body: "  <memory unit='KiB'>65536</memory>\n  <vcpu placement='static'>1</vcpu>\n" +
			"  <os>\n    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>\n  </os>\n",
		Devices: "    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"}
	for i, n := range nics {
		d.NICs = append(d.NICs, lab.NIC{MAC: n.MAC, Bridge: bridge, Target: n.Tap, Model: "virtio", Alias: "-",
			Extra: fmt.Sprintf("      <address type='pci' domain='0x0000' bus='0x%02x' slot='0x%02x' function='0x0'/>\n", 1+i/32, i%32)})
	}
	return []byte(strings.Replace(d.XML(), "  </devices>", "    <memballoon model='virtio'/>\n  </devices>", 1))
}
