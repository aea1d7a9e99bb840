package state

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/zoe-project/zoe/sdk"
)

const serviceCols = `id, execution_id, name, service_group, essential, status, backend_status,
	handle_version, handle_id, handle_data, node, ip, exit_code, error_message, restart_count, startup_order, description`

func scanService(r row) (Service, error) {
	var (
		sv      Service
		status  string
		version int64
		exit    *int64
		restart int64
		order   int64
		desc    []byte
	)
	if err := r.Scan(&sv.ID, &sv.ExecutionID, &sv.Name, &sv.Group, &sv.Essential, &status, &sv.BackendStatus,
		&version, &sv.Handle.ID, &sv.Handle.Data, &sv.Node, &sv.IP, &exit, &sv.ErrorMessage, &restart, &order,
		&desc); err != nil {
		return Service{}, err
	}
	sv.Status, sv.Handle.Version, sv.ExitCode = ServiceStatus(status), uint32(version), intPtr(exit)
	sv.RestartCount, sv.StartupOrder, sv.Description = int(restart), int(order), desc
	return sv, nil
}

func (s *store) Services(ctx context.Context, executionID int64) ([]Service, error) {
	rs, err := s.db.query(ctx, "SELECT "+serviceCols+" FROM services WHERE execution_id = $1 ORDER BY startup_order, id", executionID)
	svs, err := collect(rs, err, scanService)
	return svs, s.fail("services", err)
}

func (s *store) ActiveServices(ctx context.Context) (map[int64][]Service, error) {
	rs, err := s.db.query(ctx, "SELECT "+serviceCols+" FROM services WHERE execution_id IN (SELECT id FROM executions WHERE "+
		activeSQL+") ORDER BY execution_id, startup_order, id")
	svs, err := collect(rs, err, scanService)
	if err != nil {
		return nil, s.fail("active services", err)
	}
	out := map[int64][]Service{}
	for _, sv := range svs {
		out[sv.ExecutionID] = append(out[sv.ExecutionID], sv)
	}
	return out, nil
}

func (s *store) GetService(ctx context.Context, id int64) (Service, error) {
	sv, err := scanService(s.db.queryRow(ctx, "SELECT "+serviceCols+" FROM services WHERE id = $1", id))
	if isNoRows(err) {
		err = notFound("service %d", id)
	}
	return sv, s.fail("get service", err)
}

func (s *store) TransitionService(ctx context.Context, id int64, from []ServiceStatus, to ServiceStatus, c ServiceChange) (Service, error) {
	op := fmt.Sprintf("service %d: %s to %s", id, joinStatuses(from), to)
	if len(from) == 0 || !to.Valid() || slices.ContainsFunc(from, func(s ServiceStatus) bool { return !s.Valid() }) {
		return Service{}, fmt.Errorf("%s: %w", op, invalid("unknown status"))
	}
	var out Service
	err := s.db.tx(ctx, func(q querier) error {
		var (
			cur, name string
			exec      int64
		)
		err := q.queryRow(ctx, "SELECT status, name, execution_id FROM services WHERE id = $1"+s.d.forUpdate, id).
			Scan(&cur, &name, &exec)
		if isNoRows(err) {
			return notFound("service %d", id)
		}
		if err != nil {
			return err
		}
		if !slices.Contains(from, ServiceStatus(cur)) {
			return fmt.Errorf("service %d (%s) is %s: %w", id, name, cur, sdk.ErrConflict)
		}
		var a args
		set := []string{"status = " + a.add(string(to))}
		if c.ErrorMessage != nil {
			set = append(set, "error_message = "+a.add(*c.ErrorMessage))
		}
		if c.ExitCode != nil {
			set = append(set, "exit_code = "+a.add(int64(*c.ExitCode)))
		}
		if c.BackendStatus != nil {
			set = append(set, "backend_status = "+a.add(*c.BackendStatus))
		}
		out, err = scanService(q.queryRow(ctx, "UPDATE services SET "+strings.Join(set, ", ")+
			" WHERE id = "+a.add(id)+" AND status = "+a.add(cur)+" RETURNING "+serviceCols, a...))
		if isNoRows(err) {
			return fmt.Errorf("service %d changed status concurrently: %w", id, sdk.ErrConflict)
		}
		if err != nil {
			return err
		}
		return s.addEvent(ctx, q, Event{ExecutionID: exec, ServiceName: name, Time: now(), From: cur, To: string(to),
			Reason: c.Reason})
	})
	return out, s.fail(op, err)
}

func (s *store) PlaceServices(ctx context.Context, executionID int64, ps []Placement) ([]Service, error) {
	op := fmt.Sprintf("execution %d: place services", executionID)
	if len(ps) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(ps))
	seen := make(map[int64]bool, len(ps))
	for i, p := range ps {
		switch {
		case p.Node == "":
			return nil, fmt.Errorf("%s: %w", op, invalid("service %d without a node", p.ServiceID))
		case seen[p.ServiceID]:
			return nil, fmt.Errorf("%s: %w", op, invalid("service %d placed twice", p.ServiceID))
		}
		seen[p.ServiceID], ids[i] = true, p.ServiceID
	}
	var out []Service
	err := s.db.tx(ctx, func(q querier) error {
		// One statement for all: the status test is the compare-and-set,
		// and on PostgreSQL the update locks the rows.
		var a args
		cases := make([]string, len(ps))
		for i, p := range ps {
			cases[i] = "WHEN " + a.add(p.ServiceID) + " THEN " + a.add(p.Node)
		}
		rs, err := q.query(ctx, "UPDATE services SET status = "+a.add(string(ServiceStarting))+
			", node = CASE id "+strings.Join(cases, " ")+" END WHERE execution_id = "+a.add(executionID)+
			" AND status = "+a.add(string(ServiceCreated))+" AND id IN "+in(&a, ids)+" RETURNING "+serviceCols, a...)
		placed, err := collect(rs, err, scanService)
		if err != nil {
			return err
		}
		byID := make(map[int64]Service, len(placed))
		for _, sv := range placed {
			byID[sv.ID] = sv
		}
		if len(placed) < len(ps) {
			// The transaction is rolled back.
			var missed []int64
			for _, id := range ids {
				if _, ok := byID[id]; !ok {
					missed = append(missed, id)
				}
			}
			return notPlaced(ctx, q, executionID, missed)
		}
		out = make([]Service, len(ps))
		evs := make([]Event, len(ps))
		t := now()
		for i, p := range ps {
			out[i] = byID[p.ServiceID]
			evs[i] = Event{ExecutionID: executionID, ServiceName: out[i].Name, Time: t, From: string(ServiceCreated),
				To: string(ServiceStarting), Reason: p.Reason}
		}
		return s.addEvents(ctx, q, evs)
	})
	return out, s.fail(op, err)
}

// withColumn scans a row with one more column than its reader expects,
// into dst.
type withColumn struct {
	r   row
	dst any
}

func (w withColumn) Scan(dest ...any) error { return w.r.Scan(append(dest, w.dst)...) }

// notPlaced says why PlaceServices could not place the services ids.
func notPlaced(ctx context.Context, q querier, executionID int64, ids []int64) error {
	var a args
	rs, err := q.query(ctx, "SELECT id, name, status FROM services WHERE execution_id = "+a.add(executionID)+
		" AND id IN "+in(&a, ids), a...)
	type found struct {
		id           int64
		name, status string
	}
	rows, err := collect(rs, err, func(r row) (found, error) {
		var f found
		return f, r.Scan(&f.id, &f.name, &f.status)
	})
	if err != nil {
		return err
	}
	byID := make(map[int64]found, len(rows))
	for _, f := range rows {
		byID[f.id] = f
	}
	for _, id := range ids {
		f, ok := byID[id]
		if !ok {
			return notFound("service %d of execution %d", id, executionID)
		}
		if f.status != string(ServiceCreated) {
			return fmt.Errorf("service %d (%s) is %s: %w", id, f.name, f.status, sdk.ErrConflict)
		}
	}
	// Every one was created when read here: one changed concurrently.
	return fmt.Errorf("a service changed status concurrently: %w", sdk.ErrConflict)
}

func (s *store) RecordStarted(ctx context.Context, id int64, st Started) (Service, error) {
	out, errs, err := s.RecordStartedMany(ctx, []StartedService{{ServiceID: id, Started: st}})
	if err != nil {
		return Service{}, err
	}
	return out[0], errs[0]
}

