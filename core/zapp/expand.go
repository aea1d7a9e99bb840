package zapp

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ExpandContext is what an execution adds to a description.
type ExpandContext struct {
	ExecutionID   string // e.g. "42"
	ExecutionName string
	UserName      string
	// UID and GID of the user's files; ZOE_UID and ZOE_GID are set only
	// when known.
	UID, GID   *uint32
	Deployment string
	// ProxyBase prefixes the proxy paths:
	// REVERSE_PROXY_PATH_<port> = <ProxyBase>/<execution id>/<instance>/<port>.
	ProxyBase string
	// Limits are those the description is validated against before
	// expansion; the zero value sets none.
	Limits Limits
}

// Instance is one service instance (one container) of an execution.
type Instance struct {
	Name      string `json:"name"`    // <service><n>
	Service   string `json:"service"` // the group's name
	Index     int    `json:"index"`   // n
	Essential bool   `json:"essential"`
	// DNSName is <instance>-<execution id>-<deployment>, lower-cased.
	DNSName string  `json:"dns_name"`
	Image   string  `json:"image"`
	Command *string `json:"command"`
	WorkDir string  `json:"work_dir,omitempty"`
	// Environment is the user's variables with their templates resolved,
	// then those Zoe sets; no name appears twice.
	Environment  []EnvVar `json:"environment"`
	Ports        []Port   `json:"ports"`
	Volumes      []Volume `json:"volumes"`
	Labels       []string `json:"labels,omitempty"`
	StartupOrder int      `json:"startup_order"`
	Monitor      bool     `json:"monitor"`
	// MemoryReservation is memory.min (0 when null); MemoryLimit is
	// memory.max, or memory.min when max is null (0: none).
	MemoryReservation int64 `json:"memory_reservation"`
	MemoryLimit       int64 `json:"memory_limit"`
	// Cores is cores.min (DefaultCores when null); CoresLimit is cores.max,
	// 0 for none.
	Cores      float64 `json:"cores"`
	CoresLimit float64 `json:"cores_limit"`
	Shm        int64   `json:"shm"`
}

// WorkspacePath is where Zoe mounts the user's workspace.
const WorkspacePath = "/mnt/workspace"

// Expand turns a description into the instances of one execution: the
// essential instances of every service, services in startup_order then
// document order, then the elastic ones in the same order. The
// description must validate against c.Limits; it is not modified.
func Expand(a *App, c ExpandContext) ([]Instance, error) {
	if a == nil {
		return nil, errors.New("expand: no description")
	}
	if probs := Validate(a, c.Limits); len(probs) > 0 {
		return nil, fmt.Errorf("expand: invalid description: %w", probs)
	}
	order := make([]int, len(a.Services))
	total := 0
	for i := range order {
		order[i] = i
		total += a.Services[i].TotalCount
	}
	slices.SortStableFunc(order, func(x, y int) int {
		return cmp.Compare(a.Services[x].StartupOrder, a.Services[y].StartupOrder)
	})
	e := expander{app: a, ctx: c, proxyBase: strings.TrimRight(c.ProxyBase, "/"),
		dnsSuffix: strings.ToLower("-" + c.ExecutionID + "-" + c.Deployment), instances: newInstanceSet(a.Services)}
	if c.UID != nil {
		e.uid = strconv.FormatUint(uint64(*c.UID), 10)
	}
	if c.GID != nil {
		e.gid = strconv.FormatUint(uint64(*c.GID), 10)
	}
	// The proxy variables' names, once per service rather than per instance.
	proxyNames := make([][]string, len(a.Services))
	for i := range a.Services {
		proxyNames[i] = proxyVarNames(a.Services[i].Ports)
	}
	out := make([]Instance, 0, total)
	for _, essential := range []bool{true, false} {
		for _, i := range order {
			s := &a.Services[i]
			from, to := 0, s.EssentialCount
			if !essential {
				from, to = s.EssentialCount, s.TotalCount
			}
			for n := from; n < to; n++ {
				inst, err := e.instance(s, n, essential, proxyNames[i])
				if err != nil {
					return nil, err
				}
				out = append(out, inst)
			}
		}
	}
	return out, nil
}

// proxyVarNames names the REVERSE_PROXY_PATH_<port> variable of each port,
// "" for a port number already named (the same number in tcp and udp).
func proxyVarNames(ports []Port) []string {
	names := make([]string, len(ports))
	for j, p := range ports {
		if !slices.ContainsFunc(ports[:j], func(q Port) bool { return q.PortNumber == p.PortNumber }) {
			names[j] = "REVERSE_PROXY_PATH_" + strconv.Itoa(p.PortNumber)
		}
	}
	return names
}

type expander struct {
	app       *App
	ctx       ExpandContext
	proxyBase string
	dnsSuffix string // -<execution id>-<deployment>, lower-cased
	uid, gid  string // "" when unknown
	instances instanceSet
	buf       []byte // reused to resolve templates
}

