package notify

import (
	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/config"
)

// FromConfig is the notifier the notifications block describes, sending
// through its smtp server.
func FromConfig(log hclog.Logger, store Store, c *config.Notifications) (*Notifier, error) {
	s, err := NewSMTP(c.SMTP)
	if err != nil {
		return nil, err
	}
	return New(log, Config{Store: store, Sender: s, From: c.SMTP.From, PublicURL: c.PublicURL,
		LongRunning: c.LongRunning, QueueSize: c.QueueSize, MaxAttempts: c.MaxAttempts}), nil
}
