package admin

import (
	"os"
	"testing"

	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// suite holds private copies of bin/fdbhook, bin/qemu-hook and
// bin/network-hook (built when missing), so a concurrent `make build`
// cannot swap them halfway. doctor checks the two hooks it finds installed.
// Namespaces are fdbt-adm-<pid>-<n>.
var suite = &testlab.Suite{Name: "admin", Tag: "adm", Programs: []string{"fdbhook", "qemu-hook", "network-hook"}}

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }
