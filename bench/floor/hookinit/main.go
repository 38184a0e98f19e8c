// Command hookinit links and initialises everything qemu-hook imports and
// then exits: exec'ing it costs what the hook pays before its main runs
// (runtime start-up, package initialisation, a binary of the hook's size).
package main

import _ "github.com/fdbhook/fdbhook/pkg/hook"

func main() {}
