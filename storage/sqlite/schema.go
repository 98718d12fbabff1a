package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// applicationID marks the file as an mlskit store in the SQLite header
// (PRAGMA application_id), so Open refuses some other program's database
// rather than adding tables to it. "MLSK" in ASCII.
const applicationID = 0x4d4c534b

// migrations[i] brings the schema from version i to version i+1; the version
// is kept in PRAGMA user_version. To change the schema, append a migration;
// never edit one that has shipped. Every migration runs in the same
// transaction as the version bump, so a crash mid-migration leaves the old
// version intact.
//
// A migration may rewrite tables but must not change what the stored blobs
// mean: their formats belong to the layer above and are versioned by it
// (storage.Envelope).
var migrations = []func(ctx context.Context, tx *sql.Tx) error{
	// Version 1. Rowid tables with the key as a unique index rather than
	// WITHOUT ROWID tables, because values are large (a group state can be
	// megabytes) and SQLite advises WITHOUT ROWID only for small rows.
	execAll(
		`CREATE TABLE groups (
			id    BLOB    NOT NULL PRIMARY KEY,
			epoch INTEGER NOT NULL,
			state BLOB    NOT NULL
		)`,
		`CREATE TABLE epochs (
			group_id BLOB    NOT NULL,
			epoch    INTEGER NOT NULL,
			data     BLOB    NOT NULL,
			PRIMARY KEY (group_id, epoch)
		)`,
		`CREATE TABLE message_keys (
			group_id BLOB    NOT NULL,
			epoch    INTEGER NOT NULL,
			key_id   BLOB    NOT NULL,
			data     BLOB    NOT NULL,
			PRIMARY KEY (group_id, epoch, key_id)
		)`,
		`CREATE TABLE pending_commits (
			group_id BLOB NOT NULL PRIMARY KEY,
			data     BLOB NOT NULL
		)`,
		`CREATE TABLE key_packages (
			ref  BLOB NOT NULL PRIMARY KEY,
			data BLOB NOT NULL
		)`,
		`CREATE TABLE psks (
			id   BLOB NOT NULL PRIMARY KEY,
			data BLOB NOT NULL
		)`,
	),
	// Version 2. The application's own records (storage.Batch.AppRecords),
	// so that a client can keep its identity and bookkeeping in the same
	// engine as its groups.
	execAll(
		`CREATE TABLE app_records (
			key  BLOB NOT NULL PRIMARY KEY,
			data BLOB NOT NULL
		)`,
	),
}

func execAll(stmts ...string) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		for _, q := range stmts {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	}
}

// migrate brings the database on conn to the latest schema version.
func migrate(ctx context.Context, conn *sql.Conn) (err error) {
	tx, err := conn.BeginTx(ctx, nil) // BEGIN IMMEDIATE: one migrator at a time
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	var version, appID int64
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if err := tx.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if appID != applicationID {
		// A fresh file has application_id 0 and no tables; anything else
		// belongs to someone else.
		var tables int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
		if appID != 0 || version != 0 || tables != 0 {
			return ErrNotStore
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
	}
	if version > int64(len(migrations)) {
		return fmt.Errorf("%w (file has version %d, this build knows up to %d)", ErrSchemaTooNew, version, len(migrations))
	}
	for v := version; v < int64(len(migrations)); v++ {
		if err := migrations[v](ctx, tx); err != nil {
			return fmt.Errorf("sqlite: migrate to version %d: %w", v+1, err)
		}
	}
	if version != int64(len(migrations)) {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}
