package store

import (
	"context"
	"fmt"
	"strings"
)

// MatchDevices finds up to limit devices for a search term: by id or
// hardware serial, by a host name starting with q (case as reported), or
// by a bound person's email starting with q. Each is an index lookup.
func (s *Store) MatchDevices(ctx context.Context, q string, limit int) ([]string, error) {
	q = strings.TrimSpace(q)
	if q == "" || limit <= 0 {
		return nil, nil
	}
	lq := strings.ToLower(q)
	// Prefixes are looked up as ranges and checked again here: under a
	// linguistic collation (PostgreSQL) a range can hold strings that do
	// not start with the prefix.
	lookups := []struct {
		col, where string
		args       []any
		prefix     string
	}{
		{"id", "id = ? OR serial_number = ?", []any{q, q}, ""},
		{"hostname", "hostname >= ? AND hostname < ?", []any{q, q + "\U0010FFFF"}, q},
		{"person", "person >= ? AND person < ?", []any{lq, lq + "\U0010FFFF"}, lq},
	}
	seen := map[string]bool{}
	var ids []string
	for _, l := range lookups {
		rows, err := s.r.QueryContext(ctx, s.q(`SELECT id, `+l.col+` FROM devices WHERE `+l.where+` ORDER BY `+l.col+` LIMIT ?`), append(l.args, limit)...)
		if err != nil {
			return nil, fmt.Errorf("match devices: %w", err)
		}
		for rows.Next() {
			var id, v string
			if err := rows.Scan(&id, &v); err != nil {
				rows.Close()
				return nil, err
			}
			if !seen[id] && strings.HasPrefix(v, l.prefix) && len(ids) < limit {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return ids, nil
}
