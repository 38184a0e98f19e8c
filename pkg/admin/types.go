package admin

import (
	"github.com/fdbhook/fdbhook/pkg/apply"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// Reader is what status reads from the kernel: every device in one dump,
// and one FDB dump per bridge. A kernel.Conn is one.
type Reader interface {
	Links() ([]*model.Link, error)
	BridgeEntries(bridge *model.Link) ([]model.Entry, error)
}

// Kernel is what reconcile needs: the reads of status and the writes of a
// hook run. A kernel.Conn is one.
type Kernel interface {
	Reader
	apply.Writer
}
