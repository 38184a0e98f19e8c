package admin

import (
	"os"
	"testing"

	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// suite holds private copies of bin/qemu-hook and bin/network-hook (built
// when missing), so a concurrent `make build` cannot swap them halfway.
// Namespaces are fdbt-adm-<pid>-<n>.
var suite = &testlab.Suite{Name: "admin", Tag: "adm", Programs: []string{"qemu-hook", "network-hook"}}

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }
