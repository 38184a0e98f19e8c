package kernel

import "github.com/fdbhook/fdbhook/pkg/model"

// A Conn is the kernel the rest of fdbhook reads and writes.
var _ model.Kernel = (*Conn)(nil)
