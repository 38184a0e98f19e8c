package integration

import (
	"os"
	"testing"

	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// repoRoot is the repository, relative to this package's directory (where
// go test runs).
const repoRoot = testlab.RepoRoot

// suite holds the qemu-hook binary under test, a private copy of
// bin/qemu-hook (built when missing), so a concurrent `make build` cannot
// swap it out halfway through the suite. $FDBHOOK_TEST_BIN names another
// binary instead (an installed package's, say). Namespaces are
// fdbt-it-<pid>-<n>.
var suite = &testlab.Suite{Name: "integration", Tag: "it", Programs: []string{"qemu-hook"}, BinEnv: "FDBHOOK_TEST_BIN"}

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }
