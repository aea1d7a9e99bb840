package state

import (
	"context"
	"fmt"
)

func (s *store) FeedCursor(ctx context.Context, name string) (int64, bool, error) {
	var id int64
	err := s.db.queryRow(ctx, "SELECT event_id FROM feed_cursors WHERE name = $1", name).Scan(&id)
	if isNoRows(err) {
		return 0, false, nil
	}
	return id, err == nil, s.fail(fmt.Sprintf("feed cursor %q", name), err)
}

func (s *store) SetFeedCursor(ctx context.Context, name string, id int64) error {
	op := fmt.Sprintf("set feed cursor %q", name)
	if name == "" || id < 0 {
		return fmt.Errorf("%s: %w", op, invalid("a cursor needs a name and an id from 0"))
	}
	err := s.db.tx(ctx, func(q querier) error {
		_, err := q.exec(ctx, `INSERT INTO feed_cursors (name, event_id) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET event_id = excluded.event_id
			WHERE feed_cursors.event_id < excluded.event_id`, name, id)
		return err
	})
	return s.fail(op, err)
}
