package kernel

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestContainerVethNetns: in a lab namespace standing for the host, a veth
// whose peer was moved into a second namespace (a container's) reports that
// namespace's id as its PeerNetnsID, and NetnsIDOfPid of a process living in
// the second namespace gives the same id; a veth whose peer stayed (up0)
// reports -1, and one whose peer is in a third namespace another id. The
// ids are read back through iproute2 as the witness.
func TestContainerVethNetns(t *testing.T) {
	l := newLab(t)
	inner := func(tag string) string {
		name := fmt.Sprintf("%s-%s", l.name, tag)
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", name, err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
		return name
	}
	ct, other := inner("ct"), inner("other")
	ip := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", append([]string{"-n", l.name}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip -n %s %s: %v: %s", l.name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ip("link", "add", "ctv0", "type", "veth", "peer", "name", "ctv1", "netns", ct)
	ip("link", "add", "otv0", "type", "veth", "peer", "name", "otv1", "netns", other)

	// The container's init: a process in the container's namespace.
	init := exec.Command("ip", "netns", "exec", ct, "sleep", "60")
	if err := init.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { init.Process.Kill(); init.Wait() })
	// ip netns exec enters the namespace, then execs sleep: wait for it.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", init.Process.Pid)); strings.HasSuffix(exe, "/sleep") {
			break
		}
	}
	nsid, err := l.c.NetnsIDOfPid(init.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// The witness: the ids the lab namespace gives other namespaces, by
	// name ("nsid 0 (iproute2 netns name: NAME)"), and how ip -d link
	// names each veth's peer namespace ("link-netns NAME").
	names := map[int]string{}
	for _, line := range strings.Split(ip("netns", "list-id"), "\n") {
		var id int
		var name string
		if n, _ := fmt.Sscanf(line, "nsid %d (iproute2 netns name: %s", &id, &name); n == 2 {
			names[id] = strings.TrimSuffix(name, ")")
		}
	}
	if names[nsid] != ct {
		t.Fatalf("NetnsIDOfPid(init) = %d; the witness has %q under that id (all: %v), want %s", nsid, names[nsid], names, ct)
	}
	for dev, peerNS := range map[string]string{"ctv0": ct, "otv0": other, "up0": ""} {
		link, err := l.c.Link(dev)
		if err != nil || link == nil {
			t.Fatalf("Link(%s) = %v, %v", dev, link, err)
		}
		w := ip("-d", "link", "show", "dev", dev)
		if peerNS == "" {
			if link.PeerNetnsID != -1 || strings.Contains(w, "link-netns") {
				t.Errorf("%s: PeerNetnsID %d, want -1: its peer is in the same namespace (the witness says: %s)", dev, link.PeerNetnsID, w)
			}
			continue
		}
		if names[link.PeerNetnsID] != peerNS || !strings.Contains(w, "link-netns "+peerNS+" ") {
			t.Errorf("%s: PeerNetnsID %d (%q to the witness), want the id of %s (the witness says: %s)", dev, link.PeerNetnsID, names[link.PeerNetnsID], peerNS, w)
		}
		if (dev == "ctv0") != (link.PeerNetnsID == nsid) {
			t.Errorf("%s: PeerNetnsID %d; the container's init is in namespace id %d", dev, link.PeerNetnsID, nsid)
		}
	}
	if _, err := l.c.NetnsIDOfPid(0); err == nil {
		t.Error("NetnsIDOfPid(0) did not fail")
	}
}
