package events

import (
	"os"
	"slices"
	"testing"
)

func TestIgnored(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"g", "prepare", "begin", "-"}, true},
		{[]string{"g", "started", "begin", "-"}, true},
		{[]string{"g", "some-new-op", "begin", "-"}, true},
		{[]string{"--dry-run", "g", "prepare", "begin", "-"}, true},
		{[]string{"-n", "g", "release", "begin", "-"}, true},
		{[]string{"g", "start", "begin", "-"}, false},
		{[]string{"g", "release", "end", "-"}, false},
		{[]string{"-n", "g", "start", "begin", "-"}, false},
		// Not hook calls: left to the hook's own command line handling.
		{[]string{"g", "prepare", "begin"}, false},
		{[]string{"--help"}, false},
		{[]string{"x", "g", "prepare", "begin", "-"}, false},
		{nil, false},
	} {
		if got := Ignored(Qemu, c.args); got != c.want {
			t.Errorf("Ignored(Qemu, %q) = %v, want %v", c.args, got, c.want)
		}
	}
	if Ignored(Network, []string{"n", "started", "begin", "-"}) || !Ignored(Network, []string{"n", "stopped", "end", "-"}) {
		t.Error("the network table is not the one consulted")
	}
}

// TestCommandLine: the arguments read from /proc are the process's.
func TestCommandLine(t *testing.T) {
	args, ok := commandLine()
	if !ok || !slices.Equal(args, os.Args) {
		t.Errorf("commandLine() = %q, %v; os.Args is %q", args, ok, os.Args)
	}
}
