package features

import (
	"os"
	"testing"

	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// suite holds a private copy of bin/qemu-hook and bin/fdbhook (built when
// missing; fdbhook for status), so a
// concurrent `make build` cannot swap it out halfway through. Namespaces
// are fdbt-ft-<pid>-<n>-host and -wire.
var suite = &testlab.Suite{Name: "features", Tag: "ft", Programs: []string{"qemu-hook", "fdbhook"}}

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }
