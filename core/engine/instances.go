package engine

import (
	"sync"

	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
)

// instances keeps the decoded instances of the services of active
// executions, by execution and service id: a stored instance never changes
// after the submission, and every pass would otherwise decode the JSON of
// every active service again. The pass drops the executions that left the
// active set (keep), so it holds no more than the active services and those
// asked for since the last pass.
//
// The instances it returns share their slices with the cached ones: they
// are read, never modified (zapp.Bind makes new ones).
type instances struct {
	mu     sync.Mutex
	byExec map[int64]map[int64]zapp.Instance
}

// get returns the service's instance, decoding it the first time.
func (c *instances) get(sv state.Service) (zapp.Instance, error) {
	c.mu.Lock()
	in, ok := c.byExec[sv.ExecutionID][sv.ID]
	c.mu.Unlock()
	if ok {
		return in, nil
	}
	in, err := instanceOf(sv)
	if err != nil {
		return in, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byExec == nil {
		c.byExec = map[int64]map[int64]zapp.Instance{}
	}
	svcs := c.byExec[sv.ExecutionID]
	if svcs == nil {
		svcs = map[int64]zapp.Instance{}
		c.byExec[sv.ExecutionID] = svcs
	}
	svcs[sv.ID] = in
	return in, nil
}

// keep drops the instances of every execution that is not among execs.
func (c *instances) keep(execs []state.Execution) {
	active := make(map[int64]bool, len(execs))
	for _, ex := range execs {
		active[ex.ID] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.byExec {
		if !active[id] {
			delete(c.byExec, id)
		}
	}
}

// len is how many executions have instances kept (tests).
func (c *instances) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byExec)
}
