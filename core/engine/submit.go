package engine

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/zoe-project/zoe/core/policy"
	"github.com/zoe-project/zoe/core/state"
	"github.com/zoe-project/zoe/core/zapp"
	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/auth"
	"github.com/zoe-project/zoe/sdk/backend"
)

// Submit validates a ZApp description against the configured limits and
// the container policy for the owner's role, and records a new execution
// of it for owner (who must have logged in: the caller did RecordLogin),
// submitted; the next pass queues it. An invalid description, or one the
// policy refuses, wraps sdk.ErrInvalidArgument and zapp.Problems; an owner
// whose containers the policy cannot run (uid 0) gets
// sdk.ErrPermissionDenied; a quota refusal wraps sdk.ErrResourceExhausted.
// A ZApp that can never run on the back-end's nodes as configured (labels
// no node has, more than a node or all of them hold) is refused as invalid
// too, with the reason (fitProblems); one that cannot run now waits.
func (e *Engine) Submit(ctx context.Context, owner, name string, description []byte) (state.Execution, error) {
	user, err := e.cfg.Store.GetUser(ctx, owner)
	if err != nil {
		return state.Execution{}, err
	}
	if _, _, err := e.cfg.Containers.Run(user.UID, user.GID); err != nil {
		return state.Execution{}, err
	}
	// The proxy tokens come from crypto/rand (130 bits in base32, which
	// needs no escaping in a header or an environment variable): they are
	// what keeps the published ports of a notebook closed to other users.
	ne, err := NewExecution(owner, name, description, Submission{Limits: e.cfg.Limits, Containers: e.cfg.Containers,
		Role: user.Role, Nodes: e.configuredNodes(ctx), NewSecret: rand.Text})
	if err != nil {
		return state.Execution{}, err
	}
	ex, err := e.cfg.Store.CreateExecution(ctx, ne)
	if err != nil {
		return state.Execution{}, err
	}
	e.Trigger()
	return ex, nil
}

// Submission is what NewExecution needs of the engine's configuration,
// and the submitter's role, which the container policy may depend on.
type Submission struct {
	Limits zapp.Limits
	// Deployment and ProxyBase are not used any more: the instances are
	// bound when the execution starts. Kept for the callers that set them.
	Deployment string
	ProxyBase  string
	Containers policy.Policy
	Role       auth.Role
	// Nodes are every node the back-end knows, whatever their state; nil
	// when they are not known, and the ZApp is then not checked against
	// them.
	Nodes []backend.Node
	// NewSecret makes the proxy tokens of the instances with a proxied
	// port (zapp.Instance.ProxyToken); Submit passes crypto/rand's Text.
	// Nil: none, as for the tools that fill a store with executions that
	// never start.
	NewSecret func() string
}

// NewExecution is the execution Submit records for a ZApp description:
// validated, its services expanded into instances (zapp.Instances: what
// depends on the execution's id is added by zapp.Bind when it starts; the
// proxy tokens are made here, once, and stored with the instances).
// Errors are Submit's.
func NewExecution(owner, name string, description []byte, sub Submission) (state.NewExecution, error) {
	app, err := zapp.Load(description, sub.Limits)
	if err != nil {
		return state.NewExecution{}, fmt.Errorf("invalid ZApp description: %w: %w", sdk.ErrInvalidArgument, err)
	}
	if probs := sub.Containers.Check(app, sub.Role); probs != nil {
		return state.NewExecution{}, fmt.Errorf("the container policy refuses the ZApp: %w: %w", sdk.ErrInvalidArgument, probs)
	}
	if name == "" {
		name = app.Name
	}
	instances, err := zapp.Instances(app, sub.Limits, sub.NewSecret)
	if err != nil {
		return state.NewExecution{}, fmt.Errorf("expand the ZApp: %w: %w", sdk.ErrInvalidArgument, err)
	}
	if probs := fitProblems(app, instances, sub.Nodes); probs != nil {
		return state.NewExecution{}, fmt.Errorf("the ZApp can never run on this platform as configured: %w: %w",
			sdk.ErrInvalidArgument, probs)
	}
	ne := state.NewExecution{Owner: owner, Name: name, Description: description, Size: app.Size}
	for _, in := range instances {
		ne.Cores += in.Cores
		ne.Memory += in.MemoryReservation
		d, err := json.Marshal(in)
		if err != nil {
			return state.NewExecution{}, fmt.Errorf("encode instance %s: %w", in.Name, sdk.ErrInternal)
		}
		ne.Services = append(ne.Services, state.NewService{Name: in.Name, Group: in.Service,
			Essential: in.Essential, StartupOrder: in.StartupOrder, Description: d})
	}
	ne.Cores = roundCores(ne.Cores)
	return ne, nil
}

// instanceOf decodes a stored service's instance.
func instanceOf(sv state.Service) (zapp.Instance, error) {
	var in zapp.Instance
	if err := json.Unmarshal(sv.Description, &in); err != nil {
		return in, fmt.Errorf("service %s: stored instance: %v: %w", sv.Name, err, sdk.ErrInternal)
	}
	return in, nil
}

// containerName is the service's name on the back-end, unique in the
// deployment: its DNS name.
func (e *Engine) containerName(execID int64, service string) string {
	return containerName(e.cfg.Deployment, execID, service)
}

// containerName is the name of service's container in execution execID
// of deployment: the same as its DNS name (zapp.Expand's).
func containerName(deployment string, execID int64, service string) string {
	return strings.ToLower(service + "-" + strconv.FormatInt(execID, 10) + "-" + deployment)
}

func (e *Engine) networkName(execID int64) string {
	return "zoe-" + e.cfg.Deployment + "-" + strconv.FormatInt(execID, 10)
}
