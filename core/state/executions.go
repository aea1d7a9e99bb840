package state

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/zoe-project/zoe/sdk"
)

const (
	executionCols = "id, owner, name, description, status, size, cores, memory, error_message, exit_code, submitted_at, started_at, ended_at, network_id"
	listCols      = "id, owner, name, NULL, status, size, cores, memory, error_message, exit_code, submitted_at, started_at, ended_at, network_id"
)

func scanExecution(r row) (Execution, error) {
	var (
		e      Execution
		desc   []byte
		status string
		exit   *int64
		netID  *string
	)
	if err := r.Scan(&e.ID, &e.Owner, &e.Name, &desc, &status, &e.Size, &e.Cores, &e.Memory, &e.ErrorMessage, &exit,
		timeDst(&e.SubmittedAt), timePtrDst(&e.StartedAt), timePtrDst(&e.EndedAt), &netID); err != nil {
		return Execution{}, err
	}
	e.Description, e.Status, e.ExitCode = desc, Status(status), intPtr(exit)
	if netID != nil {
		e.NetworkID = *netID
	}
	return e, nil
}

// eventsFrom is what the event reads select from: events with their
// execution's owner.
const (
	eventCols  = "ev.id, ev.execution_id, x.owner, ev.service_name, ev.at, ev.from_status, ev.to_status, ev.reason"
	eventsFrom = "events ev JOIN executions x ON x.id = ev.execution_id"
)

func scanEvent(r row) (Event, error) {
	var e Event
	err := r.Scan(&e.ID, &e.ExecutionID, &e.Owner, &e.ServiceName, timeDst(&e.Time), &e.From, &e.To, &e.Reason)
	return e, err
}

// addEvent must be the last statement of its transaction: it takes the
// event lock (dialect.eventLock), held until the commit.
func (s *store) addEvent(ctx context.Context, q querier, ev Event) error {
	return s.addEvents(ctx, q, []Event{ev})
}

// addEvents is addEvent for several events, inserted in one statement in
// their order. In a batch of PostgreSQL's group commit they are inserted
// at the end of the batch instead (pgDB.beginBatch).
func (s *store) addEvents(ctx context.Context, q querier, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	if b, ok := q.(eventDeferrer); ok {
		b.deferEvents(evs)
		return nil
	}
	if err := s.d.eventLock(ctx, q); err != nil {
		return err
	}
	var a args
	vals := make([]string, len(evs))
	for i, ev := range evs {
		vals[i] = "(" + strings.Join([]string{a.add(ev.ExecutionID), a.add(ev.ServiceName), a.add(s.ts(ev.Time)),
			a.add(ev.From), a.add(ev.To), a.add(ev.Reason)}, ", ") + ")"
	}
	_, err := q.exec(ctx, `INSERT INTO events (execution_id, service_name, at, from_status, to_status, reason)
		VALUES `+strings.Join(vals, ", "), a...)
	return err
}

// eventDeferrer is a querier whose events wait for the end of its
// transaction.
type eventDeferrer interface {
	deferEvents(evs []Event)
}

// insertDeferredEvents inserts the events of a batch, in their order, under
// the event lock, as its last statements. The events of an execution a
// later member deleted are left out: they would have gone with it.
func (s *store) insertDeferredEvents(ctx context.Context, q querier, evs []Event) error {
	if err := s.d.eventLock(ctx, q); err != nil {
		return err
	}
	var a args
	vals := make([]string, len(evs))
	for i, ev := range evs {
		vals[i] = fmt.Sprintf("(%s::bigint, %s::bigint, %s::text, %s::%s, %s::text, %s::text, %s::text)",
			a.add(int64(i)), a.add(ev.ExecutionID), a.add(ev.ServiceName), a.add(s.ts(ev.Time)), s.d.timeType,
			a.add(ev.From), a.add(ev.To), a.add(ev.Reason))
	}
	_, err := q.exec(ctx, `INSERT INTO events (execution_id, service_name, at, from_status, to_status, reason)
		SELECT v.execution_id, v.service_name, v.at, v.from_status, v.to_status, v.reason
		FROM (VALUES `+strings.Join(vals, ", ")+`) AS v (pos, execution_id, service_name, at, from_status, to_status, reason)
		WHERE EXISTS (SELECT 1 FROM executions x WHERE x.id = v.execution_id) ORDER BY v.pos`, a...)
	return err
}