func (s *store) RecordStartedMany(ctx context.Context, ss []StartedService) ([]Service, []error, error) {
	out := make([]Service, len(ss))
	errs := make([]error, len(ss))
	if len(ss) == 0 {
		return out, errs, nil
	}
	ops := make([]string, len(ss))
	for i, x := range ss {
		ops[i] = fmt.Sprintf("service %d: %s to %s", x.ServiceID, ServiceStarting, ServiceRunning)
	}
	err := s.db.tx(ctx, func(q querier) error {
		// The closure may run again (group commit): it starts afresh.
		var evs []Event
		for i, x := range ss {
			out[i], errs[i] = Service{}, nil
			if err := checkEndpoints(x.Endpoints); err != nil {
				errs[i] = fmt.Errorf("%s: %w", ops[i], err)
				continue
			}
			sv, refused, err := recordStarted(ctx, q, x.ServiceID, x.Started)
			if err != nil {
				return err
			}
			if refused != nil {
				errs[i] = fmt.Errorf("%s: %w", ops[i], refused)
				continue
			}
			out[i] = sv
			evs = append(evs, Event{ExecutionID: sv.ExecutionID, ServiceName: sv.Name, Time: now(),
				From: string(ServiceStarting), To: string(ServiceRunning), Reason: x.Reason})
		}
		return s.addEvents(ctx, q, evs)
	})
	if err != nil {
		op := ops[0]
		if len(ops) > 1 {
			op = fmt.Sprintf("record %d started services", len(ops))
		}
		return nil, nil, s.fail(op, err)
	}
	return out, errs, nil
}

// recordStarted records one started service in the transaction of q. A
// service that is not starting or does not exist is refused (nothing
// written); err is the database failing.
func recordStarted(ctx context.Context, q querier, id int64, st Started) (out Service, refused, err error) {
	had := false // endpoints to replace: a service started again
	// The status test is the compare-and-set; on PostgreSQL the update
	// locks the row.
	out, err = scanService(withColumn{q.queryRow(ctx, `UPDATE services SET status = $1, handle_version = $2,
		handle_id = $3, handle_data = $4, node = $5, ip = $6, backend_status = $7, exit_code = NULL
		WHERE id = $8 AND status = $9
		RETURNING `+serviceCols+`, EXISTS (SELECT 1 FROM endpoints WHERE service_id = $8)`,
		string(ServiceRunning), int64(st.Handle.Version), st.Handle.ID, st.Handle.Data, st.Node, st.IP,
		st.BackendStatus, id, string(ServiceStarting)), &had})
	if isNoRows(err) {
		var name, cur string
		err := q.queryRow(ctx, "SELECT name, status FROM services WHERE id = $1", id).Scan(&name, &cur)
		switch {
		case isNoRows(err):
			return Service{}, notFound("service %d", id), nil
		case err != nil:
			return Service{}, nil, err
		case cur == string(ServiceStarting):
			return Service{}, fmt.Errorf("service %d changed status concurrently: %w", id, sdk.ErrConflict), nil
		}
		return Service{}, fmt.Errorf("service %d (%s) is %s: %w", id, name, cur, sdk.ErrConflict), nil
	}
	if err != nil {
		return Service{}, nil, err
	}
	if err := replaceEndpoints(ctx, q, id, had, st.Endpoints); err != nil {
		return Service{}, nil, err
	}
	return out, nil, nil
}

func (s *store) UpdateService(ctx context.Context, id int64, u ServiceUpdate) (Service, error) {
	var (
		a   args
		set []string
	)
	str := func(col string, v *string) {
		if v != nil {
			set = append(set, col+" = "+a.add(*v))
		}
	}
	str("backend_status", u.BackendStatus)
	str("node", u.Node)
	str("ip", u.IP)
	str("error_message", u.ErrorMessage)
	if u.Handle != nil {
		set = append(set, "handle_version = "+a.add(int64(u.Handle.Version)), "handle_id = "+a.add(u.Handle.ID),
			"handle_data = "+a.add(u.Handle.Data))
	}
	switch {
	case u.ClearExitCode:
		set = append(set, "exit_code = NULL")
	case u.ExitCode != nil:
		set = append(set, "exit_code = "+a.add(int64(*u.ExitCode)))
	}
	if u.RestartCount != nil {
		if *u.RestartCount < 0 {
			return Service{}, fmt.Errorf("update service %d: %w", id, invalid("negative restart count"))
		}
		set = append(set, "restart_count = "+a.add(int64(*u.RestartCount)))
	}
	if len(set) == 0 {
		return s.GetService(ctx, id)
	}
	var out Service
	err := s.db.tx(ctx, func(q querier) error {
		var err error
		out, err = scanService(q.queryRow(ctx, "UPDATE services SET "+strings.Join(set, ", ")+
			" WHERE id = "+a.add(id)+" RETURNING "+serviceCols, a...))
		if isNoRows(err) {
			return notFound("service %d", id)
		}
		return err
	})
	return out, s.fail(fmt.Sprintf("update service %d", id), err)
}

