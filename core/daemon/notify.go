package daemon

import (
	"context"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/config"
	"github.com/zoe-project/zoe/core/notify"
	"github.com/zoe-project/zoe/core/state"
)

// startNotifier runs the e-mail notifier beside the engine; stop ends it
// and waits until it has saved its cursor.
func startNotifier(ctx context.Context, log hclog.Logger, store state.Store, c *config.Notifications) (stop func(), err error) {
	n, err := notify.FromConfig(log, store, c)
	if err != nil {
		return nil, err
	}
	nctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.Run(nctx); err != nil && nctx.Err() == nil {
			log.Error("e-mail notifications stopped", "error", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}
