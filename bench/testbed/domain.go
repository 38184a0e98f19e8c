package testbed

import (
	"bytes"
	"fmt"
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
	var b bytes.Buffer
	fmt.Fprintf(&b, "<domain type='kvm' id='7'>\n  <name>%s</name>\n", name)
	fmt.Fprintf(&b, "  <uuid>0f0b0e0c-0000-4000-8000-%012x</uuid>\n", len(name)*1000+len(nics))
	b.WriteString("  <memory unit='KiB'>65536</memory>\n  <vcpu placement='static'>1</vcpu>\n")
	b.WriteString("  <os>\n    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>\n  </os>\n  <devices>\n")
	b.WriteString("    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n")
	for i, n := range nics {
		fmt.Fprintf(&b, "    <interface type='bridge'>\n      <mac address='%s'/>\n      <source bridge='%s'/>\n", n.MAC, bridge)
		if n.Tap != "" {
			fmt.Fprintf(&b, "      <target dev='%s'/>\n", n.Tap)
		}
		fmt.Fprintf(&b, "      <model type='virtio'/>\n      <alias name='net%d'/>\n", i)
		fmt.Fprintf(&b, "      <address type='pci' domain='0x0000' bus='0x%02x' slot='0x%02x' function='0x0'/>\n    </interface>\n",
			1+i/32, i%32)
	}
	b.WriteString("    <memballoon model='virtio'/>\n  </devices>\n</domain>\n")
	return b.Bytes()
}
