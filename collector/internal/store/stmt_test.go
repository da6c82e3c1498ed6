package store_test

import (
	"slices"
	"testing"
)

// TestWriterBindsStatementOnce: on SQLite a cached statement is bound to
// the writer's transaction once and reused by every report of the group,
// and a transaction after it binds its own (running one bound to a
// transaction that ended would fail: database/sql closed it).
func TestWriterBindsStatementOnce(t *testing.T) {
	e := newEnv(t, freshDSN(t, ""))
	used, err := e.st.StmtsBoundForTest(e.ctx, `UPDATE agents SET last_seen = last_seen WHERE id = ?`, "none")
	if err != nil {
		t.Fatal(err)
	}
	// The first transaction notes the statement, prepared after it commits.
	if want := []int{0, 1, 1}; !slices.Equal(used, want) {
		t.Errorf("statements of each transaction = %v, want %v", used, want)
	}
}
