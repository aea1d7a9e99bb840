package sim

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

// Knob names: ZOE_SIM_<NAME> in the environment, zoe.sim.<name> in labels.
const (
	knobRun        = "RUN"
	knobExit       = "EXIT"
	knobFail       = "FAIL"
	knobOOM        = "OOM"
	knobVanish     = "VANISH"
	knobLog        = "LOG"
	knobIgnoreTerm = "IGNORE_TERM"
	knobTermTime   = "TERM_TIME"
	knobStartDelay = "START_DELAY"
	knobHTTP       = "HTTP"
)

// knobs are what a service's environment and labels ask of the simulation.
type knobs struct {
	run        time.Duration
	runForever bool
	exit       int
	failStart  bool
	oom        time.Duration
	vanish     time.Duration
	logs       []string
	ignoreTerm bool
	termTime   time.Duration
	startDelay time.Duration
	// http: serve a page on the service's published tcp ports (web.go).
	http bool
}

// parseKnobs reads a service's knobs; a bad value is an error wrapping
// sdk.ErrInvalidArgument that names the knob.
func parseKnobs(spec backend.ServiceSpec, set settings) (knobs, error) {
	k := knobs{run: set.defaultRun, runForever: set.defaultNoExit, http: set.serveHTTP}
	lookup := func(name string) (string, string, bool) {
		if v, ok := spec.Environment["ZOE_SIM_"+name]; ok {
			return v, "ZOE_SIM_" + name, true
		}
		label := "zoe.sim." + strings.ToLower(name)
		v, ok := spec.Labels[label]
		return v, "label " + label, ok
	}
	bad := func(src, v, want string) error {
		return fmt.Errorf("%s=%q: want %s: %w", src, v, want, sdk.ErrInvalidArgument)
	}
	duration := func(name string, dst *time.Duration) error {
		v, src, ok := lookup(name)
		if !ok {
			return nil
		}
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < 0 {
			return bad(src, v, `a duration such as "5s"`)
		}
		*dst = d
		return nil
	}
	if v, src, ok := lookup(knobRun); ok {
		d, noExit, err := parseRun(v)
		if err != nil {
			return k, bad(src, v, `a duration such as "30s", or "forever"`)
		}
		k.run, k.runForever = d, noExit
	}
	if v, src, ok := lookup(knobExit); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > 255 {
			return k, bad(src, v, "an exit code from 0 to 255")
		}
		k.exit = n
	}
	if v, src, ok := lookup(knobFail); ok {
		switch strings.TrimSpace(v) {
		case "":
		case "start":
			k.failStart = true
		default:
			return k, bad(src, v, `"start"`)
		}
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{knobOOM, &k.oom}, {knobVanish, &k.vanish}, {knobTermTime, &k.termTime}, {knobStartDelay, &k.startDelay}} {
		if err := duration(d.name, d.dst); err != nil {
			return k, err
		}
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{knobIgnoreTerm, &k.ignoreTerm}, {knobHTTP, &k.http}} {
		v, src, ok := lookup(b.name)
		if !ok {
			continue
		}
		on, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return k, bad(src, v, "1, 0, true or false")
		}
		*b.dst = on
	}
	if v, _, ok := lookup(knobLog); ok && v != "" {
		k.logs = strings.Split(v, "|")
	}
	return k, nil
}
