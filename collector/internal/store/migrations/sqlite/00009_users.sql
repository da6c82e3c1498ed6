-- +goose Up
-- Local users of the web UI. username is lower-case; role is admin,
-- analyst or viewer; password_hash is bcrypt; disabled_at is 0 while the
-- user may sign in.
CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       TEXT UNIQUE NOT NULL,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    disabled_at    BIGINT NOT NULL DEFAULT 0
);
-- Signed-in browser sessions. token_hash is the hex SHA-256 of the cookie's
-- token (the token itself is not stored); csrf is the token forms must echo.
CREATE TABLE ui_sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    csrf        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at);

-- +goose Down
DROP TABLE ui_sessions;
DROP TABLE users;
