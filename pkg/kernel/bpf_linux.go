package kernel

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The socket filter is classic BPF (SO_ATTACH_FILTER), run by the kernel
// on every notification for the socket before it is queued: what it drops
// costs the watcher nothing, not even a place in the receive buffer. It is
// compiled from FDBRules and a Watchlist by filterProgram.
//
// Classic BPF loads are big-endian, netlink headers are in the host's
// order: every constant compared with a loaded field is the field's bytes,
// as the host lays them out, read big-endian (loaded16, loaded32). A
// conditional jump reaches at most 255 instructions ahead; the program is
// laid out so that every one does, and longer jumps are BPF_JA.

// Where fdb_fill_info (net/bridge/br_fdb.c) puts the attributes of a
// bridge FDB notification: NDA_LLADDR (6 bytes, 12 with header and
// padding), NDA_MASTER (8), then NDA_FLAGS_EXT (8, Linux 6.2+) or, on older
// kernels, NDA_CACHEINFO. The filter reads these places only after checking
// the attribute headers there; a message laid out otherwise is kept, for
// Receive to decide.
const (
	offLLAddr  = offAttrs      // NDA_LLADDR's header; the MAC follows
	offMaster  = offAttrs + 12 // NDA_MASTER's header
	offThird   = offAttrs + 20 // NDA_FLAGS_EXT's header, or NDA_CACHEINFO's
	minFDBNote = offThird + 8  // the bytes the filter reads
	// offMACLow is the MAC's last four bytes, the key the MAC rule looks up.
	offMACLow = offLLAddr + unix.SizeofRtAttr + 2
	// sizeofNdaCacheinfo is struct nda_cacheinfo: four u32.
	sizeofNdaCacheinfo = 16
)

const (
	retKeep = 0xffffffff // keep the whole message
	retDrop = 0
	// leafKeys is how many keys a leaf of a search tree compares in a row.
	leafKeys = 16
)

// loaded16 and loaded32 are what a BPF load of a field holding v, in the
// host's byte order, reads.
func loaded16(v uint16) uint32 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], v)
	return uint32(binary.BigEndian.Uint16(b[:]))
}

func loaded32(v uint32) uint32 {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	return binary.BigEndian.Uint32(b[:])
}

// attrHeader is what a 32-bit load of a netlink attribute header of
// payload size n and type typ reads.
func attrHeader(n int, typ uint16) uint32 {
	var b [4]byte
	binary.NativeEndian.PutUint16(b[0:2], uint16(unix.SizeofRtAttr+n))
	binary.NativeEndian.PutUint16(b[2:4], typ)
	return binary.BigEndian.Uint32(b[:])
}

// label is a place in a program, resolved when it is assembled.
type label int

const noLabel label = -1

// instr is an instruction whose jumps may still name labels.
type instr struct {
	f      unix.SockFilter
	jt, jf label // conditional jumps' targets (noLabel: f.Jt, f.Jf as they are)
	ja     label // an unconditional jump's target
}

// asm builds a program.
type asm struct {
	ins    []instr
	places []int // label → instruction index (-1: not placed yet)
}

func (a *asm) newLabel() label {
	a.places = append(a.places, -1)
	return label(len(a.places) - 1)
}

func (a *asm) place(l label) { a.places[l] = len(a.ins) }

func (a *asm) op(code uint16, k uint32) {
	a.ins = append(a.ins, instr{f: unix.SockFilter{Code: code, K: k}, jt: noLabel, jf: noLabel, ja: noLabel})
}

// jump is a conditional jump to jt or jf (noLabel: the next instruction).
func (a *asm) jump(code uint16, k uint32, jt, jf label) {
	a.ins = append(a.ins, instr{f: unix.SockFilter{Code: unix.BPF_JMP | code | unix.BPF_K, K: k}, jt: jt, jf: jf, ja: noLabel})
}

func (a *asm) goTo(l label) {
	a.ins = append(a.ins, instr{f: unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA}, jt: noLabel, jf: noLabel, ja: l})
}

