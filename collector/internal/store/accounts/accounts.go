// Package accounts keeps who may use the collector's web UI and API:
// local users and their browser sessions, users signed in by OpenID
// Connect, and API tokens (roles, expiry, revocation, the first-run admin
// token). Every change is audited with its actor. The tables live in the
// collector's one database and its migrations; this package reaches them
// through the store's core (see store/core.go).
package accounts

import "github.com/bonafide-sec/bonafide/collector/internal/store"

// Store keeps the accounts in the collector's database.
type Store struct{ db *store.Store }

// New is the accounts kept in db.
func New(db *store.Store) *Store { return &Store{db: db} }
