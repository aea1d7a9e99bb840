package testutil

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// Logger returns a debug logger whose output is shown only when the test
// fails. It stays safe to use after the test ended (plugin log forwarding
// may still be draining), unlike t.Log.
func Logger(t testing.TB) hclog.Logger {
	buf := &SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Debug, Output: buf})
}

// PluginLogger is Logger for a plugin, which logs with log/slog.
func PluginLogger(t testing.TB) *slog.Logger {
	buf := &SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("plugin log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// SyncBuffer is a log output that may be written from several goroutines.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
