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
		if _, err := q.exec(ctx, "DELETE FROM endpoints WHERE service_id = $1", serviceID); err != nil {
			return err
		}
		for _, ep := range eps {
			if _, err := q.exec(ctx, `INSERT INTO endpoints
				(service_id, name, port, protocol, external_address, external_port, url)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, serviceID, ep.Name, int64(ep.Port), ep.Protocol,
				ep.ExternalAddress, int64(ep.ExternalPort), ep.URL); err != nil {
				return err
			}
		}
		return nil
	})
	return s.fail(op, err)
}

func (s *store) Endpoints(ctx context.Context, executionID int64) ([]Endpoint, error) {
	rs, err := s.db.query(ctx, "SELECT "+endpointCols+` FROM endpoints e JOIN services s ON s.id = e.service_id
		WHERE s.execution_id = $1 ORDER BY s.startup_order, s.id, e.name`, executionID)
	eps, err := collect(rs, err, scanEndpoint)
	return eps, s.fail("endpoints", err)
}
