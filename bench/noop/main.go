// Command noop does nothing. Built like the hooks (static, CGO_ENABLED=0,
// stripped), its exec-to-exit time is the floor under any Go hook: fork,
// exec, the Go runtime's start-up and exit.
package main

func main() {}