func checkNewExecution(e NewExecution) (desc string, services []string, err error) {
	if err := checkUsername(e.Owner); err != nil {
		return "", nil, err
	}
	if e.Name == "" {
		return "", nil, invalid("execution without a name")
	}
	if e.Size < 0 || e.Cores < 0 || math.IsNaN(e.Cores) || math.IsInf(e.Cores, 0) || e.Memory < 0 {
		return "", nil, invalid("size, cores and memory must not be negative")
	}
	if desc, err = jsonText("the description", e.Description); err != nil {
		return "", nil, err
	}
	seen := map[string]bool{}
	for _, sv := range e.Services {
		if sv.Name == "" || sv.Group == "" {
			return "", nil, invalid("a service without a name or group")
		}
		if seen[sv.Name] {
			return "", nil, invalid("two services named %q", sv.Name)
		}
		seen[sv.Name] = true
		d, err := jsonText(fmt.Sprintf("the description of service %q", sv.Name), sv.Description)
		if err != nil {
			return "", nil, err
		}
		services = append(services, d)
	}
	return desc, services, nil
}

func (s *store) CreateExecution(ctx context.Context, e NewExecution) (Execution, error) {
	op := fmt.Sprintf("create execution %q of %q", e.Name, e.Owner)
	desc, sdescs, err := checkNewExecution(e)
	if err != nil {
		return Execution{}, fmt.Errorf("%s: %w", op, err)
	}
	var out Execution
	err = s.db.tx(ctx, func(q querier) error {
		quota, enabled, err := effectiveQuota(ctx, q, e.Owner, s.d.forUpdate)
		if err != nil {
			return err
		}
		if !enabled {
			return fmt.Errorf("user %q is disabled: %w", e.Owner, sdk.ErrPermissionDenied)
		}
		if err := checkAgainstQuota(ctx, q, quota, e); err != nil {
			return err
		}
		t := now()
		out, err = scanExecution(q.queryRow(ctx, `INSERT INTO executions
			(owner, name, description, status, size, cores, memory, submitted_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+executionCols,
			e.Owner, e.Name, desc, string(StatusSubmitted), e.Size, e.Cores, e.Memory, s.ts(t)))
		if err != nil {
			return err
		}
		if len(e.Services) > 0 {
			// One statement for all services: a round trip each would
			// dominate the cost of a submission.
			var a args
			vals := make([]string, len(e.Services))
			for i, sv := range e.Services {
				vals[i] = "(" + strings.Join([]string{a.add(out.ID), a.add(sv.Name), a.add(sv.Group), a.add(sv.Essential),
					a.add(string(ServiceCreated)), a.add(int64(sv.StartupOrder)), a.add(sdescs[i])}, ", ") + ")"
			}
			if _, err := q.exec(ctx, `INSERT INTO services
				(execution_id, name, service_group, essential, status, startup_order, description)
				VALUES `+strings.Join(vals, ", "), a...); err != nil {
				return err
			}
		}
		return s.addEvent(ctx, q, Event{ExecutionID: out.ID, Time: t, To: string(StatusSubmitted),
			Reason: "submitted by " + e.Owner})
	})
	return out, s.fail(op, err)
}

// checkAgainstQuota refuses e when it would take its owner over quota q.
// It runs in the transaction that inserts e, after the owner's row is
// locked.
func checkAgainstQuota(ctx context.Context, q querier, quota Quota, e NewExecution) error {
	if quota.ConcurrentExecutions == 0 && quota.Cores == 0 && quota.Memory == 0 {
		return nil
	}
	u, err := usage(ctx, q, e.Owner)
	if err != nil {
		return err
	}
	n, cores, memory := int64(u.Executions), u.Cores, u.Memory
	const eps = 1e-9 // sums of fractional cores
	switch {
	case quota.ConcurrentExecutions > 0 && n >= int64(quota.ConcurrentExecutions):
		return fmt.Errorf("you may run at most %d %s at a time; %d %s active (quota %q): %w",
			quota.ConcurrentExecutions, plural(int64(quota.ConcurrentExecutions), "execution", "executions"),
			n, plural(n, "is", "are"), quota.Name, sdk.ErrResourceExhausted)
	case quota.Cores > 0 && cores+e.Cores > quota.Cores+eps:
		return fmt.Errorf("this execution reserves %s cores and your active executions %s; your quota %q allows %s: %w",
			fmtFloat(e.Cores), fmtFloat(cores), quota.Name, fmtFloat(quota.Cores), sdk.ErrResourceExhausted)
	case quota.Memory > 0 && memory+e.Memory > quota.Memory:
		return fmt.Errorf("this execution reserves %s of memory and your active executions %s; your quota %q allows %s: %w",
			fmtBytes(e.Memory), fmtBytes(memory), quota.Name, fmtBytes(quota.Memory), sdk.ErrResourceExhausted)
	}
	return nil
}

// usage sums the owner's active executions.
func usage(ctx context.Context, q querier, owner string) (Usage, error) {
	var (
		u Usage
		n int64
	)
	err := q.queryRow(ctx, `SELECT COUNT(*), CAST(COALESCE(SUM(cores), 0) AS DOUBLE PRECISION),
		CAST(COALESCE(SUM(memory), 0) AS BIGINT) FROM executions WHERE owner = $1 AND `+activeSQL,
		owner).Scan(&n, &u.Cores, &u.Memory)
	u.Executions = int(n)
	return u, err
}

func (s *store) Usage(ctx context.Context, username string) (Usage, error) {
	u, err := usage(ctx, s.db, username)
	return u, s.fail("usage", err)
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// fmtBytes writes n in the largest binary unit that keeps it exact enough to
// read, e.g. 32 GiB or 1.5 MiB.
func fmtBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64) + " " + units[i]
}

func (s *store) GetExecution(ctx context.Context, id int64) (Execution, error) {
	e, err := scanExecution(s.db.queryRow(ctx, "SELECT "+executionCols+" FROM executions WHERE id = $1", id))
	if isNoRows(err) {
		err = notFound("execution %d", id)
	}
	return e, s.fail("get execution", err)
}

// The cursor is opaque to clients: it may change form without breaking
// them.
func encodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("e" + strconv.FormatInt(id, 10)))
}

// ValidCursor says whether c is a cursor ListExecutions gave.
func ValidCursor(c string) bool {
	_, err := decodeCursor(c)
	return err == nil
}

func decodeCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil && len(b) > 1 && b[0] == 'e' {
		if id, err := strconv.ParseInt(string(b[1:]), 10, 64); err == nil && id > 0 {
			return id, nil
		}
	}
	return 0, invalid("invalid cursor %q", c)
}

func (s *store) ListExecutions(ctx context.Context, f Filter) ([]Execution, string, error) {
	limit := f.Limit
	switch {
	case limit < 0:
		return nil, "", fmt.Errorf("list executions: %w", invalid("negative limit %d", limit))
	case limit == 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	var (
		a     args
		where []string
	)
	if f.Owner != "" {
		where = append(where, "owner = "+a.add(f.Owner))
	}
	if len(f.Statuses) > 0 {
		for _, st := range f.Statuses {
			if !st.Valid() {
				return nil, "", fmt.Errorf("list executions: %w", invalid("unknown status %q", st))
			}
		}
		where = append(where, "status IN "+in(&a, f.Statuses))
	}
	if f.Name != "" {
		where = append(where, fmt.Sprintf(s.d.contains, "name", a.add(f.Name)))
	}
	if f.Cursor != "" {
		id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("list executions: %w", err)
		}
		where = append(where, "id < "+a.add(id))
	}
	// Listings leave the description out: it is the largest column by far
	// and GetExecution has it.
	query := "SELECT " + listCols + " FROM executions"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	// One row more than the page tells whether there is a next page.
	query += " ORDER BY id DESC LIMIT " + a.add(int64(limit+1))
	rs, err := s.db.query(ctx, query, a...)
	es, err := collect(rs, err, scanExecution)
	if err != nil {
		return nil, "", s.fail("list executions", err)
	}
	next := ""
	if len(es) > limit {
		es = es[:limit]
		next = encodeCursor(es[limit-1].ID)
	}
	return es, next, nil
}

func (s *store) ActiveExecutions(ctx context.Context) ([]Execution, error) {
	rs, err := s.db.query(ctx, "SELECT "+executionCols+" FROM executions WHERE "+activeSQL+" ORDER BY id")
	es, err := collect(rs, err, scanExecution)
	return es, s.fail("active executions", err)
}

func joinStatuses[T ~string](ss []T) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return strings.Join(out, " or ")
}

func (s *store) Transition(ctx context.Context, id int64, from []Status, to Status, c ExecutionChange) (Execution, error) {
	op := fmt.Sprintf("execution %d: %s to %s", id, joinStatuses(from), to)
	if len(from) == 0 || !to.Valid() || slices.ContainsFunc(from, func(s Status) bool { return !s.Valid() }) {
		return Execution{}, fmt.Errorf("%s: %w", op, invalid("unknown status"))
	}
	if c.NetworkID != "" && !to.Active() {
		return Execution{}, fmt.Errorf("%s: %w", op, invalid("a network id for an execution that ends"))
	}
	var out Execution
	err := s.db.tx(ctx, func(q querier) error {
		var cur string
		// Not FOR UPDATE: this transaction waits for the event lock while
		// it holds the row (see dialect.eventLock).
		err := q.queryRow(ctx, "SELECT status FROM executions WHERE id = $1"+s.d.forNoKeyUpdate, id).Scan(&cur)
		if isNoRows(err) {
			return notFound("execution %d", id)
		}
		if err != nil {
			return err
		}
		if !slices.Contains(from, Status(cur)) {
			return fmt.Errorf("execution %d is %s: %w", id, cur, sdk.ErrConflict)
		}
		t := now()
		var a args
		set := []string{"status = " + a.add(string(to))}
		if c.ErrorMessage != nil {
			set = append(set, "error_message = "+a.add(*c.ErrorMessage))
		}
		if c.ExitCode != nil {
			set = append(set, "exit_code = "+a.add(int64(*c.ExitCode)))
		}
		if c.Started {
			set = append(set, "started_at = "+a.add(s.ts(t)))
		}
		if c.Ended {
			set = append(set, "ended_at = "+a.add(s.ts(t)))
		}
		if c.NetworkID != "" {
			set = append(set, "network_id = "+a.add(c.NetworkID))
		}
		// The status test repeats the check above: the update is a
		// compare-and-set even where the read took no lock.
		out, err = scanExecution(q.queryRow(ctx, "UPDATE executions SET "+strings.Join(set, ", ")+
			" WHERE id = "+a.add(id)+" AND status = "+a.add(cur)+" RETURNING "+executionCols, a...))
		if isNoRows(err) {
			return fmt.Errorf("execution %d changed status concurrently: %w", id, sdk.ErrConflict)
		}
		if err != nil {
			return err
		}
		return s.addEvent(ctx, q, Event{ExecutionID: id, Time: t, From: cur, To: string(to), Reason: c.Reason})
	})
	return out, s.fail(op, err)
}

func (s *store) SetNetwork(ctx context.Context, id int64, networkID string) error {
	err := s.db.tx(ctx, func(q querier) error {
		var cur string
		// Not FOR UPDATE: see group.overlap.
		err := q.queryRow(ctx, "SELECT status FROM executions WHERE id = $1"+s.d.forNoKeyUpdate, id).Scan(&cur)
		if isNoRows(err) {
			return notFound("execution %d", id)
		}
		if err != nil {
			return err
		}
		if !Status(cur).Active() {
			return fmt.Errorf("execution %d is %s: %w", id, cur, sdk.ErrConflict)
		}
		// The status test repeats the check above where the read took no
		// lock.
		n, err := q.exec(ctx, "UPDATE executions SET network_id = NULLIF($1, '') WHERE id = $2 AND "+activeSQL,
			networkID, id)
		if err == nil && n == 0 {
			err = fmt.Errorf("execution %d ended concurrently: %w", id, sdk.ErrConflict)
		}
		return err
	})
	return s.fail(fmt.Sprintf("execution %d: set network", id), err)
}

func (s *store) DeleteExecution(ctx context.Context, id int64) error {
	err := s.db.tx(ctx, func(q querier) error {
		var cur string
		err := q.queryRow(ctx, "SELECT status FROM executions WHERE id = $1"+s.d.forUpdate, id).Scan(&cur)
		if isNoRows(err) {
			return notFound("execution %d", id)
		}
		if err != nil {
			return err
		}
		if Status(cur).Active() {
			return fmt.Errorf("execution %d is %s; terminate it first: %w", id, cur, sdk.ErrConflict)
		}
		// Services, endpoints and events go with it (ON DELETE CASCADE).
		_, err = q.exec(ctx, "DELETE FROM executions WHERE id = $1", id)
		return err
	})
	return s.fail(fmt.Sprintf("delete execution %d", id), err)
}

func (s *store) Events(ctx context.Context, executionID int64) ([]Event, error) {
	rs, err := s.db.query(ctx, "SELECT "+eventCols+" FROM "+eventsFrom+" WHERE ev.execution_id = $1 ORDER BY ev.id",
		executionID)
	evs, err := collect(rs, err, scanEvent)
	return evs, s.fail("events", err)
}

func (s *store) EventsAfter(ctx context.Context, afterID int64, f EventFilter) ([]Event, error) {
	limit := f.Limit
	switch {
	case limit < 0:
		return nil, fmt.Errorf("events after %d: %w", afterID, invalid("negative limit %d", limit))
	case limit == 0:
		limit = DefaultEventLimit
	case limit > MaxEventLimit:
		limit = MaxEventLimit
	}
	var a args
	where := []string{"ev.id > " + a.add(afterID)}
	if f.Owner != "" {
		where = append(where, "x.owner = "+a.add(f.Owner))
	}
	if f.ExecutionID != 0 {
		where = append(where, "ev.execution_id = "+a.add(f.ExecutionID))
	}
	if f.Through != 0 {
		where = append(where, "ev.id <= "+a.add(f.Through))
	}
	rs, err := s.db.query(ctx, "SELECT "+eventCols+" FROM "+eventsFrom+" WHERE "+strings.Join(where, " AND ")+
		" ORDER BY ev.id LIMIT "+a.add(int64(limit)), a...)
	evs, err := collect(rs, err, scanEvent)
	return evs, s.fail(fmt.Sprintf("events after %d", afterID), err)
}

func (s *store) LastEventID(ctx context.Context) (int64, error) {
	var id int64
	err := s.db.queryRow(ctx, "SELECT COALESCE(MAX(id), 0) FROM events").Scan(&id)
	return id, s.fail("last event id", err)
}