func (a *asm) ret(k uint32) { a.op(unix.BPF_RET|unix.BPF_K, k) }

func (a *asm) load(size uint16, off uint32) { a.op(unix.BPF_LD|size|unix.BPF_ABS, off) }

// assemble resolves the labels; a conditional jump more than 255
// instructions ahead, or one backwards, is an error in the layout.
func (a *asm) assemble() ([]unix.SockFilter, error) {
	out := make([]unix.SockFilter, len(a.ins))
	rel := func(i int, l label) (int, error) {
		if l == noLabel {
			return 0, nil
		}
		d := a.places[l] - (i + 1)
		if a.places[l] < 0 || d < 0 {
			return 0, fmt.Errorf("socket filter: instruction %d jumps to label %d at %d", i, l, a.places[l])
		}
		return d, nil
	}
	for i, in := range a.ins {
		f := in.f
		if in.ja != noLabel {
			d, err := rel(i, in.ja)
			if err != nil {
				return nil, err
			}
			f.K = uint32(d)
		}
		for _, j := range []struct {
			l   label
			dst *uint8
		}{{in.jt, &f.Jt}, {in.jf, &f.Jf}} {
			d, err := rel(i, j.l)
			if err != nil {
				return nil, err
			}
			if d > 255 {
				return nil, fmt.Errorf("socket filter: instruction %d jumps %d ahead", i, d)
			}
			if j.l != noLabel {
				*j.dst = uint8(d)
			}
		}
		out[i] = f
	}
	return out, nil
}

// filterProgram compiles rules against wl. It keeps every message that is
// not a neighbour notification (links), and a neighbour notification when
// it is a bridge's FDB entry that a rule keeps, or one laid out otherwise
// than the filter knows (short, or attributes elsewhere): then Receive
// decides.
func filterProgram(rules []FDBRule, wl *Watchlist) ([]unix.SockFilter, error) {
	a := &asm{}
	neigh := a.newLabel()
	a.load(unix.BPF_H, offType)
	a.jump(unix.BPF_JEQ, loaded16(unix.RTM_NEWNEIGH), neigh, noLabel)
	a.jump(unix.BPF_JEQ, loaded16(unix.RTM_DELNEIGH), neigh, noLabel)
	a.jump(unix.BPF_JEQ, loaded16(unix.RTM_GETNEIGH), neigh, noLabel)
	a.ret(retKeep)
	a.place(neigh)
	a.keepUnless(func(no label) {
		a.load(unix.BPF_B, offFamily)
		a.jump(unix.BPF_JEQ, unix.AF_BRIDGE, noLabel, no)
	}, retDrop)
	a.keepUnless(func(no label) {
		a.op(unix.BPF_LD|unix.BPF_W|unix.BPF_LEN, 0)
		a.jump(unix.BPF_JGE, minFDBNote, noLabel, no)
		a.load(unix.BPF_W, offLLAddr)
		a.jump(unix.BPF_JEQ, attrHeader(6, unix.NDA_LLADDR), noLabel, no)
		a.load(unix.BPF_W, offMaster)
		a.jump(unix.BPF_JEQ, attrHeader(4, unix.NDA_MASTER), noLabel, no)
	}, retKeep)
	bridges := a.newLabel()
	a.load(unix.BPF_B, offFlags)
	a.jump(unix.BPF_JSET, unix.NTF_SELF, noLabel, bridges)
	a.ret(retDrop)
	a.place(bridges)
	for _, r := range rules {
		next := a.newLabel()
		a.rule(r, wl, next)
		a.place(next)
	}
	a.ret(retDrop)
	return a.assemble()
}

// keepUnless emits test, which jumps to its label when a condition fails;
// there the program returns ret. Where the tests pass it goes on.
func (a *asm) keepUnless(test func(fail label), ret uint32) {
	fail, ok := a.newLabel(), a.newLabel()
	test(fail)
	a.goTo(ok)
	a.place(fail)
	a.ret(ret)
	a.place(ok)
}

