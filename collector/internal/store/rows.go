package store

import "database/sql"

// scanner is a result row to read: *sql.Row or *sql.Rows.
type scanner = interface{ Scan(...any) error }

// scanRows reads every row of a result with scan and closes it; no rows is
// an empty list. scan reads one row, so the same function reads a single
// *sql.Row (scanDevice, scanAlert...).
func scanRows[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// scanColumn reads a one-column result and closes it.
func scanColumn[T any](rows *sql.Rows) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
