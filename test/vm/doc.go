// Package vm holds the tests that run inside a QEMU virtual machine booted
// from Debian's cloud kernel by run.sh in this directory. That kernel has
// bridge VLAN filtering, which the development kernel lacks, so these tests
// check what needs it: the bridge turning promiscuous mode off on the uplink
// once every guest port has learning and flood off, and per-VLAN static
// entries. The tests are built only with the "vm" build tag and exec the real
// static hook binaries copied into the VM.
package vm
