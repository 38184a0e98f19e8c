// Package model holds the types every layer of fdbhook speaks: what the
// kernel says about a device (Link, Flags, Vlan, Entry), what libvirt's
// files say about a network (Network), and the two kernel interfaces
// (Reader, Writer) that pkg/kernel implements, pkg/kernel/kerneltest fakes,
// and the planner, the applier, the admin commands and the watcher use.
//
// It imports nothing of fdbhook's, so the kernel and libvirt layers need
// not import the planner.
package model
