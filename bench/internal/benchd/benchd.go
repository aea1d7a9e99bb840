// Package benchd runs a Zoe daemon inside a benchmark's process.
package benchd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/zoe-project/zoe/core/daemon"
)

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Start runs the daemon of cfgFile in this process until stop is called;
// it returns the API's base URL once the API serves. version names the
// benchmark in the daemon's info.
func Start(ctx context.Context, cfgFile, zoeBin, version string, log io.Writer) (base string, stop func() error, err error) {
	ctx, cancel := context.WithCancel(ctx)
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{ConfigFile: cfgFile, Executable: zoeBin, Version: version,
			Diagnostics: os.Stderr, LogOutput: log, Ready: func(a net.Addr) { ready <- a }})
	}()
	select {
	case a := <-ready:
		return "http://" + a.String() + "/api/v1", func() error { cancel(); return <-done }, nil
	case err := <-done:
		cancel()
		return "", nil, fmt.Errorf("the daemon stopped before serving: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		<-done
		return "", nil, errors.New("the daemon did not serve within 60s")
	}
}
