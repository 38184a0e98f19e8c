// Command watchprof is cmd/fdbhook with profiling for bench/watch's churn
// mode (-profile): with FDBHOOK_PROF_DIR set, the Nth SIGUSR1 starts a CPU
// profile and writes the allocation profile start-N.heap there, the next
// SIGUSR2 stops the CPU profile (cpu-N.pprof) and writes end-N.heap, so
// that `go tool pprof -sample_index=alloc_space -base start-N.heap
// end-N.heap` shows what was allocated in between. bench/watch.sh builds it
// from this tree and, copied in, from the commit the watcher is compared
// with.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"

	"github.com/fdbhook/fdbhook/pkg/cli"
)

func main() {
	if dir := os.Getenv("FDBHOOK_PROF_DIR"); dir != "" {
		go profile(dir)
	}
	os.Exit(cli.Main(cli.NewEnv(), os.Args[1:]))
}

func profile(dir string) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGUSR1, syscall.SIGUSR2)
	var cpu *os.File
	n := 0
	for s := range ch {
		switch {
		case s == syscall.SIGUSR1 && cpu == nil:
			n++
			heap(filepath.Join(dir, fmt.Sprintf("start-%d.heap", n)))
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("cpu-%d.pprof", n)))
			if err == nil && pprof.StartCPUProfile(f) == nil {
				cpu = f
			}
		case s == syscall.SIGUSR2 && cpu != nil:
			pprof.StopCPUProfile()
			cpu.Close()
			cpu = nil
			heap(filepath.Join(dir, fmt.Sprintf("end-%d.heap", n)))
		}
	}
}

// heap writes the allocation profile to path, whole once path exists.
func heap(path string) {
	f, err := os.Create(path + ".new")
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Rename(path+".new", path)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "watchprof: %v\n", err)
	}
}
