// Command pause is a test image: the sandbox ("pause") container of the
// pods of make test-kubelet's real node (internal/testutil.AddRealNode),
// since registry.k8s.io/pause cannot be pulled where the tests run. It
// holds the pod's namespaces: it waits for SIGTERM or SIGINT and exits 0,
// and, as PID 1 of a pod sharing its process namespace, reaps the children
// that end up with it.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			return
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
