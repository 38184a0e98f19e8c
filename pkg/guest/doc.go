// Package guest turns the domain XML that libvirt hands a hook (a <domain>,
// or the <domstatus> of /run/libvirt/qemu/NAME.xml around one) into a typed
// Guest with its NICs and the fdbhook options from the domain's <metadata>
// (namespace urn:fdbhook:1). It is pure: no kernel access.
package guest
