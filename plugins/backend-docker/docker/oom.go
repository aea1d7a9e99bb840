package docker

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/zoe-project/zoe/internal/dockerapi"
)

// oomSettle is how long after a container's end Docker may still mark it
// OOM-killed (dockerapi.MaybeOOMKilled): a container killed by the kernel
// for memory can read as "exited 137, not OOM-killed" for a moment, then
// OOMKilled turns true.
const oomSettle = time.Second

// inspect is ContainerInspect, except that a container that just ended
// with SIGKILL's code (137) and is not marked OOM-killed is inspected
// again once oomSettle has passed since its end, so that its OOM kill is
// not reported, and kept, as a plain exit. Other containers cost one
// inspect, as before; a SIGKILLed one at most oomSettle more. The wait
// ends at a time set by the container's end, not by the call: a burst of
// containers killed together (a user's ZApp can make one) delays a reader
// going through them in turn by oomSettle in all, not oomSettle each.
func (h *host) inspect(ctx context.Context, id string) (client.ContainerInspectResult, error) {
	res, err := h.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return res, err
	}
	wait := oomWait(res.Container.State, time.Now())
	if wait <= 0 {
		return res, nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return res, nil
	case <-t.C:
	}
	again, err := h.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		// Gone or unreachable since: what was read stays the answer.
		return res, nil
	}
	return again, nil
}

// oomWait is how long to wait before reading s again: until oomSettle
// after its end for a container that may yet be marked OOM-killed, never
// more than oomSettle (the engine's clock may differ from ours); 0 for
// every other state.
func oomWait(s *container.State, now time.Time) time.Duration {
	if s == nil || s.Status != container.StateExited || !dockerapi.MaybeOOMKilled(s.ExitCode, s.OOMKilled) {
		return 0
	}
	end := dockerapi.ParseTime(s.FinishedAt)
	if end.IsZero() {
		return 0
	}
	return min(oomSettle, end.Add(oomSettle).Sub(now))
}
