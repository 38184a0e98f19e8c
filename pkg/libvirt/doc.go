// Package libvirt reads libvirt's own state files — never its API, which a
// hook must not call (libvirt holds locks while it runs hooks). It answers
// which bridge a libvirt network uses and whether libvirt manages its MAC
// table itself; it reads a directory of guest files (ReadGuests), and
// says which running guest owns a port (PortOwners, PortOwner).
package libvirt
