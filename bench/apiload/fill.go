package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zoe-project/zoe/core/config"
	"github.com/zoe-project/zoe/core/engine"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk/auth"
)

// helloZApp is examples/docker/hello.json with %d instances of its one
// service: executions of 1 to 4 services.
const helloZApp = `{
  "name": "hello",
  "version": 3,
  "will_end": false,
  "size": 64,
  "services": [
    {
      "name": "web",
      "image": "zoe-test/httpservice:1",
      "monitor": true,
      "startup_order": 0,
      "essential_count": 1,
      "total_count": %d,
      "resources": {
        "memory": {"min": 67108864, "max": null},
        "cores": {"min": 0.1, "max": null}
      },
      "ports": [
        {"name": "page", "port_number": 8080, "protocol": "tcp", "url_template": "http://{ip_port}/", "proxy": false}
      ],
      "environment": [],
      "volumes": [],
      "command": null
    }
  ]
}`

// fillWorkers submit concurrently: the store has one writer connection,
// but encoding and scanning overlap with the writes of the others.
const fillWorkers = 4

type step struct {
	from state.Status
	to   state.Status
	c    state.ExecutionChange
}

var (
	zero     = 0
	failure  = "image zoe-test/httpservice:1 not found on node local"
	queue    = step{state.StatusSubmitted, state.StatusQueued, state.ExecutionChange{Reason: "queued"}}
	schedule = step{state.StatusQueued, state.StatusStarting, state.ExecutionChange{Reason: "scheduled"}}
	started  = step{state.StatusStarting, state.StatusRunning, state.ExecutionChange{Reason: "all essential services run", Started: true}}
	// The lifecycles of the engine, by outcome.
	terminated = []step{queue, schedule, started,
		{state.StatusRunning, state.StatusCleaningUp, state.ExecutionChange{Reason: "terminated by " + user}},
		{state.StatusCleaningUp, state.StatusTerminated, state.ExecutionChange{Reason: "cleaned up", Ended: true, ExitCode: &zero}}}
	failed  = []step{queue, schedule, {state.StatusStarting, state.StatusError, state.ExecutionChange{Reason: "start failed", ErrorMessage: &failure, Ended: true}}}
	running = []step{queue, schedule, started}
	queued  = []step{queue}
)

// lifecycle gives most executions the whole way to terminated and a few
// every other end, so that every page of the listing shows a mix.
func lifecycle(id int64) []step {
	switch id % 20 {
	case 0:
		return failed
	case 1:
		return running
	case 2:
		return queued
	case 3:
		return nil // submitted
	}
	return terminated
}

// fill stores the bench user, with an unlimited quota, and n executions of
// theirs, as the engine would have.
func fill(ctx context.Context, db config.State, n int) error {
	store, err := state.Open(ctx, db, deployment, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.RecordLogin(ctx, auth.Identity{Username: user, Role: auth.RoleUser}); err != nil {
		return err
	}
	// The user role's default quota allows five active executions.
	if _, err := store.UpdateQuota(ctx, state.Quota{Name: state.DefaultQuotaName(auth.RoleUser)}); err != nil {
		return err
	}
	var apps [4]state.NewExecution
	for i := range apps {
		if apps[i], err = newExecution(i + 1); err != nil {
			return err
		}
	}
	// The first failure stops the feeder and, through ctx, the other
	// workers.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range fillWorkers {
		wg.Go(func() {
			for i := range next {
				if err := addExecution(ctx, store, apps[i%len(apps)], i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

func addExecution(ctx context.Context, store state.Store, app state.NewExecution, i int) error {
	app.Name = fmt.Sprintf("hello-%d", i)
	ex, err := store.CreateExecution(ctx, app)
	if err != nil {
		return err
	}
	for _, s := range lifecycle(ex.ID) {
		if _, err := store.Transition(ctx, ex.ID, []state.Status{s.from}, s.to, s.c); err != nil {
			return err
		}
	}
	return nil
}

// newExecution is the execution of helloZApp with k services as the
// engine's Submit records it.
func newExecution(k int) (state.NewExecution, error) {
	ne, err := engine.NewExecution(user, "", fmt.Appendf(nil, helloZApp, k),
		engine.Submission{Limits: zapp.DefaultLimits(), Deployment: deployment})
	if err != nil {
		return ne, fmt.Errorf("the bench's ZApp: %w", err)
	}
	return ne, nil
}

// writeEvery records a waiting reason on a queued execution every period,
// as the engine does, from a store of its own on the daemon's database
// (a write the daemon sees only through the database), until ctx ends. It
// returns how many writes it made.
func writeEvery(ctx context.Context, db config.State, period time.Duration) (int, error) {
	store, err := state.Open(ctx, db, deployment, nil)
	if err != nil {
		return 0, err
	}
	defer store.Close()
	queued, _, err := store.ListExecutions(ctx, state.Filter{Statuses: []state.Status{state.StatusQueued}, Limit: 1})
	if err != nil {
		return 0, err
	}
	if len(queued) == 0 {
		return 0, errors.New("no queued execution to record reasons on")
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return n, nil
		case <-tick.C:
		}
		_, err := store.Transition(ctx, queued[0].ID, []state.Status{state.StatusQueued}, state.StatusQueued,
			state.ExecutionChange{Reason: fmt.Sprintf("waiting: not enough cores (write %d)", n)})
		if err != nil && ctx.Err() == nil {
			return n, err
		}
	}
}