const endpointCols = "e.service_id, s.name, e.name, e.port, e.protocol, e.external_address, e.external_port, e.url"

func scanEndpoint(r row) (Endpoint, error) {
	var (
		ep        Endpoint
		port, ext int64
	)
	err := r.Scan(&ep.ServiceID, &ep.ServiceName, &ep.Name, &port, &ep.Protocol, &ep.ExternalAddress, &ext, &ep.URL)
	ep.Port, ep.ExternalPort = int(port), int(ext)
	return ep, err
}

func checkEndpoints(eps []Endpoint) error {
	seen := map[string]bool{}
	for _, ep := range eps {
		switch {
		case ep.Name == "":
			return invalid("an endpoint without a name")
		case seen[ep.Name]:
			return invalid("two endpoints named %q", ep.Name)
		case ep.Port < 1 || ep.Port > 65535 || ep.ExternalPort < 0 || ep.ExternalPort > 65535:
			return invalid("endpoint %q: port out of range", ep.Name)
		case ep.Protocol != "tcp" && ep.Protocol != "udp":
			return invalid("endpoint %q: protocol %q, want tcp or udp", ep.Name, ep.Protocol)
		}
		seen[ep.Name] = true
	}
	return nil
}

func (s *store) SetEndpoints(ctx context.Context, serviceID int64, eps []Endpoint) error {
	op := fmt.Sprintf("set endpoints of service %d", serviceID)
	if err := checkEndpoints(eps); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	err := s.db.tx(ctx, func(q querier) error {
		var id int64
		err := q.queryRow(ctx, "SELECT id FROM services WHERE id = $1"+s.d.forUpdate, serviceID).Scan(&id)
		if isNoRows(err) {
			return notFound("service %d", serviceID)
		}
		if err != nil {
			return err
		}
		return replaceEndpoints(ctx, q, serviceID, true, eps)
	})
	return s.fail(op, err)
}

// replaceEndpoints replaces the endpoints of a service whose row the
// transaction holds (had: it may have some); eps are checked
// (checkEndpoints).
func replaceEndpoints(ctx context.Context, q querier, serviceID int64, had bool, eps []Endpoint) error {
	if had {
		if _, err := q.exec(ctx, "DELETE FROM endpoints WHERE service_id = $1", serviceID); err != nil {
			return err
		}
	}
	if len(eps) == 0 {
		return nil
	}
	var a args
	vals := make([]string, len(eps))
	for i, ep := range eps {
		vals[i] = "(" + strings.Join([]string{a.add(serviceID), a.add(ep.Name), a.add(int64(ep.Port)), a.add(ep.Protocol),
			a.add(ep.ExternalAddress), a.add(int64(ep.ExternalPort)), a.add(ep.URL)}, ", ") + ")"
	}
	_, err := q.exec(ctx, `INSERT INTO endpoints (service_id, name, port, protocol, external_address, external_port, url)
		VALUES `+strings.Join(vals, ", "), a...)
	return err
}

func (s *store) Endpoints(ctx context.Context, executionID int64) ([]Endpoint, error) {
	rs, err := s.db.query(ctx, "SELECT "+endpointCols+` FROM endpoints e JOIN services s ON s.id = e.service_id
		WHERE s.execution_id = $1 ORDER BY s.startup_order, s.id, e.name`, executionID)
	eps, err := collect(rs, err, scanEndpoint)
	return eps, s.fail("endpoints", err)
}
