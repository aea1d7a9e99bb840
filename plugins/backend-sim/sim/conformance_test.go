package sim_test

import (
	"testing"
	"time"

	"github.com/zoe-project/zoe/core/pluginhost"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
	"github.com/zoe-project/zoe/sdk/plugintest"
)

func TestConformance(t *testing.T) {
	// Every instance and every plugin process the suite opens shares one
	// state file: one platform, as after a plugin restart.
	path := stateFile(t)
	plugintest.RunBackendConformance(t, plugintest.BackendSuite{
		New: func(t *testing.T) backend.Backend { return open(t, path, nil) },
		Process: func(t *testing.T) (string, sdk.Config) {
			bin, err := pluginhost.Find(binDir, sdk.KindBackend, "sim")
			if err != nil {
				t.Fatal(err)
			}
			return bin, sdk.Config{JSON: block(t, path, nil), Deployment: "test"}
		},
		LongRunning: func() backend.ServiceSpec {
			return backend.ServiceSpec{Image: "zoe/sim-test:1",
				Environment: map[string]string{"ZOE_SIM_RUN": "forever", "ZOE_SIM_LOG": "listening on 8888"},
				Ports:       []backend.Port{{Port: 8888, Protocol: "tcp", Name: "http"}},
				Resources:   backend.Resources{Cores: 1, MemoryReservation: 512 << 20}}
		},
		Exiting: func() backend.ServiceSpec {
			return backend.ServiceSpec{Image: "zoe/sim-test:1",
				Labels: map[string]string{"zoe.sim.run": "200ms", "zoe.sim.exit": "3"}}
		},
		Timeout: 10 * time.Second,
		NoProbe: "the simulator runs no program: it checks the spec, it cannot show a process's rights",
	})
}
