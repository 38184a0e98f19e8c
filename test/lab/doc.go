// Package lab is the harness the kernel test suites (test/integration,
// test/features, test/admin) share, and nothing else imports: each suite's
// TestMain copies the binaries it runs once (a Suite), and each test builds
// its host in throw-away network namespaces (a Namespace) that are deleted
// when it ends.
//
// A Namespace is never entered by the test's own thread: links are made
// through a netlink handle opened inside it, iproute2 runs with `-n`, and
// binaries run under `ip netns exec`. Only InNS moves a locked thread into
// a namespace, to open file descriptors (a tap's, a packet socket) there.
//
// Everything is named fdbt-<tag>-<pid>-<n>; a suite deletes what runs of it
// that died left behind. Tests need root and skip, saying why, without it.
package lab
