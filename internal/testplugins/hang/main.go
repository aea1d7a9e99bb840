// Command hang is a plugin for tests that never finishes starting: it hangs
// before the go-plugin handshake, as a plugin stuck at start-up would.
package main

import "time"

func main() {
	time.Sleep(time.Hour)
}
