package state

import (
	"context"

	"github.com/hashicorp/go-hclog"

	"github.com/zoe-project/zoe/core/config"
)

// Open opens the store the configuration names: PostgreSQL when cfg.Postgres
// is set (in the schema zoe_<deployment>), else the SQLite file cfg.SQLite.
func Open(ctx context.Context, cfg config.State, deployment string, log hclog.Logger) (Store, error) {
	if cfg.Postgres != "" {
		return OpenPostgres(ctx, cfg.Postgres, deployment, log)
	}
	return OpenSQLite(ctx, cfg.SQLite, log)
}

func named(log hclog.Logger) hclog.Logger {
	if log == nil {
		return hclog.NewNullLogger()
	}
	return log.Named("state")
}