func (e *expander) dnsName(instance string) string {
	return strings.ToLower(instance) + e.dnsSuffix
}

func (e *expander) instance(s *Service, n int, essential bool, proxyNames []string) (Instance, error) {
	name := s.Name + strconv.Itoa(n)
	inst := Instance{
		Name: name, Service: s.Name, Index: n, Essential: essential,
		DNSName: e.dnsName(name), Image: s.Image, WorkDir: s.WorkDir,
		Ports: slices.Clone(s.Ports), Volumes: slices.Clone(s.Volumes), Labels: slices.Clone(s.Labels),
		StartupOrder: s.StartupOrder, Monitor: s.Monitor, Cores: DefaultCores,
	}
	if s.Command != nil {
		cmd := *s.Command
		inst.Command = &cmd
	}
	r := &s.Resources
	if r.Memory.Min != nil {
		inst.MemoryReservation, inst.MemoryLimit = *r.Memory.Min, *r.Memory.Min
	}
	if r.Memory.Max != nil {
		inst.MemoryLimit = *r.Memory.Max
	}
	if r.Cores.Min != nil {
		inst.Cores = *r.Cores.Min
	}
	if r.Cores.Max != nil {
		inst.CoresLimit = *r.Cores.Max
	}
	if r.Shm != nil {
		inst.Shm = *r.Shm
	}

	env := make([]EnvVar, 0, len(s.Environment)+7+len(s.Ports))
	for _, v := range s.Environment {
		val, err := e.resolve(v.Value, inst.DNSName)
		if err != nil {
			return Instance{}, fmt.Errorf("expand: %s: environment variable %s: %w", name, v.Name, err)
		}
		env = append(env, EnvVar{v.Name, val})
	}
	c := &e.ctx
	env = append(env,
		EnvVar{"EXECUTION_ID", c.ExecutionID},
		EnvVar{"DEPLOY_NAME", c.Deployment},
		EnvVar{"ZOE_USER", c.UserName})
	if c.UID != nil {
		env = append(env, EnvVar{"ZOE_UID", e.uid})
	}
	if c.GID != nil {
		env = append(env, EnvVar{"ZOE_GID", e.gid})
	}
	env = append(env, EnvVar{"SERVICE_NAME", name}, EnvVar{"ZOE_WORKSPACE", WorkspacePath})
	for j, p := range s.Ports {
		if proxyNames[j] != "" {
			env = append(env, EnvVar{proxyNames[j],
				e.proxyBase + "/" + c.ExecutionID + "/" + name + "/" + strconv.Itoa(p.PortNumber)})
		}
	}
	inst.Environment = env
	return inst, nil
}

// resolve substitutes the template variables of one value.
func (e *expander) resolve(value, selfDNS string) (string, error) {
	if indexBrace(value) < 0 {
		return value, nil
	}
	b := e.buf[:0]
	var unknown string
	msg := scanTemplate(value, func(s string) { b = append(b, s...) }, func(name string) {
		switch name {
		case varUserName:
			b = append(b, e.ctx.UserName...)
		case varExecutionID:
			b = append(b, e.ctx.ExecutionID...)
		case varExecutionName:
			b = append(b, e.ctx.ExecutionName...)
		case varDeploymentName:
			b = append(b, e.ctx.Deployment...)
		case varDNSSelf:
			b = append(b, selfDNS...)
		default:
			inst, ok := strings.CutPrefix(name, varDNSPrefix)
			if ok && e.instances.has(inst) {
				b = append(b, strings.ToLower(inst)...)
				b = append(b, e.dnsSuffix...)
			} else if unknown == "" {
				unknown = name
			}
		}
	})
	e.buf = b
	// Validate has refused both already; kept so that no path panics or
	// silently drops text.
	if msg != "" {
		return "", errors.New(msg)
	}
	if unknown != "" {
		return "", fmt.Errorf("unknown variable {%s}", unknown)
	}
	return string(b), nil
}

// Clone returns a deep copy of a, sharing nothing with it.
func (a *App) Clone() *App {
	if a == nil {
		return nil
	}
	c := *a
	if a.Services != nil {
		c.Services = make([]Service, len(a.Services))
		for i := range a.Services {
			c.Services[i] = a.Services[i].clone()
		}
	}
	return &c
}

func (s Service) clone() Service {
	c := s
	c.Replicas = clonePtr(s.Replicas)
	c.Resources.Memory.Min = clonePtr(s.Resources.Memory.Min)
	c.Resources.Memory.Max = clonePtr(s.Resources.Memory.Max)
	c.Resources.Cores.Min = clonePtr(s.Resources.Cores.Min)
	c.Resources.Cores.Max = clonePtr(s.Resources.Cores.Max)
	c.Resources.Shm = clonePtr(s.Resources.Shm)
	c.Ports = slices.Clone(s.Ports)
	c.Environment = slices.Clone(s.Environment)
	c.Volumes = slices.Clone(s.Volumes)
	c.Command = clonePtr(s.Command)
	c.Labels = slices.Clone(s.Labels)
	return c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
