package dockerapi

import "time"

// ExitKilled is the exit code of a process killed with SIGKILL (128 + 9):
// what an OOM kill reads as.
const ExitKilled = 137

// MaybeOOMKilled tells whether an exit may be an OOM kill the engine has
// not marked yet. The engine learns of an OOM kill (containerd's TaskOOM)
// and of the exit (TaskExit) apart, in no set order, and a loaded or older
// engine may mark the kill late or never: until then the container reads
// "exited 137, not OOM-killed".
func MaybeOOMKilled(exitCode int, oomKilled bool) bool {
	return exitCode == ExitKilled && !oomKilled
}

// ParseTime reads a container state's time (StartedAt, FinishedAt): zero
// when it is not set, which the engine says as the year 1.
func ParseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}
