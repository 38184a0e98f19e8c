// Package kernel is the only code that talks to the kernel. It reads links,
// bridge port flags (learning, unicast_flood, locked, mab), port VLANs and
// FDB entries (locked ones too) for package plan, and writes port flags, port VLANs, FDB entries
// (sticky ones too) and bridge VLAN filtering for package apply, over one
// rtnetlink socket per run whose calls are bounded by a timeout.
//
// Every message is built and parsed with vishvananda/netlink's types and
// deserializers (nl.NetlinkRequest, nl.NewIfInfomsg, netlink.Ndmsg,
// nl.BridgeVlanInfo, netlink.LinkDeserialize, netlink.NeighDeserialize),
// but sent by this package rather than through a netlink.Handle. A Handle
// opens sockets of its own, one per call family, which the connection's one
// socket and its timeout cannot be shared with; it waits for each answer
// before the next request, where a guest start sends its reads and writes
// pipelined (Prefetch, Pipeline); and its Execute costs a third of a small
// request's round trip. Where the library has a call for the same work
// (LinkByName, LinkList, NeighSet, NeighDel, LinkSetLearning and
// LinkSetFlood, BridgeVlanList, BridgeSetVlanFiltering), bench_linux_test.go
// measures it beside this package's: `go test -bench . ./pkg/kernel` (root);
// bench/results.md has the figures. The comment on each request says which
// library call does the same work, or that none does.
//
// The watcher's notifications are the exception to that: Notifier reads
// them on a socket of its own, parsed in place from one buffer, because on
// a bridge whose uplink is on a busy segment the kernel sends thousands a
// second and the library's NeighSubscribe allocates a NeighUpdate for each
// and hands it through a channel. A classic BPF socket filter compiled
// from FDBRules (the one table of what the watcher needs: static and locked
// entries, entries on guests' ports or for guests' MACs) drops the rest in
// the kernel, before it takes a place in the socket's buffer. The constants
// are the library's and x/sys/unix's where they have them.
package kernel