// rule emits the test of one rule: it returns retKeep where the rule
// matches and goes on at next where it does not.
func (a *asm) rule(r FDBRule, wl *Watchlist, next label) {
	keep := a.newLabel()
	switch {
	case r.StateAll|r.StateNone != 0:
		a.load(unix.BPF_H, offState)
		a.op(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, loaded16(r.StateAll|r.StateNone))
		a.jump(unix.BPF_JEQ, loaded16(r.StateAll), keep, next)
	case r.ExtFlags != 0:
		none := a.newLabel()
		a.load(unix.BPF_W, offThird)
		a.jump(unix.BPF_JEQ, attrHeader(4, netlink.NDA_FLAGS_EXT), noLabel, none)
		a.load(unix.BPF_W, offThird+unix.SizeofRtAttr)
		a.jump(unix.BPF_JSET, loaded32(r.ExtFlags), keep, next)
		a.place(none)
		// A kernel older than NDA_FLAGS_EXT in FDB notifications has
		// NDA_CACHEINFO there, and no locked entries; anything else is
		// a layout this filter does not know.
		a.jump(unix.BPF_JEQ, attrHeader(sizeofNdaCacheinfo, unix.NDA_CACHEINFO), next, keep)
	case r.Watched == WatchedPort:
		a.load(unix.BPF_W, offIfindex)
		a.search(portKeys(wl), next)
		return
	case r.Watched == WatchedMAC:
		a.load(unix.BPF_W, offMACLow)
		a.search(macKeys(wl), next)
		return
	default:
		a.goTo(next)
		return
	}
	a.place(keep)
	a.ret(retKeep)
}

// portKeys and macKeys are the sorted values a load of the entry's port
// index, or of its MAC's last four bytes, reads for the watched ones. Two
// MACs that share their last four bytes share a key: the filter then keeps
// both, and Receive tells them apart.
func portKeys(wl *Watchlist) []uint32 {
	if wl == nil {
		return nil
	}
	keys := make([]uint32, 0, len(wl.Ports))
	for p := range wl.Ports {
		keys = append(keys, loaded32(uint32(p)))
	}
	return sortedKeys(keys)
}

func macKeys(wl *Watchlist) []uint32 {
	if wl == nil {
		return nil
	}
	keys := make([]uint32, 0, len(wl.MACs))
	for m := range wl.MACs {
		keys = append(keys, binary.BigEndian.Uint32(m[2:6]))
	}
	return sortedKeys(keys)
}

func sortedKeys(keys []uint32) []uint32 {
	slices.Sort(keys)
	return slices.Compact(keys)
}

// search emits a binary search for the accumulator among keys: it returns
// retKeep when found and goes on at miss when not. Inner nodes split on
// the largest key of their left half; leaves compare up to leafKeys keys
// in a row, so a lookup costs about log2(len(keys)/leafKeys) + leafKeys
// comparisons, and the program about 1.25 instructions per key.
func (a *asm) search(keys []uint32, miss label) {
	if len(keys) <= leafKeys {
		found := a.newLabel()
		for _, k := range keys {
			a.jump(unix.BPF_JEQ, k, found, noLabel)
		}
		a.goTo(miss)
		a.place(found)
		a.ret(retKeep)
		return
	}
	// Full leaves: the left half gets half the leaves, each leafKeys keys.
	leaves := (len(keys) + leafKeys - 1) / leafKeys
	mid := leaves / 2 * leafKeys
	right := a.newLabel()
	// Above the left half's largest key: the next instruction, a jump to
	// the right half; otherwise skip it into the left half.
	a.jump(unix.BPF_JGT, keys[mid-1], noLabel, noLabel)
	a.ins[len(a.ins)-1].f.Jf = 1
	a.goTo(right)
	a.search(keys[:mid], miss)
	a.place(right)
	a.search(keys[mid:], miss)
}
