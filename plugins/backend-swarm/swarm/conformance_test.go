package swarm_test

import (
	"testing"

	"github.com/zoe-project/zoe/internal/testimages"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/plugintest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	dep := deployment(t)
	plugintest.RunBackendConformance(t, plugintest.BackendSuite{
		New: func(t *testing.T) backend.Backend { return open(t, dep, nil) },
		Process: func(*testing.T) (string, sdk.Config) {
			return pluginBinary, sdk.Config{Deployment: dep, JSON: config(nil)}
		},
		LongRunning: func() backend.ServiceSpec {
			// It prints a line on stdout and one on stderr when it starts,
			// and "terminated" on SIGTERM.
			return backend.ServiceSpec{Image: testimages.HTTPService,
				Ports:     []backend.Port{{Port: 8080, Protocol: "tcp", Name: "http"}},
				Resources: backend.Resources{Cores: 0.05, MemoryLimit: 64 << 20, MemoryReservation: 32 << 20}}
		},
		Exiting: func() backend.ServiceSpec {
			return backend.ServiceSpec{Image: testimages.Job, Environment: map[string]string{"EXIT_CODE": "3"}}
		},
		Timeout:    wait,
		ProbeImage: testimages.Probe,
	})
}
